"""The fused se_e3 (se_t) table kernels against their numpy twins, across thread counts,
and the compressed energy's forces against finite differences (inside the fine table, in
the coarse table, beyond the table, and with non-zero padding rows)."""

import dataclasses
import os
import warnings

import numpy as np
import pytest

from conftest import DATA
from dpcompress import Potential
from dpcompress._ext import se_a_tab as compiled_scatter
from dpcompress._ext import se_t_tab as compiled
from dpcompress import TableAccuracyWarning, compress
from kernel_helpers import packed_tables
from dpcompress import load_model
from dpcompress.neighbors import build_neighbor_list
from dpcompress.evaluators.exact import remove_pairs
from dpcompress.reference import se_t_tab as twin

SE_E3_TINY = os.path.join(DATA, "deepmd", "se_e3_tiny")
VARIANT = os.path.join(DATA, "deepmd", "se_e3_variant", "model.dp")


def padded_model():
    """The tiny model with a non-zero angular davg (padding rows are not zero), descriptor
    exclusion (1, 1) (zeroed rows) and model pair exclusion (0, 1) (neighbors turned into padding)."""
    m = load_model(os.path.join(SE_E3_TINY, "frozen.dp"))
    davg = m.descriptor.davg.copy()
    davg[0, :, 1:] = [0.02, -0.01, 0.03]
    davg[1, :, 1:] = [-0.015, 0.01, 0.005]
    desc = dataclasses.replace(m.descriptor, davg=davg, exclude_types=frozenset({(1, 1)}))
    return dataclasses.replace(m, descriptor=desc, pair_exclude_types=frozenset({(0, 1), (1, 0)}))


def setup(model, stress_frame=None, order=5):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TableAccuracyWarning)  # cubic: 2.5e-6 in the 1.0-wide coarse intervals
        cm = compress(model, order=order)
    frames = np.load(os.path.join(SE_E3_TINY, "test_frames_stress.npz" if stress_frame is not None else "test_frames.npz"))
    k = stress_frame or 0
    types = frames["atype"].astype(np.int64)
    nl = build_neighbor_list(frames["coord"][k].astype(float), frames["box"][k].astype(float), types, cm.rcut, list(cm.descriptor.sel))
    nl = remove_pairs(nl, types, cm.pair_exclude_types)
    return cm, packed_tables(cm), types, nl


TINY_DP = os.path.join(SE_E3_TINY, "frozen.dp")
CASES = [(TINY_DP, None, 5), (TINY_DP, 5, 5), (TINY_DP, 3, 3), (VARIANT, None, 5), ("padded", None, 5)]


@pytest.mark.parametrize(
    "path, stress, order", CASES, ids=["tiny", "beyond-table", "cubic", "exclude-protection-silu", "nonzero-padding"]
)
def test_kernels_equal_numpy_twins(path, stress, order):
    cm, p, types, nl = setup(padded_model() if path == "padded" else path, stress, order)
    if path == "padded":
        assert set(np.unique(p.block_mode)) == {0, 1, 2}
    D, beyond = compiled.se_t_tab_forward(p, types, nl.vectors, nl.counts, 2, True)
    D_ref, beyond_ref = twin.se_t_tab_forward(p, types, nl.vectors, nl.counts, check=True)
    np.testing.assert_allclose(D, D_ref, rtol=1e-12, atol=1e-12 * np.abs(D_ref).max())
    np.testing.assert_array_equal(beyond, beyond_ref)
    if stress == 5:
        assert beyond[1].sum() > 0  # really beyond the table
    dD = np.random.default_rng(0).normal(size=D.shape)
    g = compiled.se_t_tab_backward(p, types, nl.vectors, nl.counts, dD, 2)
    g_ref = twin.se_t_tab_backward(p, types, nl.vectors, nl.counts, dD)
    np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-12 * np.abs(g_ref).max())
    f, w = compiled_scatter.scatter_pair_gradients(nl.index, nl.vectors, g)
    f_ref, w_ref = twin.scatter_pair_gradients(nl.index, nl.vectors, g)
    np.testing.assert_allclose(f, f_ref, rtol=1e-12, atol=1e-12 * np.abs(f_ref).max())
    np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-12 * np.abs(w_ref).max())


def test_thread_count_does_not_change_results():
    cm, p, types, nl = setup(TINY_DP, 5)
    D = [compiled.se_t_tab_forward(p, types, nl.vectors, nl.counts, n) for n in (1, 2, 3)]
    np.testing.assert_array_equal(D[0], D[1])
    np.testing.assert_array_equal(D[0], D[2])
    g = [compiled.se_t_tab_backward(p, types, nl.vectors, nl.counts, D[0], n) for n in (1, 2, 3)]
    np.testing.assert_array_equal(g[0], g[1])
    np.testing.assert_array_equal(g[0], g[2])


def test_kernels_validate_their_arrays():
    cm, p, types, nl = setup(TINY_DP)
    with pytest.raises(ValueError, match="vectors"):
        compiled.se_t_tab_forward(p, types, nl.vectors[:, :-1].copy(), nl.counts)
    with pytest.raises(ValueError, match="counts exceed sel"):
        compiled.se_t_tab_forward(p, types, nl.vectors, nl.counts + 100)
    with pytest.raises(ValueError, match="dD"):
        compiled.se_t_tab_backward(p, types, nl.vectors, nl.counts, np.zeros((len(types), 3)))
    bad = p.table_of.copy()
    bad[1, 0] = 0
    with pytest.raises(ValueError, match="below the diagonal"):
        compiled.PackedSeTTables(p.sel_offsets, p.avg, p.std, p.block_mode, bad, p.tab_real, p.tab_count, p.tab_offset,
                                 p.coef, p.ncoef, p.n_channels, p.rcut, p.rcut_smth, p.protection)


def fd_errors(pot, coords, types, h=1e-4):
    """max |F + dE/dx| over all components, dE/dx by Richardson-extrapolated central differences (O(h^4))."""
    e, f, _ = pot.eval(coords[None], None, types)

    def central(a, c, step):
        p, m = coords.copy(), coords.copy()
        p[a, c] += step
        m[a, c] -= step
        return (pot.eval(p[None], None, types)[0][0, 0] - pot.eval(m[None], None, types)[0][0, 0]) / (2 * step)

    worst = 0.0
    for a in range(len(types)):
        for c in range(3):
            fd = (4 * central(a, c, h / 2) - central(a, c, h)) / 3
            worst = max(worst, abs(fd + f[0, a, c]))
    return worst, np.abs(f).max()


CLUSTER_TYPES = np.array([0, 1, 1, 0, 1, 1, 0])


def cluster(distance):
    """A water-like cluster whose O-H pair 0-1 is pushed to ``distance`` Å (training minimum: 0.885 Å)."""
    return np.array([[0.0, 0.0, 0.0], [distance, 0.0, 0.0], [-0.24, 0.93, 0.05], [2.6, 0.4, -0.3], [3.1, 1.1, 0.2],
                     [2.3, -0.5, 0.4], [1.2, -1.5, 0.7]])


@pytest.fixture(scope="module")
def tiny_compressed():
    return compress(TINY_DP)


# e_jk of the 0-1 pair: about 100 at 0.9 Å (fine region, |e| < 142), 330 at 0.5 Å (coarse, < 710), 900 at 0.3 Å (beyond)
@pytest.mark.parametrize("distance, region", [(0.9, (0, 0)), (0.5, (2, 0)), (0.3, (3, 2))], ids=["fine", "coarse", "beyond-table"])
def test_forces_are_minus_gradient_of_compressed_energy(tiny_compressed, distance, region):
    pot = Potential(tiny_compressed, check_frequency=1, n_threads=1)  # tiny system: no thread wake-ups
    coords = cluster(distance)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        err, fmax = fd_errors(pot, coords, CLUSTER_TYPES)
        pot.eval(coords[None], None, CLUSTER_TYPES)
    assert (pot.table_overflow["beyond_fine"], pot.table_overflow["beyond_table"]) == region
    assert err <= 1e-6, (err, fmax)  # measured 3e-9, 3e-9, 3e-8 (forces up to 2.6e4 eV/Å at 0.3 Å)


@pytest.mark.parametrize("which", ["nonzero-padding", "exclude-protection-silu"])
def test_forces_with_padding_rows_and_exclusions(which):
    pot = Potential(compress(padded_model() if which == "nonzero-padding" else VARIANT), n_threads=1)
    err, fmax = fd_errors(pot, cluster(0.9), CLUSTER_TYPES)
    assert err <= 1e-6, (err, fmax)


def test_overflow_check_counts_and_warns(tiny_compressed):
    from dpcompress.potential import TableOverflowWarning

    frames = np.load(os.path.join(SE_E3_TINY, "test_frames_stress.npz"))
    test_frames = np.load(os.path.join(SE_E3_TINY, "test_frames.npz"))
    coords, cells, types = frames["coord"].astype(float), frames["box"].astype(float).reshape(-1, 9), frames["atype"]
    pot = Potential(tiny_compressed, check_frequency=1)
    with pytest.warns(TableOverflowWarning, match="9 neighbor entries beyond the fine table.*2 beyond the whole table"):
        pot.eval(coords[5:6], cells[5:6], types)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pot.eval(test_frames["coord"][:1].astype(float), test_frames["box"][:1].astype(float).reshape(1, 9), types)
    assert pot.table_overflow == {"beyond_fine": 0, "beyond_table": 0}
