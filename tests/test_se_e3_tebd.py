"""se_e3_tebd (se_t_tebd, stripped type embedding): the exact evaluator against DeePMD-kit 3.2.0, the
compressed model against DeePMD-kit's own compression and against the exact one, the gated mode of
the fused se_t kernels against its numpy twin, forces = -dE/dr, thread counts, the runtime against
its numpy twin, the .dpc file (both readers, a damaged array), the command line, and what is refused.

Fixture: tests/data/deepmd/se_e3_tebd_tiny (DeePMD-kit's DeepPot.eval on frames 0-1 of
se_e2_a_tiny/test_frames.npz; its README).  Bounds:

* exact vs DeePMD-kit's uncompressed outputs: |ΔE|/atom ≤ 1e-10 eV, |ΔF| ≤ 1e-9 eV/Å, virials and
  atomic virials ≤ 1e-9 eV, atomic energies ≤ 1e-10 eV (measured: ≤ 1.4e-14).
* compressed (defaults: step 0.01 → strides 0.1 and 1.0, quintic, extrapolate 5) vs DeePMD-kit's
  compressed model (the same grid, ±93 here): |ΔE|/atom ≤ 1e-12 eV, |ΔF| ≤ 1e-11 eV/Å, virials ≤ 1e-10 eV
  (measured 7.6e-14 eV/atom, 1.1e-13 eV/Å, 8.7e-12 eV: summation order);
  vs the exact evaluator: |ΔF| ≤ 1e-9 eV/Å, |ΔE|/atom ≤ 1e-10 eV (DeePMD-kit's own compressed vs
  uncompressed: 6e-11 eV/Å).
* synthetic variants (variants_ref.npz: smooth false, exclude_types, pair/atom exclusions, no type-embedding
  output, gelu + env_protection, hybrid) vs DeePMD-kit, exact and compressed: 1e-10 eV/atom, 1e-9 eV/Å, 1e-8 eV
  (measured: exact ≤ 5.8e-15 eV/Å, compressed ≤ 8.1e-11 eV/Å, 8.8e-10 eV).
* kernels vs twins: relative 1e-12; forces vs central differences: 1e-6 relative (h = 1e-5 Å).
"""

import json
import os

import numpy as np
import pytest

from conftest import DATA, REPO
from dpcompress import Potential, compress, load_model, save_model
from dpcompress._ext import runtime
from dpcompress._ext import se_t_tab as compiled
from dpcompress.cli import main
from dpcompress.core.errors import ModelFormatError, UnsupportedModelError
from dpcompress.descriptors import se_e3_tebd
from dpcompress.evaluators.runtime import RuntimeEvaluator
from dpcompress.modelfile import model_bytes
from dpcompress.modelfile.container import decode, encode
from dpcompress.neighbors import build_neighbor_list
from dpcompress.reference import se_t_tab as twin
from dpcompress.reference.runtime import compute as runtime_twin
from synthetic_models import DEEPMD_CHECKED, edit_dp, set_descriptor

FOLDER = os.path.join(DATA, "deepmd", "se_e3_tebd_tiny")
MODEL = os.path.join(FOLDER, "frozen.dp")
FRAMES = os.path.join(DATA, "deepmd", "se_e2_a_tiny", "test_frames.npz")
NATOMS = 192


def frames():
    z = np.load(FRAMES)
    return z["coord"][:2].astype(float), z["box"][:2].astype(float).reshape(2, 9), z["atype"].astype(np.int64)


def reference(tag):
    with np.load(os.path.join(FOLDER, f"ref_{tag}_pth.npz"), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def differences(out, ref):
    e, f, v, ae, av = out
    return dict(
        energy_per_atom=np.abs(e.ravel() - ref["energy"].ravel()).max() / NATOMS,
        force=np.abs(f - ref["force"]).max(),
        virial=np.abs(v.reshape(-1, 9) - ref["virial"].reshape(-1, 9)).max(),
        atom_energy=np.abs(ae.reshape(2, -1) - ref["atom_energy"]).max(),
        atom_virial=np.abs(av.reshape(2, NATOMS, 9) - ref["atom_virial"].reshape(2, NATOMS, 9)).max(),
    )


def assert_within(err, tol):
    for k, bound in tol.items():
        assert err[k] <= bound, (k, err[k], bound)


@pytest.fixture(scope="module")
def compressed():
    return compress(MODEL)


@pytest.fixture(scope="module")
def exact_outputs():
    c, b, t = frames()
    return Potential(MODEL).eval(c, b, t, atomic=True)


# --- reading ------------------------------------------------------------------------------------------


def test_reads_every_field():
    d = load_model(MODEL).descriptor
    assert d.type_name == "se_e3_tebd" and d.mixed_types
    assert (d.rcut, d.rcut_smth, d.sel, d.neuron, d.tebd_dim) == (4.0, 0.5, (40,), (4, 8, 16), 4)
    assert d.smooth and d.concat_output_tebd and d.dim_out == 16 + 4
    assert d.type_embedding.shape == (3, 4) and not d.type_embedding[2].any()  # zero padding row
    assert d.pair_table().shape == (9, 16)


# --- exact evaluator ----------------------------------------------------------------------------------


def test_exact_matches_deepmd(exact_outputs):
    err = differences(exact_outputs, reference("uncompressed"))
    assert_within(err, dict(energy_per_atom=1e-10, force=1e-9, virial=1e-9, atom_energy=1e-10, atom_virial=1e-9))


def _cluster(distance):
    """Water-like cluster: one O-H pair at ``distance``, the others spread over the switching region."""
    coords = np.array([[0.0, 0.0, 0.0], [distance, 0.0, 0.0], [-0.24, 0.93, 0.05], [2.6, 0.4, -0.3],
                       [3.1, 1.1, 0.2], [2.3, -0.5, 0.4], [0.9, 2.2, -1.1]])
    return coords, np.array([0, 1, 1, 0, 1, 1, 0])


def assert_forces_are_minus_gradient(pot, distance):
    coords, types = _cluster(distance)
    _, f, _ = pot.eval(coords[None], None, types)
    h = 1e-5 if distance > 0.1 else 1e-6
    for a in range(len(types)):
        for c in range(3):
            p, m = coords.copy(), coords.copy()
            p[a, c] += h
            m[a, c] -= h
            fd = -(pot.eval(p[None], None, types)[0][0, 0] - pot.eval(m[None], None, types)[0][0, 0]) / (2 * h)
            assert abs(fd - f[0, a, c]) <= 1e-6 * max(1.0, abs(f[0, a, c])), (a, c, fd, f[0, a, c])


def test_exact_forces_are_minus_gradient():
    assert_forces_are_minus_gradient(Potential(MODEL), 0.95)


# --- compressed ---------------------------------------------------------------------------------------


def test_compressed_matches_deepmd_compressed_and_exact(compressed, exact_outputs):
    c, b, t = frames()
    out = Potential(compressed).eval(c, b, t, atomic=True)
    # the same grid as DeePMD-kit's compression: its compressed model to summation order
    assert_within(differences(out, reference("compressed")),
                  dict(energy_per_atom=1e-12, force=1e-11, virial=1e-10, atom_energy=1e-12, atom_virial=1e-11))
    ex = dict(energy=exact_outputs[0], force=exact_outputs[1], virial=exact_outputs[2], atom_energy=exact_outputs[3].reshape(2, -1),
              atom_virial=exact_outputs[4])
    assert_within(differences(out, ex), dict(energy_per_atom=1e-10, force=1e-9, virial=1e-8, atom_virial=1e-9))


def test_table_is_deepmds_grid(compressed):
    """DeePMD-kit's "T_TEBD" rule: max over center types of ceil((s_max/σ)^2), strides 10x the step."""
    tab = compressed.descriptor.tables
    assert (tab.lower, tab.upper) == (-93.0, 93.0)
    assert (tab.stride0, tab.stride1) == pytest.approx((0.1, 1.0))
    assert tab.n_below == tab.n_coarse
    assert compressed.descriptor.strip_table.shape == (9, 16)
    # the size estimate before building (compress's max_bytes guard) knows the 10x grid
    from dpcompress.compression import estimate_table_bytes

    m = load_model(MODEL)
    total, _ = estimate_table_bytes(m.descriptor, m.min_nbor_dist, 0.01, 5, 5)
    assert abs(total - tab.coef.nbytes) <= 0.01 * tab.coef.nbytes


@pytest.mark.filterwarnings("ignore::dpcompress.TableOverflowWarning")  # the close pairs are the point
@pytest.mark.parametrize("distance", [0.7, 0.3, 0.05], ids=["fine", "near-contact", "beyond-table"])
def test_compressed_forces_are_minus_gradient(compressed, distance):
    assert_forces_are_minus_gradient(Potential(compressed), distance)


def _kernel_inputs(model, k=0):
    c, b, t = frames()
    d = model.descriptor
    nl = build_neighbor_list(c[k], b[k].reshape(3, 3), t, d.rcut, list(d.sel), mixed_types=True)
    gate_of = se_e3_tebd.gate_of(d)  # the neighbor's type, -1 for an excluded pair
    ntype = np.where(nl.index >= 0, gate_of[t[:, None], t[np.maximum(nl.index, 0)]], -1).astype(np.int64)
    p = compiled.tables_from_view(se_e3_tebd.pack(d, frozenset()).kernel_view())
    return p, t, nl, ntype


def _variant(tmp_path, name):
    return edit_dp(MODEL, tmp_path / f"{name}.dp", DEEPMD_CHECKED[name][1])


@pytest.mark.filterwarnings("ignore::dpcompress.TableAccuracyWarning")  # cubic: 5e-7, expected
@pytest.mark.parametrize("case", ["smooth", "unswitched", "cubic", "exclude"])
def test_kernels_equal_numpy_twins(compressed, case, tmp_path):
    model = {"smooth": lambda: compressed, "unswitched": lambda: compress(_variant(tmp_path, "t3_unsmooth")),
             "cubic": lambda: compress(MODEL, order=3),
             "exclude": lambda: compress(_variant(tmp_path, "t3_exclude_unsmooth"))}[case]()
    p, t, nl, q = _kernel_inputs(model)
    assert ((q < 0) & (nl.index >= 0)).any() == (case == "exclude")
    assert p.gate is not None and p.gate_unswitched == (case in ("unswitched", "exclude"))
    D, beyond = compiled.se_t_tab_forward(p, t, nl.vectors, nl.counts, 2, True, neighbor_type=q)
    D_ref, beyond_ref = twin.se_t_tab_forward(p, t, nl.vectors, nl.counts, check=True, neighbor_type=q)
    np.testing.assert_allclose(D, D_ref, rtol=1e-12, atol=1e-12 * np.abs(D_ref).max())
    np.testing.assert_array_equal(beyond, beyond_ref)
    dD = np.random.default_rng(0).normal(size=D.shape)
    g = compiled.se_t_tab_backward(p, t, nl.vectors, nl.counts, dD, 2, neighbor_type=q)
    g_ref = twin.se_t_tab_backward(p, t, nl.vectors, nl.counts, dD, neighbor_type=q)
    np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-12 * np.abs(g_ref).max())


def test_gate_arguments_are_validated(compressed):
    p, t, nl, q = _kernel_inputs(compressed)
    with pytest.raises(ValueError, match="neighbor_type is needed"):
        compiled.se_t_tab_forward(p, t, nl.vectors, nl.counts, 1)
    bad = q.copy()
    bad[0, 0] = 2
    with pytest.raises(ValueError, match="neighbor_type out of range"):
        compiled.se_t_tab_forward(p, t, nl.vectors, nl.counts, 1, neighbor_type=bad)


VARIANTS = [n for n, (f, _) in DEEPMD_CHECKED.items() if f == "se_e3_tebd_tiny"]


@pytest.mark.parametrize("name", VARIANTS)
def test_variants_match_deepmd(name, tmp_path):
    """Synthetic variants (smooth false, exclude_types, pair/atom exclusions, no type-embedding output, gelu
    with env_protection, a hybrid of two se_e3_tebd parts) against DeePMD-kit 3.2.0 (variants_ref.npz, tests/data/deepmd/make_variants_ref.py):
    exact to 1e-10 eV/atom and 1e-9 eV/Å, compressed to 1e-10 eV/atom and 1e-9 eV/Å; forces = -dE/dr."""
    path = _variant(tmp_path, name)
    c, b, t = frames()
    with np.load(os.path.join(FOLDER, "variants_ref.npz"), allow_pickle=False) as z:
        ref = {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(name + "/")}
    for pot in (Potential(path), Potential(compress(path))):
        e, f, v, ae, _ = pot.eval(c, b, t, atomic=True)
        assert np.abs(e.ravel() - ref["energy"]).max() / NATOMS <= 1e-10
        assert np.abs(f - ref["force"]).max() <= 1e-9
        assert np.abs(v.reshape(2, 9) - ref["virial"]).max() <= 1e-8
        assert np.abs(ae.reshape(2, -1) - ref["atom_energy"]).max() <= 1e-10
    assert_forces_are_minus_gradient(pot, 0.8)


def test_thread_counts_give_identical_results(compressed):
    p, t, nl, q = _kernel_inputs(compressed)
    D = [compiled.se_t_tab_forward(p, t, nl.vectors, nl.counts, n, neighbor_type=q) for n in (1, 2, 3)]
    g = [compiled.se_t_tab_backward(p, t, nl.vectors, nl.counts, D[0], n, neighbor_type=q) for n in (1, 2, 3)]
    c, b, _ = frames()
    outs = [Potential(compressed, n_threads=n).eval(c, b, t, atomic=True) for n in (1, 2, 3)]
    for k in (1, 2):
        np.testing.assert_array_equal(D[0], D[k])
        np.testing.assert_array_equal(g[0], g[k])
        for x, y in zip(outs[0], outs[k]):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("contact", [None, 0.05], ids=["frame1", "close-contact"])
def test_runtime_equals_numpy_twin(compressed, contact):
    """The C runtime against reference/runtime.py; with one O-H pair pulled to 0.05 Å, entries beyond the
    table (counted alike)."""
    c, b, t = frames()
    x = c[1].copy()
    if contact is not None:
        o = int(np.flatnonzero(t == 0)[0])
        d = x - x[o]
        h = int(np.argmin(np.where(t == 1, np.linalg.norm(d, axis=1), np.inf)))
        x[h] = x[o] + contact * d[h] / np.linalg.norm(d[h])
    r = RuntimeEvaluator(model_bytes(compressed)).evaluate(x, b[1].reshape(3, 3), t, 2)
    e, f, w, beyond = runtime_twin(compressed, x, b[1].reshape(3, 3), t)
    for got, want in ((r.atom_energy, e), (r.force, f), (r.atom_virial.reshape(-1, 9), w)):
        assert np.abs(np.asarray(got) - want).max() <= 1e-12 * max(1.0, np.abs(want).max())
    assert (r.beyond_fine, r.beyond_table) == beyond
    assert (beyond[1] > 0) == (contact is not None)


# --- the .dpc file ------------------------------------------------------------------------------------


def test_dpc_round_trip(compressed, tmp_path):
    """Written, read back by the Python reader (the same descriptor) and by the C reader (the same numbers)."""
    path = tmp_path / "m.dpc"
    save_model(compressed, path)
    back = load_model(path).descriptor
    d = compressed.descriptor
    np.testing.assert_array_equal(back.strip_table, d.strip_table)
    np.testing.assert_array_equal(back.type_embedding, d.type_embedding)
    np.testing.assert_array_equal(back.tables.coef, d.tables.coef)
    assert (back.smooth, back.concat_output_tebd, back.sel, back.neuron) == (d.smooth, d.concat_output_tebd, d.sel, d.neuron)
    c, b, t = frames()
    for x, y in zip(Potential(str(path)).eval(c, b, t, atomic=True), Potential(compressed).eval(c, b, t, atomic=True)):
        np.testing.assert_array_equal(x, y)


def _edited(data, change):
    c = decode(data, check=False)
    arrays = {k: np.array(v) for k, v in c.arrays.items()}
    change(arrays)
    return encode(c.header, sorted(arrays.items()))


def _both_refuse(data, match):
    with pytest.raises(ModelFormatError, match=match) as py:
        decode(data, "hostile.dpc")
    with pytest.raises(ModelFormatError, match=match) as c:
        runtime.check_model_bytes(data, "hostile.dpc")
    return str(py.value), str(c.value)


def _drop(name):
    return lambda a: a.pop(name)


def _set(name, index, value):
    def change(a):
        a[name].reshape(-1)[index] = value
    return change


EDITS = {
    "gate NaN": (_set("part0.gate", 5, np.nan), r"'part0.gate' holds NaN"),
    "gate rows cut": (lambda a: a.__setitem__("part0.gate", a["part0.gate"][:4].copy()), r"part0.gate"),
    "gate missing": (_drop("part0.gate"), r"part0.gate"),
    "type embedding missing": (_drop("part0.type_embedding"), r"part0.type_embedding"),
    "angular avg nonzero": (_set("part0.avg", 1, 0.25), r"'part0.avg': entry 1 is 0.25; se_e3_tebd needs a zero angular avg"),
    "gate row count": (_set("part0.int", 11, 4), r"part 0: 4 gate rows, se_e3_tebd has \(ntypes \+ 1\)\^2 = 9"),
    "axis_neuron set": (_set("part0.int", 6, 2), r"'part0.int': fields this descriptor kind does not use"),
    "unknown array": (lambda a: a.__setitem__("part0.gate_rows", np.zeros((2, 2), dtype=np.int64)), r"part0.gate_rows"),
    "gate_of not the neighbor type": (_set("part0.gate_of", 1, 0),
                                      r"'part0.gate_of': entry 1 is 0 \(se_e3_tebd: the neighbor type 1, or -1 for an excluded pair\)"),
    "gate_of missing": (_drop("part0.gate_of"), r"part0.gate_of"),
    "gate_pad out of range": (lambda a: a.__setitem__("part0.gate_pad", np.array([0, 99], dtype=np.int64)),
                              r"padding gate row 99 out of range"),
}


@pytest.mark.parametrize("case", sorted(EDITS))
def test_damaged_arrays_are_refused_by_both_readers(compressed, case):
    """tests/test_model_integrity.py's pattern: the checksums recomputed, the value checks refuse."""
    data = model_bytes(compressed)
    decode(data, "ok.dpc")
    runtime.check_model_bytes(data, "ok.dpc")
    change, match = EDITS[case]
    py, c = _both_refuse(_edited(data, change), match)
    assert py.startswith("hostile.dpc: ") and c.startswith("hostile.dpc: ")
    assert py == c  # the same check, the same words


# --- front ends ---------------------------------------------------------------------------------------


def test_cli_compress_info_and_test(tmp_path, capsys, monkeypatch):
    out = tmp_path / "m.dpc"
    assert main(["compress", "-i", MODEL, "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert "se_e3_tebd" in capsys.readouterr().out
    monkeypatch.chdir(REPO)
    system = os.path.join("tests", "data", "dp_test", "systems", "water_pbc")
    results = {}
    for name, model in (("exact", MODEL), ("compressed", str(out))):
        js = tmp_path / f"{name}.json"
        assert main(["test", "-m", model, "-s", system, "--json", str(js), "--no-progress"]) == 0
        with open(js) as fh:
            results[name] = json.load(fh)["weighted"]
    assert results["exact"]["nframes"] == 3
    for key in ("energy_rmse", "force_rmse", "virial_rmse"):
        assert np.isfinite(results["exact"][key])
        assert abs(results["exact"][key] - results["compressed"][key]) <= 1e-8, key


# --- what is refused ----------------------------------------------------------------------------------


def _set_type_embedding(**kw):
    def edit(t):
        t.tree["model"]["descriptor"]["type_embedding"].update(kw)
    return edit


REFUSED = {
    "concat": (set_descriptor(tebd_input_mode="concat"), r"tebd_input_mode' = 'concat' is not supported"),
    "econf": (_set_type_embedding(use_econf_tebd=True), r"use_econf_tebd' = true is not supported"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_unsupported_settings_say_what(case, tmp_path):
    edit, match = REFUSED[case]
    with pytest.raises(UnsupportedModelError, match=match):
        load_model(edit_dp(MODEL, tmp_path / "v.dp", edit))


def test_nonzero_davg_is_refused():
    from dpcompress.descriptors.fields import Node
    from dpcompress.models.serialized_tree import load_tree

    tree = load_tree(MODEL)["model"]["descriptor"]
    tree["@variables"]["davg"] = np.full_like(tree["@variables"]["davg"], 0.1)
    with pytest.raises(UnsupportedModelError, match=r"nonzero '.*@variables.davg'"):
        se_e3_tebd.read(Node(tree, "model.descriptor", "m.dp"), 2)


def test_domain_decomposition_equals_serial(compressed):
    """Potential(comm=...)'s per-rank shares (tests/test_domain_decomposition.py's in-process form), 3 ranks:
    per-atom energies bit for bit, forces and virials to summation order (1e-12 relative)."""
    from dpcompress.evaluators.decomposed import DecomposedEvaluator, combine

    c, b, t = frames()
    serial = Potential(compressed, n_threads=1).eval(c[:1], b[:1], t, atomic=True)
    ev = DecomposedEvaluator(RuntimeEvaluator(model_bytes(compressed)), comm=None)
    shares = [ev.share(c[0], b[0].reshape(3, 3), t, r, 3) for r in range(3)]
    r = combine(sum(s for s, _ in shares), [w for _, w in shares], len(t))
    np.testing.assert_array_equal(r.atom_energy, serial[3][0, :, 0])
    for got, want in ((r.force, serial[1][0]), (r.virial.reshape(9), serial[2][0])):
        assert np.abs(np.asarray(got) - want).max() <= 1e-12 * max(1.0, np.abs(want).max())
