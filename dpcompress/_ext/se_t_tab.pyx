"""Fused se_e3 (se_t) kernels on tables: thin wrapper over ``src_c/dpc_se_t_tab.c``.

Numpy twins: :mod:`dpcompress.reference.se_t_tab`.  The caller
(:mod:`dpcompress.descriptors.se_e3`) validates every array; this module
checks shapes and dtypes once more (cheap) because a wrong size here would be
an out-of-bounds write.  Forces and virials from the pair gradients:
:func:`dpcompress._ext.se_a_tab.scatter_pair_gradients`.
"""

import numpy as np

from ..core.errors import status_error

from libc.stdint cimport int64_t


cdef extern from "dpc_se_t_tab.h":
    ctypedef struct dpc_se_t_tab_args:
        int64_t natoms, nnei, ntypes, nblocks, ntables, n_channels
        int ncoef
        double rcut, rcut_smth, protection
        const int64_t *center_types
        const double *vectors
        const int64_t *counts
        const int64_t *sel_offsets
        const double *avg
        const double *std
        const signed char *block_mode
        const int64_t *table_of
        const double *tab_real
        const int64_t *tab_count
        const int64_t *tab_offset
        const double *coef
        void *thread_scratch
        const double *gate
        int64_t n_gate_types
        const int64_t *neighbor_type
        int gate_unswitched

    int dpc_se_t_tab_forward(const dpc_se_t_tab_args *a, int n_threads, double *D,
                             int64_t *beyond_fine, int64_t *beyond_table) nogil
    int dpc_se_t_tab_backward(const dpc_se_t_tab_args *a, int n_threads, const double *dD, double *pair_grad) nogil


from .table_arrays import check_array as _check, table_arrays


cdef class PackedSeTTables:
    """The tables and block settings of a compressed se_e3 descriptor, as flat arrays.

    Built once per model by :func:`dpcompress.descriptors.se_e3.pack`.
    ``table_of[a, b]`` is the table of the neighbor-type block pair (a, b), a <= b, or -1.
    Gated mode (se_e3_tebd, :func:`dpcompress.descriptors.se_e3_tebd.pack`): ``gate`` is the
    type-pair table ``tt`` [(ntypes+1)**2, M]; ``gate_unswitched`` drops sw(r) from the gate.
    """
    cdef public object sel_offsets, avg, std, block_mode, table_of, tab_real, tab_count, tab_offset, coef, gate
    cdef public int64_t ntypes, nblocks, ntables, n_channels, nnei
    cdef public int ncoef
    cdef public bint gate_unswitched
    cdef public double rcut, rcut_smth, protection

    def __init__(self, sel_offsets, avg, std, block_mode, table_of, tab_real, tab_count, tab_offset, coef,
                 int ncoef, int64_t n_channels, double rcut, double rcut_smth, double protection, gate=None,
                 bint gate_unswitched=False):
        t_rows = np.asarray(sel_offsets).shape[0] - 1  # table_of is (nblocks, nblocks)
        t = table_arrays(sel_offsets, avg, std, block_mode, table_of, tab_real, tab_count, tab_offset, coef,
                         ncoef, n_channels, table_of_rows=t_rows)
        self.sel_offsets, self.avg, self.std, self.block_mode = t.sel_offsets, t.avg, t.std, t.block_mode
        self.table_of, self.tab_real, self.tab_count, self.tab_offset = t.table_of, t.tab_real, t.tab_count, t.tab_offset
        self.coef, self.nblocks, self.nnei, self.ntypes, self.ntables = t.coef, t.nblocks, t.nnei, t.ntypes, t.ntables
        self.ncoef, self.n_channels = ncoef, n_channels
        self.rcut, self.rcut_smth, self.protection = rcut, rcut_smth, protection
        nb = self.nblocks
        if np.any(self.table_of[np.tril_indices(nb, -1)] != -1):
            raise ValueError("table_of must be -1 below the diagonal (block pairs a <= b only)")
        sel = np.diff(self.sel_offsets)
        if np.any(sel < 0) or np.any((self.table_of >= 0) & ((sel[:, None] == 0) | (sel[None, :] == 0))):
            raise ValueError("a table is attached to a block without slots")
        self.gate, self.gate_unswitched = None, gate_unswitched
        if gate is not None:
            nt1 = self.ntypes + 1
            self.gate = np.ascontiguousarray(gate, dtype=np.float64)
            _check(self.gate, (nt1 * nt1, n_channels), np.float64, "gate")
            if self.nblocks != 1:
                raise ValueError("the gated mode takes one mixed-type block")
            if not np.all(np.isfinite(self.gate)):
                raise ValueError("gate holds NaN or inf")
            if np.any(self.avg[:, :, 1:] != 0):
                raise ValueError("the gated mode needs a zero angular avg (no padding rows)")


cdef void _fill(dpc_se_t_tab_args *a, PackedSeTTables p, const int64_t[::1] types, const double[:, :, ::1] vectors,
                const int64_t[:, ::1] counts,
                const int64_t[::1] sel_offsets, const double[:, :, ::1] avg, const double[:, :, ::1] std,
                const signed char[:, ::1] mode, const int64_t[:, ::1] table_of, const double[:, ::1] tab_real,
                const int64_t[:, ::1] tab_count, const int64_t[::1] tab_offset, const double[::1] coef):
    a.natoms = types.shape[0]
    a.nnei = p.nnei
    a.ntypes = p.ntypes
    a.nblocks = p.nblocks
    a.ntables = p.ntables
    a.n_channels = p.n_channels
    a.ncoef = p.ncoef
    a.rcut, a.rcut_smth, a.protection = p.rcut, p.rcut_smth, p.protection
    a.center_types = &types[0]
    a.vectors = &vectors[0, 0, 0]
    a.counts = &counts[0, 0]
    a.sel_offsets = &sel_offsets[0]
    a.avg = &avg[0, 0, 0]
    a.std = &std[0, 0, 0]
    a.block_mode = &mode[0, 0]
    a.table_of = &table_of[0, 0]
    a.tab_real = &tab_real[0, 0]
    a.tab_count = &tab_count[0, 0]
    a.tab_offset = &tab_offset[0]
    a.coef = &coef[0]
    a.thread_scratch = NULL
    a.gate = NULL
    a.n_gate_types = 0
    a.neighbor_type = NULL
    a.gate_unswitched = 0


cdef void _fill_gate(dpc_se_t_tab_args *a, PackedSeTTables p, const double[:, ::1] gate, const int64_t[:, ::1] ntype):
    a.gate = &gate[0, 0]
    a.n_gate_types = p.ntypes + 1
    a.neighbor_type = &ntype[0, 0]
    a.gate_unswitched = 1 if p.gate_unswitched else 0


def _validate(PackedSeTTables p, center_types, vectors, counts, neighbor_type=None):
    n = center_types.shape[0]
    if (p.gate is None) != (neighbor_type is None):
        raise ValueError("neighbor_type is needed in the gated mode, and only there")
    if neighbor_type is not None:
        _check(neighbor_type, (n, p.nnei), np.int64, "neighbor_type")
        real = np.arange(p.nnei)[None, :] < np.asarray(counts)[:, :1]
        if np.any(real & ((neighbor_type < -1) | (neighbor_type >= p.ntypes))):
            raise ValueError("neighbor_type out of range")
    _check(center_types, (n,), np.int64, "center_types")
    _check(vectors, (n, p.nnei, 3), np.float64, "vectors")
    _check(counts, (n, p.nblocks), np.int64, "counts")
    if n == 0:
        raise ValueError("no atoms")
    if center_types.min() < 0 or center_types.max() >= p.ntypes:
        raise ValueError("center type out of range")
    sel = np.diff(p.sel_offsets)
    if np.any(counts < 0) or np.any(counts > sel[None, :]):
        raise ValueError("neighbor counts exceed sel")


def _raise(int status, name):
    raise status_error(status, f"{name} failed with status {status}", RuntimeError)


def se_t_tab_forward(PackedSeTTables p, center_types, vectors, counts, int n_threads=1, bint check=False,
                     neighbor_type=None):
    """D[m] = sum_{a<=b} 1/(sel_a sel_b) sum_jk e_jk g_m(e_jk) per atom, shape (natoms, M); plus out-of-table counts when ``check``.

    Gated mode: ``neighbor_type`` (natoms, nnei) int64, each real slot's type."""
    _validate(p, center_types, vectors, counts, neighbor_type)
    cdef int64_t n = center_types.shape[0]
    D = np.empty((n, p.n_channels), dtype=np.float64)
    cdef double[:, ::1] Dv = D
    beyond = np.zeros((2, n), dtype=np.int64)
    cdef int64_t[:, ::1] bv = beyond
    cdef dpc_se_t_tab_args a
    _fill(&a, p, center_types, vectors, counts, p.sel_offsets, p.avg, p.std, p.block_mode, p.table_of, p.tab_real,
          p.tab_count, p.tab_offset, p.coef)
    if neighbor_type is not None:
        _fill_gate(&a, p, p.gate, neighbor_type)
    cdef int status
    with nogil:
        status = dpc_se_t_tab_forward(&a, n_threads, &Dv[0, 0], &bv[0, 0] if check else NULL, &bv[1, 0] if check else NULL)
    if status != 0:
        _raise(status, "dpc_se_t_tab_forward")
    return (D, beyond) if check else D


def se_t_tab_backward(PackedSeTTables p, center_types, vectors, counts, dD, int n_threads=1, neighbor_type=None):
    """dE/dr_ij of every slot, shape (natoms, nnei, 3), from dD = dE/dD (natoms, M)."""
    _validate(p, center_types, vectors, counts, neighbor_type)
    cdef int64_t n = center_types.shape[0]
    _check(dD, (n, p.n_channels), np.float64, "dD")
    grad = np.empty((n, p.nnei, 3), dtype=np.float64)
    cdef double[:, :, ::1] gv = grad
    cdef const double[:, ::1] dv = dD
    cdef dpc_se_t_tab_args a
    _fill(&a, p, center_types, vectors, counts, p.sel_offsets, p.avg, p.std, p.block_mode, p.table_of, p.tab_real,
          p.tab_count, p.tab_offset, p.coef)
    if neighbor_type is not None:
        _fill_gate(&a, p, p.gate, neighbor_type)
    cdef int status
    with nogil:
        status = dpc_se_t_tab_backward(&a, n_threads, &dv[0, 0], &gv[0, 0, 0])
    if status != 0:
        _raise(status, "dpc_se_t_tab_backward")
    return grad


def tables_from_view(v):
    """:class:`PackedSeTTables` of an se_e3 part's kernel view (``PackedPart.kernel_view()``)."""
    return PackedSeTTables(v.sel_offsets, v.avg, v.std, v.block_mode, v.table_of, v.tab_real, v.tab_count, v.tab_offset,
                           v.coef, v.ncoef, v.n_channels, v.rcut, v.rcut_smth, v.protection, gate=v.gate,
                           gate_unswitched=v.gate_pad is not None)
