"""se_atten_v2 (attn_layer 0, stripped type embedding): exact evaluator against DeePMD-kit 3.2.0,
compressed model against the exact one, the gated mode of the fused se_e2_a kernels against its
numpy twin, forces = -dE/dr (the gate's sw'(r) term included), and what is refused, and why.

Bounds as tests/test_se_e2_r.py.
"""

import os
import warnings

import numpy as np
import pytest

from dpcompress.modelfile.container import decode, encode
from conftest import DATA, load_frames, shared_fixture
from dpcompress import Potential
from dpcompress._ext import se_a_tab as compiled
from dpcompress.cli import main
from dpcompress import TableAccuracyWarning, compress
from dpcompress.core.errors import ModelFormatError, UnsupportedModelError
from kernel_helpers import gate_rows, packed_tables
from dpcompress import load_model
from dpcompress.neighbors import build_neighbor_list
from dpcompress.evaluators.exact import remove_pairs
from dpcompress.reference import se_a_tab as twin
from synthetic_models import ACTIVATIONS, DEEPMD_CHECKED, activation, chain, edit_dp, se_atten_one_side, set_descriptor
from test_reference_vs_deepmd import compare
from test_se_e2_r import (
    CMP_TOL,
    assert_within,
    check_compressed_fixture,
    check_matches_deepmd_compressed,
    check_variant_matches_deepmd,
    max_errors,
)

FOLDER = os.path.join(DATA, "deepmd", "se_atten_v2_tiny")
MODEL = os.path.join(FOLDER, "frozen.dp")


def frame(k=0, stress=False):
    fr = np.load(os.path.join(FOLDER, "test_frames_stress.npz" if stress else "test_frames.npz"))
    return fr["coord"][k].astype(float), fr["box"][k].astype(float), fr["atype"].astype(np.int64)


# --- exact evaluator against DeePMD-kit ----------------------------------------------------------------


@pytest.mark.parametrize("stress", [False, True], ids=["test_frames", "stress_frames"])
def test_exact_matches_deepmd(stress):
    compare(Potential(MODEL), *load_frames(FOLDER, stress))


@pytest.mark.slow
@pytest.mark.parametrize("stress", [False, True], ids=["test_frames", "stress_frames"])
def test_large_exact_matches_deepmd(stress):
    folder = shared_fixture("se_atten_v2")
    compare(Potential(os.path.join(folder, "frozen.dp")), *load_frames(folder, stress))


@pytest.mark.parametrize("name", [n for n, (f, _) in DEEPMD_CHECKED.items() if f == "se_atten_v2_tiny"])
def test_variants_match_deepmd(name, tmp_path):
    """type_one_side, exclusions, pair/atom exclusions, no tebd output, gelu + env_protection."""
    check_variant_matches_deepmd(MODEL, FOLDER, name, tmp_path)


# --- compressed model ----------------------------------------------------------------------------------


def test_compressed_matches_exact_and_deepmd_compressed():
    # the same strip table as DeePMD-kit's, too
    check_matches_deepmd_compressed(FOLDER, check_compressed_fixture(FOLDER))


@pytest.mark.slow
def test_large_compressed():
    check_compressed_fixture(shared_fixture("se_atten_v2"))


@pytest.mark.parametrize("one_side", [True, False], ids=["one_side", "two_side"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_every_activation_and_type_one_side(act, one_side, tmp_path):
    """The activation of both embedding nets (the strip net is evaluated exactly, the geometric net tabulated)."""
    edits = [activation(act), set_descriptor(exclude_types=[[1, 1]])] + ([se_atten_one_side] if one_side else [])
    model = load_model(edit_dp(MODEL, tmp_path / "v.dp", chain(*edits)))
    assert model.descriptor.type_one_side == one_side
    assert model.descriptor.embeddings.layers[0].activation == act == model.descriptor.strip_net.layers[0].activation
    kinks = act in ("relu", "relu6")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if kinks else "error", TableAccuracyWarning)
        # A smooth interval cannot follow a kink: the slope error there is a fraction of the slope's
        # jump, and the slopes of this small net are large (0.2 eV/Å force error at step 0.01); it
        # shrinks with the step, which is what is checked for relu/relu6.
        cm = compress(model, step=0.001 if kinks else 0.01)
    coords, cell, types = frame()
    err = max_errors(Potential(cm), Potential(model), coords[None], cell.reshape(1, 9), types)
    if kinks:
        assert err["force"] < 1e-2 and err["energy_per_atom"] < 1e-8, err
    else:
        assert_within(err, CMP_TOL)


def test_dpc_file_and_cli(tmp_path, capsys):
    out = tmp_path / "a.dpc"
    assert main(["compress", "-i", MODEL, "-o", str(out)]) == 0
    assert main(["info", str(out)]) == 0
    assert "se_atten_v2" in capsys.readouterr().out
    coords, cell, types = frame()
    a = Potential(str(out)).eval(coords[None], cell.reshape(1, 9), types, atomic=True)
    b = Potential(compress(MODEL)).eval(coords[None], cell.reshape(1, 9), types, atomic=True)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    c = decode(out.read_bytes())  # a gate table that does not fit the types is refused on load
    arrays = {k: np.array(v) for k, v in c.arrays.items()}
    arrays["part0.gate"] = arrays["part0.gate"][:4]
    out.write_bytes(encode(c.header, sorted(arrays.items())))
    with pytest.raises(ModelFormatError, match="part0.gate"):
        load_model(out)


# --- what is refused --------------------------------------------------------------------------------------


def _dpa1(**kw):
    def edit(t):
        d = t.tree["model"]["descriptor"]
        d.update(type="dpa1", tebd_input_mode="strip", smooth_type_embedding=True)
        d.update(kw)

    return edit


@pytest.mark.parametrize(
    "edit, match",
    [
        # attention layers are read (tests/test_dpa1_attention.py), but not with this fixture's nonzero davg
        (set_descriptor(attn_layer=2), "davg' is nonzero .*not supported with attention layers"),
        (_dpa1(tebd_input_mode="concat"), "tebd_input_mode = 'concat' is not supported: 'concat' feeds"),
        (_dpa1(attn_layer=1), "davg' is nonzero .*not supported with attention layers"),
        (_dpa1(smooth_type_embedding=False), "smooth_type_embedding' = false with a nonzero davg"),
        (set_descriptor(lmax=2), "lmax"),
        (set_descriptor(use_econf_tebd=True), "use_econf_tebd"),
    ],
    ids=["attn_layer", "concat", "dpa1-attn_layer", "not-smooth", "lmax", "econf"],
)
def test_unsupported_settings_say_what_and_why(edit, match, tmp_path):
    with pytest.raises(UnsupportedModelError, match=match):
        load_model(edit_dp(MODEL, tmp_path / "v.dp", edit))


def test_dpa1_in_the_equivalent_form_is_se_atten_v2(tmp_path):
    """DPA-1 with strip, smooth type embedding and no attention layers is the same model."""
    coords, cell, types = frame()
    a = Potential(load_model(edit_dp(MODEL, tmp_path / "v.dp", _dpa1()))).eval(coords[None], cell.reshape(1, 9), types)
    b = Potential(MODEL).eval(coords[None], cell.reshape(1, 9), types)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# --- kernels: gated mode against the numpy twin -----------------------------------------------------------


def kernel_inputs(k=0, stress=False, order=5, edit=None, tmp_path=None):
    path = MODEL if edit is None else edit_dp(MODEL, tmp_path / "v.dp", edit)
    cm = compress(path, order=order)
    coords, cell, types = frame(k=k, stress=stress)
    d = cm.descriptor
    nl = remove_pairs(build_neighbor_list(coords, cell, types, d.rcut, list(d.sel), mixed_types=True), types, cm.pair_exclude_types)
    return packed_tables(cm), types, nl, gate_rows(cm, types, nl.index)


CASES = {
    "tiny": dict(),
    "beyond-table": dict(k=5, stress=True),
    "cubic-coarse": dict(k=3, stress=True, order=3),
    "exclude": dict(edit=DEEPMD_CHECKED["at_exclude"][1]),
    "one-side-exclude": dict(edit=DEEPMD_CHECKED["at_one_side_exclude"][1]),
    "pair-exclude": dict(edit=DEEPMD_CHECKED["at_pair_exclude"][1]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_kernels_equal_numpy_twins(case, tmp_path):
    p, types, nl, q = kernel_inputs(tmp_path=tmp_path, **CASES[case])
    assert p.gate is not None
    assert ((q < 0) & (nl.index >= 0)).any() == (case in ("exclude", "one-side-exclude"))  # zeroed real slots
    T, beyond = compiled.se_a_tab_forward(p, types, nl.vectors, nl.counts, 2, True, gate_index=q)
    T_ref, beyond_ref = twin.se_a_tab_forward(p, types, nl.vectors, nl.counts, check=True, gate_index=q)
    np.testing.assert_allclose(T, T_ref, rtol=1e-12, atol=1e-12 * np.abs(T_ref).max())
    np.testing.assert_array_equal(beyond, beyond_ref)
    if case == "beyond-table":
        assert beyond[1].sum() == 2  # the 0.08 Å pair, seen from both atoms
    dT = np.random.default_rng(0).normal(size=T.shape)
    g = compiled.se_a_tab_backward(p, types, nl.vectors, nl.counts, dT, 2, gate_index=q)
    g_ref = twin.se_a_tab_backward(p, types, nl.vectors, nl.counts, dT, gate_index=q)
    np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-12 * np.abs(g_ref).max())


def test_thread_count_does_not_change_results():
    p, types, nl, q = kernel_inputs(k=5, stress=True)
    T = [compiled.se_a_tab_forward(p, types, nl.vectors, nl.counts, n, gate_index=q) for n in (1, 2, 3)]
    g = [compiled.se_a_tab_backward(p, types, nl.vectors, nl.counts, T[0], n, gate_index=q) for n in (1, 2, 3)]
    for k in (1, 2):
        np.testing.assert_array_equal(T[0], T[k])
        np.testing.assert_array_equal(g[0], g[k])


def test_gate_arguments_are_validated():
    p, types, nl, q = kernel_inputs()
    with pytest.raises(ValueError, match="gate_index is needed"):
        compiled.se_a_tab_forward(p, types, nl.vectors, nl.counts, 1)
    bad = q.copy()
    bad[0, 0] = p.n_gate_rows
    with pytest.raises(ValueError, match="gate_index out of range"):
        compiled.se_a_tab_forward(p, types, nl.vectors, nl.counts, 1, gate_index=bad)


@pytest.mark.parametrize("distance", [0.7, 0.3, 0.08], ids=["fine", "coarse", "beyond-table"])
def test_forces_are_minus_gradient_of_compressed_energy(distance):
    """A water O-H pair pushed closer than anything in the training set (0.885 Å); every other pair
    lies in the switching region, where the type gate sw(r) S varies with r."""
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
