r"""The pairs of one frame within a cutoff, each once, and their squared lengths.

The scan needs every unordered pair (atom-atom, or atom and periodic image) once, so a half
neighbor list (vesin's) is cheaper than the evaluators' full, per-type lists.  The squared
distances are then formed exactly as :func:`dpcompress.neighbors.build_neighbor_list` forms
them, so the scan reports the distances the evaluation kernels see, to the last bit.
"""

import numpy as np

from ..core.errors import InputError

#: vesin calculators by (cutoff, threads); a scan uses one or two, created once.
_CALCULATORS = {}

#: Fractional coordinates beyond this are refused: the wrap n = floor(f) would lose the atom's position.
MAX_CELLS_AWAY = 2.0**40


def _calculator(cutoff, n_threads):
    import vesin

    key = (cutoff, n_threads)
    calc = _CALCULATORS.get(key)
    if calc is None:
        _CALCULATORS.clear()
        calc = _CALCULATORS[key] = vesin.NeighborList(cutoff=cutoff, full_list=False, n_threads=n_threads)
    return calc


def half_pairs(coords, cell, cutoff, n_threads=1):
    r"""Pairs ``(i, j, S)`` within ``cutoff``, each unordered pair (or atom-image pair) once.

    Periodic positions are wrapped into the cell for vesin,
    :math:`\mathbf r = \mathbf w + \mathbf n A` with :math:`\mathbf n = \lfloor \mathbf r A^{-1} \rfloor`
    (rows of :math:`A` = cell vectors), and vesin's shifts translated back to the original
    coordinates, :math:`\mathbf S = \mathbf S_w + \mathbf n_i - \mathbf n_j`, so that
    :math:`\mathbf r_j - \mathbf r_i + \mathbf S A = \mathbf w_j - \mathbf w_i + \mathbf S_w A`.
    A cluster (``cell`` None) is put in a box wider than its extent plus :math:`2 r_c`, so no
    image is within the cutoff.

    Parameters
    ----------
    coords : ndarray of float64, shape (natoms, 3)
    cell : ndarray of float64, shape (3, 3), or None
    cutoff : float
    n_threads : int

    Returns
    -------
    i, j : ndarray of int64, shape (npairs,)
    S : ndarray of int, shape (npairs, 3)
        Lattice shift of atom ``j``.

    Raises
    ------
    InputError
        An atom more than 2^40 cells away from the cell.
    """
    calc = _calculator(cutoff, n_threads)
    if cell is None:
        points = coords - coords.min(axis=0)
        box = np.diag(points.max(axis=0) + 2.0 * cutoff + 1.0)
        i, j, S = calc.compute(points, box, True, "ijS")
        inside = ~np.any(S != 0, axis=1)  # all True by construction; kept as a guard
        return i[inside].view(np.int64), j[inside].view(np.int64), S[inside]
    frac = coords @ np.linalg.inv(cell)
    if np.abs(frac).max() > MAX_CELLS_AWAY:
        k = int(np.argmax(np.abs(frac).max(axis=1)))
        raise InputError(f"coords of atom {k} lie more than 2^40 cells away from the cell")
    n = np.floor(frac)
    i, j, S = calc.compute(coords - n @ cell, cell, True, "ijS")
    i, j = i.view(np.int64), j.view(np.int64)
    if n.any():
        n = n.astype(np.int64)
        S = S.astype(np.int64)
        for c in range(3):
            S[:, c] += np.take(n[:, c], i) - np.take(n[:, c], j)
    return i, j, S


def squared_distances(coords, cell, i, j, S):
    r"""Squared pair lengths, evaluated in a fixed order.

    :math:`\mathbf r_{ij} = (\mathbf r_j - \mathbf r_i) + ((S_0 \mathbf a_0 + S_1 \mathbf a_1) + S_2 \mathbf a_2)`
    and :math:`d^2 = (x^2 + y^2) + z^2`, one Cartesian component at a time: the order of the
    neighbor-list kernels (a matrix product ``S @ cell`` may sum in another order, or fuse).
    The reversed pair gives the same :math:`d^2` bit for bit.

    Parameters
    ----------
    coords : ndarray of float64, shape (natoms, 3)
    cell : ndarray of float64, shape (3, 3)
        Zeros for a cluster.
    i, j : ndarray of int64, shape (npairs,)
    S : ndarray of int, shape (npairs, 3)

    Returns
    -------
    ndarray of float64, shape (npairs,)
    """
    S0, S1, S2 = np.ascontiguousarray(S.T, dtype=np.float64)
    d2 = None
    for c in range(3):
        column = coords[:, c]
        shift = (S0 * cell[0, c] + S1 * cell[1, c]) + S2 * cell[2, c]
        x = (np.take(column, j) - np.take(column, i)) + shift
        d2 = x * x if d2 is None else d2 + x * x
    return d2
