r"""Per-frame statistics of the scan, kept so that ranks merge them exactly.

For each cutoff :math:`r_c^{(q)}` (ascending; the scan's own and those of a hybrid model's
parts) and each pair of center type :math:`c` and neighbor type :math:`n`:

* :math:`d^2_{\min}[c, n]`, only for the largest cutoff (the smallest distance does not depend
  on the cutoff), and :math:`d^2_{\max}[q, c, n]`, the largest :math:`d^2 < r_c^{(q)2}`;
* the neighbor count :math:`N_a[n] = |\{ j : t_j = n,\ d^2_{aj} < r_c^2 \}|` of each atom
  :math:`a`, kept as its maximum ``cnt_max[q, c, n]`` and its sum ``cnt_sum[q, c, n]`` over the
  atoms of type :math:`c`, and :math:`\max_a \sum_n N_a[n]` as ``tot_max[q, c]``;
* the histograms of those counts, ``hist[q, c, n, k]`` = the number of atoms of type :math:`c`
  with exactly :math:`k` neighbors of type :math:`n`, and ``tot_hist[q, c, k]`` for the totals
  :math:`\sum_n N_a[n]`: integers, summed over frames and ranks, from which any percentile of
  the counts is exact (:func:`percentile_of_histogram`).

Every statistic is a minimum, a maximum or an integer sum (a histogram is a vector of integer
sums, padded with zeros to the longest), so merging the ranks' states in any
order gives the same bits: the JSON file does not depend on the number of ranks.
"""

import numpy as np

from ..core.errors import DataFormatError, InputError
from ..core.inputs import check_cell
from .pairs import half_pairs, squared_distances

#: vesin's cutoff is widened by this fraction, so that a pair at d^2 just below rc^2 (rounded
#: differently there) is never missed; the strict test d^2 < rc^2 is then applied to our d^2.
SEARCH_MARGIN = 1e-6


class Accumulator:
    """Statistics of the frames a rank scanned.

    Parameters
    ----------
    ntypes : int
    cutoffs : sequence of float
        Ascending; the last is the largest.

    Attributes
    ----------
    nframes, natoms : int
        Frames scanned, atoms summed over them.
    ncenters : ndarray of int64, shape (ntypes,)
        Atoms of each type summed over the frames.
    d2min : ndarray of float64, shape (ntypes, ntypes)
        Smallest squared pair distance per (center, neighbor) type (inf: no pair).
    d2max : ndarray of float64, shape (ncutoffs, ntypes, ntypes)
        Largest squared distance within each cutoff (-inf: no pair).
    cnt_max, cnt_sum : ndarray of int64, shape (ncutoffs, ntypes, ntypes)
        Largest and summed per-neighbor-type counts of the atoms of each center type.
    tot_max : ndarray of int64, shape (ncutoffs, ntypes)
        Largest total neighbor count of an atom of each type.
    hist : ndarray of int64, shape (ncutoffs, ntypes, ntypes, K)
        ``hist[q, c, n, k]``: atoms of type ``c`` with ``k`` neighbors of type ``n`` within
        cutoff ``q``; ``K`` grows with the largest count seen.
    tot_hist : ndarray of int64, shape (ncutoffs, ntypes, K)
        The same for the total count over neighbor types.
    """

    def __init__(self, ntypes, cutoffs):
        nt, nq = ntypes, len(cutoffs)
        self.ntypes = nt
        self.cutoffs = tuple(float(c) for c in cutoffs)
        self.nframes = 0
        self.natoms = 0
        self.ncenters = np.zeros(nt, dtype=np.int64)
        self.d2min = np.full((nt, nt), np.inf)
        self.d2max = np.full((nq, nt, nt), -np.inf)
        self.cnt_max = np.zeros((nq, nt, nt), dtype=np.int64)
        self.cnt_sum = np.zeros((nq, nt, nt), dtype=np.int64)
        self.tot_max = np.zeros((nq, nt), dtype=np.int64)
        self.hist = np.zeros((nq, nt, nt, 1), dtype=np.int64)
        self.tot_hist = np.zeros((nq, nt, 1), dtype=np.int64)

    def grow(self, length):
        """Make the histograms at least ``length`` bins long (new bins are zero)."""
        have = self.hist.shape[-1]
        if length > have:
            self.hist = np.concatenate([self.hist, np.zeros(self.hist.shape[:-1] + (length - have,), np.int64)], axis=-1)
        have = self.tot_hist.shape[-1]
        if length > have:
            self.tot_hist = np.concatenate(
                [self.tot_hist, np.zeros(self.tot_hist.shape[:-1] + (length - have,), np.int64)], axis=-1
            )

    def state(self):
        """Plain data (sent to rank 0 by ``gather``)."""
        return dict(vars(self))

    @classmethod
    def merged(cls, states):
        """Combine the states of all ranks (order does not matter: every operation is exact)."""
        first = states[0]
        acc = cls(first["ntypes"], first["cutoffs"])
        for st in states:
            acc.nframes += st["nframes"]
            acc.natoms += st["natoms"]
            acc.ncenters += st["ncenters"]
            acc.d2min = np.minimum(acc.d2min, st["d2min"])
            acc.d2max = np.maximum(acc.d2max, st["d2max"])
            acc.cnt_max = np.maximum(acc.cnt_max, st["cnt_max"])
            acc.cnt_sum += st["cnt_sum"]
            acc.tot_max = np.maximum(acc.tot_max, st["tot_max"])
            acc.grow(max(st["hist"].shape[-1], st["tot_hist"].shape[-1]))
            acc.hist[..., : st["hist"].shape[-1]] += st["hist"]
            acc.tot_hist[..., : st["tot_hist"].shape[-1]] += st["tot_hist"]
        return acc


def scan_frame(acc, coords, cell, types, where="frame", n_threads=1):
    r"""Add one frame to ``acc``.

    Squared distances are those of the neighbor-list kernels
    (:func:`~.pairs.squared_distances`); a pair counts within :math:`r_c` when
    :math:`d^2 < r_c^2`.  Each pair is found once and counted for both atoms; an atom and its
    own periodic image count twice (two images, at :math:`\pm \mathbf S`), as in a full list.

    Parameters
    ----------
    acc : Accumulator
    coords : ndarray of float64, shape (natoms, 3)
    cell : ndarray, shape (3, 3), or None
    types : ndarray of int64, shape (natoms,)
        Global types, in ``[0, acc.ntypes)``.
    where : str
        Named in errors (file and frame).
    n_threads : int
        Threads of the pair search.

    Raises
    ------
    DataFormatError
        A singular or non-finite cell, an atom absurdly far from the cell.
    """
    nt = acc.ntypes
    natoms = coords.shape[0]
    try:
        if cell is not None:
            cell = check_cell(cell)
        rmax = acc.cutoffs[-1]
        i, j, S = half_pairs(coords, cell, rmax + SEARCH_MARGIN * max(rmax, 1.0), n_threads)
    except InputError as exc:  # bad data in a file, not a bad argument: name the frame
        raise DataFormatError(f"{where}: {exc}") from None
    d2 = squared_distances(coords, np.zeros((3, 3)) if cell is None else cell, i, j, S)
    ti = types[i]
    tj = types[j]
    acc.nframes += 1
    acc.natoms += natoms
    ncent = np.bincount(types, minlength=nt)
    acc.ncenters += ncent
    present = np.flatnonzero(ncent)
    for q in range(len(acc.cutoffs) - 1, -1, -1):  # largest first: each cutoff's mask shrinks the arrays
        rc2 = acc.cutoffs[q] * acc.cutoffs[q]
        keep = d2 < rc2
        if not keep.all():
            i, j, d2, ti, tj = i[keep], j[keep], d2[keep], ti[keep], tj[keep]
        if d2.size:
            # a pair (a, b) is a neighbor of a of type t_b and of b of type t_a
            key = np.concatenate([ti * nt + tj, tj * nt + ti])
            both = np.concatenate([d2, d2])
            if q == len(acc.cutoffs) - 1:
                np.minimum.at(acc.d2min.reshape(-1), key, both)
            np.maximum.at(acc.d2max[q].reshape(-1), key, both)
        counts = np.bincount(np.concatenate([i * nt + tj, j * nt + ti]), minlength=natoms * nt).reshape(natoms, nt)
        total = counts.sum(axis=1)
        acc.grow(int(total.max()) + 1 if natoms else 1)
        for c in present:
            rows = counts[types == c]
            np.maximum(acc.cnt_max[q, c], rows.max(axis=0), out=acc.cnt_max[q, c])
            acc.cnt_sum[q, c] += rows.sum(axis=0)
            acc.tot_max[q, c] = max(acc.tot_max[q, c], total[types == c].max())
            K = acc.hist.shape[-1]
            for n in range(nt):
                acc.hist[q, c, n] += np.bincount(rows[:, n], minlength=K)
            acc.tot_hist[q, c] += np.bincount(total[types == c], minlength=K)


def percentile_of_histogram(hist, fraction):
    r"""The nearest-rank percentile of the values a histogram counts, in integer arithmetic.

    The smallest :math:`k` with :math:`\#\{\text{values} \le k\} \ge \lceil p N \rceil`,
    :math:`N` = the number of values, :math:`p` = ``fraction`` (a :class:`fractions.Fraction`,
    so 99.9 % is exactly 999/1000): exact, and the same whatever the number of ranks.

    Parameters
    ----------
    hist : ndarray of int, shape (K,)
        ``hist[k]`` values equal ``k``.
    fraction : fractions.Fraction
        In ``(0, 1]``.

    Returns
    -------
    int or None
        None when the histogram is empty.
    """
    hist = np.asarray(hist, dtype=np.int64)
    total = int(hist.sum())
    if total == 0:
        return None
    need = -((-fraction.numerator * total) // fraction.denominator)  # ceil(p N), exactly
    need = max(need, 1)
    return int(np.searchsorted(np.cumsum(hist), need))
