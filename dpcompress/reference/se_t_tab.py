r"""Numpy twins of the fused se_e3 table kernels (``src_c/dpc_se_t_tab.c``).

Same names, arguments and outputs as :mod:`dpcompress._ext.se_t_tab`; written
to be read, not to be fast.  ``p`` is a :class:`~dpcompress._ext.se_t_tab.PackedSeTTables`.
Unlike the kernels, these sum over *all* ordered pairs (j, k) of a diagonal block
pair and keep every padding slot as its own row — the plain definition, which the
kernels' shortcuts must reproduce.

Gated mode (``p.gate`` set, se_e3_tebd; one block): each ordered pair is scaled by
``1 + gate[t_j (ntypes+1) + t_k] sw_j sw_k`` (``sw`` = 1 when ``p.gate_unswitched``), with
``neighbor_type`` giving each real slot's type (-1: an excluded pair, its row zeroed).
"""

import numpy as np

from ..core.env_mat import env_mat_se_a, smooth_switch
from .se_a_tab import _g, _table, scatter_pair_gradients  # noqa: F401  (same scatter for every descriptor)


def _rows(p, i, t, vectors, counts):
    """Angular parts of the normalised rows of atom i per block: rr (sel_b, 3), real mask, and dR."""
    out = []
    for b in range(p.nblocks):
        sl = slice(p.sel_offsets[b], p.sel_offsets[b + 1])
        sel = p.sel_offsets[b + 1] - p.sel_offsets[b]
        real = np.zeros(sel, dtype=bool)
        real[: counts[i, b]] = True
        mode = p.block_mode[t, b]
        if mode == 2:
            real[:] = False
        R, dR = env_mat_se_a(vectors[i, sl], real, p.rcut, p.rcut_smth, p.protection)
        rr = (R[:, 1:] - p.avg[t, b, 1:]) / p.std[t, b, 1:]
        if mode == 1:
            rr[real] = 0.0  # zeroed rows; padding rows keep -avg/std
        out.append((rr, real & (mode == 0), dR))
    return out


def _gate(p, i, vectors, counts, neighbor_type):
    """Per ordered slot pair of atom i: S (N, N, M), p = w_j w_k (N, N) and w, dw/dr_ij (N,), (N, 3)."""
    nt = p.ntypes
    real = (np.arange(p.nnei) < counts[i, 0]) & (neighbor_type[i] >= 0)
    t = np.where(real, neighbor_type[i], nt)
    S = np.asarray(p.gate)[t[:, None] * (nt + 1) + t[None, :]]
    # PackedSeTTables says gate_unswitched; a part's kernel_view has gate_pad (present: unswitched)
    if getattr(p, "gate_unswitched", False) or getattr(p, "gate_pad", None) is not None:
        w, dw = np.ones(p.nnei), np.zeros((p.nnei, 3))
    else:
        v = np.where(real[:, None], vectors[i], 1.0)
        r = np.linalg.norm(v, axis=1)
        sw, dsw = smooth_switch(r, p.rcut_smth, p.rcut)
        w, dw = sw * real, (dsw * real / r)[:, None] * v
    return S, np.outer(w, w), w, dw


def _excluded_rows_zeroed(rows, i, counts, neighbor_type):
    """Gated mode: the rows of excluded neighbors (neighbor_type -1 on a real slot) zeroed, not live."""
    if neighbor_type is None:
        return rows
    (rr, live, dR), = rows
    off = (np.arange(len(rr)) < counts[i, 0]) & (neighbor_type[i] < 0)
    rr = np.where(off[:, None], 0.0, rr)
    return [(rr, live & ~off, dR)]


def se_t_tab_forward(p, center_types, vectors, counts, n_threads=1, check=False, neighbor_type=None):
    """D[m] = sum_{a<=b} 1/(sel_a sel_b) sum_{j in a, k in b} e_jk g_m(e_jk) per atom, shape (natoms, M)."""
    n = len(center_types)
    D = np.zeros((n, p.n_channels))
    beyond = np.zeros((2, n), dtype=np.int64)
    for i in range(n):
        t = center_types[i]
        rows = _excluded_rows_zeroed(_rows(p, i, t, vectors, counts), i, counts, neighbor_type)
        for a in range(p.nblocks):
            for b in range(a, p.nblocks):
                tab = p.table_of[a, b]
                if tab < 0:
                    continue
                info, coef = _table(p, tab)
                (ra, real_a, _), (rb, real_b, _) = rows[a], rows[b]
                e = ra @ rb.T  # (sel_a, sel_b)
                g, _, _, _ = _g(info, coef, e.ravel())
                if neighbor_type is not None:
                    S, pw, _, _ = _gate(p, i, vectors, counts, neighbor_type)
                    g = g * (1.0 + S * pw[..., None]).reshape(g.shape)
                D[i] += (e.ravel() @ g) / (len(ra) * len(rb))
                both = np.outer(real_a, real_b)
                xmin = info.lower - info.n_below * info.stride1
                beyond[0, i] += np.count_nonzero(both & ((e < info.lower) | (e >= info.upper)))
                beyond[1, i] += np.count_nonzero(both & ((e < xmin) | (e >= info.xmax)))
    return (D, beyond) if check else D


def se_t_tab_backward(p, center_types, vectors, counts, dD, n_threads=1, neighbor_type=None):
    """dE/dr_ij per slot (natoms, nnei, 3) from dD = dE/dD (natoms, M)."""
    n = len(center_types)
    grad = np.zeros((n, p.nnei, 3))
    for i in range(n):
        t = center_types[i]
        rows = _excluded_rows_zeroed(_rows(p, i, t, vectors, counts), i, counts, neighbor_type)
        drr = [np.zeros_like(r[0]) for r in rows]
        dw = None
        for a in range(p.nblocks):
            for b in range(a, p.nblocks):
                tab = p.table_of[a, b]
                if tab < 0:
                    continue
                info, coef = _table(p, tab)
                ra, rb = rows[a][0], rows[b][0]
                e = ra @ rb.T
                g, dg, _, _ = _g(info, coef, e.ravel())
                c = np.ones_like(g)
                if neighbor_type is not None:
                    S, pw, w, dw_dr = _gate(p, i, vectors, counts, neighbor_type)
                    S = S.reshape(g.shape)
                    c = 1.0 + S * pw.reshape(-1, 1)
                    # dE/dp_jk = e_jk sum_m dD_m g_m S_jkm / N^2, p_jk = w_j w_k
                    dp = (e.ravel() * ((g * S) @ dD[i])).reshape(e.shape) / (len(ra) * len(rb))
                    dw = (dp + dp.T) @ w
                de = (((g + e.ravel()[:, None] * dg) * c) @ dD[i]).reshape(e.shape) / (len(ra) * len(rb))
                drr[a] += de @ rb
                drr[b] += de.T @ ra
        for b, (rr, live, dR) in enumerate(rows):
            sl = slice(p.sel_offsets[b], p.sel_offsets[b + 1])
            dR_raw = np.where(live[:, None], drr[b], 0.0) / p.std[t, b, 1:]
            grad[i, sl] = np.einsum("ja,jab->jb", dR_raw, dR[:, 1:, :])
            if dw is not None:
                grad[i, sl] += np.where(live[:, None], dw[:, None] * dw_dr, 0.0)
    return grad
