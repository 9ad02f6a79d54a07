"""Fused se_e2_a kernels on tables: thin wrapper over ``src_c/dpc_se_a_tab.c``.

The same kernels serve se_e2_r (radial mode, ``n_rows=1``) and se_atten_v2
(gated mode: ``gate`` table plus a per-slot ``gate_index``).

Numpy twins: :mod:`dpcompress.reference.se_a_tab`.  Production runs the same C
through the model runtime (:mod:`dpcompress._ext.runtime`); this wrapper lets the tests hold each
kernel equal to its twin.  It checks shapes and dtypes because a wrong size here would be an
out-of-bounds write.
"""

import numpy as np

from ..core.errors import status_error

from libc.stdint cimport int64_t


cdef extern from "dpc_se_a_tab.h":
    ctypedef struct dpc_se_a_tab_args:
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
        int n_rows
        const double *gate
        const int64_t *gate_index
        int64_t n_gate_rows
        const int64_t *gate_pad

    int dpc_se_a_tab_forward(const dpc_se_a_tab_args *a, int n_threads, double *T,
                             int64_t *beyond_fine, int64_t *beyond_table) nogil
    int dpc_se_a_tab_backward(const dpc_se_a_tab_args *a, int n_threads, const double *dT, double *pair_grad) nogil
    int dpc_scatter_pair_gradients(int64_t ncenter, int64_t natoms, int64_t nnei, const int64_t *index,
                                   const double *vectors, const double *pair_grad, double *force,
                                   double *atom_virial) nogil
    int dpc_descriptor_from_T(int64_t natoms, int64_t M, int64_t A, const double *T, double *D, int n_threads) nogil
    int dpc_descriptor_gradient_to_T(int64_t natoms, int64_t M, int64_t A, const double *T, const double *dD,
                                     double *dT, int n_threads) nogil


from .table_arrays import check_array as _check, table_arrays


cdef class PackedTables:
    """The tables and block settings of a compressed se_e2_a descriptor, as flat arrays.

    Built once per model by :func:`dpcompress.descriptors.se_e2_a.pack`
    (and the se_e2_r / se_atten_v2 modules).  ``n_rows`` 1 selects the radial
    mode; a ``gate`` table ``(n_gate_rows, M)`` the gated mode, switched (se_atten_v2: the gate times
    sw(r)) or, with ``gate_pad`` (ntypes,) (the padding slots' gate row per center type), unswitched
    (se_atten v1).
    """
    cdef public object sel_offsets, avg, std, block_mode, table_of, tab_real, tab_count, tab_offset, coef, gate, gate_pad
    cdef public int64_t ntypes, nblocks, ntables, n_channels, nnei, axis_neuron, n_gate_rows
    cdef public int ncoef, n_rows
    cdef public double rcut, rcut_smth, protection

    def __init__(self, sel_offsets, avg, std, block_mode, table_of, tab_real, tab_count, tab_offset, coef,
                 int ncoef, int64_t n_channels, double rcut, double rcut_smth, double protection,
                 int n_rows=4, gate=None, gate_pad=None):
        t = table_arrays(sel_offsets, avg, std, block_mode, table_of, tab_real, tab_count, tab_offset, coef,
                         ncoef, n_channels)
        self.sel_offsets, self.avg, self.std, self.block_mode = t.sel_offsets, t.avg, t.std, t.block_mode
        self.table_of, self.tab_real, self.tab_count, self.tab_offset = t.table_of, t.tab_real, t.tab_count, t.tab_offset
        self.coef, self.nblocks, self.nnei, self.ntypes, self.ntables = t.coef, t.nblocks, t.nnei, t.ntypes, t.ntables
        self.ncoef, self.n_channels = ncoef, n_channels
        self.rcut, self.rcut_smth, self.protection = rcut, rcut_smth, protection
        if n_rows not in (1, 4):
            raise ValueError("n_rows must be 4 or 1 (radial)")
        self.n_rows = n_rows
        self.gate, self.n_gate_rows = None, 0
        if gate is not None:
            if n_rows != 4:
                raise ValueError("the gated mode needs n_rows 4")
            self.gate = np.ascontiguousarray(gate, dtype=np.float64)
            if self.gate.ndim != 2 or self.gate.shape[0] < 1 or self.gate.shape[1] != n_channels:
                raise ValueError(f"gate: expected (rows, {n_channels}), got {self.gate.shape}")
            if not np.all(np.isfinite(self.gate)):
                raise ValueError("gate contains NaN or inf")
            self.n_gate_rows = self.gate.shape[0]
        self.gate_pad = None
        if gate_pad is not None:
            if gate is None:
                raise ValueError("gate_pad needs a gate table")
            self.gate_pad = np.ascontiguousarray(gate_pad, dtype=np.int64)
            _check(self.gate_pad, (self.ntypes,), np.int64, "gate_pad")
            if self.gate_pad.min() < 0 or self.gate_pad.max() >= self.n_gate_rows:
                raise ValueError("gate_pad out of range")


cdef void _fill(dpc_se_a_tab_args *a, PackedTables p, const int64_t[::1] types, const double[:, :, ::1] vectors,
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
    a.n_rows = p.n_rows
    a.gate = NULL
    a.gate_index = NULL
    a.n_gate_rows = p.n_gate_rows
    a.gate_pad = NULL


def _validate(PackedTables p, center_types, vectors, counts, gate_index):
    n = center_types.shape[0]
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
    if (gate_index is None) != (p.gate is None):
        raise ValueError("gate_index is needed exactly when the tables carry a gate")
    if gate_index is not None:
        _check(gate_index, (n, p.nnei), np.int64, "gate_index")
        if gate_index.min() < -1 or gate_index.max() >= p.n_gate_rows:
            raise ValueError("gate_index out of range")


cdef void _set_gate(dpc_se_a_tab_args *a, PackedTables p, gate_index):
    cdef const double[:, ::1] gv
    cdef const int64_t[:, ::1] iv
    cdef const int64_t[::1] pv
    if p.gate is not None:
        gv = p.gate
        iv = gate_index
        a.gate = &gv[0, 0]
        a.gate_index = &iv[0, 0]
    if p.gate_pad is not None:
        pv = p.gate_pad
        a.gate_pad = &pv[0]


def se_a_tab_forward(PackedTables p, center_types, vectors, counts, int n_threads=1, bint check=False, gate_index=None):
    """T = (1/N) sum_j Rt_j^T g(x_j) per atom, shape (natoms, n_rows, M); plus out-of-table counts when ``check``.

    ``gate_index`` (natoms, nnei) int64: row of ``p.gate`` per slot, -1 = zeroed (gated mode only).
    """
    _validate(p, center_types, vectors, counts, gate_index)
    cdef int64_t n = center_types.shape[0]
    T = np.empty((n, p.n_rows, p.n_channels), dtype=np.float64)
    cdef double[:, :, ::1] Tv = T
    beyond = np.zeros((2, n), dtype=np.int64)
    cdef int64_t[:, ::1] bv = beyond
    cdef dpc_se_a_tab_args a
    _fill(&a, p, center_types, vectors, counts, p.sel_offsets, p.avg, p.std, p.block_mode, p.table_of, p.tab_real,
          p.tab_count, p.tab_offset, p.coef)
    _set_gate(&a, p, gate_index)
    cdef int status
    with nogil:
        status = dpc_se_a_tab_forward(&a, n_threads, &Tv[0, 0, 0], &bv[0, 0] if check else NULL, &bv[1, 0] if check else NULL)
    if status != 0:
        raise status_error(status, f"dpc_se_a_tab_forward failed with status {status}", RuntimeError)
    return (T, beyond) if check else T


def se_a_tab_backward(PackedTables p, center_types, vectors, counts, dT, int n_threads=1, gate_index=None):
    """dE/dr_ij of every slot, shape (natoms, nnei, 3), from dT = dE/dT (natoms, n_rows, M)."""
    _validate(p, center_types, vectors, counts, gate_index)
    cdef int64_t n = center_types.shape[0]
    _check(dT, (n, p.n_rows, p.n_channels), np.float64, "dT")
    grad = np.empty((n, p.nnei, 3), dtype=np.float64)
    cdef double[:, :, ::1] gv = grad
    cdef const double[:, :, ::1] dv = dT
    cdef dpc_se_a_tab_args a
    _fill(&a, p, center_types, vectors, counts, p.sel_offsets, p.avg, p.std, p.block_mode, p.table_of, p.tab_real,
          p.tab_count, p.tab_offset, p.coef)
    _set_gate(&a, p, gate_index)
    cdef int status
    with nogil:
        status = dpc_se_a_tab_backward(&a, n_threads, &dv[0, 0, 0], &gv[0, 0, 0])
    if status != 0:
        raise status_error(status, f"dpc_se_a_tab_backward failed with status {status}", RuntimeError)
    return grad


def scatter_pair_gradients(index, vectors, pair_grad, natoms=None):
    """Forces (natoms, 3) and per-atom virials (natoms, 3, 3) from pair gradients, in a fixed order.

    The rows of ``index`` are the centers, atoms ``0 .. len(index)``; ``natoms`` (default: as many as
    rows) may be larger when the frame also holds ghost atoms that only receive forces.
    """
    cdef int64_t n = index.shape[0], nnei = index.shape[1]
    cdef int64_t ntot = n if natoms is None else natoms
    _check(index, (n, nnei), np.int64, "index")
    _check(vectors, (n, nnei, 3), np.float64, "vectors")
    _check(pair_grad, (n, nnei, 3), np.float64, "pair_grad")
    if ntot < n:
        raise ValueError(f"natoms = {ntot} is smaller than the {n} centers")
    force = np.zeros((ntot, 3), dtype=np.float64)
    virial = np.zeros((ntot, 3, 3), dtype=np.float64)
    if n == 0 or nnei == 0:
        return force, virial
    cdef const int64_t[:, ::1] iv = index
    cdef const double[:, :, ::1] vv = vectors
    cdef const double[:, :, ::1] gv = pair_grad
    cdef double[:, ::1] fv = force
    cdef double[:, :, ::1] wv = virial
    cdef int status
    with nogil:
        status = dpc_scatter_pair_gradients(n, ntot, nnei, &iv[0, 0], &vv[0, 0, 0], &gv[0, 0, 0], &fv[0, 0],
                                            &wv[0, 0, 0])
    if status != 0:
        raise status_error(status, "scatter_pair_gradients: neighbor index out of range", IndexError)
    return force, virial


def descriptor_from_T(T, int64_t axis_neuron, int n_threads=1):
    r"""se_e2_a descriptor :math:`D_i = T_i^\top T_{i,:, :A}`, shape (natoms, M*A), from T (natoms, 4, M)."""
    cdef int64_t n = T.shape[0], M = T.shape[2]
    _check(T, (n, 4, M), np.float64, "T")
    if not 0 < axis_neuron <= M:
        raise ValueError(f"axis_neuron must be in [1, {M}], got {axis_neuron}")
    D = np.empty((n, M * axis_neuron), dtype=np.float64)
    if n == 0:
        return D
    cdef const double[:, :, ::1] tv = T
    cdef double[:, ::1] dv = D
    with nogil:
        dpc_descriptor_from_T(n, M, axis_neuron, &tv[0, 0, 0], &dv[0, 0], n_threads)
    return D


def descriptor_gradient_to_T(T, dD, int64_t axis_neuron, int n_threads=1):
    r"""Chain rule through :math:`D = T^\top T_{:, :A}`: dE/dT (natoms, 4, M) from dE/dD (natoms, M*A)."""
    cdef int64_t n = T.shape[0], M = T.shape[2]
    _check(T, (n, 4, M), np.float64, "T")
    if not 0 < axis_neuron <= M:
        raise ValueError(f"axis_neuron must be in [1, {M}], got {axis_neuron}")
    if axis_neuron > 512:  # DPC_MAX_AXIS_NEURON
        raise ValueError(f"axis_neuron {axis_neuron} > 512 is not supported by the compiled kernel")
    dD = np.ascontiguousarray(dD, dtype=np.float64)
    _check(dD, (n, M * axis_neuron), np.float64, "dD")
    dT = np.empty((n, 4, M), dtype=np.float64)
    if n == 0:
        return dT
    cdef const double[:, :, ::1] tv = T
    cdef const double[:, ::1] gv = dD
    cdef double[:, :, ::1] ov = dT
    with nogil:
        dpc_descriptor_gradient_to_T(n, M, axis_neuron, &tv[0, 0, 0], &gv[0, 0], &ov[0, 0, 0], n_threads)
    return dT


def tables_from_view(v):
    """:class:`PackedTables` of a descriptor part's kernel view
    (``dpcompress.descriptors.base.PackedPart.kernel_view()``: the arrays a ``.dpc`` holds)."""
    p = PackedTables(v.sel_offsets, v.avg, v.std, v.block_mode, v.table_of, v.tab_real, v.tab_count, v.tab_offset,
                     v.coef, v.ncoef, v.n_channels, v.rcut, v.rcut_smth, v.protection, n_rows=v.n_rows, gate=v.gate,
                     gate_pad=getattr(v, "gate_pad", None))
    p.axis_neuron = v.axis_neuron
    return p
