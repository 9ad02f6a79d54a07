"""PWMLFF models in LAMMPS: ``pair_style dpcompress`` with a ``.dpc`` compressed from a PWMLFF
checkpoint equals ``Potential.eval`` of the same ``.dpc``, with ``pair_coeff * * 29 28`` (atomic
numbers, as PWMLFF's LAMMPS inputs give them) as with element symbols.

Models: the tiny PWMLFF DP checkpoints of tests/data/pwmlff (Cu+Ni plain; Al+Cu type embedding as
``PWMLFF compress`` wrote it), compressed as ``dpcompress pwmlff compress`` does (order 3, ``-e 10``),
and the tiny NEP checkpoint (Cu+O, quintic NEP tables).  ``run 0`` in a rattled orthorhombic box and
a triclinic one, newton on, one rank.  Tolerances as tests/test_lammps.py: 1e-10 eV/atom for
energies, 1e-9 eV/Å for forces, 1e-9 eV for virials (the two differ only by summation order).
"""

import os
import warnings

import numpy as np
import pytest

import lammps_frames
from lammps_frames import sheared, write_data
from test_lammps import _run_check, plugin  # noqa: F401  (plugin: the session fixture that builds it)

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "pwmlff")
#: name -> (checkpoint, element symbols in data-file type order, their atomic numbers, fcc a)
MODELS = {
    "nicu_dp": ("nicu_2el.ckpt", ["Cu", "Ni"], [29, 28], 3.56),
    "alcu_te": ("alcu_te_pwmlff_cmp.ckpt", ["Al", "Cu"], [13, 29], 3.8),
    "cuo_nep": ("nep_tiny.ckpt", ["Cu", "O"], [29, 8], 3.6),
}

pytestmark = pytest.mark.lammps
lammps_frames.MASSES.update({"Al": 26.982, "Cu": 63.546, "Ni": 58.693})  # the data files' masses (run 0 ignores them)


def _frame(a, n=2, seed=5):
    rng = np.random.default_rng(seed)
    base = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    pos = np.array([b + [i, j, k] for i in range(n) for j in range(n) for k in range(n) for b in base]) * a
    pos += rng.normal(scale=0.08, size=pos.shape)
    return pos, np.eye(3) * a * n, rng.integers(0, 2, len(pos))


@pytest.fixture(scope="module")
def dpc_files(tmp_path_factory):
    from dpcompress import compress, compress_nep, load_model, save_model

    folder = tmp_path_factory.mktemp("pwmlff_dpc")
    out = {}
    for name, (ckpt, _, _, _) in MODELS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the PWMLFF-compressed checkpoint's "tables not used" note
            model = load_model(os.path.join(DATA, ckpt))
            model = compress_nep(model) if name.endswith("_nep") else compress(model, step=0.01, order=3,
                                                                                extrapolate=10)
        out[name] = str(folder / f"{name}.dpc")
        save_model(model, out[name])
    return out


def test_run0_equals_potential_with_atomic_numbers(dpc_files, plugin, tmp_path):  # noqa: F811
    from dpcompress import Potential

    cases, expected = {}, {}
    for name, (_, elements, zs, a) in MODELS.items():
        pos, cell, types = _frame(a)
        pot = Potential(dpc_files[name], n_threads=1)
        lookup = {e: k for k, e in enumerate(pot.get_type_map())}
        mtypes = np.array([lookup[elements[t]] for t in types])
        for box in ("ortho", "triclinic"):
            c, h = (pos, cell) if box == "ortho" else sheared(pos, cell)
            data = str(tmp_path / f"{name}_{box}.data")
            write_data(data, c, types, elements, h)
            e, f, v, ae, _ = pot.eval(c[None], h.reshape(1, 9), mtypes, atomic=True)
            expected[(name, box)] = dict(energy=float(e[0, 0]), force=f[0], virial=v[0].reshape(3, 3),
                                         atom_energy=ae[0].ravel())
            for spelling, words in (("z", zs), ("symbol", elements)):
                cases[f"{name}/{box}/{spelling}"] = dict(
                    data=data, newton="on",
                    pair=[f"pair_style dpcompress {dpc_files[name]}", "pair_coeff * * " + " ".join(map(str, words))])
    got = _run_check(cases, str(tmp_path), None)
    for key, out in got.items():
        name, box, _ = key.split("/")
        want = expected[(name, box)]
        assert "error" not in out, (key, out.get("error"))
        n = len(want["force"])
        assert abs(out["energy"] - want["energy"]) / n < 1e-10, key
        np.testing.assert_allclose(np.array(out["force"]), want["force"], rtol=0, atol=1e-9, err_msg=key)
        np.testing.assert_allclose(np.array(out["atom_energy"]), want["atom_energy"], rtol=0, atol=1e-10, err_msg=key)
        W = np.array(out["pressure"]) * out["volume"] / out["nktv2p"]
        V = want["virial"]
        np.testing.assert_allclose(W, [V[0, 0], V[1, 1], V[2, 2], V[0, 1], V[0, 2], V[1, 2]], rtol=0,
                                   atol=1e-9 * max(1.0, np.abs(V).max()), err_msg=key)


def test_bad_atomic_numbers_are_lammps_errors(dpc_files, plugin, tmp_path):  # noqa: F811
    pos, cell, types = _frame(3.56)
    data = str(tmp_path / "w.data")
    write_data(data, pos, types, ["Cu", "Ni"], cell)
    model = dpc_files["nicu_dp"]
    bad = {"z0": ("29 0", "atomic number 0 of atom type 2 is not in 1 ... 118"),
           "z200": ("200 28", "atomic number 200 of atom type 1 is not in 1 ... 118"),
           "au": ("29 79", "element Au of atom type 2 is not in the model's type map")}
    cases = {k: dict(data=data, newton="on", pair=[f"pair_style dpcompress {model}", f"pair_coeff * * {w}"])
             for k, (w, _) in bad.items()}
    got = _run_check(cases, str(tmp_path), None)
    for key, (_, message) in bad.items():
        assert message in got[key].get("error", ""), (key, got[key])
