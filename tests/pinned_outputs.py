"""Outputs of the compressed and exact paths pinned bit for bit (``tests/data/pinned/outputs.json``).

The file was written by ``python tests/pinned_outputs.py`` at the commit named in it,
before the model runtime moved the per-frame step into C; ``test_pinned_outputs.py``
recomputes every case and requires the same bytes (SHA-256 of each output array) for
1 and 2 threads.  Cases: every tiny DeePMD-kit fixture (test and stress frames,
compressed with the default step; exact on the test frames), every DeePMD-kit variant
model (compressed), a 3-atom water box, and the three NEP models (analytic and tabulated).
"""

import glob
import hashlib
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
PINNED = os.path.join(DATA, "pinned", "outputs.json")
FIXTURES = ("se_e2_a_tiny", "se_e2_r_tiny", "se_e3_tiny", "se_atten_v2_tiny", "hybrid_tiny")
NAMES = ("energy", "force", "virial", "atom_energy", "atom_virial")


def digest(arr):
    return hashlib.sha256(np.ascontiguousarray(arr, dtype=np.float64).tobytes()).hexdigest()[:32]


def _frames(path, which=None):
    z = np.load(path)
    coord = z["coord"] if which is None else z["coord"][which]
    box = None if "box" not in z.files else (z["box"] if which is None else z["box"][which])
    return coord.reshape(len(coord), -1), None if box is None else box.reshape(len(box), 9), z["atype"]


def cases():
    """(name, model factory, frames factory) of every pinned case; factories are lazy."""
    from dpcompress import compress

    out = []
    for fx in FIXTURES:
        model = os.path.join(DATA, "deepmd", fx, "frozen.dp")
        test = os.path.join(DATA, "deepmd", fx, "test_frames.npz")
        stress = os.path.join(DATA, "deepmd", fx, "test_frames_stress.npz")
        out.append((f"{fx}/compressed/test", lambda m=model: compress(m), lambda p=test: _frames(p, [0, 1, 2])))
        out.append((f"{fx}/compressed/stress", lambda m=model: compress(m), lambda p=stress: _frames(p)))
        out.append((f"{fx}/exact/test", lambda m=model: m, lambda p=test: _frames(p, [0])))
    for folder in sorted(glob.glob(os.path.join(DATA, "deepmd_variants", "*", "frames.npz"))):
        name = os.path.basename(os.path.dirname(folder))
        model = os.path.join(os.path.dirname(folder), "model.dp")
        out.append((f"variant/{name}/compressed", lambda m=model: compress(m), lambda p=folder: _frames(p)))

    def water3():
        coords = np.array([[[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]]])
        return coords.reshape(1, 9), np.array([[5.0, 0, 0, 0, 5.0, 0, 0, 0, 5.0]]), np.array([0, 1, 1])

    tiny = os.path.join(DATA, "deepmd", "se_e2_a_tiny", "frozen.dp")
    out.append(("se_e2_a_tiny/compressed/water3", lambda: compress(tiny), water3))

    def nep_frames(path):
        z = np.load(path)
        cell = z["cell"].reshape(1, 9) if bool(np.all(z["pbc"])) else None
        return z["positions"].reshape(1, -1), cell, z["type_index"]

    for model_dir in sorted(glob.glob(os.path.join(DATA, "nep", "*"))):
        txt = os.path.join(model_dir, "nep.txt")
        for npz in sorted(glob.glob(os.path.join(model_dir, "*.npz"))):
            tag = f"nep/{os.path.basename(model_dir)}/{os.path.basename(npz)[:-4]}"
            out.append((f"{tag}/analytic", lambda t=txt: t, lambda p=npz: nep_frames(p)))
            out.append((f"{tag}/tabulated", lambda t=txt: ("tabulated", t), lambda p=npz: nep_frames(p)))
    return out


def _potential(spec, n_threads):
    from dpcompress import Potential

    if isinstance(spec, tuple) and spec[0] == "tabulated":
        import tempfile

        from dpcompress import compress_nep, save_model

        tmp = tempfile.mkdtemp()
        out = os.path.join(tmp, "nep.dpc")
        save_model(compress_nep(spec[1]), out)
        return Potential(out, n_threads=n_threads)
    return Potential(spec, n_threads=n_threads)


def evaluate(model_factory, frames_factory, n_threads):
    """Digest and energies of every output of one case."""
    import warnings

    coords, cells, types = frames_factory()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pot = _potential(model_factory(), n_threads)
        res = pot.eval(coords, cells, types, atomic=True)
    return {
        "digests": {k: digest(v) for k, v in zip(NAMES, res)},
        "energy": [float(x) for x in res[0].ravel()],
        "max_force": float(np.abs(res[1]).max()),
    }


def main():
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
    table = {}
    for name, model, frames in cases():
        one = evaluate(model, frames, 1)
        two = evaluate(model, frames, 2)
        if one["digests"] != two["digests"]:
            sys.exit(f"{name}: 1 and 2 threads differ before pinning")
        table[name] = one
        print(name, one["energy"][0])
    with open(PINNED, "w") as fh:
        json.dump({"commit": commit, "cases": table}, fh, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
