"""Neighbor lists, a thin wrapper over ``src_c/dpc_neighbors.c``.

The caller (:func:`dpcompress.neighbors.build_neighbor_list`) has validated
everything; the C kernels still range-check indices so that a bad call raises
instead of writing out of bounds.
"""

import numpy as np

from libc.stdint cimport int64_t


cdef extern from "dpc_neighbors.h":
    int dpc_cell_list_neighbors(
        int64_t natoms,
        int64_t ncenter,
        const double *coords,
        const double *cell,
        int periodic,
        const double *frac,
        const double *wrapped,
        const int64_t *wrap,
        const int64_t *nbins,
        const int64_t *reach,
        double rcut,
        double search,
        double coincide,
        const int64_t *atom_types,
        int64_t nblocks,
        const int64_t *sel_offsets,
        int mixed,
        int n_threads,
        int64_t *index,
        double *vectors,
        int64_t *counts,
        int64_t *overflow,
        int64_t *bad_pair,
        double *bad_d2) nogil


_STATUS_MESSAGES = {
    1: (MemoryError, "out of memory in dpc_cell_list_neighbors"),
    2: (ValueError, "dpc_cell_list_neighbors: invalid sizes, bins or sel"),
    3: (IndexError, "dpc_cell_list_neighbors: an atom type is out of range"),
    4: (ValueError, "dpc_cell_list_neighbors: a coordinate is NaN or infinite"),
}


def cell_list_neighbors(coords, cell, frac, wrapped, wrap, nbins, reach, double rcut, double search,
                        double coincide, atom_types, sel, mixed_types=False, int n_threads=1, n_centers=None):
    """Neighbor list of one frame with a cell list (``dpc_cell_list_neighbors``).

    Compiled twin of :func:`dpcompress.reference.neighbors.cell_list_neighbors`
    (the brute-force search; same outputs bit for bit).  Binning contract in
    ``src_c/dpc_neighbors.h``.

    Parameters
    ----------
    coords : ndarray of float64, shape (natoms, 3)
        The caller's positions; pair vectors are formed from them.
    cell : ndarray of float64, shape (3, 3), or None
        Rows = cell vectors; None for a cluster.
    frac : ndarray of float64, shape (natoms, 3)
        Bin coordinates in [0, 1].
    wrapped : ndarray of float64, shape (natoms, 3)
        ``frac . cell`` (periodic) or ``coords`` (cluster), for screening.
    wrap : ndarray of int64, shape (natoms, 3), or None
        ``n_a`` with ``r_a = (frac_a + n_a) . cell`` (periodic only).
    nbins, reach : sequence of 3 int
    rcut, search, coincide : float
        Cutoff, screening radius (>= rcut), coincidence distance.
    atom_types : ndarray of int64, shape (natoms,)
    sel : sequence of int
    mixed_types : bool
    n_threads : int
    n_centers : int or None
        Rows only for atoms ``0 .. n_centers - 1`` (None: every atom).

    Returns
    -------
    index, vectors, counts, overflow
        Per center: neighbor atom per slot (-1 on padding), pair vectors (0 on padding),
        kept and dropped neighbors per block (layout in ``src_c/dpc_neighbors.h``).
    bad : None or tuple (i, j, S, d2)
        The first coincident pair (lexicographic in i, j, S), if any.
    """
    cdef int periodic = 0 if cell is None else 1
    cdef const double[:, ::1] xyz = np.ascontiguousarray(coords, dtype=np.float64).reshape(-1, 3)
    cdef const double[::1] cell_v = np.ascontiguousarray(
        np.zeros(9) if cell is None else cell, dtype=np.float64).reshape(9)
    cdef const double[:, ::1] fr = np.ascontiguousarray(frac, dtype=np.float64).reshape(-1, 3)
    cdef const double[:, ::1] wp = np.ascontiguousarray(wrapped, dtype=np.float64).reshape(-1, 3)
    cdef const int64_t[:, ::1] wr = np.ascontiguousarray(
        np.zeros((xyz.shape[0], 3), dtype=np.int64) if wrap is None else wrap, dtype=np.int64).reshape(-1, 3)
    cdef const int64_t[::1] nb = np.ascontiguousarray(nbins, dtype=np.int64).reshape(3)
    cdef const int64_t[::1] rc = np.ascontiguousarray(reach, dtype=np.int64).reshape(3)
    cdef const int64_t[::1] types = np.ascontiguousarray(atom_types, dtype=np.int64)
    sel_arr = np.asarray(sel, dtype=np.int64).reshape(-1)
    cdef const int64_t[::1] offsets = np.concatenate([[0], np.cumsum(sel_arr)]).astype(np.int64)
    cdef int64_t natoms = xyz.shape[0]
    cdef int64_t nblocks = sel_arr.shape[0]
    cdef int64_t nnei = offsets[nblocks]
    cdef int mixed = 1 if mixed_types else 0
    cdef int64_t ncenter = natoms if n_centers is None else n_centers
    cdef int64_t[::1] bad = np.full(5, -1, dtype=np.int64)
    cdef double bad_d2 = 0.0
    cdef int status

    if natoms < 1 or fr.shape[0] != natoms or wp.shape[0] != natoms or wr.shape[0] != natoms or types.shape[0] != natoms:
        raise ValueError("coords, frac, wrap and atom_types must describe the same, non-zero number of atoms")
    if nblocks < 1 or np.any(sel_arr < 0):
        raise ValueError("sel must be a non-empty sequence of non-negative integers")
    if not 0 <= ncenter <= natoms:
        raise ValueError(f"n_centers must lie in [0, {natoms}], got {ncenter}")

    index_arr = np.empty((ncenter, nnei), dtype=np.int64)
    vectors_arr = np.empty((ncenter, nnei, 3), dtype=np.float64)
    counts_arr = np.empty((ncenter, nblocks), dtype=np.int64)
    overflow_arr = np.empty((ncenter, nblocks), dtype=np.int64)
    if ncenter == 0:
        return index_arr, vectors_arr, counts_arr, overflow_arr, None
    cdef int64_t[:, ::1] idx_v = index_arr
    cdef double[:, :, ::1] vec_v = vectors_arr
    cdef int64_t[:, ::1] cnt_v = counts_arr
    cdef int64_t[:, ::1] ovf_v = overflow_arr
    cdef int64_t *idx_ptr = &idx_v[0, 0] if nnei > 0 else NULL
    cdef double *vec_ptr = &vec_v[0, 0, 0] if nnei > 0 else NULL

    with nogil:
        status = dpc_cell_list_neighbors(
            natoms, ncenter, &xyz[0, 0], &cell_v[0], periodic, &fr[0, 0], &wp[0, 0], &wr[0, 0], &nb[0], &rc[0],
            rcut, search, coincide, &types[0], nblocks, &offsets[0], mixed, n_threads,
            idx_ptr, vec_ptr, &cnt_v[0, 0], &ovf_v[0, 0], &bad[0], &bad_d2)
    found = None
    if status == 5:
        found = (int(bad[0]), int(bad[1]), [int(bad[2]), int(bad[3]), int(bad[4])], float(bad_d2))
    elif status != 0:
        exc, msg = _STATUS_MESSAGES.get(status, (RuntimeError, f"dpc_cell_list_neighbors failed with status {status}"))
        raise exc(msg)
    return index_arr, vectors_arr, counts_arr, overflow_arr, found
