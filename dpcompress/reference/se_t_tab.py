r"""Numpy twins of the fused se_e3 table kernels (``src_c/dpc_se_t_tab.c``).

Same names, arguments and outputs as :mod:`dpcompress._ext.se_t_tab`; written
to be read, not to be fast.  ``p`` is a :class:`~dpcompress._ext.se_t_tab.PackedSeTTables`.
Unlike the kernels, these sum over *all* ordered pairs (j, k) of a diagonal block
pair and keep every padding slot as its own row — the plain definition, which the
kernels' shortcuts must reproduce.
"""

import numpy as np

from ..core.env_mat import env_mat_se_a
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


def se_t_tab_forward(p, center_types, vectors, counts, n_threads=1, check=False):
    """D[m] = sum_{a<=b} 1/(sel_a sel_b) sum_{j in a, k in b} e_jk g_m(e_jk) per atom, shape (natoms, M)."""
    n = len(center_types)
    D = np.zeros((n, p.n_channels))
    beyond = np.zeros((2, n), dtype=np.int64)
    for i in range(n):
        t = center_types[i]
        rows = _rows(p, i, t, vectors, counts)
        for a in range(p.nblocks):
            for b in range(a, p.nblocks):
                tab = p.table_of[a, b]
                if tab < 0:
                    continue
                info, coef = _table(p, tab)
                (ra, real_a, _), (rb, real_b, _) = rows[a], rows[b]
                e = ra @ rb.T  # (sel_a, sel_b)
                g, _, _, _ = _g(info, coef, e.ravel())
                D[i] += (e.ravel() @ g) / (len(ra) * len(rb))
                both = np.outer(real_a, real_b)
                xmin = info.lower - info.n_below * info.stride1
                beyond[0, i] += np.count_nonzero(both & ((e < info.lower) | (e >= info.upper)))
                beyond[1, i] += np.count_nonzero(both & ((e < xmin) | (e >= info.xmax)))
    return (D, beyond) if check else D


def se_t_tab_backward(p, center_types, vectors, counts, dD, n_threads=1):
    """dE/dr_ij per slot (natoms, nnei, 3) from dD = dE/dD (natoms, M)."""
    n = len(center_types)
    grad = np.zeros((n, p.nnei, 3))
    for i in range(n):
        t = center_types[i]
        rows = _rows(p, i, t, vectors, counts)
        drr = [np.zeros_like(r[0]) for r in rows]
        for a in range(p.nblocks):
            for b in range(a, p.nblocks):
                tab = p.table_of[a, b]
                if tab < 0:
                    continue
                info, coef = _table(p, tab)
                ra, rb = rows[a][0], rows[b][0]
                e = ra @ rb.T
                g, dg, _, _ = _g(info, coef, e.ravel())
                de = ((g + e.ravel()[:, None] * dg) @ dD[i]).reshape(e.shape) / (len(ra) * len(rb))
                drr[a] += de @ rb
                drr[b] += de.T @ ra
        for b, (rr, live, dR) in enumerate(rows):
            sl = slice(p.sel_offsets[b], p.sel_offsets[b + 1])
            dR_raw = np.where(live[:, None], drr[b], 0.0) / p.std[t, b, 1:]
            grad[i, sl] = np.einsum("ja,jab->jb", dR_raw, dR[:, 1:, :])
    return grad
