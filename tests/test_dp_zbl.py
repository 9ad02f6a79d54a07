"""DP + ZBL linear models (DeePMD-kit's ``"type": "zbl"``): reader, pair table, switching, exact and
compressed evaluation (the C runtime's ``src_c/dpc_pair_table.c``), the ``.dpc`` arrays.

References: DeePMD-kit 3.2.0's ``DeepPot`` outputs stored in ``tests/data/deepmd/dp_zbl_tiny`` (its
README; frames 0-1 of the water test frames and four close-contact frames at 0.3, 0.5, 0.8 and
1.0 Å), the table file the model was trained with (``zbl_table.txt``: the spline must pass through
its values), and central finite differences.
"""

import copy
import os

import numpy as np
import pytest

from conftest import DATA
from dpcompress import Potential, compress, load_model
from dpcompress.modelfile import model_bytes
from dpcompress.neighbors import build_neighbor_list
from dpcompress.reference import pair_table as twin
from test_model_integrity import both_accept, both_refuse, edit_arrays
from dpcompress.core.errors import InputError, ModelFormatError, UnsupportedModelError
from dpcompress.evaluators.exact.dp_zbl import DPZBLExactEvaluator
from dpcompress.evaluators.exact.pair_table import pair_energy, softmin_weight, switch_weight
from dpcompress.models import DPZBLModel, load_tree
from dpcompress.models.dp_zbl import dp_zbl_from_tree

FOLDER = os.path.join(DATA, "deepmd", "dp_zbl_tiny")
MODEL = os.path.join(FOLDER, "frozen.dp")
# the bounds: |ΔE|/atom, |ΔF| eV/Å, |ΔV| eV
TOL = dict(energy_per_atom=1e-10, force=1e-9, virial=1e-9, atom_energy=1e-10, atom_virial=1e-9)


def frames():
    fr = np.load(os.path.join(FOLDER, "test_frames.npz"))
    n = fr["coord"].shape[0]
    return fr["coord"].reshape(n, -1), fr["box"].reshape(n, 9), fr["atype"].astype(np.int64)


def errors(pot, ref):
    coords, cells, types = frames()
    e, f, v, ae, av = pot.eval(coords, cells, types, atomic=True)
    n = len(types)
    return dict(energy_per_atom=np.abs(e[:, 0] - ref["energy"]).max() / n,
                force=np.abs(f.reshape(ref["force"].shape) - ref["force"]).max(),
                virial=np.abs(v.reshape(-1, 9) - ref["virial"].reshape(-1, 9)).max(),
                atom_energy=np.abs(ae[..., 0] - ref["atom_energy"]).max(),
                atom_virial=np.abs(av.reshape(-1, 9) - ref["atom_virial"].reshape(-1, 9)).max())


def assert_within(err, tol=TOL):
    for key, value in err.items():
        assert value <= tol[key], f"{key}: {value:.3e} > {tol[key]:.0e} ({err})"


def test_reader():
    m = load_model(MODEL)
    assert isinstance(m, DPZBLModel) and not m.is_compressed
    assert (m.sw_rmin, m.sw_rmax, m.smin_alpha) == (0.6, 1.1, 0.1)
    assert m.table.coef.shape == (2, 2, 299, 4) and m.table.rcut == 6.0 and m.table.sel == 120
    assert m.dp.descriptor.mixed_types and m.rcut == 6.0


def test_spline_passes_through_the_table():
    """DeePMD-kit's spline of the table file: the node values are the file's (independent of its coefficients)."""
    m = load_model(MODEL)
    tab = np.loadtxt(os.path.join(FOLDER, "zbl_table.txt"))
    r = tab[:-1, 0]  # the last node is the end of the last interval (E = 0 there and beyond)
    for col, (a, b) in enumerate([(0, 0), (0, 1), (1, 1)]):
        for ti, tj in ((a, b), (b, a)):
            e, _ = pair_energy(m.table, np.full(r.shape, ti), np.full(r.shape, tj), r)
            np.testing.assert_allclose(e, tab[:-1, 1 + col], rtol=1e-12, atol=1e-12)


def test_pair_and_switch_derivatives():
    m = load_model(MODEL)
    r = np.linspace(0.05, 5.9, 97)
    h = 1e-6
    for ti, tj in ((0, 0), (0, 1), (1, 1)):
        _, de = pair_energy(m.table, ti, tj, r)
        ep, _ = pair_energy(m.table, ti, tj, r + h)
        em, _ = pair_energy(m.table, ti, tj, r - h)
        np.testing.assert_allclose(de, (ep - em) / (2 * h), rtol=1e-6, atol=1e-6)
    s = np.linspace(0.55, 1.15, 61)
    w, dw = switch_weight(s, 0.6, 1.1)
    assert w[0] == 1.0 and w[-1] == 0.0
    np.testing.assert_allclose(dw[1:-1], ((switch_weight(s + h, 0.6, 1.1)[0] - switch_weight(s - h, 0.6, 1.1)[0])
                                          / (2 * h))[1:-1], atol=1e-7)
    rr = np.array([[0.4, 0.9, 1.5, 7.0]])
    real = np.array([[True, True, True, False]])
    w0, g = softmin_weight(rr, real, 0.3, 0.6, 0.1)
    for k in range(3):
        d = np.zeros_like(rr)
        d[0, k] = h
        fd = (softmin_weight(rr + d, real, 0.3, 0.6, 0.1)[0] - softmin_weight(rr - d, real, 0.3, 0.6, 0.1)[0]) / (2 * h)
        np.testing.assert_allclose(g[0, k], fd[0], atol=1e-7)


def test_exact_matches_deepmd():
    """frozen.pth's outputs, close contacts included, at the issue's bounds."""
    assert_within(errors(Potential(MODEL), np.load(os.path.join(FOLDER, "ref_uncompressed_pth.npz"))))


def test_close_contacts_switch_to_the_table():
    """The frames move an atom to 0.3-1 Å of another: its ZBL weight is 1 at 0.3 Å (softmin < sw_rmin)."""
    fr = np.load(os.path.join(FOLDER, "test_frames.npz"))
    ref = np.load(os.path.join(FOLDER, "ref_uncompressed_pth.npz"))
    # the 0.3 Å H-O contact raises the energy by the pair term (~tens of eV), far above the water frames
    assert ref["energy"][2] - ref["energy"][0] > 10
    assert fr["contacts"].shape == (4, 3)


def test_forces_are_minus_the_gradient():
    coords, cells, types = frames()
    pot = Potential(MODEL)
    x = coords[2].reshape(-1, 3).copy()  # the 0.3 Å contact: atoms 130 and 0
    _, f, v = pot.eval(x.reshape(1, -1), cells[2:3], types)[:3]
    h = 1e-5
    for atom in (130, 0, 1, 64):
        for c in range(3):
            xp, xm = x.copy(), x.copy()
            xp[atom, c] += h
            xm[atom, c] -= h
            ep = pot.eval(xp.reshape(1, -1), cells[2:3], types)[0][0, 0]
            em = pot.eval(xm.reshape(1, -1), cells[2:3], types)[0][0, 0]
            assert abs(-(ep - em) / (2 * h) - f[0, atom, c]) < 2e-6, (atom, c)


def test_below_the_table_is_refused():
    coords, cells, types = frames()
    x = coords[2].reshape(-1, 3).copy()
    d = x[130] - x[0]
    x[130] = x[0] + d / np.linalg.norm(d) * 0.01  # below the table's first point (0.02 Å)
    with pytest.raises(InputError, match="below the pair table's first point"):
        Potential(MODEL).eval(x.reshape(1, -1), cells[2:3], types)


def test_refusals():
    tree = load_tree(MODEL)
    t = copy.deepcopy(tree)
    t["model"]["type"] = "linear"
    with pytest.raises(UnsupportedModelError, match="linear model type 'linear'"):
        dp_zbl_from_tree(t, "m.dp")
    t = copy.deepcopy(tree)
    t["model"]["pair_exclude_types"] = [[0, 1]]
    with pytest.raises(UnsupportedModelError, match="pair_exclude_types"):
        dp_zbl_from_tree(t, "m.dp")
    t = copy.deepcopy(tree)
    t["model"]["models"][1]["tab"]["@variables"]["tab_data"] = t["model"]["models"][1]["tab"]["@variables"]["tab_data"][:-4]
    with pytest.raises(ModelFormatError, match="tab_data"):
        dp_zbl_from_tree(t, "m.dp")
    t = copy.deepcopy(tree)
    t["model"]["sw_rmax"] = 0.5
    with pytest.raises(ModelFormatError, match="sw_rmax"):
        dp_zbl_from_tree(t, "m.dp")
    with pytest.raises(InputError):
        DPZBLExactEvaluator(load_model(MODEL)).evaluate(np.zeros((2, 3)), None, np.array([0, 5]))


def test_front_ends(tmp_path, capsys):
    """ASE calculator, `dpcompress test` (forces RMSE against DeePMD-kit's labels), `info`; `compress` exits 2."""
    import re

    from ase import Atoms

    from dpcompress.calculators.ase_calculator import DPCompressCalculator
    from dpcompress.cli import main

    fr = np.load(os.path.join(FOLDER, "test_frames.npz"))
    ref = np.load(os.path.join(FOLDER, "ref_uncompressed_pth.npz"))
    atoms = Atoms(symbols=[str(fr["type_map"][t]) for t in fr["atype"]], positions=fr["coord"][2], cell=fr["box"][2],
                  pbc=True)
    atoms.calc = DPCompressCalculator(MODEL)
    assert abs(atoms.get_potential_energy() - ref["energy"][2]) / len(atoms) < 1e-10
    assert np.abs(atoms.get_forces() - ref["force"][2]).max() < 1e-9
    system = tmp_path / "sys"
    (system / "set.000").mkdir(parents=True)
    np.savetxt(system / "type.raw", fr["atype"], fmt="%d")
    (system / "type_map.raw").write_text("O\nH\n")
    n = fr["coord"].shape[0]
    for key, value in (("coord", fr["coord"].reshape(n, -1)), ("box", fr["box"].reshape(n, 9)),
                       ("energy", ref["energy"]), ("force", ref["force"].reshape(n, -1))):
        np.save(system / "set.000" / f"{key}.npy", value)
    assert main(["test", "-m", MODEL, "-s", str(system)]) == 0
    out = capsys.readouterr().out
    assert float(re.search(r"Force\s+RMSE\s*:\s*(\S+)", out).group(1)) < 1e-9
    assert main(["info", MODEL]) == 0
    assert "ZBL switch sw_rmin 0.6 sw_rmax 1.1" in capsys.readouterr().out
    assert main(["compress", "-i", MODEL, "-o", str(tmp_path / "m.dpc")]) == 0
    assert isinstance(load_model(tmp_path / "m.dpc"), DPZBLModel)


@pytest.fixture(scope="module")
def compressed():
    return compress(MODEL)


def test_compressed_matches_deepmd(compressed):
    """The runtime (DP part tabulated, step 0.01, quintic; table and switching in C) against DeePMD-kit's frozen.pth
    (its compressed model equals it to round-off, errors.json), from the model and from its .dpc bytes."""
    ref = np.load(os.path.join(FOLDER, "ref_uncompressed_pth.npz"))
    assert isinstance(compressed, DPZBLModel) and compressed.is_compressed
    assert_within(errors(Potential(compressed), ref))
    data = model_bytes(compressed)
    back = load_model_bytes(data)
    assert isinstance(back, DPZBLModel)
    np.testing.assert_array_equal(back.table.coef, compressed.table.coef)
    assert (back.sw_rmin, back.sw_rmax, back.smin_alpha, back.table.sel) == (0.6, 1.1, 0.1, 120)


def load_model_bytes(data):
    from dpcompress.modelfile import read_dpc, unpack

    return unpack(read_dpc(data, "m.dpc"), "m.dpc")


def test_compressed_refuses_below_the_table(compressed):
    coords, cells, types = frames()
    x = coords[2].reshape(-1, 3).copy()
    d = x[130] - x[0]
    x[130] = x[0] + d / np.linalg.norm(d) * 0.01
    with pytest.raises(InputError, match="below the pair table's first point"):
        Potential(compressed).eval(x.reshape(1, -1), cells[2:3], types)


def test_twin_equals_the_exact_math():
    """The numpy twin of src_c/dpc_pair_table.c (row by row, as the C loops) against the exact evaluator's
    vectorised functions, on the 0.3 Å contact frame's rows."""
    m = load_model(MODEL)
    coords, cells, types = frames()
    x = coords[2].reshape(-1, 3)
    nl = build_neighbor_list(x, cells[2], types, m.table.rcut, [m.table.sel], mixed_types=True)
    real = nl.index >= 0
    r = np.sqrt((nl.vectors ** 2).sum(-1))
    w, dw = softmin_weight(r, real, m.sw_rmin, m.sw_rmax, m.smin_alpha)
    e, de = pair_energy(m.table, types[:, None], types[np.maximum(nl.index, 0)], np.where(real, r, m.table.rcut))
    for i in (0, 1, 130, 64, 191):
        b, wi, dei, dwi = twin.dpc_zbl_center(m, types[i], types, nl.index[i], nl.vectors[i])
        np.testing.assert_allclose(b, 0.5 * e[i][real[i]].sum() + m.tab_out_bias[types[i]], rtol=1e-14, atol=1e-12)
        np.testing.assert_allclose(wi, w[i], rtol=1e-11, atol=1e-13)  # summation order
        np.testing.assert_allclose(dei[real[i]], 0.5 * de[i][real[i]], rtol=1e-14, atol=1e-12)
        np.testing.assert_allclose(dwi, dw[i], rtol=1e-10, atol=1e-12)
    assert twin.dpc_zbl_center(m, 0, types, np.array([1, -1]), np.array([[0.01, 0, 0], [0, 0, 0]])) is None


def test_both_readers_check_the_zbl_arrays(compressed):
    data = model_bytes(compressed)
    both_accept(data)

    def set_(name, fn):
        return edit_arrays(data, lambda a: a.__setitem__(name, fn(a[name])))

    both_refuse(set_("zbl.int", lambda v: v + np.array([0, 0, 1])), "pair-table sel 121 differs from descriptor part 0's 120")
    both_refuse(set_("zbl.int", lambda v: v + np.array([1, 0, 0])), "zbl.int: 3 types, the model has 2")
    both_refuse(set_("zbl.real", lambda v: v * np.array([1, 1, 1, 2, 1, 1])),
                "not rmin >= 0, h > 0, rcut > 0, sw_rmax > sw_rmin")
    both_refuse(set_("zbl.real", lambda v: v + np.array([0, 0, 0.5, 0, 0, 0])), "the pair table's rcut 6.5 is not")
    both_refuse(set_("zbl.coef", lambda v: np.where(np.arange(v.size).reshape(v.shape) == 7, np.nan, v)),
                "array 'zbl.coef' holds NaN or infinite values")
    both_refuse(set_("zbl.bias", lambda v: v[:1]), "zbl.bias")
    both_refuse(edit_arrays(data, lambda a: a.pop("zbl.bias")), "zbl.bias")


@pytest.mark.parametrize("size", [2, 3])
def test_domain_decomposition_equals_serial(compressed, size):
    """Every rank's share of the runtime (DecomposedEvaluator.share, as under mpiexec) adds up to the serial frame:
    the switching and the table are per center, on the rank's rows (checked under `mpiexec -n 2` too, by hand)."""
    from test_domain_decomposition import decomposed

    coords, cells, types = frames()
    for f in (0, 2, 3):
        x, cell = coords[f].reshape(-1, 3), cells[f].reshape(3, 3)
        e, force, v, ae, av = Potential(compressed).eval(x.reshape(1, -1), cell.reshape(1, 9), types, atomic=True)
        got = decomposed(compressed, x, cell, types, size)
        assert abs(got["energy"] - e[0, 0]) / len(types) < 1e-10
        np.testing.assert_allclose(got["force"], force[0], rtol=0, atol=1e-9)
        np.testing.assert_allclose(np.reshape(got["virial"], 9), v[0].reshape(9), rtol=0, atol=1e-9)
        np.testing.assert_allclose(got["atom_energy"].ravel(), ae[0].ravel(), rtol=0, atol=1e-10)


def test_tolerance_mode_is_refused():
    from dpcompress.tolerance import compress_to_tolerance

    with pytest.raises(InputError, match="not supported for DP \\+ ZBL models yet"):
        compress_to_tolerance(MODEL, 1e-6, frames=None)
