"""DeePMD-kit's outputs for the synthetic variants of a tiny fixture (``variants_ref.npz``).

Run from the repository root with DeePMD-kit 3.2.0's Python (PyTorch backend, CPU)::

    CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=1 /path/to/deepmd-venv/bin/python \
        tests/data/deepmd/make_variants_ref.py se_atten_tiny --work /tmp/dpc_variants

For every variant ``name`` of ``tests/synthetic_models.DEEPMD_CHECKED`` whose fixture is the given
folder: the edit is applied to the folder's ``frozen.dp`` (numpy, h5py and json only), the result is
converted with ``dp convert-backend v.dp v.pth`` and evaluated by ``DeepPot(v.pth)`` on the first two
frames of the folder's ``test_frames.npz`` (or, when it has none, of ``se_e2_a_tiny/test_frames.npz``,
as the fixture's own references), in float64.  Written: ``NAME/{energy, force, virial, atom_energy}``
into ``tests/data/deepmd/FOLDER/variants_ref.npz``.
"""

import argparse
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # tests/, for synthetic_models

from synthetic_models import DEEPMD_CHECKED, edit_dp  # noqa: E402

NFRAMES = 2


def frames(folder):
    path = os.path.join(folder, "test_frames.npz")
    if not os.path.exists(path):
        path = os.path.join(HERE, "se_e2_a_tiny", "test_frames.npz")
    fr = np.load(path)
    return (fr["coord"][:NFRAMES].astype(np.float64).reshape(NFRAMES, -1),
            fr["box"][:NFRAMES].astype(np.float64).reshape(NFRAMES, 9), fr["atype"].astype(np.int64))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fixture", help="folder name under tests/data/deepmd, e.g. se_atten_tiny")
    ap.add_argument("--work", required=True, help="scratch folder for the edited and converted models")
    args = ap.parse_args()
    from deepmd.infer import DeepPot

    folder = os.path.join(HERE, args.fixture)
    coord, box, atype = frames(folder)
    out = {}
    for name, (fixture, edit) in DEEPMD_CHECKED.items():
        if fixture != args.fixture:
            continue
        work = os.path.join(args.work, name)
        os.makedirs(work, exist_ok=True)
        edit_dp(os.path.join(folder, "frozen.dp"), os.path.join(work, "v.dp"), edit)
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "dp"), "convert-backend", "v.dp", "v.pth"],
                       cwd=work, check=True)
        dp = DeepPot(os.path.join(work, "v.pth"))
        dp.eval(coord, box, atype, atomic=True)  # discarded: TorchScript's first (profiling) call (dp-file-attention.md §4)
        e, f, v, ae, _ = dp.eval(coord, box, atype, atomic=True)
        out.update({f"{name}/energy": e.reshape(NFRAMES), f"{name}/force": f.reshape(NFRAMES, -1, 3),
                    f"{name}/virial": v.reshape(NFRAMES, 9), f"{name}/atom_energy": ae.reshape(NFRAMES, -1)})
        print(name, "energy", e.ravel(), flush=True)
    np.savez_compressed(os.path.join(folder, "variants_ref.npz"), **out)


if __name__ == "__main__":
    main()
