"""DeePMD-kit 3.2.0 outputs of frozen.pth (exact) and compressed.pth on the stress frames, plus its table ranges."""
import json, sys
import numpy as np
import torch
from deepmd.infer import DeepPot

fr = np.load("stress_frames.npz")
for name in sys.argv[1:]:
    out = {}
    for tag, f in (("exact", "frozen.pth"), ("compressed", "compressed.pth")):
        dp = DeepPot(f"{name}/{f}")
        e, F, v = dp.eval(fr["coord"].reshape(len(fr["coord"]), -1), fr["box"].reshape(-1, 9), fr["atype"].tolist())
        out[f"{tag}_energy"] = e.reshape(-1)
        out[f"{tag}_force"] = F.reshape(len(e), -1, 3)
        out[f"{tag}_virial"] = v.reshape(len(e), 3, 3)
    sd = torch.jit.load(f"{name}/compressed.pth").state_dict()
    keys = sorted(k for k in sd if "compress_info" in k)
    info = np.array([sd[k].numpy() for k in keys])  # [lower, upper, e*upper, s0, s1, f] per table
    out["table_info"] = info
    out["table_keys"] = np.array(keys)
    np.savez_compressed(f"{name}/ref_stress.npz", **out)
    df = np.abs(out["compressed_force"] - out["exact_force"]).max(axis=(1, 2))
    print(name, "tables", info[:, :3].tolist(), "dp max|dF| per frame", " ".join(f"{x:.1e}" for x in df))
