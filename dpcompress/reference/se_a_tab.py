r"""Numpy twins of the fused se_e2_a table kernels (``src_c/dpc_se_a_tab.c``).

Same names, arguments and outputs as :mod:`dpcompress._ext.se_a_tab`; written
to be read, not to be fast.  ``p`` is a :class:`~dpcompress._ext.se_a_tab.PackedTables`.
"""

import numpy as np

from .env_mat import env_mat_se_a
from .table_math import poly_eval, table_locate


class _Info:
    def __init__(self, p, tab):
        self.lower, self.upper, self.xmax, self.stride0, self.stride1 = p.tab_real[tab]
        self.n_fine, self.n_coarse, self.n_below = (int(v) for v in p.tab_count[tab])


def _table(p, tab):
    info = _Info(p, tab)
    size = (info.n_below + info.n_fine + info.n_coarse) * p.ncoef * p.n_channels
    coef = p.coef[p.tab_offset[tab] : p.tab_offset[tab] + size].reshape(-1, p.ncoef, p.n_channels)
    return info, coef


def _g(info, coef, x):
    """Channel values and derivatives at x, continued linearly outside the table."""
    l, t, delta = table_locate(info, x)
    value, deriv = poly_eval(coef, l, t)
    return value + delta[:, None] * deriv, deriv, l, delta


def _normalised_rows(p, key_avg, key_std, vec):
    R, dR = env_mat_se_a(vec, np.ones(len(vec), dtype=bool), p.rcut, p.rcut_smth, p.protection)
    return (R - key_avg) / key_std, dR


def se_a_tab_forward(p, center_types, vectors, counts, n_threads=1, check=False):
    """T_i = (1/N) [sum_real Rt^T g(x) + n_pad Rt_pad^T g(x_pad)], shape (natoms, 4, M)."""
    n = len(center_types)
    T = np.zeros((n, 4, p.n_channels))
    beyond = np.zeros((2, n), dtype=np.int64)
    for i in range(n):
        t = center_types[i]
        for b in range(p.nblocks):
            tab = p.table_of[t, b]
            if tab < 0:
                continue
            info, coef = _table(p, tab)
            avg, std = p.avg[t, b], p.std[t, b]
            sel = p.sel_offsets[b + 1] - p.sel_offsets[b]
            nreal, mode = counts[i, b], p.block_mode[t, b]
            if mode == 0 and nreal:
                vec = vectors[i, p.sel_offsets[b] : p.sel_offsets[b] + nreal]
                Rt, _ = _normalised_rows(p, avg, std, vec)
                g, _, _, delta = _g(info, coef, Rt[:, 0])
                T[i] += Rt.T @ g
                beyond[0, i] += np.count_nonzero(Rt[:, 0] >= info.upper)
                beyond[1, i] += np.count_nonzero(delta != 0)
            npad = sel if mode == 2 else sel - nreal
            if npad:
                Rt_pad = -avg / std
                g, _, _, _ = _g(info, coef, Rt_pad[:1])
                T[i] += npad * np.outer(Rt_pad, g[0])
    T /= p.nnei
    return (T, beyond) if check else T


def se_a_tab_backward(p, center_types, vectors, counts, dT, n_threads=1):
    """dE/dr_ij per slot (natoms, nnei, 3) from dT = dE/dT."""
    n = len(center_types)
    grad = np.zeros((n, p.nnei, 3))
    for i in range(n):
        t = center_types[i]
        for b in range(p.nblocks):
            tab = p.table_of[t, b]
            nreal = counts[i, b]
            if tab < 0 or p.block_mode[t, b] != 0 or nreal == 0:
                continue
            info, coef = _table(p, tab)
            avg, std = p.avg[t, b], p.std[t, b]
            sl = slice(p.sel_offsets[b], p.sel_offsets[b] + nreal)
            Rt, dR = _normalised_rows(p, avg, std, vectors[i, sl])
            g, dg, _, _ = _g(info, coef, Rt[:, 0])
            dRt = g @ dT[i].T  # (nreal, 4): sum_m dT[k, m] g_m
            dRt[:, 0] += np.einsum("jm,jm->j", dg, Rt @ dT[i])
            dR_raw = dRt / p.nnei / std
            grad[i, sl] = np.einsum("jk,jkb->jb", dR_raw, dR)
    return grad


def scatter_pair_gradients(index, vectors, pair_grad):
    """F_i += g_ij, F_j -= g_ij, W_j -= g_ij ⊗ r_ij over all real slots."""
    n = index.shape[0]
    force = np.zeros((n, 3))
    virial = np.zeros((n, 3, 3))
    rows, slots = np.nonzero(index >= 0)
    g = pair_grad[rows, slots]
    np.add.at(force, rows, g)
    np.add.at(force, index[rows, slots], -g)
    np.add.at(virial, index[rows, slots], -g[:, :, None] * vectors[rows, slots][:, None, :])
    return force, virial
