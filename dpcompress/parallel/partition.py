r"""Work-balanced contiguous split of (system, frame) items over ranks.

The items are every frame of every system, in order: system 0 frames
``0..n_0-1``, then system 1, and so on.  Frame :math:`f` of system :math:`s`
costs :math:`w_s` (its atom count, for a training-set scan).  With
:math:`P_k` the total cost of the items before item :math:`k` and :math:`W`
the cost of all of them, item :math:`k` goes to rank

.. math::

    \Big\lfloor \frac{(2 P_k + w_k)\, \mathrm{size}}{2 W} \Big\rfloor

— the rank whose share :math:`[rW/\mathrm{size}, (r+1)W/\mathrm{size})` holds
the item's midpoint.  That is non-decreasing in :math:`k`, so every rank gets
one contiguous run of items (possibly empty), and each rank's cost is within
one item's cost of :math:`W/\mathrm{size}`.  Integer arithmetic only: the split
is exact and the same on every machine.

Pure Python and numpy; no MPI.
"""

import operator

import numpy as np

__all__ = ["Segment", "item_owners", "split_frames", "rank_segments", "rank_work"]


class Segment(tuple):
    """``(system, start, stop)``: frames ``start..stop-1`` of system index ``system``."""

    __slots__ = ()

    def __new__(cls, system, start, stop):
        return super().__new__(cls, (int(system), int(start), int(stop)))

    system = property(operator.itemgetter(0))
    start = property(operator.itemgetter(1))
    stop = property(operator.itemgetter(2))

    def __repr__(self):
        return f"Segment(system={self[0]}, start={self[1]}, stop={self[2]})"


def _check(nframes, weights, size):
    nframes = [operator.index(n) for n in nframes]
    weights = [operator.index(w) for w in weights]
    size = operator.index(size)
    if len(nframes) != len(weights):
        raise ValueError(f"nframes has {len(nframes)} entries, weights {len(weights)}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if any(n < 0 for n in nframes):
        raise ValueError(f"frame counts must be >= 0, got {nframes}")
    if any(w < 1 for w in weights):
        raise ValueError(f"per-frame weights must be >= 1, got {weights}")
    return nframes, weights, size


def item_owners(nframes, weights, size):
    """Rank of every item (frame), systems concatenated in order.

    Parameters
    ----------
    nframes : sequence of int
        Frames per system.
    weights : sequence of int
        Cost of one frame of each system (>= 1), e.g. its atom count.
    size : int
        Number of ranks.

    Returns
    -------
    ndarray of int64, shape (sum(nframes),)
        Non-decreasing; values in ``[0, size)``.
    """
    nframes, weights, size = _check(nframes, weights, size)
    total = sum(n * w for n, w in zip(nframes, weights))
    out = np.empty(sum(nframes), dtype=np.int64)
    before, k = 0, 0
    for n, w in zip(nframes, weights):
        if n:
            # Python ints: no overflow whatever the data size
            f = np.arange(n, dtype=object)
            out[k : k + n] = ((2 * (before + f * w) + w) * size) // (2 * total)
        before += n * w
        k += n
    return out


def split_frames(nframes, weights, size):
    """Every rank's frames as contiguous segments.

    Returns
    -------
    list of list of Segment
        ``result[r]`` lists the ``(system, start, stop)`` runs of rank ``r``, in
        item order; empty when the rank gets nothing (fewer items than ranks).
    """
    nframes, weights, size = _check(nframes, weights, size)
    out = [[] for _ in range(size)]
    total = sum(n * w for n, w in zip(nframes, weights))
    before = 0
    for s, (n, w) in enumerate(zip(nframes, weights)):
        if n == 0:
            continue
        first = ((2 * before + w) * size) // (2 * total)
        last = ((2 * (before + (n - 1) * w) + w) * size) // (2 * total)
        start = 0
        for r in range(first, last + 1):
            # frames f of this system with owner <= r: (2(before + f w) + w) size < 2 (r+1) total
            # <=> f < (2 (r+1) total / size - w - 2 before) / (2 w); the largest such f, plus one
            num = 2 * (r + 1) * total - (w + 2 * before) * size
            stop = min(n, max(0, -(-num // (2 * w * size)))) if r < last else n
            if stop > start:
                out[r].append(Segment(s, start, stop))
                start = stop
        before += n * w
    return out


def rank_segments(nframes, weights, rank, size):
    """Segments of one rank (see :func:`split_frames`)."""
    return split_frames(nframes, weights, size)[rank]


def rank_work(segments, weights):
    """Total cost of a list of segments."""
    return sum((stop - start) * weights[s] for s, start, stop in segments)
