r"""Numpy twin of ``src_c/dpc_pair_table.c`` (DP + ZBL in the runtime), function for function.

:func:`dpc_zbl_center` and :func:`dpc_zbl_pair_grad` take one center's row as the runtime does
(``index`` -1 in padding slots, ``vec`` the pair vectors) and follow the C loops; the math is in
:mod:`dpcompress.models.dp_zbl` and :mod:`dpcompress.evaluators.exact.pair_table`.
"""

import math

import numpy as np

SOFTMIN_FLOOR = 1e-20


def _half_pair(table, ti, tj, r):
    if r >= table.rcut or r >= table.rmin + table.nspline * table.hh:
        return 0.0, 0.0
    hi = 1.0 / table.hh
    x = (r - table.rmin) * hi
    k = math.trunc(x)
    u = x - k
    a3, a2, a1, a0 = table.coef[ti, tj, min(max(k, 0), table.nspline - 1)]
    return 0.5 * (((a3 * u + a2) * u + a1) * u + a0), 0.5 * ((3.0 * a3 * u * u + 2.0 * a2 * u + a1) * hi)


def dpc_zbl_center(model, ti, types, index, vec):
    """``(b, w, de, dw)`` of one center of a :class:`~dpcompress.models.dp_zbl.DPZBLModel`, or None when a
    real pair is closer than the table's first point (the C function returns 1)."""
    table = model.table
    nnei = len(index)
    de, ex = np.zeros(nnei), np.zeros(nnei)
    esum = num = den = 0.0
    for s in range(nnei):
        if index[s] < 0:
            continue
        r = math.sqrt(vec[s, 0] ** 2 + vec[s, 1] ** 2 + vec[s, 2] ** 2)
        if r < table.rmin:
            return None
        e, de[s] = _half_pair(table, ti, types[index[s]], r)
        esum += e
        ex[s] = math.exp(-r / model.smin_alpha)
        num += r * ex[s]
        den += ex[s]
    b = esum + model.tab_out_bias[ti]
    floored = den < SOFTMIN_FLOOR
    sigma = num / (SOFTMIN_FLOOR if floored else den)
    width = model.sw_rmax - model.sw_rmin
    u = (sigma - model.sw_rmin) / width
    w = dws = 0.0
    if sigma != 0.0:
        if sigma < model.sw_rmin:
            w = 1.0
        elif sigma < model.sw_rmax:
            w = -6.0 * u ** 5 + 15.0 * u ** 4 - 10.0 * u ** 3 + 1.0
            dws = -30.0 * u * u * (u - 1.0) ** 2 / width
    dw = np.zeros(nnei)
    for s in range(nnei):
        if index[s] < 0:
            continue
        r = math.sqrt(vec[s, 0] ** 2 + vec[s, 1] ** 2 + vec[s, 2] ** 2)
        ds = (ex[s] * (1.0 - r / model.smin_alpha) / SOFTMIN_FLOOR if floored
              else ex[s] / den * (1.0 + (sigma - r) / model.smin_alpha))
        dw[s] = dws * ds
    return b, w, de, dw


def dpc_zbl_pair_grad(index, vec, w, bma, de, dw, pair_grad):
    """``pair_grad[s] += (w de[s] + bma dw[s]) r_s / |r_s|`` for the real slots (in place)."""
    for s in range(len(index)):
        if index[s] < 0:
            continue
        r = math.sqrt(vec[s, 0] ** 2 + vec[s, 1] ** 2 + vec[s, 2] ** 2)
        pair_grad[s] += (w * de[s] + bma * dw[s]) / r * vec[s]
    return pair_grad
