"""Numpy twins of ``src_c/dpc_table.h``: table lookup, polynomial evaluation, Hermite coefficients.

Same names, same arithmetic, vectorised.  See the header for the grid and layout.
"""

import numpy as np


def table_locate(info, x):
    """Interval index, local offset and distance past the table for every x.

    Parameters
    ----------
    info : EmbeddingTable (or anything with lower, upper, xmax, stride0, stride1,
        n_fine, n_coarse and optionally n_below)
    x : ndarray

    Returns
    -------
    l : ndarray of int64
    t, delta : ndarray of float64
    """
    x = np.asarray(x, dtype=np.float64)
    nb = int(getattr(info, "n_below", 0))
    xmin = info.lower - nb * info.stride1
    l = np.zeros(x.shape, dtype=np.int64)
    t = np.zeros(x.shape)
    delta = np.zeros(x.shape)
    outside_below = x < (xmin if nb else info.lower)
    below = (x >= xmin) & (x < info.lower) & (nb > 0)
    fine = (x >= info.lower) & (x < info.upper)
    coarse = (x >= info.upper) & (x < info.xmax)
    above = x >= info.xmax
    delta[outside_below] = x[outside_below] - xmin
    lb = np.minimum(((x[below] - xmin) / info.stride1).astype(np.int64), nb - 1)
    l[below] = lb
    t[below] = x[below] - (info.lower - (nb - lb) * info.stride1)
    lf = np.minimum(((x[fine] - info.lower) / info.stride0).astype(np.int64), info.n_fine - 1)
    l[fine] = nb + lf
    t[fine] = x[fine] - (info.lower + lf * info.stride0)
    lc = np.minimum(((x[coarse] - info.upper) / info.stride1).astype(np.int64), info.n_coarse - 1)
    l[coarse] = nb + info.n_fine + lc
    t[coarse] = x[coarse] - (info.upper + lc * info.stride1)
    delta[above] = x[above] - info.xmax
    if info.n_coarse > 0:
        l[above] = nb + info.n_fine + info.n_coarse - 1
        t[above] = info.xmax - (info.upper + (info.n_coarse - 1) * info.stride1)
    else:
        l[above] = nb + info.n_fine - 1
        t[above] = info.upper - (info.lower + (info.n_fine - 1) * info.stride0)
    return l, t, delta


def poly_eval(coef, l, t):
    """Value and derivative of every channel: ``coef`` (nspline, ncoef, M); l, t shape (n,) -> (n, M)."""
    rows = coef[l]  # (n, ncoef, M)
    tt = t[:, None]
    ncoef = coef.shape[1]
    value = rows[:, ncoef - 1]
    deriv = (ncoef - 1) * rows[:, ncoef - 1]
    for k in range(ncoef - 2, -1, -1):
        value = rows[:, k] + tt * value
        if k >= 1:
            deriv = k * rows[:, k] + tt * deriv
    return value, deriv


def table_eval(table, x):
    """g(x) and g'(x) of all channels with C¹ linear extrapolation outside the table; x (n,) -> (n, M)."""
    l, t, delta = table_locate(table, x)
    value, deriv = poly_eval(table.coef, l, t)
    return value + delta[:, None] * deriv, deriv


def quintic_coefficients(y0, d0, s0, y1, d1, s1, w):
    """Quintic Hermite coefficients a_0..a_5 (stacked on a new axis 0) matching y, y', y'' at both ends."""
    h = y1 - y0
    w2, w3 = w * w, w * w * w
    return np.stack(
        [
            y0,
            d0,
            0.5 * s0,
            (20.0 * h - (8.0 * d1 + 12.0 * d0) * w - (3.0 * s0 - s1) * w2) / (2.0 * w3),
            (-30.0 * h + (14.0 * d1 + 16.0 * d0) * w + (3.0 * s0 - 2.0 * s1) * w2) / (2.0 * w3 * w),
            (12.0 * h - 6.0 * (d1 + d0) * w + (s1 - s0) * w2) / (2.0 * w3 * w2),
        ]
    )


def cubic_coefficients(y0, d0, y1, d1, w):
    """Cubic Hermite coefficients c_0..c_3 (stacked on a new axis 0) matching y, y' at both ends."""
    h = y1 - y0
    w2 = w * w
    return np.stack([y0, d0, (3.0 * h - (d1 + 2.0 * d0) * w) / w2, ((d1 + d0) * w - 2.0 * h) / (w2 * w)])
