r"""Twin of the cell-list neighbor kernel: an exhaustive (brute-force) search.

:func:`brute_force_neighbor_list` builds the whole neighbor list by looping
over every atom pair and every lattice image that can be within reach; it is
:math:`O(N^2 \cdot n_\text{images})` and exists only to check
:func:`dpcompress.neighbors.build_neighbor_list` in the tests;
:func:`cell_list_neighbors` is the same search with the compiled kernel's
arguments and outputs (``src_c/dpc_neighbors.c``, bit-identical).

Both follow the definitions of :mod:`dpcompress.neighbors.neighbor_list`:

* pair vector :math:`\mathbf r_{ij} = (\mathbf r_j - \mathbf r_i) + \mathbf s`,
  with the lattice shift :math:`\mathbf s = (S_0 \mathbf a_0 + S_1 \mathbf a_1) + S_2 \mathbf a_2`
  (integer :math:`S`, cell rows :math:`\mathbf a_k`), evaluated in exactly this order;
* squared distance :math:`d^2 = (x^2 + y^2) + z^2`; a pair is a neighbor when
  :math:`d^2 < r_c^2` and it is not the atom itself (:math:`j = i, S = 0`);
* inside a block, neighbors are ordered by :math:`(d^2, j, x, y, z)` ascending.
"""

import itertools

import numpy as np


def _squared_norm(D):
    # The C kernel's evaluation order: (x*x + y*y) + z*z.
    return (D[:, 0] * D[:, 0] + D[:, 1] * D[:, 1]) + D[:, 2] * D[:, 2]


def _image_range(cell, rcut):
    """Images needed along each cell vector for positions wrapped into the cell.

    The distance between the two lattice planes spanned by ``a_i, a_j`` is
    ``h_k = V / |a_i x a_j|``; a vector whose fractional coordinate k is ``f``
    is at least ``|f| h_k`` long.  Wrapped positions differ by less than one
    cell in every fractional coordinate, hence ``n_k = ceil(rcut / h_k) + 1``.
    """
    volume = abs(np.linalg.det(cell))
    n = []
    for k in range(3):
        spacing = volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))
        n.append(int(np.ceil(rcut / spacing)) + 1)
    return n


def brute_force_neighbor_list(coords, cell, atom_types, rcut, sel, mixed_types=False):
    """Neighbor list by exhaustive search over atoms and lattice images (tests only).

    Same contract as :func:`dpcompress.neighbors.build_neighbor_list` but no
    input validation and no cell list: for every centre atom it forms the pair
    vector to every atom in every image of the range given by the plane
    spacings, keeps those with :math:`d^2 < r_c^2`, and orders them per block.

    Unwrapped coordinates are handled by wrapping ``r = w + n . cell`` with
    integer ``n = floor(frac(r))``; an image ``T`` of the wrapped positions is
    the shift ``S = T + n_i - n_j`` of the original ones, and the pair vector is
    then evaluated from the original coordinates, as the fast path does.

    Parameters
    ----------
    coords : array_like, shape (natoms, 3)
    cell : array_like, shape (3, 3), or None
        Rows are the cell vectors; None for an isolated cluster.
    atom_types : array_like of int, shape (natoms,)
    rcut : float
    sel : sequence of int
    mixed_types : bool

    Returns
    -------
    NeighborList
    """
    return _exhaustive_search(coords, cell, atom_types, rcut, sel, mixed_types)[0]


def cell_list_neighbors(coords, cell, frac, wrapped, wrap, nbins, reach, rcut, search, coincide, atom_types,
                        sel, mixed_types=False, n_threads=1, n_centers=None):
    """Twin of the compiled ``dpcompress._ext.neighbors.cell_list_neighbors``.

    The binning arguments (``frac, wrapped, wrap, nbins, reach, search``) only steer the
    compiled search; the result is that of the exhaustive search, so they are
    ignored here.  Returns ``(index, vectors, counts, overflow, bad)`` with
    ``bad = (i, j, S, d2)`` the lexicographically first pair closer than
    ``coincide``, or None; rows (and coincidences) for the first ``n_centers`` atoms only.
    """
    nl, bad = _exhaustive_search(coords, cell, atom_types, rcut, sel, mixed_types, coincide, n_centers)
    return nl.index, nl.vectors, nl.counts, nl.overflow, bad


def _exhaustive_search(coords, cell, atom_types, rcut, sel, mixed_types, coincide=0.0, n_centers=None):
    from ..neighbors.neighbor_list import NeighborList

    coords = np.asarray(coords, dtype=np.float64)
    atom_types = np.asarray(atom_types, dtype=np.int64)
    sel = [int(s) for s in sel]
    natoms, nblocks = len(coords), len(sel)
    ncenter = natoms if n_centers is None else int(n_centers)
    offsets = np.concatenate([[0], np.cumsum(sel)]).astype(np.int64)
    rcut2 = float(rcut) * float(rcut)

    if cell is None:
        cell = np.zeros((3, 3))
        images = np.zeros((1, 3), dtype=np.int64)
        wrap = np.zeros((natoms, 3), dtype=np.int64)
    else:
        cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
        nmax = _image_range(cell, rcut)
        images = np.array(list(itertools.product(*(range(-n, n + 1) for n in nmax))), dtype=np.int64)
        wrap = np.floor(coords @ np.linalg.inv(cell)).astype(np.int64)

    index = np.full((ncenter, offsets[-1]), -1, dtype=np.int64)
    vectors = np.zeros((ncenter, offsets[-1], 3), dtype=np.float64)
    counts = np.zeros((ncenter, nblocks), dtype=np.int64)
    overflow = np.zeros((ncenter, nblocks), dtype=np.int64)
    jj = np.tile(np.arange(natoms), len(images))
    bad = None
    for i in range(ncenter):
        S = (images[:, None, :] + wrap[i] - wrap[None, :, :]).reshape(-1, 3).astype(np.float64)
        shift = (S[:, 0:1] * cell[0] + S[:, 1:2] * cell[1]) + S[:, 2:3] * cell[2]
        D = (coords[jj] - coords[i]) + shift
        d2 = _squared_norm(D)
        is_self = (jj == i) & np.all(S == 0, axis=1)
        hit = (d2 < rcut2) & ~is_self
        close = np.flatnonzero(hit & (d2 < coincide * coincide))
        if bad is None and len(close):
            first = close[np.lexsort((S[close, 2], S[close, 1], S[close, 0], jj[close]))[0]]
            bad = (i, int(jj[first]), S[first].astype(np.int64).tolist(), float(d2[first]))
        j, D, d2 = jj[hit], D[hit], d2[hit]
        block = np.zeros_like(j) if mixed_types else atom_types[j]
        for b in range(nblocks):
            mine = block == b
            order = np.lexsort((D[mine, 2], D[mine, 1], D[mine, 0], j[mine], d2[mine]))
            kept = order[: sel[b]]
            slots = slice(offsets[b], offsets[b] + len(kept))
            index[i, slots] = j[mine][kept]
            vectors[i, slots] = D[mine][kept]
            counts[i, b] = len(kept)
            overflow[i, b] = len(order) - len(kept)
    return NeighborList(index, vectors, counts, overflow, tuple(sel), float(rcut)), bad
