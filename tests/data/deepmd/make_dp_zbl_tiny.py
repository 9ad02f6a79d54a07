"""Make the tiny DP + ZBL (pair table) fixture ``tests/data/deepmd/dp_zbl_tiny`` with DeePMD-kit 3.2.0.

Run from the repository root with DeePMD-kit 3.2.0's Python (PyTorch backend, CPU)::

    CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=1 /path/to/deepmd-venv/bin/python \
        tests/data/deepmd/make_dp_zbl_tiny.py --work /tmp/dpc_zbl_build [--eval-only]

Shared data: ``$DPC_SHARED_FIXTURES`` or ``../shared/fixtures/deepmd`` next to the repository (its
``water-data``).

Steps:

1. ``zbl_table.txt``: our own ZBL table (:func:`zbl_pair_energy`, the universal screening function of
   Ziegler, Biersack and Littmark) for O (Z = 8) and H (Z = 1), columns ``r, E_OO, E_OH, E_HH`` (DeePMD-kit's
   pair-table layout, upper triangle of the type pairs), ``r`` from ``R_FIRST`` to ``RCUT`` in steps ``HH``,
   multiplied by a quintic taper that takes it smoothly to 0 between ``TAPER_ON`` and ``RCUT`` (so the last row is
   zero and DeePMD-kit neither pads nor extrapolates the table);
2. ``dp --pt train input.json`` (``use_srtab``, ``sw_rmin``, ``sw_rmax`` at model level; the linear model needs a
   mixed-type descriptor, so se_atten with ``attn_layer`` 0), ``dp --pt freeze``, ``dp convert-backend``,
   ``dp --pt compress``;
3. references by ``DeepPot`` on frozen.pth and compressed.pth for frames 0-1 of
   ``se_e2_a_tiny/test_frames.npz`` and four close-contact frames made from frames 2-5 (:func:`close_contacts`).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
FRAMES = os.path.join(HERE, "se_e2_a_tiny", "test_frames.npz")
NAME = "dp_zbl_tiny"
STEPS = 150
R_FIRST, HH, RCUT, TAPER_ON = 0.02, 0.02, 6.0, 3.0
SW_RMIN, SW_RMAX = 0.6, 1.1
Z = {"O": 8, "H": 1}
COULOMB = 14.399645  # e^2 / (4 pi eps0) in eV A
# (atom moved, partner atom, distance in A) per close-contact frame: H-O, O-O, H-H, O-H at 0.3-1 A
CONTACTS = [(130, 0, 0.3), (5, 1, 0.5), (150, 140, 0.8), (10, 100, 1.0)]

INPUT = {
    "model": {
        "type_map": ["O", "H"], "use_srtab": "zbl_table.txt", "sw_rmin": SW_RMIN, "sw_rmax": SW_RMAX,
        "descriptor": {"type": "se_atten", "sel": 120, "rcut_smth": 0.5, "rcut": RCUT, "neuron": [4, 8, 16],
                       "resnet_dt": False, "axis_neuron": 4, "tebd_dim": 4, "tebd_input_mode": "strip",
                       "attn": 128, "attn_layer": 0, "attn_dotr": True, "attn_mask": False,
                       "precision": "float64", "seed": 1},
        "fitting_net": {"neuron": [16, 16], "resnet_dt": True, "precision": "float64", "seed": 1},
    },
    "learning_rate": {"type": "exp", "decay_steps": 20, "start_lr": 0.001, "stop_lr": 1e-05},
    "loss": {"type": "ener", "start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000, "limit_pref_f": 1,
             "start_pref_v": 0, "limit_pref_v": 0},
    "training": {
        "training_data": {"systems": ["data/train/data_0"], "batch_size": "auto"},
        "validation_data": {"systems": ["data/valid/data_3"], "batch_size": 1, "numb_btch": 1},
        "numb_steps": STEPS, "seed": 10, "disp_file": "lcurve.out", "disp_freq": 50, "save_freq": STEPS,
    },
}


def zbl_pair_energy(r, z1, z2):
    """ZBL universal repulsive pair energy in eV, r in A.

    E(r) = k Z1 Z2 / r * phi(r / a), a = 0.46850 / (Z1^0.23 + Z2^0.23),
    phi(x) = 0.18175 e^{-3.19980 x} + 0.50986 e^{-0.94229 x} + 0.28022 e^{-0.40290 x} + 0.02817 e^{-0.20162 x}.
    """
    a = 0.46850 / (z1 ** 0.23 + z2 ** 0.23)
    x = r / a
    phi = (0.18175 * np.exp(-3.19980 * x) + 0.50986 * np.exp(-0.94229 * x)
           + 0.28022 * np.exp(-0.40290 * x) + 0.02817 * np.exp(-0.20162 * x))
    return COULOMB * z1 * z2 / r * phi


def taper(r):
    """1 below TAPER_ON, 0 at RCUT, quintic smoothstep (C2) between."""
    u = np.clip((r - TAPER_ON) / (RCUT - TAPER_ON), 0.0, 1.0)
    return 1.0 - u ** 3 * (10.0 - 15.0 * u + 6.0 * u ** 2)


def make_table(path):
    n = int(round((RCUT - R_FIRST) / HH)) + 1
    r = R_FIRST + HH * np.arange(n)
    cols = [r]
    names = ["O", "H"]
    for i in range(2):
        for j in range(i, 2):
            cols.append(zbl_pair_energy(r, Z[names[i]], Z[names[j]]) * taper(r))
    table = np.stack(cols, axis=1)
    table[-1, 1:] = 0.0
    np.savetxt(path, table, fmt="%.10e")


def shared_fixtures():
    root = os.environ.get("DPC_SHARED_FIXTURES")
    if not root:
        root = os.path.join(os.path.dirname(REPO), "shared", "fixtures", "deepmd")
    if not os.path.isdir(os.path.join(root, "water-data")):
        sys.exit(f"no water data under {root}/water-data: set DPC_SHARED_FIXTURES")
    return root


def run(cmd, cwd):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def train(work):
    water = os.path.join(shared_fixtures(), "water-data")
    folder = os.path.join(work, NAME)
    os.makedirs(folder, exist_ok=True)
    for sub in ("train/data_0", "valid/data_3"):
        dst = os.path.join(folder, "data", sub)
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(os.path.join(water, sub), dst)
    make_table(os.path.join(folder, "zbl_table.txt"))
    with open(os.path.join(folder, "input.json"), "w") as fh:
        json.dump(INPUT, fh, indent=1)
    dp = os.path.join(os.path.dirname(sys.executable), "dp")
    run([dp, "--pt", "train", "input.json"], folder)
    run([dp, "--pt", "freeze", "-o", "frozen.pth"], folder)
    run([dp, "convert-backend", "frozen.pth", "frozen.dp"], folder)
    run([dp, "--pt", "compress", "-i", "frozen.pth", "-o", "compressed.pth"], folder)


def min_image(d, box):
    frac = d @ np.linalg.inv(box)
    return (frac - np.round(frac)) @ box


def close_contacts(coord, box):
    """Frames 2-5 with atom ``a`` moved to distance ``r`` from atom ``b`` (direction: their old separation)."""
    out = []
    for k, (a, b, r) in enumerate(CONTACTS):
        c = coord[2 + k].copy()
        d = min_image(c[a] - c[b], box[2 + k])
        c[a] = c[b] + d / np.linalg.norm(d) * r
        out.append(c)
    return np.stack(out)


def evaluate(work):
    from deepmd.infer import DeepPot

    frames = np.load(FRAMES)
    coord = frames["coord"][:6].astype(np.float64).reshape(6, -1, 3)
    box = frames["box"][:6].astype(np.float64).reshape(6, 3, 3)
    atype = frames["atype"].astype(int)
    coord = np.concatenate([coord[:2], close_contacts(coord, box)])
    nf = coord.shape[0]
    dest = os.path.join(HERE, NAME)
    os.makedirs(dest, exist_ok=True)
    np.savez_compressed(os.path.join(dest, "test_frames.npz"), coord=coord, box=box, atype=atype,
                        type_map=np.array(["O", "H"]), contacts=np.array(CONTACTS))
    out = {}
    for tag, fname in (("uncompressed", "frozen.pth"), ("compressed", "compressed.pth")):
        dp = DeepPot(os.path.join(work, NAME, fname))
        dp.eval(coord[:1].reshape(1, -1), box[:1].reshape(1, 9), atype)  # the first call may differ at 1e-8
        e, f, v, ae, av = dp.eval(coord.reshape(nf, -1), box.reshape(nf, 9), atype, atomic=True)
        out[tag] = {"energy": e.reshape(nf), "force": f.reshape(nf, -1, 3), "virial": v.reshape(nf, 3, 3),
                    "atom_energy": ae.reshape(nf, -1), "atom_virial": av.reshape(nf, -1, 3, 3)}
        if tag == "uncompressed":  # the compressed model's equal it to round-off (errors.json): not stored
            np.savez_compressed(os.path.join(dest, f"ref_{tag}_pth.npz"), **out[tag])
    diff = {k: float(np.max(np.abs(out["compressed"][k] - out["uncompressed"][k]))) for k in out["compressed"]}
    shutil.copy(os.path.join(work, NAME, "frozen.dp"), dest)
    shutil.copy(os.path.join(work, NAME, "zbl_table.txt"), dest)
    with open(os.path.join(dest, "input.json"), "w") as fh:
        json.dump(INPUT, fh, indent=1)
        fh.write("\n")
    with open(os.path.join(dest, "errors.json"), "w") as fh:
        json.dump({"max_abs_compressed_minus_uncompressed": diff, "nframes": nf}, fh, indent=1)
        fh.write("\n")
    print(json.dumps(diff, indent=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, help="build folder outside the repository")
    ap.add_argument("--eval-only", action="store_true")
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    if not args.eval_only:
        train(work)
    evaluate(work)


if __name__ == "__main__":
    main()
