"""Remove excluded type pairs from a neighbor list (a model's ``pair_exclude_types``).

DeePMD-kit builds the list with ``sel`` first and then turns excluded entries
into padding (-1).  Here the excluded neighbors are dropped and the remaining
real ones moved to the front of their block, so that "the first ``counts``
slots are real" stays true for every kernel.  The descriptor sums over slots do
not depend on the order of real neighbors, so this equals DeePMD-kit's result.
"""

import dataclasses

import numpy as np


def remove_pairs(nlist, atom_types, pairs):
    """A copy of ``nlist`` without neighbors j of atoms i whose (type_i, type_j) is in ``pairs``.

    Parameters
    ----------
    nlist : NeighborList
    atom_types : ndarray of int, shape (natoms,)
    pairs : set of (int, int)
        Symmetrised excluded type pairs.
    """
    if not pairs:
        return nlist
    index = nlist.index
    real = index >= 0
    jt = np.where(real, atom_types[np.maximum(index, 0)], -1)
    it = atom_types[:, None]
    drop = np.zeros(index.shape, dtype=bool)
    for a, b in pairs:
        drop |= (it == a) & (jt == b)
    drop &= real
    if not drop.any():
        return nlist
    keep = real & ~drop
    new_index = np.full_like(index, -1)
    new_vectors = np.zeros_like(nlist.vectors)
    counts = np.zeros_like(nlist.counts)
    offsets = nlist.offsets
    for b in range(len(nlist.sel)):
        sl = slice(offsets[b], offsets[b + 1])
        k = keep[:, sl]
        # stable order of the kept slots inside the block: rank among the kept ones
        rank = np.cumsum(k, axis=1) - 1
        rows, cols = np.nonzero(k)
        dest = offsets[b] + rank[rows, cols]
        new_index[rows, dest] = index[:, sl][rows, cols]
        new_vectors[rows, dest] = nlist.vectors[:, sl][rows, cols]
        counts[:, b] = k.sum(axis=1)
    return dataclasses.replace(nlist, index=new_index, vectors=new_vectors, counts=counts)
