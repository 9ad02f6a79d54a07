"""Copy the contact models, DeePMD-kit's outputs and its table ranges [lower, upper, xmin, xmax] and DeePMD-kit references into tests/data/contact_stress (run after make_refs.py)."""
import json, os, shutil, sys
import numpy as np

# the shared DeePMD-kit fixtures: $DPC_SHARED_FIXTURES, else ../shared/fixtures/deepmd next to the repository
FIX = os.environ.get("DPC_SHARED_FIXTURES", os.path.join(os.path.dirname(os.path.abspath(__file__)), *[".."] * 5, "shared", "fixtures", "deepmd"))

dst = sys.argv[1]
os.makedirs(dst, exist_ok=True)
shutil.copy("stress_frames.npz", f"{dst}/frames.npz")
tables = {}
for name in sorted(d for d in os.listdir(".") if d.startswith(("contact_tos", "contact_rcut6_"))):
    short = name[len("contact_"):]
    shutil.copy(f"{name}/frozen.dp", f"{dst}/{short}.dp")
    ref = np.load(f"{name}/ref_stress.npz")
    np.savez_compressed(f"{dst}/{short}_ref.npz", **{k: ref[k] for k in ref.files if k.startswith(("exact_", "compressed_"))})
    tos = json.load(open(f"{name}/input.json"))["model"]["descriptor"]["type_one_side"]
    nt = 2
    keyed = {}
    for key, info in zip(ref["table_keys"], ref["table_info"]):
        ii = int(str(key).rsplit(".", 1)[1])  # state-dict index: n*ntypes + c, or n with type_one_side
        tkey = f"filter_-1_net_{ii}" if tos else f"filter_{ii % nt}_net_{ii // nt}"
        keyed[tkey] = [float(info[0]), float(info[1]), float(info[0]), float(info[2])]  # lower, upper, xmin, xmax
    tables[short] = keyed
fix = FIX
for f in ("se_e2_a_tiny", "se_e2_r_tiny", "se_e3_tiny", "se_atten_v2_tiny", "hybrid_tiny"):
    meta = json.load(open(f"{fix}/{f}/tables_meta.json"))
    # se_e3 tables also extend below lower, to extrapolate*lower
    tables[f"deepmd/{f}"] = {t["key"]: [t["lower"], t["upper"], t["lower"] * (t["max"] / t["upper"] if t["descriptor_type"] == "se_e3" else 1), t["max"]]
                             for t in meta["tables"]}
with open(f"{dst}/deepmd_tables.json", "w") as fh:  # one line per table
    fh.write("{\n" + ",\n".join(json.dumps(m) + ": {\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in t.items()) + "}"
                                  for m, t in tables.items()) + "\n}\n")
