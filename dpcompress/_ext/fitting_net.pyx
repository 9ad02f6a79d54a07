"""Fitting nets, forward and backward in one pass: thin wrapper over ``src_c/dpc_fitting.c``.

Numpy twin: :func:`dpcompress.reference.fitting.fitting_forward_backward` (it takes the
model; this takes the model's fitting packed by :class:`PackedFitting`).  The matrix
products are scipy's BLAS ``dgemm`` (:mod:`dpcompress._ext.blas`), called from inside the
OpenMP threads; BLAS is held at one thread during the call (threadpoolctl).
"""

import numpy as np

from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

from ..core.errors import status_error
from .blas cimport scipy_dgemm
from .blas import blas_single_thread


cdef extern from "dpc_fitting.h":
    int DPC_FIT_RESIDUAL_NONE, DPC_FIT_RESIDUAL_IDENTITY, DPC_FIT_RESIDUAL_DOUBLE

    ctypedef void (*dpc_dgemm_t)(char *, char *, int *, int *, int *, double *, double *, int *, double *, int *,
                                 double *, double *, int *) noexcept nogil

    ctypedef struct dpc_fit_layer:
        int64_t n_in, n_out
        const double *w
        const double *b
        const double *idt
        int activation, residual

    ctypedef struct dpc_fitting_args:
        int64_t natoms, dim, ntypes
        const int64_t *atom_types
        const double *D
        const int64_t *net_start
        const dpc_fit_layer *layers
        const double *bias
        dpc_dgemm_t dgemm
        void *fill
        void *take
        void *ctx
        void *thread_scratch
        void *shared_scratch

    int dpc_fitting_forward_backward(const dpc_fitting_args *a, int n_threads, double *e, double *dD) nogil
    int dpc_fitting_chunk()
    void dpc_fitting_tanh(int64_t n, const double *x, double *out) nogil


from .table_build import ACTIVATION_CODES  # codes of src_c/dpc_activations.h, one table for both kernels

#: ``Layer.residual`` -> code of ``src_c/dpc_fitting.h``.
RESIDUAL_CODES = {None: DPC_FIT_RESIDUAL_NONE, "identity": DPC_FIT_RESIDUAL_IDENTITY, "double": DPC_FIT_RESIDUAL_DOUBLE}

#: Rows per chunk (compile-time constant of the C kernel).
CHUNK = dpc_fitting_chunk()


def _vector(arr, n, name):
    if arr is None:
        return None
    out = np.ascontiguousarray(arr, dtype=np.float64)
    if out.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},), got {out.shape}")
    return out


cdef const double *_ptr(object arr):
    cdef const double[::1] v
    if arr is None:
        return NULL
    v = arr.reshape(-1)  # a view: the arrays are C-contiguous
    return &v[0]


cdef class PackedFitting:
    """The fitting nets of an energy model as C layer descriptors.

    Parameters
    ----------
    networks : sequence of Network
        One per atom type, or a single one shared by every type.
    bias_atom_e : array, shape (ntypes,)
    """
    cdef dpc_fit_layer *layers
    cdef readonly object net_start, bias, arrays
    cdef readonly int64_t ntypes, dim, n_layers

    def __cinit__(self):
        self.layers = NULL

    def __dealloc__(self):
        free(self.layers)

    def __init__(self, networks, bias_atom_e):
        self.bias = np.ascontiguousarray(bias_atom_e, dtype=np.float64).reshape(-1)
        self.ntypes = self.bias.shape[0]
        networks = list(networks)
        if self.ntypes < 1 or len(networks) not in (1, self.ntypes):
            raise ValueError(f"{len(networks)} fitting nets for {self.ntypes} atom types")
        nets = [networks[0 if len(networks) == 1 else t] for t in range(self.ntypes)]
        specs = []
        starts = [0]
        self.arrays = []
        for net in nets:
            if len(net.layers) == 0:
                raise ValueError("a fitting net without layers")
            for layer in net.layers:
                w = np.ascontiguousarray(layer.w, dtype=np.float64)
                if w.ndim != 2:
                    raise ValueError("a layer's w must be 2-D")
                n_in, n_out = w.shape
                if n_in < 1 or n_out < 1:
                    raise ValueError("a layer without inputs or outputs")
                if layer.activation not in ACTIVATION_CODES:
                    raise ValueError(f"activation {layer.activation!r} has no compiled form")
                if layer.residual not in RESIDUAL_CODES:
                    raise ValueError(f"residual {layer.residual!r} has no compiled form")
                b = _vector(layer.b, n_out, "b")
                idt = _vector(layer.idt, n_out, "idt")
                self.arrays.extend(a for a in (w, b, idt) if a is not None)
                specs.append((n_in, n_out, w, b, idt, ACTIVATION_CODES[layer.activation], RESIDUAL_CODES[layer.residual]))
            starts.append(len(specs))
        self.dim = specs[0][0]
        for t in range(self.ntypes):
            widths = [specs[k][0] for k in range(starts[t], starts[t + 1])] + [specs[starts[t + 1] - 1][1]]
            if widths[0] != self.dim or widths[len(widths) - 1] != 1:
                raise ValueError(f"fitting net {t} maps {widths[0]} -> {widths[len(widths) - 1]}, expected {self.dim} -> 1")
            for k in range(starts[t], starts[t + 1] - 1):
                if specs[k][1] != specs[k + 1][0]:
                    raise ValueError(f"fitting net {t}: layer widths do not chain")
            if max(widths) >= 2**31:
                raise ValueError("fitting net wider than BLAS's int")
        self.net_start = np.asarray(starts, dtype=np.int64)
        self.n_layers = len(specs)
        self.layers = <dpc_fit_layer *>malloc(sizeof(dpc_fit_layer) * self.n_layers)
        if self.layers == NULL:
            raise MemoryError()
        for i, spec in enumerate(specs):
            self.layers[i].n_in = spec[0]
            self.layers[i].n_out = spec[1]
            self.layers[i].w = _ptr(spec[2])
            self.layers[i].b = _ptr(spec[3])
            self.layers[i].idt = _ptr(spec[4])
            self.layers[i].activation = spec[5]
            self.layers[i].residual = spec[6]


def pack_fitting(fitting):
    """:class:`PackedFitting` of an :class:`~dpcompress.models.model.EnergyFitting`."""
    return PackedFitting(fitting.networks, fitting.bias_atom_e)


def fitting_forward_backward(PackedFitting p, atom_types, D, int n_threads=1):
    """Per-atom energies ``F_t(D_i) + bias_t`` (n,) and ``dF/dD`` (n, dim).

    ``atom_types``: C-contiguous int64 (n,) in [0, ntypes); ``D``: C-contiguous float64 (n, dim).
    Results do not depend on ``n_threads``.
    """
    if not (isinstance(atom_types, np.ndarray) and atom_types.dtype == np.int64 and atom_types.ndim == 1
            and atom_types.flags.c_contiguous):
        raise ValueError("atom_types: expected a C-contiguous 1-D int64 array")
    cdef int64_t n = atom_types.shape[0]
    if not (isinstance(D, np.ndarray) and D.dtype == np.float64 and D.flags.c_contiguous and D.shape == (n, p.dim)):
        raise ValueError(f"D: expected C-contiguous float64 of shape ({n}, {p.dim})")
    if n_threads < 1:
        raise ValueError("n_threads must be positive")
    e = np.empty(n, dtype=np.float64)
    dD = np.empty((n, p.dim), dtype=np.float64)
    if n == 0:
        return e, dD
    if atom_types.min() < 0 or atom_types.max() >= p.ntypes:
        raise ValueError("atom type out of range")
    cdef const int64_t[::1] tv = atom_types
    cdef const double[:, ::1] Dv = D
    cdef const int64_t[::1] sv = p.net_start
    cdef const double[::1] bv = p.bias
    cdef double[::1] ev = e
    cdef double[:, ::1] gv = dD
    cdef dpc_fitting_args a
    a.natoms = n
    a.dim = p.dim
    a.ntypes = p.ntypes
    a.atom_types = &tv[0]
    a.D = &Dv[0, 0]
    a.net_start = &sv[0]
    a.layers = p.layers
    a.bias = &bv[0]
    a.dgemm = <dpc_dgemm_t>scipy_dgemm()
    a.fill = NULL
    a.take = NULL
    a.ctx = NULL
    a.thread_scratch = NULL
    a.shared_scratch = NULL
    cdef int status
    with blas_single_thread():
        with nogil:
            status = dpc_fitting_forward_backward(&a, n_threads, &ev[0], &gv[0, 0])
    if status != 0:
        raise status_error(status, f"dpc_fitting_forward_backward rejected its arguments (status {status})", ValueError)
    return e, dD


def fitting_tanh(x):
    """The kernel's tanh, elementwise (for the tests)."""
    cdef const double[::1] xv = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    out = np.empty(xv.shape[0], dtype=np.float64)
    cdef double[::1] ov = out
    if xv.shape[0] > 0:
        with nogil:
            dpc_fitting_tanh(xv.shape[0], &xv[0], &ov[0])
    return out.reshape(np.shape(x))
