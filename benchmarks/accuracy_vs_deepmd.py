"""Accuracy report: dpcompress (exact and compressed) against DeePMD-kit 3.2.0's stored outputs.

Usage::

    python benchmarks/accuracy_vs_deepmd.py [FIXTURES_DIR]   # default: ../shared/fixtures/deepmd

For every se_e2_a fixture folder and frame set (test frames, stress frames) it
prints the max |difference| of energy per atom, forces, virial, per-atom
energies and per-atom virials, for:

* exact       our uncompressed evaluator vs DeePMD-kit uncompressed (ref_uncompressed_pth*)
* compressed  our compressed model (step 0.01, quintic) vs our exact evaluator, next to
              DeePMD-kit's compressed vs uncompressed (its errors.json)
"""

import json
import os
import sys

import numpy as np

from dpcompress import Potential
from dpcompress import compress
from dpcompress import load_model

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, "..", "..", "shared", "fixtures", "deepmd")


def outputs(pot, frames):
    coords = frames["coord"].astype(np.float64)
    cells = frames["box"].astype(np.float64).reshape(len(coords), 9)
    return pot.eval(coords, cells, frames["atype"], atomic=True)


def maxdiff(a, b, n):
    e, f, v, ae, av = a
    E, F, V, AE, AV = b
    return dict(
        e_atom=np.abs(e.ravel() - np.ravel(E)).max() / n,
        force=np.abs(f - np.reshape(F, f.shape)).max(),
        virial=np.abs(v - np.reshape(V, v.shape)).max(),
        atom_e=np.abs(ae.ravel() - np.ravel(AE)).max(),
        atom_v=np.abs(av - np.reshape(AV, av.shape)).max(),
    )


def main(root):
    rows = []
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        path = os.path.join(folder, "frozen.dp")
        if not os.path.isfile(path):
            continue
        try:
            model = load_model(path)
        except NotImplementedError:
            continue  # descriptors of later issues
        exact, comp = Potential(model), Potential(compress(model))
        theirs = json.load(open(os.path.join(folder, "errors.json")))["errors"]
        for suffix, label in (("", "test"), ("_stress", "stress")):
            frames = np.load(os.path.join(folder, f"test_frames{suffix}.npz"))
            ref = np.load(os.path.join(folder, f"ref_uncompressed_pth{suffix}.npz"))
            n = len(frames["atype"])
            ex = outputs(exact, frames)
            d_exact = maxdiff(ex, [ref[k] for k in ("energy", "force", "virial", "atom_energy", "atom_virial")], n)
            d_comp = maxdiff(outputs(comp, frames), ex, n)
            dp = theirs.get(f"compressed_pth{suffix}", {})
            dp_force = max(dp.get("max_abs_force_by_frame", [dp.get("max_abs_force", float("nan"))]))
            rows.append((name, label, d_exact, d_comp, dp_force))
    print("| fixture | frames | exact vs DeePMD-kit: E/atom, F, V, e_i, W_i | compressed vs exact: E/atom, F, V | DeePMD-kit compressed vs uncompressed: F |")
    print("| --- | --- | --- | --- | --- |")
    for name, label, a, c, dpf in rows:
        print(
            f"| {name} | {label} | {a['e_atom']:.1e}, {a['force']:.1e}, {a['virial']:.1e}, {a['atom_e']:.1e}, {a['atom_v']:.1e} "
            f"| {c['e_atom']:.1e}, {c['force']:.1e}, {c['virial']:.1e} | {dpf:.1e} |"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else DEFAULT)
