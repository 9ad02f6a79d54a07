"""The fused se_e2_a table kernels against their numpy twins, across thread counts,
and the compressed energy's forces against finite differences (inside the fine
table, in the coarse table and beyond the table)."""

import os

import numpy as np
import pytest

from conftest import TINY, DATA
from dpcompress import Potential
from dpcompress._ext import se_a_tab as compiled
from dpcompress import compress
from kernel_helpers import packed_tables
from dpcompress.neighbors import build_neighbor_list
from dpcompress.reference import se_a_tab as twin

VARIANTS = os.path.join(DATA, "deepmd_variants")


def setup(model_path, stress_frame=None, order=5, step=0.01):
    cm = compress(model_path, order=order, step=step)
    frames = np.load(os.path.join(TINY, "test_frames_stress.npz" if stress_frame is not None else "test_frames.npz"))
    k = stress_frame or 0
    coords, cell = frames["coord"][k].astype(float), frames["box"][k].astype(float)
    types = frames["atype"].astype(np.int64)
    nl = build_neighbor_list(coords, cell, types, cm.rcut, list(cm.descriptor.sel))
    return cm, packed_tables(cm), types, nl


CASES = [
    (os.path.join(TINY, "frozen.dp"), None, 5),
    (os.path.join(TINY, "frozen.dp"), 5, 5),  # a pair at 0.08 Å: beyond the table
    (os.path.join(TINY, "frozen.dp"), 3, 3),  # cubic, coarse region
    (os.path.join(VARIANTS, "tos_true_exclude", "model.dp"), None, 5),
    (os.path.join(VARIANTS, "pair_atom_exclude", "model.dp"), None, 5),
    (os.path.join(VARIANTS, "env_protection", "model.dp"), None, 5),
]


@pytest.mark.parametrize("path, stress, order", CASES, ids=["tiny", "beyond-table", "cubic", "tos-exclude", "pair-exclude", "protection"])
def test_kernels_equal_numpy_twins(path, stress, order):
    cm, p, types, nl = setup(path, stress, order)
    T, beyond = compiled.se_a_tab_forward(p, types, nl.vectors, nl.counts, 2, True)
    T_ref, beyond_ref = twin.se_a_tab_forward(p, types, nl.vectors, nl.counts, check=True)
    np.testing.assert_allclose(T, T_ref, rtol=1e-12, atol=1e-12 * np.abs(T_ref).max())
    np.testing.assert_array_equal(beyond, beyond_ref)
    dT = np.random.default_rng(0).normal(size=T.shape)
    g = compiled.se_a_tab_backward(p, types, nl.vectors, nl.counts, dT, 2)
    g_ref = twin.se_a_tab_backward(p, types, nl.vectors, nl.counts, dT)
    np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-12 * np.abs(g_ref).max())
    f, w = compiled.scatter_pair_gradients(nl.index, nl.vectors, g)
    f_ref, w_ref = twin.scatter_pair_gradients(nl.index, nl.vectors, g)
    np.testing.assert_allclose(f, f_ref, rtol=1e-12, atol=1e-12 * np.abs(f_ref).max())
    np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-12 * np.abs(w_ref).max())
    # domain decomposition: the last atoms are ghosts, rows only for the centers
    nc = len(types) // 2
    f, w = compiled.scatter_pair_gradients(nl.index[:nc], nl.vectors[:nc], g[:nc], len(types))
    f_ref, w_ref = twin.scatter_pair_gradients(nl.index[:nc], nl.vectors[:nc], g[:nc], len(types))
    assert f.shape == (len(types), 3) and np.abs(f[nc:]).max() > 0  # ghosts receive forces
    np.testing.assert_allclose(f, f_ref, rtol=1e-12, atol=1e-12 * np.abs(f_ref).max())
    np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-12 * np.abs(w_ref).max())
    bad = nl.index.copy()
    bad[0, 0] = len(types)
    with pytest.raises(IndexError, match="out of range"):
        compiled.scatter_pair_gradients(bad, nl.vectors, g, len(types))
    with pytest.raises(ValueError, match="smaller than"):
        compiled.scatter_pair_gradients(nl.index, nl.vectors, g, nc)


def test_thread_count_does_not_change_results():
    cm, p, types, nl = setup(os.path.join(TINY, "frozen.dp"), 5)
    T1 = compiled.se_a_tab_forward(p, types, nl.vectors, nl.counts, 1)
    T2 = compiled.se_a_tab_forward(p, types, nl.vectors, nl.counts, 2)
    T3 = compiled.se_a_tab_forward(p, types, nl.vectors, nl.counts, 3)
    np.testing.assert_array_equal(T1, T2)
    np.testing.assert_array_equal(T1, T3)
    g1 = compiled.se_a_tab_backward(p, types, nl.vectors, nl.counts, T1, 1)
    g2 = compiled.se_a_tab_backward(p, types, nl.vectors, nl.counts, T1, 2)
    np.testing.assert_array_equal(g1, g2)
    frames = np.load(os.path.join(TINY, "test_frames.npz"))
    out = [Potential(cm, n_threads=n).eval(frames["coord"][:2], frames["box"][:2].reshape(2, 9), types, atomic=True) for n in (1, 2)]
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=0)


@pytest.mark.parametrize("distance", [0.7, 0.3, 0.08], ids=["fine", "coarse", "beyond-table"])
def test_forces_are_minus_gradient_of_compressed_energy(distance):
    """A water O-H pair pushed closer than anything in the training set (0.885 Å)."""
    cm = compress(os.path.join(TINY, "frozen.dp"))
    pot = Potential(cm)
    coords = np.array([[0.0, 0.0, 0.0], [distance, 0.0, 0.0], [-0.24, 0.93, 0.05], [2.6, 0.4, -0.3], [3.1, 1.1, 0.2], [2.3, -0.5, 0.4]])
    types = np.array([0, 1, 1, 0, 1, 1])
    e, f, _ = pot.eval(coords[None], None, types)
    h = 1e-5 if distance > 0.1 else 1e-6
    for a in range(len(types)):
        for c in range(3):
            p, m = coords.copy(), coords.copy()
            p[a, c] += h
            m[a, c] -= h
            fd = -(pot.eval(p[None], None, types)[0][0, 0] - pot.eval(m[None], None, types)[0][0, 0]) / (2 * h)
            assert abs(fd - f[0, a, c]) <= 1e-6 * max(1.0, abs(f[0, a, c])), (a, c, fd, f[0, a, c])


def test_overflow_check_counts_and_warns():
    from dpcompress import TableOverflowWarning

    cm = compress(os.path.join(TINY, "frozen.dp"))
    frames = np.load(os.path.join(TINY, "test_frames_stress.npz"))
    pot = Potential(cm, check_frequency=2, overflow="ignore")  # the periodic check alone
    coords, cells, types = frames["coord"].astype(float), frames["box"].astype(float).reshape(-1, 9), frames["atype"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pot.eval(coords[5:6], cells[5:6], types)  # evaluation 1: counted (always), no warning
    assert pot.table_overflow == {"beyond_fine": 2, "beyond_table": 2}
    with pytest.warns(TableOverflowWarning, match="2 neighbor entries beyond the fine table.*2 beyond the whole table"):
        pot.eval(coords[5:6], cells[5:6], types)  # evaluation 2: checked
    assert pot.table_overflow == {"beyond_fine": 2, "beyond_table": 2}
    pot.eval(coords[:1], cells[:1], types)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Potential(cm, check_frequency=1).eval(coords[:1], cells[:1], types)  # normal frame: silent


def test_descriptor_products_equal_numpy_twins():
    """D = T^T T_< and its chain rule: compiled kernels vs the numpy twins, any thread count."""
    from dpcompress._ext import se_a_tab as compiled
    from dpcompress.reference import se_a_tab as twin

    rng = np.random.default_rng(5)
    T = rng.normal(size=(37, 4, 24))
    dD = rng.normal(size=(37, 24 * 7))
    D_ref = twin.descriptor_from_T(T, 7)
    dT_ref = twin.descriptor_gradient_to_T(T, dD, 7)
    outs = []
    for n_threads in (1, 2, 3):
        D = compiled.descriptor_from_T(T, 7, n_threads)
        dT = compiled.descriptor_gradient_to_T(T, dD, 7, n_threads)
        np.testing.assert_allclose(D, D_ref, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dT, dT_ref, rtol=1e-12, atol=1e-13)
        outs.append((D, dT))
    for D, dT in outs[1:]:
        assert np.array_equal(D, outs[0][0]) and np.array_equal(dT, outs[0][1])
    with pytest.raises(ValueError, match="axis_neuron"):
        compiled.descriptor_from_T(T, 25)
