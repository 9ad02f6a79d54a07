"""se_e2_r: exact evaluator against DeePMD-kit 3.2.0, compressed model against the exact one,
the radial mode of the fused se_e2_a kernels against its numpy twin, forces = -dE/dr.

Bounds (issue): exact vs DeePMD-kit |ΔE|/atom ≤ 1e-10 eV, max |ΔF| ≤ 1e-9 eV/Å, max |Δvirial|
≤ 1e-8 eV; compressed (step 0.01, quintic, extrapolate 5) vs exact |ΔE|/atom ≤ 1e-9 eV,
max |ΔF| ≤ 1e-7 eV/Å on the test frames, and on the stress frames no worse than DeePMD-kit's
own compressed model (its errors.json, with round-off slack).
"""

import os
import warnings

import numpy as np
import pytest

from conftest import DATA, load_frames, shared_fixture
from dpcompress import Potential
from dpcompress._ext import se_a_tab as compiled
from dpcompress.cli import main
from dpcompress import TableAccuracyWarning, compress
from kernel_helpers import packed_tables
from dpcompress import load_model
from dpcompress.neighbors import build_neighbor_list
from dpcompress.evaluators.exact import remove_pairs
from dpcompress.reference import se_a_tab as twin
from synthetic_models import ACTIVATIONS, DEEPMD_CHECKED, activation, chain, edit_dp, se_r_two_side
from test_compressed_accuracy import check_stress_frames
from test_reference_vs_deepmd import compare

FOLDER = os.path.join(DATA, "deepmd", "se_e2_r_tiny")
MODEL = os.path.join(FOLDER, "frozen.dp")
CMP_TOL = dict(energy_per_atom=1e-9, force=1e-7, virial=1e-6)


def frame(folder=FOLDER, k=0, stress=False):
    fr = np.load(os.path.join(folder, "test_frames_stress.npz" if stress else "test_frames.npz"))
    return fr["coord"][k].astype(float), fr["box"][k].astype(float), fr["atype"].astype(np.int64)


def max_errors(pot_a, pot_b, coords, cells, types):
    ea, fa, va = pot_a.eval(coords, cells, types)
    eb, fb, vb = pot_b.eval(coords, cells, types)
    return dict(
        energy_per_atom=np.abs(ea - eb).max() / len(types), force=np.abs(fa - fb).max(), virial=np.abs(va - vb).max()
    )


def assert_within(err, tol):
    for key, t in tol.items():
        assert err[key] <= t, f"{key}: {err[key]:.3e} > {t:.0e} ({err})"


# --- exact evaluator against DeePMD-kit ----------------------------------------------------------------


@pytest.mark.parametrize("stress", [False, True], ids=["test_frames", "stress_frames"])
def test_exact_matches_deepmd(stress):
    compare(Potential(MODEL), *load_frames(FOLDER, stress))


@pytest.mark.slow
@pytest.mark.parametrize("stress", [False, True], ids=["test_frames", "stress_frames"])
def test_large_exact_matches_deepmd(stress):
    folder = shared_fixture("se_e2_r")
    compare(Potential(os.path.join(folder, "frozen.dp")), *load_frames(folder, stress))


def check_variant_matches_deepmd(model, folder, name, tmp_path):
    """Variant ``name`` of DEEPMD_CHECKED (edits of ``model``) vs DeePMD-kit's outputs on 2 frames, exact
    (|ΔE|/atom ≤ 1e-10 eV, |ΔF| ≤ 1e-9 eV/Å, |ΔV| ≤ 1e-8 eV) and compressed (10× those)."""
    path = edit_dp(model, tmp_path / "v.dp", DEEPMD_CHECKED[name][1])
    ref = np.load(os.path.join(folder, "variants_ref.npz"))
    fr = np.load(os.path.join(folder, "test_frames.npz"))
    coords, cells, types = fr["coord"][:2].astype(float), fr["box"][:2].astype(float).reshape(2, 9), fr["atype"]
    for pot, tol in ((Potential(path), 1.0), (Potential(compress(path)), 10.0)):
        e, f, v, ae, _ = pot.eval(coords, cells, types, atomic=True)
        assert np.abs(e[:, 0] - ref[f"{name}/energy"]).max() / len(types) <= 1e-10 * tol
        assert np.abs(f - ref[f"{name}/force"]).max() <= 1e-9 * tol
        assert np.abs(v - ref[f"{name}/virial"]).max() <= 1e-8 * tol
        assert np.abs(ae[..., 0] - ref[f"{name}/atom_energy"]).max() <= 1e-10 * tol


@pytest.mark.parametrize("name", [n for n, (f, _) in DEEPMD_CHECKED.items() if f == "se_e2_r_tiny"])
def test_variants_match_deepmd(name, tmp_path):
    """Exclusions, pair/atom exclusions, silu + env_protection."""
    check_variant_matches_deepmd(MODEL, FOLDER, name, tmp_path)


# --- compressed model ----------------------------------------------------------------------------------


def check_compressed_fixture(folder):
    model = load_model(os.path.join(folder, "frozen.dp"))
    exact, comp = Potential(model), Potential(compress(model))
    fr = np.load(os.path.join(folder, "test_frames.npz"))
    assert_within(max_errors(comp, exact, fr["coord"].astype(float), fr["box"].astype(float).reshape(-1, 9), fr["atype"]), CMP_TOL)
    check_stress_frames(folder, exact, comp)
    return comp


def check_matches_deepmd_compressed(folder, comp):
    """Same grid, same rule beyond it: DeePMD-kit's compressed outputs on the stress frames (pairs down
    to 0.08 Å), |ΔE|/atom < 1e-12 eV, |ΔF| < 1e-10 eV/Å."""
    fr = np.load(os.path.join(folder, "test_frames_stress.npz"))
    ref = np.load(os.path.join(folder, "ref_compressed_pth_stress.npz"))
    e, f, v = comp.eval(fr["coord"].astype(float), fr["box"].astype(float).reshape(-1, 9), fr["atype"])
    assert np.abs(e[:, 0] - ref["energy"]).max() / len(fr["atype"]) < 1e-12
    assert np.abs(f - ref["force"]).max() < 1e-10


def test_compressed_matches_exact_and_deepmd_compressed():
    check_matches_deepmd_compressed(FOLDER, check_compressed_fixture(FOLDER))


@pytest.mark.slow
def test_large_compressed():
    check_compressed_fixture(shared_fixture("se_e2_r"))


@pytest.mark.parametrize("one_side", [True, False], ids=["one_side", "two_side"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_every_activation_and_type_one_side(act, one_side, tmp_path):
    edits = [activation(act)] + ([] if one_side else [se_r_two_side])
    model = load_model(edit_dp(MODEL, tmp_path / "v.dp", chain(*edits)))
    assert model.descriptor.type_one_side == one_side
    assert model.descriptor.embedding_net(1, 0).layers[0].activation == act
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if act in ("relu", "relu6") else "error", TableAccuracyWarning)
        cm = compress(model)
    coords, cell, types = frame()
    err = max_errors(Potential(cm), Potential(model), coords[None], cell.reshape(1, 9), types)
    if act in ("relu", "relu6"):  # a smooth interval cannot follow the kink: close, not exact
        assert err["force"] < 1e-2 and err["energy_per_atom"] < 1e-6, err
    else:
        assert_within(err, CMP_TOL)


def test_dpc_file_and_cli(tmp_path, capsys):
    out = tmp_path / "r.dpc"
    assert main(["compress", "-i", MODEL, "-o", str(out)]) == 0
    assert main(["info", str(out)]) == 0
    assert "se_e2_r" in capsys.readouterr().out
    coords, cell, types = frame()
    a = Potential(str(out)).eval(coords[None], cell.reshape(1, 9), types, atomic=True)
    b = Potential(compress(MODEL)).eval(coords[None], cell.reshape(1, 9), types, atomic=True)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# --- kernels: radial mode against the numpy twin ---------------------------------------------------------


def kernel_inputs(path, k=0, stress=False, order=5, edit=None, tmp_path=None):
    if edit is not None:
        path = edit_dp(path, tmp_path / "v.dp", edit)
    cm = compress(path, order=order)
    coords, cell, types = frame(k=k, stress=stress)
    d = cm.descriptor
    nl = build_neighbor_list(coords, cell, types, d.rcut, list(d.sel))
    return packed_tables(cm), types, remove_pairs(nl, types, cm.pair_exclude_types)


CASES = {
    "tiny": dict(),
    "beyond-table": dict(k=5, stress=True),
    "cubic-coarse": dict(k=3, stress=True, order=3),
    "exclude": dict(edit=DEEPMD_CHECKED["r_exclude"][1]),
    "pair-exclude": dict(edit=DEEPMD_CHECKED["r_pair_exclude"][1]),
    "two-side": dict(edit=se_r_two_side),
}


@pytest.mark.parametrize("case", list(CASES))
def test_kernels_equal_numpy_twins(case, tmp_path):
    p, types, nl = kernel_inputs(MODEL, tmp_path=tmp_path, **CASES[case])
    assert p.n_rows == 1
    T, beyond = compiled.se_a_tab_forward(p, types, nl.vectors, nl.counts, 2, True)
    T_ref, beyond_ref = twin.se_a_tab_forward(p, types, nl.vectors, nl.counts, check=True)
    np.testing.assert_allclose(T, T_ref, rtol=1e-12, atol=1e-12 * np.abs(T_ref).max())
    np.testing.assert_array_equal(beyond, beyond_ref)
    if case == "beyond-table":
        assert beyond[1].sum() == 2  # the 0.08 Å pair, seen from both atoms
    dT = np.random.default_rng(0).normal(size=T.shape)
    g = compiled.se_a_tab_backward(p, types, nl.vectors, nl.counts, dT, 2)
    g_ref = twin.se_a_tab_backward(p, types, nl.vectors, nl.counts, dT)
    np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-12 * np.abs(g_ref).max())


def test_thread_count_does_not_change_results():
    p, types, nl = kernel_inputs(MODEL, k=5, stress=True)
    T = [compiled.se_a_tab_forward(p, types, nl.vectors, nl.counts, n) for n in (1, 2, 3)]
    g = [compiled.se_a_tab_backward(p, types, nl.vectors, nl.counts, T[0], n) for n in (1, 2, 3)]
    for k in (1, 2):
        np.testing.assert_array_equal(T[0], T[k])
        np.testing.assert_array_equal(g[0], g[k])


@pytest.mark.parametrize("distance", [0.7, 0.3, 0.08], ids=["fine", "coarse", "beyond-table"])
def test_forces_are_minus_gradient_of_compressed_energy(distance):
    """A water O-H pair pushed closer than anything in the training set (0.885 Å)."""
    pot = Potential(compress(MODEL))
    coords = np.array([[0.0, 0.0, 0.0], [distance, 0.0, 0.0], [-0.24, 0.93, 0.05], [2.6, 0.4, -0.3], [3.1, 1.1, 0.2], [2.3, -0.5, 0.4]])
    types = np.array([0, 1, 1, 0, 1, 1])
    _, f, _ = pot.eval(coords[None], None, types)
    h = 1e-5 if distance > 0.1 else 1e-6
    for a in range(len(types)):
        for c in range(3):
            p, m = coords.copy(), coords.copy()
            p[a, c] += h
            m[a, c] -= h
            fd = -(pot.eval(p[None], None, types)[0][0, 0] - pot.eval(m[None], None, types)[0][0, 0]) / (2 * h)
            assert abs(fd - f[0, a, c]) <= 1e-6 * max(1.0, abs(f[0, a, c])), (a, c, fd, f[0, a, c])
