r"""Numpy twin of the DPA-1 attention kernels (``src_c/dpc_attention.c``): :func:`dpa1_forward`,
:func:`dpa1_backward` (``dpc_dpa1_forward`` / ``dpc_dpa1_backward``).

Written to be read: one center at a time, the rows :math:`X^{(0)}_j = g(x_j)(1 + w_j S_{q_j})` from
the table of the geometric net (:mod:`.se_a_tab`'s lookup), then the attention layers of the exact
evaluator (:mod:`dpcompress.evaluators.exact.dpa1_attention`: batched array code with masks, where
the kernel loops over the real rows), :math:`T = \frac1N\sum_j \tilde R_j^\top \otimes X^{(L)}_j`;
the backward pass is the exact evaluator's adjoint.  ``p`` is the part's kernel
view (gated, one block, davg = 0), ``att`` the :class:`~dpcompress.descriptors.dpa1_attention.AttentionStack`.
"""

import numpy as np

from ..core.env_mat import env_mat_se_a, smooth_switch_deepmd_order
from ..evaluators.exact import dpa1_attention as exact
from .se_a_tab import _g, _table


def _center(p, att, t, vec, q):
    """Rows, switch, directions and what the backward pass needs for one center's n real slots."""
    n = len(vec)
    info, coef = _table(p, p.table_of[t, 0])
    R, dR = env_mat_se_a(vec, np.ones(n, dtype=bool), p.rcut, p.rcut_smth, p.protection,
                         switch=smooth_switch_deepmd_order)
    Rt = (R - p.avg[t, 0]) / p.std[t, 0]
    r = np.linalg.norm(vec, axis=1)
    sw, dsw = smooth_switch_deepmd_order(r, p.rcut_smth, p.rcut)
    g, dg, _, delta = _g(info, coef, Rt[:, 0])
    S = p.gate[q]
    w = sw if att.smooth else np.ones(n)
    X0 = g * (1.0 + S * w[:, None])
    beyond = (int(np.count_nonzero(Rt[:, 0] >= info.upper)), int(np.count_nonzero(delta != 0)))
    return dict(Rt=Rt, dR=dR, sw=sw, dsw=dsw[:, None] * vec / r[:, None], g=g, dg=dg, S=S, w=w, X0=X0), beyond


def _padded(p, c, n):
    """The center's arrays on all N slots (padding rows zero, masked)."""
    N = p.nnei
    mask = np.zeros((1, N), dtype=bool)
    mask[0, :n] = True
    X0 = np.zeros((1, N, c["X0"].shape[1]))
    X0[0, :n] = c["X0"]
    Rt = np.zeros((1, N, 4))
    Rt[0, :n] = c["Rt"]
    sw = np.zeros((1, N))
    sw[0, :n] = c["sw"]
    return X0, mask, sw, Rt


def dpa1_forward(p, att, center_types, vectors, counts, gate_index):
    """T (natoms, 4, M) and the out-of-table counts (2, natoms)."""
    natoms, M = len(center_types), p.n_channels
    T = np.zeros((natoms, 4, M))
    beyond = np.zeros((2, natoms), dtype=np.int64)
    for i in range(natoms):
        n = int(counts[i, 0])
        c, beyond[:, i] = _center(p, att, center_types[i], vectors[i, :n], gate_index[i, :n])
        X0, mask, sw, Rt = _padded(p, c, n)
        XL = exact.rows_forward(att, X0, mask, sw, Rt)[0, :n]
        T[i] = c["Rt"].T @ XL / p.nnei
    return T, beyond


def dpa1_backward(p, att, center_types, vectors, counts, gate_index, dT):
    """dE/dr_ij (natoms, nnei, 3) from dT = dE/dT (natoms, 4, M); zero on padding slots."""
    natoms = len(center_types)
    grad = np.zeros((natoms, p.nnei, 3))
    for i in range(natoms):
        n = int(counts[i, 0])
        if n == 0:
            continue
        t = center_types[i]
        c, _ = _center(p, att, t, vectors[i, :n], gate_index[i, :n])
        X0, mask, sw, Rt = _padded(p, c, n)
        XL = exact.rows_forward(att, X0, mask, sw, Rt)[0, :n]
        dXL = np.zeros(X0.shape)
        dXL[0, :n] = c["Rt"] @ dT[i] / p.nnei
        dRt = dT[i] @ XL.T / p.nnei  # (4, n)
        dX0, dsw_att, dRdir = exact.rows_backward(att, X0, mask, sw, Rt, dXL)
        dX0 = dX0[0, :n]
        dRt = dRt.T
        dRt[:, 0] += np.sum(dX0 * (1.0 + c["S"] * c["w"][:, None]) * c["dg"], axis=1)
        dRt[:, 1:4] += dRdir[0, :n]
        dsw = np.sum(dX0 * c["g"] * c["S"], axis=1) + dsw_att[0, :n] if att.smooth else np.zeros(n)
        dR = dRt / p.std[t, 0]
        grad[i, :n] = np.einsum("jk,jkb->jb", dR, c["dR"]) + dsw[:, None] * c["dsw"]
    return grad


__all__ = ["dpa1_forward", "dpa1_backward"]
