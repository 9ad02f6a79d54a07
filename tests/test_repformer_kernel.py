"""The C forward and backward of one DPA-2 repformer layer (``src_c/dpc_repformer.c``) against its numpy twin.

Inputs: every layer's real inputs on a periodic 192-atom water frame of ``tests/data/deepmd/dpa2_tiny``
(captured from the exact evaluator, which is held to DeePMD-kit in ``test_dpa2.py``).  The runtime's frame
path (part kind 7) is tested in ``test_dpa2_compressed.py``.
"""

import os

import numpy as np
import pytest

from conftest import DATA, water_frames

from dpcompress import load_model
from dpcompress.evaluators.exact import dpa2 as exact_dpa2
from dpcompress.evaluators.exact.repformer_layer import layer_forward

kernel = pytest.importorskip("dpcompress._ext.repformer_kernel")

MODEL = os.path.join(DATA, "deepmd", "dpa2_tiny", "frozen.dp")
FRAMES = os.path.join(DATA, "deepmd", "se_e2_a_tiny", "test_frames.npz")


@pytest.fixture(scope="module")
def captured():
    """(model, [(layer, g1, g2, h2, idx, m, sw, g1', g2'), ...]) of frame 0."""
    model = load_model(MODEL)
    with np.load(FRAMES, allow_pickle=False) as f:
        coords = f["coord"][0].astype(np.float64).reshape(-1, 3)
        cell = f["box"][0].astype(np.float64).reshape(3, 3)
        types = f["atype"].astype(np.int64)
    calls = []

    def recording(layer, g1, g2, h2, idx, m, sw, smooth, act, sqrt_nnei):
        out = layer_forward(layer, g1, g2, h2, idx, m, sw, smooth, act, sqrt_nnei)
        calls.append((layer, g1, g2, h2, idx, m, sw, out[0], out[1]))
        return out

    original = exact_dpa2.layer_forward
    exact_dpa2.layer_forward = recording
    try:
        exact_dpa2.descriptors(model, coords, cell, types)
    finally:
        exact_dpa2.layer_forward = original
    return model, calls


def test_layer_forward_matches_numpy(captured):
    """g1' and g2' of both layers (the second does not update g2) to 1e-13 (measured 1.3e-15)."""
    model, calls = captured
    assert len(calls) == 2
    for layer, g1, g2, h2, idx, m, sw, g1_ref, g2_ref in calls:
        g1_new, g2_new = kernel.layer_forward(layer, model.descriptor.activation, g1, g2, h2, idx, m, sw)
        np.testing.assert_allclose(g1_new, g1_ref, rtol=0, atol=1e-13)
        if layer.update_chnnl_2:
            np.testing.assert_allclose(g2_new, g2_ref, rtol=0, atol=1e-13)
        else:
            assert g2_new is None


def test_threads_are_bit_identical(captured):
    """1, 2 and 3 threads give the same bits (each center is computed by one thread, in one order)."""
    model, calls = captured
    layer, g1, g2, h2, idx, m, sw = calls[0][:7]
    ref = kernel.layer_forward(layer, model.descriptor.activation, g1, g2, h2, idx, m, sw, n_threads=1)
    for t in (2, 3):
        out = kernel.layer_forward(layer, model.descriptor.activation, g1, g2, h2, idx, m, sw, n_threads=t)
        np.testing.assert_array_equal(out[0], ref[0])
        np.testing.assert_array_equal(out[1], ref[1])


def test_bad_sizes_are_refused(captured):
    from dpcompress.core.errors import InputError

    model, calls = captured
    layer, g1, g2, h2, idx, m, sw = calls[0][:7]
    with pytest.raises(InputError, match="idx must lie in"):
        kernel.layer_forward(layer, model.descriptor.activation, g1, g2, h2, idx + len(g1), m, sw)
    with pytest.raises(InputError, match="g2 \\(n, J, g2_dim\\)"):
        kernel.layer_forward(layer, model.descriptor.activation, g1, g2[:, :-1], h2, idx, m, sw)


def _adjoints(layer, g2, h2, seed):
    rng = np.random.default_rng(seed)
    n, J, d2 = g2.shape
    return rng.normal(size=(n, layer.g1_dim)), rng.normal(size=(n, J, d2)), rng.normal(size=h2.shape)


def test_layer_backward_matches_numpy(captured):
    """dg1 (messages included), dg2, dh2 and dsw of both layers for random output adjoints, to 1e-12
    of the numpy twin's hand-derived backward (measured 6e-14 on dsw of size 27, 7e-15 elsewhere)."""
    from dpcompress.evaluators.exact.repformer_layer import layer_backward

    model, calls = captured
    act = model.descriptor.activation
    for k, (layer, g1, g2, h2, idx, m, sw, _, _) in enumerate(calls):
        dg1n, dg2n, dh2n = _adjoints(layer, g2, h2, k)
        _, _, _, cache = layer_forward(layer, g1, g2, h2, idx, m, sw, True, act, True)
        ref = layer_backward(layer, cache, dg1n, dg2n, dh2n, idx, m, True)
        out = kernel.layer_backward(layer, act, g1, g2, h2, idx, m, sw, dg1n, dg2n, dh2n)
        for name, a, b in zip(("dg1", "dg2", "dh2", "dsw"), out, ref):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * max(1.0, np.abs(b).max()), err_msg=name)


def test_backward_threads_are_bit_identical(captured):
    model, calls = captured
    layer, g1, g2, h2, idx, m, sw = calls[0][:7]
    adj = _adjoints(layer, g2, h2, 7)
    act = model.descriptor.activation
    ref = kernel.layer_backward(layer, act, g1, g2, h2, idx, m, sw, *adj, n_threads=1)
    for t in (2, 3):
        out = kernel.layer_backward(layer, act, g1, g2, h2, idx, m, sw, *adj, n_threads=t)
        for a, b in zip(out, ref):
            np.testing.assert_array_equal(a, b)


def test_c_layers_in_the_frame_match_deepmd_compressed(monkeypatch):
    """The C layers (forward and backward) in place of the numpy ones inside the frame evaluator, with the
    tabulated repinit: energy, forces, virial and atomic virials of both frames against DeePMD-kit's
    compressed ``dpa2_tiny`` (1e-10 eV/atom, 1e-9 eV/Å, 1e-9 eV; the messages' chain rule through
    periodic images included; measured 0 eV/atom, 5e-15 eV/Å, 1e-14 eV, 2e-14 eV)."""
    import dataclasses

    from dpcompress.descriptors.dpa2_tables import tabulate_repinit

    model = load_model(MODEL)
    grid = dict(stride0=0.01, stride1=0.1, extrapolate=5, order=5, n_threads=1)
    tab = dataclasses.replace(model, descriptor=tabulate_repinit(model.descriptor, model.min_nbor_dist, grid))
    act = model.descriptor.activation

    def c_forward(layer, g1, g2, h2, idx, m, sw, smooth, a, sqrt_nnei):
        assert smooth and sqrt_nnei and a == act
        g1n, g2n = kernel.layer_forward(layer, act, g1, g2, h2, idx, m, sw, n_threads=2)
        return g1n, (g2 if g2n is None else g2n), h2, dict(inputs=(g1, g2, h2, idx, m, sw))

    def c_backward(layer, c, dg1n, dg2n, dh2n, idx, m, smooth):
        return kernel.layer_backward(layer, act, *c["inputs"], dg1n, dg2n, dh2n, n_threads=2)

    monkeypatch.setattr(exact_dpa2, "layer_forward", c_forward)
    monkeypatch.setattr(exact_dpa2, "layer_backward", c_backward)
    with np.load(FRAMES, allow_pickle=False) as f:
        coords = f["coord"].astype(np.float64).reshape(len(f["coord"]), -1, 3)
        cells = f["box"].astype(np.float64).reshape(-1, 3, 3)
        types = f["atype"].astype(np.int64)
    n = len(types)
    with np.load(os.path.join(DATA, "deepmd", "dpa2_tiny", "ref_compressed_pth.npz"), allow_pickle=False) as ref:
        for fr in range(2):
            res = exact_dpa2.evaluate_frame(tab, coords[fr], cells[fr], types)
            assert abs(res.energy - ref["energy"][fr]) / n < 1e-10
            np.testing.assert_allclose(res.force, ref["force"][fr], rtol=0, atol=1e-9)
            np.testing.assert_allclose(res.virial, ref["virial"][fr].reshape(3, 3), rtol=0, atol=1e-9)
            np.testing.assert_allclose(res.atom_virial, ref["atom_virial"][fr].reshape(n, 3, 3), rtol=0, atol=1e-9)


def _tabulated_frame_1():
    """dpa2_tiny with its repinit tabulated (dp compress's defaults) and frame 1's neighbor lists:
    (desc, types, index, vectors, rf_real)."""
    from dpcompress.descriptors.dpa2_tables import tabulate_repinit

    model = load_model(MODEL)
    grid = dict(stride0=0.01, stride1=0.1, extrapolate=5, order=5, n_threads=1)
    desc = tabulate_repinit(model.descriptor, model.min_nbor_dist, grid)
    coords, cells, types = water_frames()
    index, vectors, rf_real, _ = exact_dpa2.neighbor_lists(desc, coords[1], cells[1], types)
    return desc, types, index, vectors, rf_real


def test_repformer_stack_matches_its_twin_and_the_exact_descriptor():
    """The C stack (g1/g2 embedding, every layer, forward and backward) against
    :mod:`dpcompress.reference.repformer_stack` (g1 to 1e-12, dD0/dP/dsw to 1e-12 relative; measured
    1e-15, 2e-14 on dsw), whose g1 is the exact evaluator's descriptor (1e-14; measured 0); 1 and 3
    threads bit-identical."""
    from dpcompress.reference import repformer_stack as twin

    desc, types, index, vectors, rf_real = _tabulated_frame_1()
    D0, P, idx, m, sw = twin.stack_inputs(desc, types, index, vectors, rf_real)
    g1, cache = twin.repformer_stack_forward(desc, D0, types, P, idx, m, sw)
    D = exact_dpa2.descriptor_forward(desc, types, index, vectors, rf_real)[0]
    np.testing.assert_allclose(g1, D[:, : g1.shape[1]], rtol=0, atol=1e-14)
    dg1 = np.random.default_rng(3).normal(size=g1.shape)
    ref = (g1,) + twin.repformer_stack_backward(desc, cache, idx, m, dg1)
    out = kernel.repformer_stack(desc, D0, types, P, idx, m, sw, dg1)
    for name, a, b in zip(("g1", "dD0", "dP", "dsw"), out, ref):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * max(1.0, np.abs(b).max()), err_msg=name)
    out3 = kernel.repformer_stack(desc, D0, types, P, idx, m, sw, dg1, n_threads=3)
    for a, b in zip(out3, out):
        np.testing.assert_array_equal(a, b)


def test_full_and_empty_neighborhoods(captured):
    """The kernel skips empty slots (m = sw = 0) in the pair attention: every center's real slots alone,
    none empty (the first 12 slots, real on most centers), and centers with no real slot at all, forward
    and backward against the numpy twin (1e-13 / 1e-12 relative, as above)."""
    from dpcompress.evaluators.exact.repformer_layer import layer_backward

    model, calls = captured
    act = model.descriptor.activation
    layer, g1, g2, h2, idx, m, sw = calls[0][:7]
    J = 12
    g2, h2, idx, m, sw = (np.ascontiguousarray(a[:, :J]) for a in (g2, h2, idx, m, sw))
    m, sw = m.copy(), sw.copy()
    m[::7], sw[::7] = 0.0, 0.0  # no real slot on every 7th center
    full = (m > 0).all(axis=1)
    assert full.sum() > len(m) // 2 and (m.sum(axis=1) == 0).sum() > 10
    g1_ref, g2_ref, _, cache = layer_forward(layer, g1, g2, h2, idx, m, sw, True, act, True)
    g1_new, g2_new = kernel.layer_forward(layer, act, g1, g2, h2, idx, m, sw)
    np.testing.assert_allclose(g1_new, g1_ref, rtol=0, atol=1e-13)
    np.testing.assert_allclose(g2_new, g2_ref, rtol=0, atol=1e-13)
    dg1n, dg2n, dh2n = _adjoints(layer, g2, h2, 11)
    ref = layer_backward(layer, cache, dg1n, dg2n, dh2n, idx, m, True)
    out = kernel.layer_backward(layer, act, g1, g2, h2, idx, m, sw, dg1n, dg2n, dh2n)
    for name, a, b in zip(("dg1", "dg2", "dh2", "dsw"), out, ref):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * max(1.0, np.abs(b).max()), err_msg=name)


def _depths(idx, m, centers, n_layers):
    """Message distance of every row from the nearest center (a breadth-first walk over the real slots);
    rows farther than n_layers get n_layers + 1 (not read by any center)."""
    depth = np.full(len(idx), n_layers + 1, dtype=np.int64)
    depth[centers] = 0
    for d in range(n_layers):
        rows = np.flatnonzero(depth == d)
        nbrs = idx[rows][m[rows] > 0]
        depth[nbrs] = np.minimum(depth[nbrs], d + 1)
    return depth


def test_stack_on_the_rows_the_centers_read():
    """With row depths (one center plus rows 1 and 2 message steps away, as the runtime's ghosts), the stack
    updates only the rows a center's result reads: the centers' g1 and dD0, dP, dsw (real slots) of the
    centers' result equal the full stack's (1e-15; the skipped rows' terms are exact zeros there), 1 and 3
    threads bit-identical."""
    from dpcompress.reference import repformer_stack as twin

    desc, types, index, vectors, rf_real = _tabulated_frame_1()
    D0, P, idx, m, sw = twin.stack_inputs(desc, types, index, vectors, rf_real)
    nl = len(desc.layers)
    depth = _depths(idx, m, np.arange(1), nl)
    counts = np.bincount(np.minimum(depth, nl + 1), minlength=nl + 2)
    assert counts[0] == 1 and counts[1:].min() > 0  # every depth present, some rows unread
    dg1 = np.random.default_rng(5).normal(size=(len(types), desc.layers[0].g1_dim))
    dg1[depth > 0] = 0.0  # only the centers' g1 reach the result
    full = kernel.repformer_stack(desc, D0, types, P, idx, m, sw, dg1)
    part = kernel.repformer_stack(desc, D0, types, P, idx, m, sw, dg1, depth=depth)
    np.testing.assert_allclose(part[0][depth == 0], full[0][depth == 0], rtol=0, atol=1e-15)
    real = m > 0  # an empty slot's dsw reads its placeholder atom's g1, which may be left unupdated
    for name, a, b in zip(("dD0", "dP", "dsw"), part[1:], full[1:3] + (np.where(real, full[3], 0.0),)):
        a = np.where(real, a, 0.0) if name == "dsw" else a
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-15 * max(1.0, np.abs(b).max()), err_msg=name)
    part3 = kernel.repformer_stack(desc, D0, types, P, idx, m, sw, dg1, n_threads=3, depth=depth)
    for a, b in zip(part3, part):
        np.testing.assert_array_equal(a, b)
