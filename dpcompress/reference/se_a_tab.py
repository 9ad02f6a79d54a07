r"""Numpy twins of the fused se_e2_a table kernels (``src_c/dpc_se_a_tab.c``).

Same names, arguments and outputs as :mod:`dpcompress._ext.se_a_tab`; written
to be read, not to be fast.  ``p`` is a :class:`~dpcompress._ext.se_a_tab.PackedTables`.
Three modes, as in the kernels: se_e2_a (``n_rows`` 4), radial (``n_rows`` 1,
se_e2_r: :math:`T_0 = \frac1N\sum_j g(x_j)`) and gated (``p.gate`` set,
se_atten_v2: channels times :math:`1 + S_{q_j}\,\mathrm{sw}(r_j)`; unswitched with
``p.gate_pad`` set, se_atten v1: times :math:`1 + S_{q_j}`, and padding slots of a center of type
:math:`t` times :math:`1 + S_{\mathrm{gate\_pad}[t]}`).
"""

import numpy as np

from ..core.env_mat import env_mat_se_a, smooth_switch
from ..core.table_math import poly_eval, table_locate


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


def _gate(p, gate_index, i, sl, vec):
    """Per-neighbor factor 1 + S_q w(r) (ones without a gate), its pieces S and w'(r) rhat, and the kept
    rows (q >= 0); w = sw, or 1 when unswitched (``p.gate_pad`` set)."""
    n = len(vec)
    if getattr(p, "gate", None) is None:
        return np.ones((n, p.n_channels)), None, None, np.ones(n, dtype=bool)
    q = gate_index[i, sl]
    keep = q >= 0
    r = np.linalg.norm(vec, axis=1)
    if getattr(p, "gate_pad", None) is not None:
        sw, dsw = np.ones(n), np.zeros(n)
    else:
        sw, dsw = smooth_switch(r, p.rcut_smth, p.rcut)
    S = p.gate[np.maximum(q, 0)]
    return 1.0 + S * sw[:, None], S, dsw[:, None] * vec / r[:, None], keep


def se_a_tab_forward(p, center_types, vectors, counts, n_threads=1, check=False, gate_index=None):
    """T_i = (1/N) [sum_real Rt^T g(x) + n_pad Rt_pad^T g(x_pad)], shape (natoms, n_rows, M)."""
    n = len(center_types)
    n_rows = getattr(p, "n_rows", 4)
    T = np.zeros((n, n_rows, p.n_channels))
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
                sl = slice(p.sel_offsets[b], p.sel_offsets[b] + nreal)
                vec = vectors[i, sl]
                Rt, _ = _normalised_rows(p, avg, std, vec)
                h, _, _, keep = _gate(p, gate_index, i, sl, vec)
                Rt, h = Rt[keep], h[keep]
                g, _, _, delta = _g(info, coef, Rt[:, 0])
                if n_rows == 1:
                    T[i, 0] += g.sum(axis=0)
                else:
                    T[i] += Rt.T @ (g * h)
                beyond[0, i] += np.count_nonzero(Rt[:, 0] >= info.upper)
                beyond[1, i] += np.count_nonzero(delta != 0)
            elif mode == 1 and nreal and n_rows == 1:
                T[i, 0] += nreal * _g(info, coef, np.zeros(1))[0][0]  # zeroed rows: g(0) each
            npad = sel if mode == 2 else sel - nreal
            if npad:
                Rt_pad = -avg / std
                g, _, _, _ = _g(info, coef, Rt_pad[:1])
                if getattr(p, "gate_pad", None) is not None:  # unswitched: the padding type's gate row
                    g = g * (1.0 + p.gate[p.gate_pad[t]])
                T[i] += npad * (g if n_rows == 1 else np.outer(Rt_pad, g[0]))
    T /= p.nnei
    return (T, beyond) if check else T


def se_a_tab_backward(p, center_types, vectors, counts, dT, n_threads=1, gate_index=None):
    """dE/dr_ij per slot (natoms, nnei, 3) from dT = dE/dT."""
    n_rows = getattr(p, "n_rows", 4)
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
            vec = vectors[i, sl]
            Rt, dR = _normalised_rows(p, avg, std, vec)
            g, dg, _, _ = _g(info, coef, Rt[:, 0])
            if n_rows == 1:
                dx = dg @ dT[i, 0] / p.nnei  # (nreal,): sum_m dT[0, m] g'_m
                grad[i, sl] = (dx / std[0])[:, None] * dR[:, 0, :]
                continue
            h, S, dsw, keep = _gate(p, gate_index, i, sl, vec)
            u = Rt @ dT[i]  # (nreal, M): sum_k Rt[k] dT[k, m]
            dRt = (g * h) @ dT[i].T  # (nreal, 4): sum_m dT[k, m] g_m (1 + tau_m)
            dRt[:, 0] += np.einsum("jm,jm->j", dg * h, u)
            dR_raw = dRt / p.nnei / std
            gr = np.einsum("jk,jkb->jb", dR_raw, dR)
            if S is not None:
                gr += np.einsum("jm,jm->j", g * S, u)[:, None] / p.nnei * dsw
            grad[i, sl] = np.where(keep[:, None], gr, 0.0)
    return grad


def scatter_pair_gradients(index, vectors, pair_grad, natoms=None):
    """F_i += g_ij, F_j -= g_ij, W_j -= g_ij ⊗ r_ij over all real slots (rows = centers 0..n-1)."""
    n = index.shape[0] if natoms is None else natoms
    force = np.zeros((n, 3))
    virial = np.zeros((n, 3, 3))
    rows, slots = np.nonzero(index >= 0)
    g = pair_grad[rows, slots]
    np.add.at(force, rows, g)
    np.add.at(force, index[rows, slots], -g)
    np.add.at(virial, index[rows, slots], -g[:, :, None] * vectors[rows, slots][:, None, :])
    return force, virial


def descriptor_from_T(T, axis_neuron, n_threads=1):
    r""":math:`D_i = T_i^\top T_{i,:,:A}` flattened to (natoms, M*A)."""
    n, _, M = T.shape
    return np.matmul(T.transpose(0, 2, 1), T[:, :, :axis_neuron]).reshape(n, M * axis_neuron)


def descriptor_gradient_to_T(T, dD, axis_neuron, n_threads=1):
    r"""Chain rule through :math:`D = T^\top T_{:, :A}`: returns :math:`\partial E/\partial T`."""
    n, _, M = T.shape
    dD = dD.reshape(n, M, axis_neuron)
    dT = np.matmul(T[:, :, :axis_neuron], dD.transpose(0, 2, 1))
    dT[:, :, :axis_neuron] += np.matmul(T, dD)
    return dT
