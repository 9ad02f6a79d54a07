"""Neighbor search: thin wrapper over ``src_c/dpc_neighbors.c`` (candidates with a cell list) and
``src_c/dpc_rows.c`` (the per-type, nearest-first rows).

The callers (:mod:`dpcompress.neighbors`) validate the inputs; the C side still range-checks what
it indexes with, so a bad call raises instead of reading out of bounds.
"""

import numpy as np

from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc

from ..core.errors import STATUS_COINCIDENT, InputError, status_error
from .model_api cimport dpc_frame, frame_init


cdef extern from "dpc_neighbors.h":
    ctypedef struct dpc_cells:
        pass
    int dpc_cell_candidates(int64_t natoms, int64_t ncenter, const double *frac, const double *wrapped,
                            const double *cell, const int64_t *nbins, const int64_t *reach, double search,
                            int n_threads, dpc_cells **out) nogil
    int64_t dpc_cells_nimage(const dpc_cells *c)
    int64_t dpc_cells_ncandidates(const dpc_cells *c)
    void dpc_cells_export(dpc_cells *c, int32_t *image_owner, int32_t *image_lattice, int64_t *offsets,
                          int32_t *index) nogil
    void dpc_cells_free(dpc_cells *c)
    int DPC_MAX_BINS_PER_ATOM
    double DPC_MAX_CELLS_AWAY
    double DPC_MAX_SCREENED_PER_ATOM
    ctypedef struct dpc_bins:
        int64_t nbins[3]
        int64_t reach[3]
        double screened
        int64_t far_atom
    int dpc_cell_list_bins(int64_t natoms, const double *x, const double *cell, double search, double *frac,
                           double *wrapped, int32_t *wrap, dpc_bins *bins) nogil
    double dpc_search_radius(int64_t natoms, const double *x, double rcut) nogil


cdef extern from "dpc_rows.h":
    double DPC_COINCIDE
    ctypedef struct dpc_row_issue:
        int coincident
        int64_t key[5]
        double d2
        int bad_index
        int64_t bad_center, bad_value
    int dpc_neighbor_rows(const dpc_frame *f, double rcut, int64_t nblocks, const int64_t *sel_offsets, int mixed,
                          int n_threads, int64_t *index, double *vectors, int64_t *counts, int64_t *overflow,
                          dpc_row_issue *issue) nogil


#: two atoms closer than this (Å) are refused
COINCIDENCE_TOLERANCE = DPC_COINCIDE
#: bins beyond this many per atom only cost memory and empty-bin visits
MAX_BINS_PER_ATOM = DPC_MAX_BINS_PER_ATOM
#: coordinates further than this many cells from the cell are refused (the lattice shifts are int32)
MAX_CELLS_AWAY = int(DPC_MAX_CELLS_AWAY)
#: the most atoms and periodic images the cell list may screen around one atom
MAX_SCREENED_PER_ATOM = int(DPC_MAX_SCREENED_PER_ATOM)


def search_radius(coords, double rcut):
    """``dpc_search_radius``: rcut + 1e-6 max(rcut, 1) + 1e-12 max |coords| (``coords`` float64 (natoms, 3))."""
    cdef const double[:, ::1] x = np.ascontiguousarray(coords, dtype=np.float64).reshape(-1, 3)
    return dpc_search_radius(x.shape[0], &x[0, 0] if x.shape[0] > 0 else NULL, rcut)


def cell_list_bins(coords, cell, double search):
    """``dpc_cell_list_bins``: the bins of one frame (the rule in ``src_c/dpc_neighbors.h``).

    Returns
    -------
    frac, wrapped : float64 (natoms, 3);  wrap : int32 (natoms, 3) or None (cluster)
    nbins, reach : three ints;  screened : float
    far_atom : int
        An atom more than :data:`MAX_CELLS_AWAY` cells away (nothing else is then valid), or -1.
    """
    cdef const double[:, ::1] x = np.ascontiguousarray(coords, dtype=np.float64).reshape(-1, 3)
    cdef int64_t natoms = x.shape[0]
    if natoms < 1:
        raise ValueError("cell_list_bins needs at least one atom")
    cdef const double[::1] cv
    cdef const double *cell_ptr = NULL
    if cell is not None:
        cv = np.ascontiguousarray(cell, dtype=np.float64).reshape(9)
        cell_ptr = &cv[0]
    frac = np.empty((natoms, 3))
    wrapped = np.empty((natoms, 3))
    wrap = np.zeros((natoms, 3), dtype=np.int32)
    cdef double[:, ::1] fv = frac
    cdef double[:, ::1] wv = wrapped
    cdef int32_t[:, ::1] nv = wrap
    cdef dpc_bins bins
    cdef int status
    with nogil:
        status = dpc_cell_list_bins(natoms, &x[0, 0], cell_ptr, search, &fv[0, 0], &wv[0, 0], &nv[0, 0], &bins)
    if status != 0 and bins.far_atom < 0:
        raise status_error(status, "dpc_cell_list_bins: a singular cell, a non-positive radius or a non-finite "
                                   "coordinate", InputError)
    return (frac, wrapped, None if cell is None else wrap, [bins.nbins[c] for c in range(3)],
            [bins.reach[c] for c in range(3)], bins.screened, bins.far_atom)


def cell_candidates(frac, wrapped, cell, nbins, reach, double search, int64_t n_centers, int n_threads=1):
    """Candidate neighbors of the first ``n_centers`` atoms with a cell list (``dpc_cell_candidates``).

    Parameters
    ----------
    frac, wrapped : float64 (natoms, 3)
        Bin coordinates in [0, 1] and wrapped positions (layout in ``src_c/dpc_neighbors.h``).
    cell : float64 (3, 3) or None
        Rows = cell vectors (periodic), None for a cluster.
    nbins, reach : three ints
    search : float
        Screening radius, a hair above the cutoff.

    Returns
    -------
    image_owner : int32 (nimage,);  image_lattice : int32 (nimage, 3)
    offsets : int64 (n_centers + 1,);  index : int32 (offsets[-1],)
    """
    cdef const double[:, ::1] fr = np.ascontiguousarray(frac, dtype=np.float64).reshape(-1, 3)
    cdef const double[:, ::1] wp = np.ascontiguousarray(wrapped, dtype=np.float64).reshape(-1, 3)
    cdef int64_t natoms = fr.shape[0]
    if wp.shape[0] != natoms or not 0 <= n_centers <= natoms:
        raise ValueError("frac and wrapped must describe the same atoms, n_centers at most their number")
    cdef const int64_t[::1] nb = np.ascontiguousarray(nbins, dtype=np.int64).reshape(3)
    cdef const int64_t[::1] rc = np.ascontiguousarray(reach, dtype=np.int64).reshape(3)
    cdef const double[::1] cv
    cdef const double *cell_ptr = NULL
    if cell is not None:
        cv = np.ascontiguousarray(cell, dtype=np.float64).reshape(9)
        cell_ptr = &cv[0]
    cdef dpc_cells *cells = NULL
    cdef int status
    cdef const double *fptr = &fr[0, 0] if natoms > 0 else NULL
    cdef const double *wptr = &wp[0, 0] if natoms > 0 else NULL
    with nogil:
        status = dpc_cell_candidates(natoms, n_centers, fptr, wptr, cell_ptr, &nb[0], &rc[0], search, n_threads,
                                     &cells)
    if status != 0:
        raise status_error(status, "dpc_cell_candidates: bins, sizes or coordinates rejected "
                                   "(more than 2^31 atoms and images, or a non-finite position)", InputError)
    try:
        nimage = dpc_cells_nimage(cells)
        ncand = dpc_cells_ncandidates(cells)
        owner = np.empty(nimage, dtype=np.int32)
        lattice = np.empty((nimage, 3), dtype=np.int32)
        offsets = np.empty(n_centers + 1, dtype=np.int64)
        index = np.empty(ncand, dtype=np.int32)
        _export(cells, owner, lattice, offsets, index)
    finally:
        dpc_cells_free(cells)
    return owner, lattice, offsets, index


cdef void _export(dpc_cells *cells, int32_t[::1] owner, int32_t[:, ::1] lattice, int64_t[::1] offsets,
                  int32_t[::1] index):
    cdef int32_t dummy32[3]
    cdef int32_t *o = &owner[0] if owner.shape[0] > 0 else dummy32
    cdef int32_t *l = &lattice[0, 0] if lattice.shape[0] > 0 else dummy32
    cdef int32_t *ix = &index[0] if index.shape[0] > 0 else dummy32
    with nogil:
        dpc_cells_export(cells, o, l, &offsets[0], ix)


def neighbor_rows(x, types, int64_t nlocal, offsets, index, double rcut, sel, bint mixed, *, cell=None,
                  lattice=None, image_owner=None, image_lattice=None, int n_threads=1):
    """The per-type, nearest-first rows of the first ``nlocal`` atoms (``dpc_neighbor_rows``).

    Frame arrays as :func:`dpcompress._ext.runtime.compute`; ``sel`` one entry per block.

    Returns
    -------
    index, vectors, counts, overflow
        (nlocal, nnei) int64, (nlocal, nnei, 3), (nlocal, nblocks) int64 twice.
    bad : None or tuple (i, j, S, d2)
        The first coincident pair (lexicographic in i, j, S), if any; the rows are complete.
    """
    cdef const double[:, ::1] xv = np.ascontiguousarray(x, dtype=np.float64)
    cdef const int32_t[::1] tv = np.ascontiguousarray(types, dtype=np.int32)
    cdef int64_t natoms = xv.shape[0]
    cdef const int64_t[::1] ov = np.ascontiguousarray(offsets, dtype=np.int64)
    cdef const int32_t[::1] iv = np.ascontiguousarray(index, dtype=np.int32)
    sel_arr = np.asarray(sel, dtype=np.int64).reshape(-1)
    cdef const int64_t[::1] so = np.concatenate([[0], np.cumsum(sel_arr)]).astype(np.int64)
    cdef int64_t nblocks = sel_arr.shape[0], nnei = so[nblocks]
    if tv.shape[0] != natoms or ov.shape[0] != nlocal + 1 or not 0 <= nlocal <= natoms or nblocks < 1:
        raise ValueError("neighbor_rows: inconsistent frame sizes")
    if iv.shape[0] != ov[nlocal]:
        raise ValueError("neighbor_rows: index does not match offsets")
    cdef const double[:, ::1] cv
    cdef const int32_t[:, ::1] lv
    cdef const int32_t[::1] own
    cdef const int32_t[:, ::1] ilat
    cdef dpc_frame fr
    frame_init(&fr, natoms, nlocal, &xv[0, 0] if natoms > 0 else NULL, &tv[0] if natoms > 0 else NULL)
    if cell is not None:
        cv = np.ascontiguousarray(cell, dtype=np.float64).reshape(3, 3)
        fr.cell = &cv[0, 0]
    if lattice is not None and natoms > 0:
        lv = np.ascontiguousarray(lattice, dtype=np.int32).reshape(natoms, 3)
        fr.lattice = &lv[0, 0]
    if image_owner is not None and len(image_owner) > 0:
        own = np.ascontiguousarray(image_owner, dtype=np.int32)
        ilat = np.ascontiguousarray(image_lattice, dtype=np.int32).reshape(-1, 3)
        if ilat.shape[0] != own.shape[0]:
            raise ValueError("neighbor_rows: image arrays differ in length")
        fr.nimage = own.shape[0]
        fr.image_owner = &own[0]
        fr.image_lattice = &ilat[0, 0]
    index_out = np.empty((nlocal, nnei), dtype=np.int64)
    vectors_out = np.empty((nlocal, nnei, 3), dtype=np.float64)
    counts_out = np.empty((nlocal, nblocks), dtype=np.int64)
    overflow_out = np.empty((nlocal, nblocks), dtype=np.int64)
    if nlocal == 0:
        return index_out, vectors_out, counts_out, overflow_out, None
    cdef int64_t[:, ::1] io = index_out
    cdef double[:, :, ::1] vo = vectors_out
    cdef int64_t[:, ::1] co = counts_out
    cdef int64_t[:, ::1] oo = overflow_out
    cdef int64_t dummy = 0
    cdef double dummyd = 0.0
    cdef const int32_t **rows = <const int32_t **>malloc(sizeof(int32_t *) * nlocal)
    cdef int32_t *counts = <int32_t *>malloc(sizeof(int32_t) * nlocal)
    cdef dpc_row_issue issue
    cdef int status
    cdef int64_t i
    if rows == NULL or counts == NULL:
        free(rows)
        free(counts)
        raise MemoryError("cannot allocate the candidate-row pointers")
    try:
        for i in range(nlocal):
            counts[i] = <int32_t>(ov[i + 1] - ov[i])
            rows[i] = (&iv[0] + ov[i]) if iv.shape[0] > 0 else NULL
        fr.numneigh = counts
        fr.firstneigh = rows
        with nogil:
            status = dpc_neighbor_rows(&fr, rcut, nblocks, &so[0], 1 if mixed else 0, n_threads,
                                       &io[0, 0] if nnei > 0 else &dummy, &vo[0, 0, 0] if nnei > 0 else &dummyd,
                                       &co[0, 0], &oo[0, 0], &issue)
    finally:
        free(rows)
        free(counts)
    if status == STATUS_COINCIDENT:
        return index_out, vectors_out, counts_out, overflow_out, (
            int(issue.key[0]), int(issue.key[1]), [int(issue.key[2]), int(issue.key[3]), int(issue.key[4])],
            float(issue.d2))
    if status != 0:
        raise status_error(status, f"dpc_neighbor_rows: candidate {issue.bad_value} of atom {issue.bad_center} "
                                   "is outside the frame", RuntimeError)
    return index_out, vectors_out, counts_out, overflow_out, None
