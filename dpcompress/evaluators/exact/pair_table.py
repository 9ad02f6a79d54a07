r"""DeePMD-kit's pair table and ZBL switching in numpy: energies and their derivatives.

Pair energy (DeePMD-kit's ``PairTabAtomicModel``, PyTorch backend): with
:math:`x = (r - r_{\min})\cdot(1/h)`, interval :math:`k = \operatorname{trunc}(x)` clipped to
:math:`[0, n-1]`, :math:`u = x - \operatorname{trunc}(x)`,

.. math:: E(r) = ((a_3 u + a_2) u + a_1) u + a_0, \qquad E'(r) = (3 a_3 u^2 + 2 a_2 u + a_1) / h,

and :math:`E = 0` for :math:`r \ge r_c` or :math:`r \ge r_{\min} + n h` (past the table).  DeePMD-kit
refuses :math:`r < r_{\min}` (``coord go beyond table lower boundary``); so do we (:class:`InputError`).

ZBL weight (:mod:`dpcompress.models.dp_zbl`): :math:`w(\sigma)` of the softmin distance and its
gradient :math:`\partial w / \partial r_k = w'(\sigma)\,\frac{e_k}{S}\,(1 + (\sigma - r_k)/\alpha)`,
:math:`e_k = e^{-r_k/\alpha}`, :math:`S = \sum_k e_k` (no gradient through :math:`S` when the
:math:`10^{-20}` floor applies, as in DeePMD-kit).
"""

import numpy as np

from ...core.errors import InputError

#: DeePMD-kit's floor on the softmin denominator
SOFTMIN_FLOOR = 1e-20


def pair_energy(table, ti, tj, r):
    """Pair energies :math:`E_{t_i t_j}(r)` and :math:`dE/dr` (arrays of one shape).

    Raises
    ------
    InputError
        A distance below the table's first grid point (DeePMD-kit refuses it too).
    """
    r = np.asarray(r, dtype=np.float64)
    if r.size and np.min(r) < table.rmin:
        raise InputError(f"a pair distance {float(np.min(r)):.6g} Å is below the pair table's first point "
                         f"{table.rmin:.6g} Å (DeePMD-kit refuses it: 'coord go beyond table lower boundary')")
    x = (r - table.rmin) * (1.0 / table.hh)
    k = np.trunc(x)
    u = x - k
    idx = np.clip(k, 0, table.nspline - 1).astype(np.int64)
    c = table.coef[ti, tj, idx]  # (..., 4)
    a3, a2, a1, a0 = c[..., 0], c[..., 1], c[..., 2], c[..., 3]
    e = ((a3 * u + a2) * u + a1) * u + a0
    de = (3.0 * a3 * u * u + 2.0 * a2 * u + a1) * (1.0 / table.hh)
    off = (r >= table.rcut) | (r >= table.rmin + table.nspline * table.hh)
    return np.where(off, 0.0, e), np.where(off, 0.0, de)


def switch_weight(sigma, rmin, rmax):
    r"""DeePMD-kit's ZBL weight :math:`w(\sigma)` and :math:`dw/d\sigma` (0 where :math:`\sigma = 0`)."""
    u = (sigma - rmin) / (rmax - rmin)
    mid = (sigma >= rmin) & (sigma < rmax)
    w = np.where(sigma < rmin, 1.0, np.where(mid, -6 * u ** 5 + 15 * u ** 4 - 10 * u ** 3 + 1, 0.0))
    dw = np.where(mid, -30.0 * u * u * (u - 1.0) ** 2 / (rmax - rmin), 0.0)
    zero = sigma == 0
    return np.where(zero, 0.0, w), np.where(zero, 0.0, dw)


def softmin_weight(r, real, rmin, rmax, alpha):
    r"""Per center: the ZBL weight :math:`w_i` and :math:`\partial w_i/\partial r_{ij}` per slot.

    Parameters
    ----------
    r : ndarray (ncenters, nslots)
        Pair distances (any value in padding slots).
    real : ndarray of bool (ncenters, nslots)
        Real neighbors.
    """
    e = np.where(real, np.exp(-np.where(real, r, 0.0) / alpha), 0.0)
    num = np.sum(np.where(real, r * e, 0.0), axis=1)
    den = np.sum(e, axis=1)
    floored = den < SOFTMIN_FLOOR
    sigma = num / np.maximum(den, SOFTMIN_FLOOR)
    w, dw = switch_weight(sigma, rmin, rmax)
    # d sigma / d r_k = e_k (1 - r_k/alpha) / S + num e_k / (alpha S^2) = (e_k / S)(1 + (sigma - r_k)/alpha)
    dsig = np.where(floored[:, None], e * (1.0 - r / alpha) / SOFTMIN_FLOOR,
                    e / np.maximum(den, SOFTMIN_FLOOR)[:, None] * (1.0 + (sigma[:, None] - r) / alpha))
    return w, dw[:, None] * np.where(real, dsig, 0.0)
