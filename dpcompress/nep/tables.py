"""Quintic Hermite tables of the NEP radial functions g_n(r) (radial and angular parts).

For every ordered element pair (t_centre, t_neighbour) and each part, the
functions g_n^{t1 t2}(r) = f_c(r) Σ_k c_nk ½[T_k(x) + 1] are tabulated on their
own grid: M uniform intervals on [0, r_c^{pair}] (so per-pair cutoffs are
supported), with exact g, g', g'' at the nodes (closed form through numpy's
Chebyshev series) and the quintic Hermite coefficients of ``src_c/dpc_table.h``
(:func:`dpcompress.core.table_math.quintic_coefficients`).  The kernel
takes g' as the derivative of the same polynomial, so forces are the exact
gradient of the tabulated energy.  ZBL stays analytic.

Layout (what the C kernel reads): ``coef[off[p] + (l*6 + k)*nch + n]``;
p = part*T*T + t1*T + t2 (part 0 radial, 1 angular).
"""

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import chebyshev as C

from ..core.errors import InputError
from ..core.memory_limit import format_bytes, how_to_raise, max_bytes as memory_limit
from ..core.table_math import quintic_coefficients

DEFAULT_STEP = 0.01  # Å
#: working memory of build_tables beyond its result, in units of the largest pair's table
#: (measured with tracemalloc: about 3.8; the points of the error estimate dominate)
WORK_PER_PAIR_TABLE = 5


@dataclass
class NEPTables:
    M: np.ndarray        # (2, T, T) intervals per part/pair
    offsets: np.ndarray  # (2, T, T)
    coef: np.ndarray     # flat
    step: float
    error_g: np.ndarray  # (2, T, T) max |g_table - g| on the check points
    error_gp: np.ndarray  # (2, T, T) max |g'_table - g'|


def radial_function_derivatives(c_pair, rc, r):
    """g, g', g'' of all n for one pair: c_pair (nmax+1, nb+1), r (P,) -> three (nmax+1, P) arrays."""
    u = r / rc - 1.0
    x = 2.0 * u * u - 1.0
    dx = 4.0 * u / rc
    ddx = 4.0 / (rc * rc)
    a = np.pi * r / rc
    inside = r <= rc  # left limits at r = rc (g'' jumps there)
    fc = np.where(inside, 0.5 * np.cos(a) + 0.5, 0.0)
    fcp = np.where(inside, -0.5 * np.pi / rc * np.sin(a), 0.0)
    fcpp = np.where(inside, -0.5 * (np.pi / rc) ** 2 * np.cos(a), 0.0)
    out_g, out_gp, out_gpp = [], [], []
    for cn in c_pair:
        ser = 0.5 * np.asarray(cn, dtype=float).copy()  # ½ Σ c_k T_k + ½ Σ c_k
        ser[0] += 0.5 * cn.sum()
        P = C.chebval(x, ser)
        P1 = C.chebval(x, C.chebder(ser)) if len(ser) > 1 else np.zeros_like(x)
        P2 = C.chebval(x, C.chebder(ser, 2)) if len(ser) > 2 else np.zeros_like(x)
        out_g.append(fc * P)
        out_gp.append(fcp * P + fc * P1 * dx)
        out_gpp.append(fcpp * P + 2.0 * fcp * P1 * dx + fc * (P2 * dx * dx + P1 * ddx))
    return np.array(out_g), np.array(out_gp), np.array(out_gpp)


def table_bytes(model, step=DEFAULT_STEP, min_intervals=16):
    """Bytes of the tables :func:`build_tables` would make, and of its peak memory, before building.

    Computed in floating point, so a step of 1e-300 gives a huge number, not a huge integer grid.

    Returns
    -------
    tables, peak : float
        The coefficients (6 per interval and channel, 8 bytes each), and the most memory the build
        holds at once (the coefficients twice, while they are concatenated, plus
        :data:`WORK_PER_PAIR_TABLE` times the largest pair's table).
    """
    total = largest = 0.0
    for nch, rcs in ((model.n_max_radial + 1, model.rc_radial), (model.n_max_angular + 1, model.rc_angular)):
        for rc in np.asarray(rcs, dtype=float).ravel():
            pair = max(float(min_intervals), np.ceil(rc / step - 1e-9)) * 6 * nch * 8
            total += pair
            largest = max(largest, pair)
    return total, 2 * total + WORK_PER_PAIR_TABLE * largest


def build_tables(model, step=DEFAULT_STEP, min_intervals=16, max_bytes=None):
    """Tabulate every g_n of ``model`` with intervals of at most ``step`` Å; returns :class:`NEPTables`.

    Parameters
    ----------
    model : NEPModel
    step : float
        Largest interval, Å.
    min_intervals : int
        Fewest intervals per pair.
    max_bytes : int, str or None
        Memory limit (:func:`dpcompress.core.memory_limit.max_bytes`; None: the environment's or 2 GiB).

    Raises
    ------
    InputError
        ``step`` is not a positive number, or the tables would need more memory than the limit
        (checked before anything is built).
    """
    if isinstance(step, bool) or not isinstance(step, (int, float, np.floating)) or not (step > 0 and np.isfinite(step)):
        raise InputError(f"step must be a positive number of Å, got {step!r}")
    limit = memory_limit(max_bytes)
    size, peak = table_bytes(model, step, min_intervals)
    if peak > limit:
        raise InputError(
            f"NEP tables with step {step:g} Å would take {format_bytes(size)} (about {format_bytes(peak)} while "
            f"they are built), above the limit of {format_bytes(limit)}: use a larger step (-s; default "
            f"{DEFAULT_STEP} Å) or {how_to_raise()}"
        )
    T = model.ntypes
    M = np.zeros((2, T, T), dtype=np.int64)
    off = np.zeros((2, T, T), dtype=np.int64)
    eg = np.zeros((2, T, T))
    egp = np.zeros((2, T, T))
    chunks, pos = [], 0
    for part, (c, rcs) in enumerate(((model.c_radial, model.rc_radial), (model.c_angular, model.rc_angular))):
        for t1 in range(T):
            for t2 in range(T):
                rc = float(rcs[t1, t2])
                m = max(min_intervals, int(np.ceil(rc / step - 1e-9)))
                w = rc / m
                nodes = np.arange(m + 1) * w
                nodes[-1] = rc
                cp = c[:, :, t1, t2]
                g, gp, gpp = radial_function_derivatives(cp, rc, nodes)
                a = quintic_coefficients(g[:, :-1], gp[:, :-1], gpp[:, :-1], g[:, 1:], gp[:, 1:], gpp[:, 1:], w)
                coef = np.ascontiguousarray(a.transpose(2, 0, 1))  # (m, 6, nch)
                # error estimate on 4 interior points of every interval
                tt = (np.array([0.125, 0.375, 0.625, 0.875])[None, :] * w)
                rr = (nodes[:-1, None] + tt).ravel()
                ge, gpe, _ = radial_function_derivatives(cp, rc, rr)
                tv, tdv = table_values(coef, rc, rr)
                eg[part, t1, t2] = np.abs(tv - ge).max()
                egp[part, t1, t2] = np.abs(tdv - gpe).max()
                M[part, t1, t2] = m
                off[part, t1, t2] = pos
                chunks.append(coef.ravel())
                pos += coef.size
    return NEPTables(M=M, offsets=off, coef=np.concatenate(chunks), step=float(step), error_g=eg, error_gp=egp)


def table_values(coef, rc, r):
    """Evaluate one pair's table (m, 6, nch) on [0, rc] at r: returns g, g' as (nch, P).

    Interval l = floor(r / w) is computed as r * (m / rc), as the C kernel does (no division per pair).
    """
    m = coef.shape[0]
    w, winv = rc / m, m / rc
    l = np.minimum((r * winv).astype(np.int64), m - 1)
    t = (r - l * w)[:, None]
    a = coef[l]  # (P, 6, nch)
    v = a[:, 5]
    d = 5.0 * a[:, 5]
    for k in range(4, -1, -1):
        v = a[:, k] + t * v
        if k >= 1:
            d = k * a[:, k] + t * d
    return v.T, d.T


def table_gfun(model, tables):
    """A ``gfun`` for :func:`dpcompress.reference.nep.evaluate_pairs` reading the tables (numpy twin of the kernel)."""
    T = model.ntypes

    def gfun(part, ti, tj, r):
        p = 0 if part == "R" else 1
        nch = (model.n_max_radial if p == 0 else model.n_max_angular) + 1
        rcs = model.rc_radial if p == 0 else model.rc_angular
        g = np.zeros((nch, len(r)))
        gp = np.zeros((nch, len(r)))
        for t1 in range(T):
            for t2 in range(T):
                sel = (ti == t1) & (tj == t2)
                if not sel.any():
                    continue
                m = int(tables.M[p, t1, t2])
                o = int(tables.offsets[p, t1, t2])
                coef = tables.coef[o: o + m * 6 * nch].reshape(m, 6, nch)
                g[:, sel], gp[:, sel] = table_values(coef, float(rcs[t1, t2]), r[sel])
        return g, gp

    return gfun
