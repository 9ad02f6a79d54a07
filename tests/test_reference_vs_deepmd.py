"""The exact numpy evaluator against DeePMD-kit 3.2.0's stored outputs.

Tolerances: |ΔE|/atom ≤ 1e-10 eV, max |ΔF| ≤ 1e-9 eV/Å, max |Δvirial| ≤ 1e-8 eV,
per-atom energies ≤ 1e-10 eV, per-atom virials ≤ 1e-8 eV.  The references come
from DeePMD-kit's PyTorch backend in float64 (measured agreement is ~1e-13).
"""

import os

import numpy as np
import pytest

from conftest import TINY, load_frames, shared_fixture
from dpcompress import Potential

TOL = dict(energy_per_atom=1e-10, force=1e-9, virial=1e-8, atom_energy=1e-10, atom_virial=1e-8)


def compare(pot, frames, ref):
    coords = frames["coord"].astype(np.float64)
    cells = frames["box"].astype(np.float64).reshape(len(coords), 9) if "box" in frames and not bool(frames.get("nopbc", False)) else None
    types = frames["atype"].astype(np.int64)
    e, f, v, ae, av = pot.eval(coords, cells, types, atomic=True)
    n = len(types)
    err = dict(
        energy_per_atom=np.max(np.abs(e[:, 0] - ref["energy"])) / n,
        force=np.max(np.abs(f - ref["force"].reshape(f.shape))),
        virial=np.max(np.abs(v - ref["virial"].reshape(v.shape))),
        atom_energy=np.max(np.abs(ae[..., 0] - ref["atom_energy"].reshape(ae.shape[:2]))),
        atom_virial=np.max(np.abs(av - ref["atom_virial"].reshape(av.shape))),
    )
    for key, tol in TOL.items():
        assert err[key] <= tol, f"{key}: {err[key]:.3e} > {tol:.0e} ({err})"
    return err


@pytest.mark.parametrize("stress", [False, True], ids=["test_frames", "stress_frames"])
def test_tiny_se_e2_a_matches_deepmd(stress):
    frames, ref = load_frames(TINY, stress)
    compare(Potential(os.path.join(TINY, "frozen.dp")), frames, ref)


@pytest.mark.slow
@pytest.mark.parametrize("stress", [False, True], ids=["test_frames", "stress_frames"])
def test_large_se_e2_a_matches_deepmd(stress):
    folder = shared_fixture("se_e2_a")
    frames, ref = load_frames(folder, stress)
    compare(Potential(os.path.join(folder, "frozen.dp")), frames, ref)
