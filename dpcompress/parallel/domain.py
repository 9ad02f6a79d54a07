r"""Spatial domain decomposition of one frame over MPI ranks: who owns which atom.

Every rank holds the whole frame (the :meth:`Potential.eval` contract) and owns the atoms whose
wrapped fractional coordinates fall in its block of a ``px × py × pz`` grid of the cell (of the
bounding box when non-periodic).  The grid splits the longest directions most, so the domains
are as cube-like as the rank count allows.
"""

import numpy as np


def rank_grid(size, lengths):
    """Factor ``size`` into (px, py, pz), splitting the longest directions most.

    Among all factorizations pick the one with the most cube-like domains (smallest max/min
    ratio of ``lengths[k] / p[k]``); ties go to the first found.
    """
    best, best_score = (size, 1, 1), None
    for px in range(1, size + 1):
        if size % px:
            continue
        for py in range(1, size // px + 1):
            if (size // px) % py:
                continue
            pz = size // px // py
            d = np.asarray(lengths, dtype=float) / np.array([px, py, pz])
            score = d.max() / max(d.min(), 1e-300)
            if best_score is None or score < best_score - 1e-12:
                best, best_score = (px, py, pz), score
    return best


def owners(coords, cell, size):
    """The rank owning each atom, int64 (natoms,).

    Parameters
    ----------
    coords : ndarray (natoms, 3)
    cell : ndarray (3, 3) or None
    size : int
        Number of ranks.
    """
    if cell is not None:
        inv = np.linalg.inv(cell)
        frac = coords @ inv
        frac -= np.floor(frac)  # wrapped into [0, 1)
        lengths = 1.0 / np.linalg.norm(inv.T, axis=1)  # plane spacings
    else:
        lo = coords.min(axis=0) - 1e-9
        span = np.maximum(coords.max(axis=0) - lo, 1e-6) * (1 + 1e-9)
        frac = (coords - lo) / span
        lengths = span
    grid = np.array(rank_grid(size, lengths))
    cellno = np.minimum((frac * grid).astype(np.int64), grid - 1)
    cellno = np.maximum(cellno, 0)
    return np.ravel_multi_index(tuple(cellno.T), tuple(grid)).astype(np.int64)
