"""NEP models: reader variants, errors, C kernel vs calorine references, tables, conversions."""

import dataclasses
import glob
import os
import subprocess
import sys

import numpy as np
import pytest

from dpcompress import Potential
from dpcompress.core.errors import ModelFormatError, UnsupportedModelError
from dpcompress.nep import build_tables, read_nep, write_nep
from dpcompress.nep.constants import ZBL_PARA
from dpcompress.nep.convert import common_bias, to_gpumd
from kernel_helpers import NEPKernel as NEPEvaluator
from dpcompress.nep.model import parse_nep_text

HERE = os.path.dirname(__file__)
DATA = os.path.join(HERE, "data", "nep")
from conftest import SHARED_DEEPMD  # noqa: E402

SHARED = os.path.join(os.path.dirname(SHARED_DEEPMD), "nep")
MODELS = ["BaTiO3_NEP4_zbl", "PbTe_NEP4_example", "Si_2022_NEP4_5body"]


def _structures():
    out = []
    for m in MODELS:
        root = os.path.join(SHARED, m) if os.path.isdir(os.path.join(SHARED, m)) else os.path.join(DATA, m)
        for f in sorted(glob.glob(os.path.join(root, "*.npz"))):
            out.append(pytest.param(os.path.join(DATA, m, "nep.txt"), f, id=f"{m}/{os.path.basename(f)[:-4]}"))
    return out


def _small():
    return [pytest.param(os.path.join(DATA, m, "nep.txt"), f, id=f"{m}/{os.path.basename(f)[:-4]}")
            for m in MODELS for f in sorted(glob.glob(os.path.join(DATA, m, "*.npz")))]


def _text(model):
    with open(os.path.join(DATA, model, "nep.txt")) as fh:
        return fh.read()


def _eval(model, z, backend="c", n_threads=1):
    return NEPEvaluator(model, backend=backend).evaluate(z["positions"], z["cell"], z["type_index"], n_threads, descriptor=True)


# ------------------------------------------------------------------ accuracy vs calorine references


@pytest.mark.parametrize("path,npz", _structures())
def test_c_kernel_matches_calorine(path, npz):
    z = np.load(npz)
    n = len(z["positions"])
    pot = Potential(path, n_threads=1)
    e, f, v, ae, av = pot.eval(z["positions"][None], z["cell"][None], z["type_index"], atomic=True)
    assert np.abs(ae[0, :, 0] - z["energies"]).max() <= 1e-9
    assert abs(e[0, 0] - z["energy"]) <= 1e-9 * n
    assert np.abs(f[0] - z["forces"]).max() <= 1e-8
    assert np.abs(v[0] - z["virial"].ravel()).max() / n <= 1e-8
    assert np.abs(av[0] - z["virials"]).max() <= 1e-8


@pytest.mark.parametrize("path,npz", _small())
def test_numpy_reference_matches_calorine(path, npz):
    z = np.load(npz)
    r = _eval(read_nep(path), z, backend="numpy")
    assert np.abs(r["atom_energy"] - z["energies"]).max() <= 1e-9
    assert np.abs(r["force"] - z["forces"]).max() <= 1e-8
    assert np.abs(r["atom_virial"] - z["virials"]).max() <= 1e-8
    assert np.abs(r["descriptor"] - z["descriptors"]).max() <= 1e-10


@pytest.mark.parametrize("path,npz", _structures())
def test_tabulated_vs_analytic(path, npz):
    z = np.load(npz)
    m = read_nep(path)
    a = _eval(m, z)
    m.tables = build_tables(m)  # default grid
    t = _eval(m, z)
    n = len(z["positions"])
    assert np.abs(t["force"] - a["force"]).max() <= 1e-6
    assert abs(t["energy"] - a["energy"]) / n <= 1e-8
    assert np.abs(t["virial"] - a["virial"]).max() / n <= 1e-7
    r = _eval(m, z, backend="numpy")  # numpy twin of the table lookup
    assert np.abs(r["force"] - t["force"]).max() <= 1e-10


@pytest.mark.parametrize("model", MODELS)
def test_tabulated_forces_are_gradient(model):
    z = np.load(sorted(glob.glob(os.path.join(DATA, model, "*.npz")))[-1])
    m = read_nep(os.path.join(DATA, model, "nep.txt"))
    m.tables = build_tables(m, step=0.05)  # coarse: forces must still be -dE/dx of the tabulated energy
    ev = NEPEvaluator(m)
    pos, cell, ty = z["positions"].copy(), z["cell"], z["type_index"]
    f = ev.evaluate(pos, cell, ty)["force"]
    h = 1e-4
    for atom, c in [(0, 0), (1, 1), (len(pos) - 1, 2), (len(pos) // 2, 0)]:
        e = []
        for s in (h, -h, 2 * h, -2 * h):
            p = pos.copy()
            p[atom, c] += s
            e.append(ev.evaluate(p, cell, ty)["energy"])
        fd = -(8 * (e[0] - e[1]) - (e[2] - e[3])) / (12 * h)
        assert abs(fd - f[atom, c]) <= 1e-7, (atom, c, fd, f[atom, c])


@pytest.mark.parametrize("model,frame", [("PbTe_NEP4_example", "slab001_vacuum_96"), ("BaTiO3_NEP4_zbl", "zbl_close_contact_40"),
                                         ("Si_2022_NEP4_5body", "crystal_prim2")])
@pytest.mark.parametrize("tabulated", [False, True])
def test_thread_count_invariance(model, frame, tabulated):
    """Bit-identical results for any thread count (per-atom work is private; the parallel scatter
    sums every force/virial component in serial order)."""
    z = np.load(os.path.join(DATA, model, frame + ".npz"))
    m = read_nep(os.path.join(DATA, model, "nep.txt"))
    if tabulated:
        m.tables = build_tables(m)
    ref = _eval(m, z, n_threads=1)
    for t in (2, 3, 5):
        b = _eval(m, z, n_threads=t)
        for k in ("atom_energy", "force", "atom_virial", "descriptor"):
            assert np.array_equal(ref[k], b[k]), (t, k)


def test_potential_reuse_across_frame_sizes():
    """One Potential (its runtime keeps its workspace and NEP row width between calls) on frames of
    different sizes gives what fresh ones give."""
    path = os.path.join(DATA, "PbTe_NEP4_example", "nep.txt")
    zs = [np.load(os.path.join(DATA, "PbTe_NEP4_example", f + ".npz")) for f in ("slab001_vacuum_96", "crystal_conv8")]
    pot = Potential(path, n_threads=1)
    for z in zs + zs[::-1]:
        args = (z["positions"][None], z["cell"][None], z["type_index"])
        a, b = Potential(path, n_threads=1).eval(*args, atomic=True), pot.eval(*args, atomic=True)
        for x, y in zip(a, b):
            assert np.array_equal(x, y)


def test_kernel_rejects_bad_pairs():
    """The C kernel checks indices and zero distances itself (any thread count) and raises."""
    from dpcompress._ext.nep_kernel import PackedNEP
    from dpcompress.nep.packing import pack_model

    m = read_nep(os.path.join(DATA, "PbTe_NEP4_example", "nep.txt"))
    k = PackedNEP(pack_model(m, tabulated=False))
    types = np.array([0, 1, 0])
    vec = np.zeros((3, 2, 3))
    vec[:, 0] = [3.0, 0.0, 0.0]
    counts = np.array([1, 1, 1])
    for t in (1, 2):
        e, f, w, _ = k.compute(types, np.array([[1, -1], [0, -1], [1, -1]]), vec, counts, t)
        assert np.all(np.isfinite(f)) and f.shape == (3, 3)
        with pytest.raises(RuntimeError, match="out of range"):
            k.compute(types, np.array([[1, -1], [3, -1], [1, -1]]), vec, counts, t)
        with pytest.raises(RuntimeError, match="out of range"):
            k.compute(np.array([0, 2, 0]), np.array([[1, -1], [0, -1], [1, -1]]), vec, counts, t)
        for value in (0.0, np.nan):
            bad = vec.copy()
            bad[2, 0] = value
            with pytest.raises(RuntimeError, match="NEP kernel failed"):
                k.compute(types, np.array([[1, -1], [0, -1], [1, -1]]), bad, counts, t)


# ------------------------------------------------------------------ synthetic models: every angular block, flexible ZBL


def _synthetic(flags, lmax=4, seed=0, zbl=None):
    rng = np.random.default_rng(seed)
    base = read_nep(os.path.join(DATA, "PbTe_NEP4_example", "nep.txt"))
    fl = dict.fromkeys(("222", "1111", "112", "123", "233", "134"), False)
    fl.update(flags)
    m = dataclasses.replace(base, flags=fl, l_max=lmax, zbl=zbl)
    D, T, NN = m.dim, m.ntypes, 8
    m.w0 = rng.normal(0, 0.3, (T, NN, D))
    m.b0 = rng.normal(0, 0.1, (T, NN))
    m.w1 = rng.normal(0, 0.3, (T, NN))
    m.q_scaler = rng.uniform(0.5, 2.0, D)
    m.rc_angular = np.full((T, T), 5.0)
    m.rc_angular[0, 1] = m.rc_angular[1, 0] = 4.5
    return m


@pytest.mark.parametrize("flags,lmax", [({"222": 1, "1111": 1, "112": 1, "123": 1, "233": 1, "134": 1}, 4),
                                        ({"112": 1}, 1), ({}, 8), ({"134": 1}, 2)])
def test_synthetic_blocks_c_vs_numpy_and_fd(flags, lmax):
    z = np.load(os.path.join(DATA, "PbTe_NEP4_example", "crystal_conv8.npz"))
    pos = z["positions"] + np.random.default_rng(1).normal(0, 0.1, z["positions"].shape)
    m = _synthetic(flags, lmax)
    c = NEPEvaluator(m).evaluate(pos, z["cell"], z["type_index"])
    r = NEPEvaluator(m, backend="numpy").evaluate(pos, z["cell"], z["type_index"])
    assert np.abs(c["atom_energy"] - r["atom_energy"]).max() <= 1e-11
    assert np.abs(c["force"] - r["force"]).max() <= 1e-10
    ev = NEPEvaluator(m)
    h = 1e-5
    for atom, k in [(0, 0), (3, 2), (7, 1)]:
        p1, p2 = pos.copy(), pos.copy()
        p1[atom, k] += h
        p2[atom, k] -= h
        fd = -(ev.evaluate(p1, z["cell"], z["type_index"])["energy"] - ev.evaluate(p2, z["cell"], z["type_index"])["energy"]) / (2 * h)
        assert abs(fd - c["force"][atom, k]) <= 1e-6 * max(1.0, abs(fd))


def test_flexible_zbl_equals_universal(tmp_path):
    base = read_nep(os.path.join(DATA, "BaTiO3_NEP4_zbl", "nep.txt"))
    lines = _text("BaTiO3_NEP4_zbl").splitlines()
    T = base.ntypes
    lines[1] = "zbl 0 0"
    extra = []
    for t1 in range(T):
        for t2 in range(t1, T):
            extra += [0.75, 1.5] + list(ZBL_PARA)
    p = tmp_path / "flex.txt"
    p.write_text("\n".join(lines + [repr(x) for x in extra]) + "\n")
    flex = read_nep(p)
    assert flex.zbl["kind"] == "flexible"
    z = np.load(os.path.join(DATA, "BaTiO3_NEP4_zbl", "zbl_close_contact_40.npz"))
    a, b = _eval(base, z), _eval(flex, z)
    assert np.abs(a["force"] - b["force"]).max() <= 1e-12
    rn = _eval(flex, z, backend="numpy")
    assert np.abs(rn["force"] - b["force"]).max() <= 1e-10


# ------------------------------------------------------------------ header variants that mean the same model


def _variant(tmp_path, model, edit):
    lines = _text(model).splitlines()
    lines = edit(lines)
    p = tmp_path / "v.txt"
    p.write_text("\n".join(lines) + "\n")
    return read_nep(p)


def _same(m1, m2, model):
    z = np.load(sorted(glob.glob(os.path.join(DATA, model, "*.npz")))[-1])
    a, b = _eval(m1, z), _eval(m2, z)
    assert np.abs(a["atom_energy"] - b["atom_energy"]).max() <= 1e-12
    assert np.abs(a["force"] - b["force"]).max() <= 1e-12


def _set(lines, key, value):
    return [value if ln.split()[0] == key else ln for ln in lines[:8]] + lines[8:]


@pytest.mark.parametrize("cutoff", ["cutoff 8 4", "cutoff 8 4 73 8 0 0 0", "cutoff 8 4 8 4 73 8"])
def test_cutoff_line_forms(tmp_path, cutoff):
    ref = read_nep(os.path.join(DATA, "PbTe_NEP4_example", "nep.txt"))
    m = _variant(tmp_path, "PbTe_NEP4_example", lambda L: _set(L, "cutoff", cutoff))
    _same(ref, m, "PbTe_NEP4_example")


def test_per_element_and_typewise_cutoffs(tmp_path):
    m = _variant(tmp_path, "PbTe_NEP4_example", lambda L: _set(L, "cutoff", "cutoff 8 4 6 3.5 73 8"))
    assert m.rc_radial[0, 1] == 7.0 and m.rc_angular[1, 1] == 3.5 and m.cutoff_form == "per_element"
    m2 = _variant(tmp_path, "PbTe_NEP4_example", lambda L: _set(L, "cutoff", "cutoff 8 4 73 8 2.0 1.2 0"))
    assert m2.cutoff_form == "typewise_factor" and m2.rc_radial.max() < 8
    z = np.load(os.path.join(DATA, "PbTe_NEP4_example", "slab001_vacuum_96.npz"))
    for mm in (m, m2):
        a, b = _eval(mm, z), _eval(mm, z, backend="numpy")
        assert np.abs(a["force"] - b["force"]).max() <= 1e-10


def test_lmax_encodings_and_nep3(tmp_path):
    ref = read_nep(os.path.join(DATA, "Si_2022_NEP4_5body", "nep.txt"))
    m = _variant(tmp_path, "Si_2022_NEP4_5body", lambda L: _set(L, "l_max", "l_max 4 1 1 0 0 0 0"))
    _same(ref, m, "Si_2022_NEP4_5body")
    m3 = _variant(tmp_path, "Si_2022_NEP4_5body", lambda L: ["nep3 1 Si"] + L[1:])
    assert m3.version == 3
    _same(ref, m3, "Si_2022_NEP4_5body")


def test_nep5_and_pwmlff_biases(tmp_path):
    ref = read_nep(os.path.join(DATA, "PbTe_NEP4_example", "nep.txt"))
    # PWMLFF nep_to_lmps.txt: NEP4 header, 2-number cutoff, T output biases
    lines = _text("PbTe_NEP4_example").splitlines()
    nhead = 6
    P = (ref.dim + 2) * ref.n_neuron
    nums = lines[nhead:]
    b = float(nums[2 * P])
    pw = ["nep4 2 Te Pb", "cutoff 8 4"] + lines[2:nhead] + nums[: 2 * P] + [repr(b + 0.1), repr(b - 0.2)] + nums[2 * P + 1:]
    p = tmp_path / "nep_to_lmps.txt"
    p.write_text("\n".join(pw) + "\n")
    m = read_nep(p)
    assert m.pwmlff_biases and np.allclose(m.b1_type, [b + 0.1, b - 0.2])
    z = np.load(os.path.join(DATA, "PbTe_NEP4_example", "crystal_conv8.npz"))
    a, c = _eval(ref, z), _eval(m, z)
    shift = np.where(z["type_index"] == 0, -0.1, 0.2)
    assert np.abs(c["atom_energy"] - a["atom_energy"] - shift).max() <= 1e-12
    assert np.abs(c["force"] - a["force"]).max() <= 1e-12
    # composition-weighted common bias (4 Te, 4 Pb): b + (0.1 - 0.2)/2
    assert common_bias(m, {"Te": 4, "Pb": 4}) == pytest.approx(b - 0.05)
    out = tmp_path / "gpumd.txt"
    to_gpumd(m, out, counts={"Te": 4, "Pb": 4})
    g = read_nep(out)
    assert g.version == 4 and g.cutoff_form == "standard" and g.neighbor_caps == (500, 300)
    assert _eval(g, z)["energy"] == pytest.approx(c["energy"], abs=1e-10)
    # NEP5 round trip: per-type biases kept
    write_nep(m, tmp_path / "nep5.txt", version=5)
    m5 = read_nep(tmp_path / "nep5.txt")
    assert m5.version == 5
    assert np.abs(_eval(m5, z)["atom_energy"] - c["atom_energy"]).max() <= 1e-12


def test_write_roundtrip(tmp_path):
    for model in MODELS:
        ref = read_nep(os.path.join(DATA, model, "nep.txt"))
        write_nep(ref, tmp_path / "w.txt")
        m = read_nep(tmp_path / "w.txt")
        _same(ref, m, model)


# ------------------------------------------------------------------ malformed files


BAD = [
    ("truncated", lambda L: L[:-100], ModelFormatError, "ends (line"),
    ("extra numbers", lambda L: L + ["1.0"] * 3, ModelFormatError, "3 extra numbers"),
    ("wrong count mid-file", lambda L: L[:20] + L[21:], ModelFormatError, "q_scaler"),
    ("unknown token", lambda L: ["nep7 2 Te Pb"] + L[1:], ModelFormatError, "unknown model token"),
    ("dipole model", lambda L: ["nep4_dipole 2 Te Pb"] + L[1:], UnsupportedModelError, "dipole"),
    ("bad cutoff count", lambda L: _set(L, "cutoff", "cutoff 8 4 73"), ModelFormatError, "cutoff line has 3"),
    ("bad cutoff value", lambda L: _set(L, "cutoff", "cutoff 8 abc 73 8"), ModelFormatError, "line 2"),
    ("negative cutoff", lambda L: _set(L, "cutoff", "cutoff -8 4 73 8"), ModelFormatError, "cutoffs must be > 0"),
    ("missing n_max", lambda L: [L[0], L[1]] + L[3:], ModelFormatError, "'n_max'"),
    ("bad element", lambda L: ["nep4 2 Te Xx"] + L[1:], ModelFormatError, "unknown element"),
    ("element count", lambda L: ["nep4 3 Te Pb"] + L[1:], ModelFormatError, "3 elements announced"),
    ("bad l_max flag", lambda L: _set(L, "l_max", "l_max 4 3 0"), ModelFormatError, "legacy"),
    ("l_max too large", lambda L: _set(L, "l_max", "l_max 9 0 0"), ModelFormatError, "1..8"),
    ("two hidden layers", lambda L: _set(L, "ANN", "ANN 30 10"), UnsupportedModelError, "two hidden layers"),
    ("garbage number", lambda L: L[:100] + ["1.0x"] + L[101:], ModelFormatError, "line 101"),
    ("nan", lambda L: L[:100] + ["nan"] + L[101:], ModelFormatError, "not finite"),
    ("zbl line missing", lambda L: ["nep4_zbl 2 Te Pb"] + L[1:], ModelFormatError, "'zbl'"),
    ("empty", lambda L: [], ModelFormatError, "empty"),
]


@pytest.mark.parametrize("name,edit,exc,needle", BAD, ids=[b[0] for b in BAD])
def test_malformed_files(tmp_path, name, edit, exc, needle):
    p = tmp_path / "bad.txt"
    p.write_text("\n".join(edit(_text("PbTe_NEP4_example").splitlines())) + "\n")
    with pytest.raises(exc) as info:
        read_nep(p)
    assert needle in str(info.value)
    assert str(p) in str(info.value) or name == "empty"


def test_binary_garbage_and_missing(tmp_path):
    p = tmp_path / "bin.txt"
    p.write_bytes(b"nep4 \xff\xfe\x00")
    with pytest.raises(ModelFormatError):
        read_nep(p)
    with pytest.raises(ModelFormatError):
        read_nep(tmp_path / "nope.txt")


def test_nep3_count_hint():
    text = _text("PbTe_NEP4_example").replace("nep4 2 Te Pb", "nep3 2 Te Pb", 1)
    with pytest.raises(ModelFormatError, match="fits a nep4 layout"):
        parse_nep_text(text, "x.txt")


# ------------------------------------------------------------------ CLI, .dpc, ASE


def test_cli_compress_and_potential(tmp_path):
    src = os.path.join(DATA, "Si_2022_NEP4_5body", "nep.txt")
    out = tmp_path / "nep.dpc"
    r = subprocess.run([sys.executable, "-m", "dpcompress", "compress", "-i", src, "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "compressed NEP" in r.stdout
    z = np.load(os.path.join(DATA, "Si_2022_NEP4_5body", "dense_rattle_64.npz"))
    pt = Potential(str(out), n_threads=1)
    assert pt.model.is_compressed
    e, f, v = pt.eval(z["positions"][None], z["cell"][None], z["type_index"])
    assert np.abs(f[0] - z["forces"]).max() <= 1e-6
    assert pt.get_type_map() == ["Si"]


@pytest.mark.parametrize("model", ["BaTiO3_NEP4_zbl", "Si_2022_NEP4_5body"])
def test_cli_info_nep(tmp_path, capsys, model):
    """``dpcompress info`` describes a nep.txt and the NEP .dpc made from it (tables, errors, provenance)."""
    from dpcompress.cli import main

    src = os.path.join(DATA, model, "nep.txt")
    out = tmp_path / "nep.dpc"
    assert main(["compress", "-i", src, "-o", str(out), "-s", "0.02"]) == 0
    capsys.readouterr()
    m = read_nep(src)
    assert main(["info", src]) == 0
    text = capsys.readouterr().out
    assert "GPUMD NEP text model" in text and f"type_map:        {m.elements}" in text
    assert f"dim {m.dim}" in text and f"-> {m.n_neuron} (tanh)" in text and "compressed:      no" in text
    assert ("universal  inner 0.75 Å  outer 1.5 Å" if m.zbl else "zbl:             none") in text
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "dpcompress NEP table file" in text and "step <= 0.02 Å" in text and f"source:          {src}" in text
    assert text.count("max |g_tab - g|") == 2 and f"dim {m.dim}" in text


def test_ase_calculator():
    ase = pytest.importorskip("ase")
    from dpcompress.calculators.ase_calculator import DPCompressCalculator  # noqa: F401

    z = np.load(os.path.join(DATA, "BaTiO3_NEP4_zbl", "zbl_close_contact_40.npz"))
    atoms = ase.Atoms(symbols=[str(s) for s in z["symbols"]], positions=z["positions"], cell=z["cell"], pbc=True)
    atoms.calc = DPCompressCalculator(os.path.join(DATA, "BaTiO3_NEP4_zbl", "nep.txt"))
    assert atoms.get_potential_energy() == pytest.approx(float(z["energy"]), abs=1e-8)
    assert np.abs(atoms.get_forces() - z["forces"]).max() <= 1e-8
    assert np.abs(atoms.get_stress() - z["stress"]).max() <= 1e-9
