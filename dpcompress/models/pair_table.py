r"""DeePMD-kit's pair table (the ``pairtab`` atomic model) as plain data, and its reader.

A pair table gives a pair energy :math:`E_{ab}(r)` per unordered type pair as a cubic spline on
the uniform grid :math:`r_k = r_{\min} + k h`, :math:`k = 0..n` (``nspline`` = n intervals).
DeePMD-kit stores, per ordered type pair and interval ``k``, the coefficients
:math:`(a_3, a_2, a_1, a_0)` of :math:`E(u) = ((a_3 u + a_2) u + a_1) u + a_0` in the local
variable :math:`u = (r - r_k)/h \in [0, 1)` (a clamped cubic spline through the table's values,
``tab_data``).  Evaluation (:mod:`dpcompress.evaluators.exact.pair_table`) follows DeePMD-kit's
rules outside the grid, which are stated there.
"""

from dataclasses import dataclass

import numpy as np

from ..core.errors import ModelFormatError, UnsupportedModelError
from ..descriptors.fields import MAX_SEL, MAX_TYPES, Node

#: bound on the number of spline intervals read from a file (a real table has 10^2-10^4)
MAX_NSPLINE = 1 << 20


@dataclass(frozen=True)
class PairTable:
    r"""A tabulated pair energy (DeePMD-kit's ``PairTab``).

    Attributes
    ----------
    rmin, hh : float
        First grid point and grid step (Å).
    nspline : int
        Number of spline intervals; the grid ends at :math:`r_{\min} + n h`.
    rcut : float
        Pairs at :math:`r \ge r_c` have zero energy.
    sel : int
        Neighbor slots of the pair table's (mixed-type) neighbor list.
    coef : ndarray, shape (ntypes, ntypes, nspline, 4)
        :math:`(a_3, a_2, a_1, a_0)` per ordered type pair and interval (symmetric in the pair).
    """

    rmin: float
    hh: float
    nspline: int
    rcut: float
    sel: int
    coef: np.ndarray

    @property
    def ntypes(self):
        return self.coef.shape[0]


def read_pair_table(node: Node, ntypes: int) -> PairTable:
    """Read a serialised ``pairtab`` atomic model (its ``tab`` holds the table's spline coefficients).

    Raises
    ------
    ModelFormatError
        A missing key, a non-finite number, an inconsistent ``tab_info`` / ``tab_data``.
    UnsupportedModelError
        A table for another number of types than the model's ``type_map``.
    """
    src = node.source
    tab = node.node("tab")
    var = tab.node("@variables")
    info = var.array("tab_info", shape=(4,))
    if not np.all(np.isfinite(info)):
        raise ModelFormatError(f"{src}: '{var.where}.tab_info' has non-finite entries")
    rmin, hh = float(info[0]), float(info[1])
    nspline, nt = int(round(info[2])), int(round(info[3]))
    if not (hh > 0 and 1 <= nspline <= MAX_NSPLINE and 1 <= nt <= MAX_TYPES and rmin >= 0):
        raise ModelFormatError(f"{src}: '{var.where}.tab_info' = {info.tolist()} is not [rmin >= 0, h > 0, "
                               f"1 <= nspline <= {MAX_NSPLINE}, 1 <= ntypes <= {MAX_TYPES}]")
    if nt != ntypes:
        raise UnsupportedModelError(f"{src}: the pair table has {nt} types, the model's type_map {ntypes}")
    data = var.array("tab_data")
    if data.size != nt * nt * nspline * 4:
        raise ModelFormatError(f"{src}: '{var.where}.tab_data' has {data.size} numbers, expected "
                               f"ntypes^2 * nspline * 4 = {nt * nt * nspline * 4}")
    coef = np.ascontiguousarray(data, dtype=np.float64).reshape(nt, nt, nspline, 4)
    if not np.all(np.isfinite(coef)):
        raise ModelFormatError(f"{src}: '{var.where}.tab_data' has non-finite entries")
    rcut = node.number("rcut", positive=True)
    sel = node.raw("sel")
    if isinstance(sel, (list, tuple)):
        sel = sum(int(s) for s in sel)
    if isinstance(sel, bool) or not isinstance(sel, (int, np.integer)) or not 1 <= int(sel) <= MAX_SEL:
        raise ModelFormatError(f"{src}: '{node.where}.sel' should be an integer in [1, {MAX_SEL}], found {sel!r}")
    return PairTable(rmin=rmin, hh=hh, nspline=nspline, rcut=rcut, sel=int(sel), coef=coef)
