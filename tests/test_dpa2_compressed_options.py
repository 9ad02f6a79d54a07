"""The compressed DPA-2 beyond DeePMD-kit's default repformer options: update_style res_incr and res_residual,
g1_out_mlp false, g1_out_conv false, attn2_has_gate.

The models are ``dpa2_tiny`` edited as in ``tests/test_dpa2.py`` (``tests/data/deepmd/dpa2_options.py``:
res_residual's vectors :math:`r_k` drawn at random, not trained), then compressed.  References: the numpy
twin of the compressed model (the exact frame evaluator on the same tabulated descriptor, and the numpy
repformer layer for the C layer kernel); DeePMD-kit 3.2.0's own outputs of the edited uncompressed models
on an open cluster (``tests/data/deepmd/dpa2_options_reference.npz``), which the compressed model meets
within its table error.
"""

import dataclasses
import os

import numpy as np
import pytest

from conftest import DATA, water_frames, dpa2_options

import dpcompress
from dpcompress import Potential, load_model
from dpcompress.core.errors import ModelFormatError
from dpcompress.evaluators.exact import dpa2 as exact_dpa2
from dpcompress.evaluators.exact.repformer_layer import layer_backward, layer_forward
from dpcompress.modelfile import model_bytes, save_model
from dpcompress.modelfile.container import decode, encode
from dpcompress.models.deepmd_reader import model_from_tree
from dpcompress.models.serialized_tree import load_tree

pytest.importorskip("dpcompress._ext.runtime")
kernel = pytest.importorskip("dpcompress._ext.repformer_kernel")

MODEL = os.path.join(DATA, "deepmd", "dpa2_tiny", "frozen.dp")
OPTIONS_REF = os.path.join(DATA, "deepmd", "dpa2_options_reference.npz")
STYLES = ("res_incr", "res_residual")
#: option sets of tests/data/deepmd/dpa2_options.py that compress (DeePMD-kit references for the single ones)
OPTION_SETS = (("res_incr",), ("res_residual",), ("g1_out_mlp_false",), ("g1_out_conv_false",),
               ("attn2_has_gate",), ("g1_out_mlp_false", "res_residual"),
               ("attn2_has_gate", "g1_out_conv_false", "g1_out_mlp_false", "res_residual"))


OPTS = dpa2_options()


@pytest.fixture(scope="module", params=OPTION_SETS, ids=["+".join(s) for s in OPTION_SETS])
def case(request, tmp_path_factory):
    """(option set's name, the compressed edited model, its .dpc path)."""
    name = "+".join(request.param)
    tree = OPTS.edited_tree(load_tree(MODEL), list(request.param))
    compressed = dpcompress.compress(model_from_tree(tree, source=name), n_threads=1)
    path = tmp_path_factory.mktemp(name) / f"{name}.dpc"
    save_model(compressed, path)
    return name, compressed, str(path)


@pytest.fixture(scope="module")
def frame():
    coords, cells, types = water_frames()
    return coords[0], cells[0], types


def test_the_options_are_stored_and_read_back(case):
    """compress keeps the options (no longer refused); the .dpc read back has them and the same r_k (bitwise)."""
    name, compressed, path = case
    back = load_model(path)
    style = name.split("+")[-1] if name.startswith("res_") or "+res_" in name else "res_avg"
    for a, b in zip(compressed.descriptor.layers, back.descriptor.layers):
        assert a.update_style == b.update_style == style
        assert a.g1_out_mlp == b.g1_out_mlp == ("g1_out_mlp_false" not in name)
        assert a.g1_out_conv == b.g1_out_conv == ("g1_out_conv_false" not in name)
        assert b.attn2_has_gate == ("attn2_has_gate" in name)
        for key in ("g1_residual", "g2_residual"):
            assert len(getattr(a, key)) == len(getattr(b, key))
            for u, v in zip(getattr(a, key), getattr(b, key)):
                np.testing.assert_array_equal(u, v)
    if style == "res_residual":
        n1 = 2 + back.descriptor.layers[0].g1_out_mlp + back.descriptor.layers[0].g1_out_conv
        assert [len(l.g1_residual) for l in back.descriptor.layers] == [n1, n1]
        assert [len(l.g2_residual) for l in back.descriptor.layers] == [3, 0]


def test_runtime_equals_its_numpy_twin(case, frame):
    """The C runtime on a periodic 192-atom water frame = the exact frame evaluator on the same tabulated
    model: forces and atomic virials to 1e-12 eV/Å (eV), energy 1e-10 eV (measured ~5e-16 on forces)."""
    _, compressed, path = case
    coords, cell, types = frame
    e, f, v, ae, av = Potential(path, n_threads=1).eval(coords[None], cell[None], types, atomic=True)
    twin = exact_dpa2.evaluate_frame(compressed, coords, cell, types)
    assert abs(e[0, 0] - twin.energy) < 1e-10
    np.testing.assert_allclose(f[0], twin.force, rtol=0, atol=1e-12)
    np.testing.assert_allclose(v[0].reshape(3, 3), twin.virial, rtol=0, atol=1e-11)
    np.testing.assert_allclose(av[0].reshape(-1, 3, 3), twin.atom_virial, rtol=0, atol=1e-12)


@pytest.mark.skipif(not os.path.exists(OPTIONS_REF), reason="dpa2_options_reference.npz not made")
def test_runtime_matches_deepmd_uncompressed_within_the_table_error(case):
    """On DeePMD-kit's open cluster: energy 1e-10 eV/atom, forces 1e-9 eV/Å, atomic energies and virials
    1e-9 eV of DeePMD-kit's uncompressed edited model (measured: F 6e-15 eV/Å, W_i 4e-15 eV at most)."""
    name, _, path = case
    with np.load(OPTIONS_REF, allow_pickle=False) as ref:
        if f"{name}/energy" not in ref.files:
            pytest.skip(f"no DeePMD-kit reference for {name}")
        c, t = ref["cluster/coord"], ref["cluster/atype"]
        r = {k.split("/", 1)[1]: ref[k] for k in ref.files if k.startswith(name + "/")}
    e, f, v, ae, av = Potential(path, n_threads=1).eval(c[None], None, t, atomic=True)
    assert abs(e[0, 0] - float(r["energy"])) / len(t) < 1e-10
    np.testing.assert_allclose(f[0], r["force"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(ae[0, :, 0], r["atom_energy"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(av[0], r["atom_virial"].reshape(-1, 9), rtol=0, atol=1e-9)


def test_any_thread_count_gives_the_same_bits(case, frame):
    _, _, path = case
    coords, cell, types = frame
    one = Potential(path, n_threads=1).eval(coords[None], cell[None], types, atomic=True)
    three = Potential(path, n_threads=3).eval(coords[None], cell[None], types, atomic=True)
    for a, b in zip(one, three):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def layer_inputs(frame):
    """[(layer, g1, g2, h2, idx, m, sw), ...] of dpa2_tiny's two layers on the water frame."""
    model = load_model(MODEL)
    coords, cell, types = frame
    calls = []
    original = exact_dpa2.layer_forward

    def recording(layer, g1, g2, h2, idx, m, sw, *rest):
        calls.append((layer, g1, g2, h2, idx, m, sw))
        return original(layer, g1, g2, h2, idx, m, sw, *rest)

    exact_dpa2.layer_forward = recording
    try:
        exact_dpa2.descriptors(model, coords, cell, types)
    finally:
        exact_dpa2.layer_forward = original
    return model.descriptor.activation, calls


@pytest.mark.parametrize("style", ("res_avg",) + STYLES)
@pytest.mark.parametrize("mlp", (True, False), ids=("g1_out_mlp", "g1_out_mlp_false"))
@pytest.mark.parametrize("conv", (True, False), ids=("g1_out_conv", "g1_out_conv_false"))
def test_layer_kernel_matches_its_twin(layer_inputs, style, mlp, conv):
    """The C layer (forward and backward) with the options against the numpy layer, both layers (the second
    updates no g2): g1', g2' to 1e-13, dg1, dg2, dh2, dsw to 1e-12 relative (measured 2e-15, 1e-14);
    1 and 3 threads bit-identical.  g1_out_mlp false: linear1 gets random rows for g1 (its first input);
    g1_out_conv false: a random proj_g1g2 (g1 -> g2) and random linear1 rows for the convolution (next)."""
    act, calls = layer_inputs
    rng = np.random.default_rng(11)
    for layer, g1, g2, h2, idx, m, sw in calls:
        kw = dict(update_style=style)
        d1, d2 = layer.g1_dim, layer.g2_dim
        w = layer.linear1.w
        if not conv:
            w = np.concatenate([rng.normal(0, 0.3, (d2, d1)), w])
            kw.update(g1_out_conv=False, proj_g1g2=dataclasses.replace(layer.proj_g1g2, w=rng.normal(0, 0.3, (d1, d2))))
        if not mlp:
            w = np.concatenate([rng.normal(0, 0.3, (d1, d1)), w])
            kw.update(g1_out_mlp=False, g1_self_mlp=None)
        kw["linear1"] = dataclasses.replace(layer.linear1, w=w)
        if style == "res_residual":
            kw["g1_residual"] = tuple(rng.normal(0.5, 0.3, layer.g1_dim) for _ in range(2 + mlp + conv))
            kw["g2_residual"] = tuple(rng.normal(0.5, 0.3, layer.g2_dim) for _ in range(3 * layer.update_chnnl_2))
        _kernel_equals_twin(dataclasses.replace(layer, **kw), act, g1, g2, h2, idx, m, sw, rng)


def test_gated_attention_kernel_with_empty_slots(layer_inputs):
    """attn2_has_gate with a third of the slots and every 7th center emptied (m = sw = 0) and h2 nonzero on
    the empty slots (so the gate of an empty column is not zero): forward 1e-13, backward 1e-12 relative
    against the numpy layer (measured 1.6e-15, 1.4e-15)."""
    act, calls = layer_inputs
    layer, g1, g2, h2, idx, m, sw = calls[0]
    L = dataclasses.replace(layer, attn2_has_gate=True)
    m, sw = m.copy(), sw.copy()
    m[:, ::3], sw[:, ::3], m[::7], sw[::7] = 0.0, 0.0, 0.0, 0.0
    h2 = h2 + 0.3
    _kernel_equals_twin(L, act, g1, g2, h2, idx, m, sw, np.random.default_rng(2))


def test_layer_kernel_refuses_residuals_of_the_wrong_count(layer_inputs):
    from dpcompress.core.errors import InputError

    act, calls = layer_inputs
    layer, g1, g2, h2, idx, m, sw = calls[0]
    L = dataclasses.replace(layer, update_style="res_residual", g1_residual=(np.ones(layer.g1_dim),) * 3,
                            g2_residual=(np.ones(layer.g2_dim),) * 3)
    with pytest.raises(InputError, match="res_residual needs 4 g1 and 3 g2 residual vectors, got 3 and 3"):
        kernel.layer_forward(L, act, g1, g2, h2, idx, m, sw)


def _container(names):
    tree = OPTS.edited_tree(load_tree(MODEL), names)
    return decode(model_bytes(dpcompress.compress(model_from_tree(tree, source="r"), n_threads=1)), "x.dpc")


@pytest.fixture(scope="module")
def residual_container():
    return _container(["res_residual"])


@pytest.fixture(scope="module")
def no_conv_container():
    return _container(["g1_out_conv_false"])


@pytest.fixture(scope="module")
def no_mlp_container():
    return _container(["g1_out_mlp_false", "res_residual"])


def _set(name, value):
    def edit(arrays):
        arrays[name] = value(np.array(arrays[name])) if callable(value) else value
    return edit


def _nan(a):
    a.flat[1] = np.nan
    return a


@pytest.mark.parametrize(
    "edit, match",
    [
        (_set("part0.rf.update_style", np.array([3])), r"array 'part0.rf.update_style' holds \[3\], expected values "
                                                       r"in \[0, 2\]"),
        (_set("part0.rf.update_style", np.array([2.0])), r"array 'part0.rf.update_style' is float64\[1\], expected "
                                                         r"int64\[1\]"),
        (lambda a: a.pop("part0.rf0.g1_residual"), r"array 'part0.rf0.g1_residual' is missing"),
        (_set("part0.rf0.g2_residual", lambda a: a[:2]), r"array 'part0.rf0.g2_residual' is float64\[2, 4\], "
                                                         r"expected float64\[3, 4\]"),
        (_set("part0.rf1.g1_residual", _nan), r"array 'part0.rf1.g1_residual' holds a non-finite value"),
        (_set("part0.rf1.g2_residual", np.ones((3, 4))), r"array 'part0.rf1.g2_residual' is not part of this "
                                                         r"compressed"),
        (_set("part0.rf.update_style", np.array([1])), r"array 'part0.rf0.g1_residual' is not part of this "
                                                       r"compressed"),
    ],
)
def test_damaged_style_arrays_are_named_by_both_readers(residual_container, edit, match):
    """The Python reader and the C reader name a damaged, missing or extra update-style array with the same
    message."""
    _both_readers_name(residual_container, edit, match)


@pytest.mark.parametrize(
    "edit, match",
    [
        (_set("part0.rf.g1_out_mlp", np.array([2])), r"array 'part0.rf.g1_out_mlp' holds \[2\], expected values "
                                                     r"in \[0, 1\]"),
        (_set("part0.rf.g1_out_mlp", np.array([0, 0])), r"array 'part0.rf.g1_out_mlp' is int64\[2\], expected "
                                                        r"int64\[1\]"),
        (_set("part0.rf0.g1_self_mlp.w", np.ones((8, 8))), r"array 'part0.rf0.g1_self_mlp.w' is not part of this "
                                                           r"compressed"),
        (_set("part0.rf0.g1_residual", np.ones((4, 8))), r"array 'part0.rf0.g1_residual' is float64\[4, 8\], "
                                                         r"expected float64\[3, 8\]"),
        (lambda a: a.pop("part0.rf.g1_out_mlp"), r"array 'part0.rf0.linear1.w' is float64\[56, 8\], expected "
                                                  r"float64\[48, 8\]"),
    ],
)
def test_damaged_g1_out_mlp_arrays_are_named_by_both_readers(no_mlp_container, edit, match):
    _both_readers_name(no_mlp_container, edit, match)


@pytest.mark.parametrize(
    "edit, match",
    [
        (_set("part0.rf.g1_out_conv", np.array([-1])), r"array 'part0.rf.g1_out_conv' holds \[-1\], expected values "
                                                       r"in \[0, 1\]"),
        (_set("part0.rf1.proj_g1g2.w", lambda a: a.T.copy()), r"array 'part0.rf1.proj_g1g2.w' is float64\[4, 8\], "
                                                              r"expected float64\[8, 4\]"),
        (_set("part0.rf.g1_out_conv", np.array([1])), r"array 'part0.rf0.linear1.w' is float64\[52, 8\], expected "
                                                      r"float64\[48, 8\]"),
        (_set("part0.rf.attn2_has_gate", np.array([2])), r"array 'part0.rf.attn2_has_gate' holds \[2\], expected "
                                                         r"values in \[0, 1\]"),
    ],
)
def test_damaged_g1_out_conv_arrays_are_named_by_both_readers(no_conv_container, edit, match):
    _both_readers_name(no_conv_container, edit, match)


def _both_readers_name(container, edit, match):
    from dpcompress._ext.runtime import check_model_bytes

    arrays = dict(container.arrays)
    edit(arrays)
    data = encode(container.header, sorted(arrays.items()))
    with pytest.raises(ModelFormatError, match="^x.dpc: (part 0: )?" + match) as py:
        decode(data, "x.dpc")
    with pytest.raises(ModelFormatError) as c:
        check_model_bytes(data, "x.dpc")
    assert str(c.value) == str(py.value)


def test_default_files_carry_no_style_array():
    """The default options write no rf.update_style / rf.g1_out_mlp / rf.g1_out_conv / rf.attn2_has_gate (their
    files are as before)."""
    arrays = decode(model_bytes(dpcompress.compress(MODEL, n_threads=1)), "x.dpc").arrays
    assert not any(k.endswith(("update_style", "_residual", "g1_out_mlp", "g1_out_conv", "attn2_has_gate"))
               for k in arrays)


def _kernel_equals_twin(L, act, g1, g2, h2, idx, m, sw, rng):
    """The C layer (forward, backward from random adjoints) = the numpy layer: forward 1e-13, backward 1e-12
    relative; 1 and 3 threads bit-identical."""
    g1_ref, g2_ref, _, cache = layer_forward(L, g1, g2, h2, idx, m, sw, True, act, True)
    g1_new, g2_new = kernel.layer_forward(L, act, g1, g2, h2, idx, m, sw)
    np.testing.assert_allclose(g1_new, g1_ref, rtol=0, atol=1e-13)
    if L.update_chnnl_2:
        np.testing.assert_allclose(g2_new, g2_ref, rtol=0, atol=1e-13)
    adj = rng.normal(size=g1.shape), rng.normal(size=g2.shape), rng.normal(size=h2.shape)
    ref = layer_backward(L, cache, *adj, idx, m, True)
    out = kernel.layer_backward(L, act, g1, g2, h2, idx, m, sw, *adj)
    for name, a, b in zip(("dg1", "dg2", "dh2", "dsw"), out, ref):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * max(1.0, np.abs(b).max()), err_msg=name)
    out3 = kernel.layer_backward(L, act, g1, g2, h2, idx, m, sw, *adj, n_threads=3)
    for a, b in zip(out3, out):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(kernel.layer_forward(L, act, g1, g2, h2, idx, m, sw, n_threads=3), (g1_new, g2_new)):
        if b is not None:
            np.testing.assert_array_equal(a, b)
