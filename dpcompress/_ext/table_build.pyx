"""Embedding-table construction, a thin wrapper over ``src_c/dpc_table_build.c``.

Callers (:func:`dpcompress.tables.build_embedding_table`) validate the
arguments and pack the net (:func:`dpcompress.tables.pack_network`);
the C kernel still checks the net's structure and the sizes, so a bad call
raises instead of reading out of bounds.
"""

import numpy as np

from ..core.errors import STATUS_ARGUMENT, STATUS_INDEX, STATUS_NONFINITE, status_error

from libc.stdint cimport int64_t


cdef extern from "dpc_activations.h":
    enum:
        DPC_ACT_LINEAR
        DPC_ACT_TANH
        DPC_ACT_GELU
        DPC_ACT_RELU
        DPC_ACT_RELU6
        DPC_ACT_SOFTPLUS
        DPC_ACT_SIGMOID
        DPC_ACT_SILU


cdef extern from "dpc_table_build.h":
    enum:
        DPC_RESIDUAL_NONE
        DPC_RESIDUAL_IDENTITY
        DPC_RESIDUAL_DOUBLE

    ctypedef struct dpc_dense_net:
        int n_layers
        const int64_t *width
        const int *activation
        const int *residual
        const double *weights
        const int64_t *w_offset
        const double *bias
        const int64_t *b_offset
        const double *idt
        const int64_t *idt_offset

    int dpc_embedding_derivatives(const dpc_dense_net *net, int64_t n, const double *x, int n_threads,
                                  double *out) nogil
    int dpc_build_table(const dpc_dense_net *net, int64_t n_below, int64_t n_fine, int64_t n_coarse, double stride0,
                        double stride1, const double *x, int order, int n_threads, double *coef,
                        double *node_data) nogil


#: Canonical activation name -> code of ``src_c/dpc_activations.h`` (DeePMD-kit's functype numbers).
ACTIVATION_CODES = {
    "linear": DPC_ACT_LINEAR,
    "tanh": DPC_ACT_TANH,
    "gelu": DPC_ACT_GELU,
    "relu": DPC_ACT_RELU,
    "relu6": DPC_ACT_RELU6,
    "softplus": DPC_ACT_SOFTPLUS,
    "sigmoid": DPC_ACT_SIGMOID,
    "silu": DPC_ACT_SILU,
}

#: ``Layer.residual`` -> code of ``src_c/dpc_table_build.h``.
RESIDUAL_CODES = {None: DPC_RESIDUAL_NONE, "identity": DPC_RESIDUAL_IDENTITY, "double": DPC_RESIDUAL_DOUBLE}

_MESSAGES = {
    STATUS_ARGUMENT: "invalid network structure or table sizes",
    STATUS_INDEX: "index out of range",
    STATUS_NONFINITE: "the embedding net gives NaN or infinite values or derivatives at a node",
}


def _raise(int status, str where):
    raise status_error(status, f"{where}: {_MESSAGES.get(status, f'failed with status {status}')}", ValueError,
                       {STATUS_INDEX: IndexError, STATUS_NONFINITE: FloatingPointError})


cdef class _NetView:
    """Keeps the packed buffers alive while their pointers sit in a dpc_dense_net."""

    cdef dpc_dense_net net
    cdef const int64_t[::1] width
    cdef const int[::1] activation
    cdef const int[::1] residual
    cdef const double[::1] weights
    cdef const int64_t[::1] w_offset
    cdef const double[::1] bias
    cdef const int64_t[::1] b_offset
    cdef const double[::1] idt
    cdef const int64_t[::1] idt_offset
    cdef readonly int64_t n_out

    def __init__(self, packed):
        cdef Py_ssize_t nl, k
        width, activation, residual, weights, w_offset, bias, b_offset, idt, idt_offset = packed
        self.width = np.ascontiguousarray(width, dtype=np.int64)
        self.activation = np.ascontiguousarray(activation, dtype=np.intc)
        self.residual = np.ascontiguousarray(residual, dtype=np.intc)
        self.weights = np.ascontiguousarray(weights, dtype=np.float64)
        self.w_offset = np.ascontiguousarray(w_offset, dtype=np.int64)
        self.bias = np.ascontiguousarray(bias, dtype=np.float64)
        self.b_offset = np.ascontiguousarray(b_offset, dtype=np.int64)
        self.idt = np.ascontiguousarray(idt, dtype=np.float64)
        self.idt_offset = np.ascontiguousarray(idt_offset, dtype=np.int64)
        nl = self.activation.shape[0]
        if nl < 1 or self.width.shape[0] != nl + 1 or self.residual.shape[0] != nl or self.w_offset.shape[0] != nl \
                or self.b_offset.shape[0] != nl or self.idt_offset.shape[0] != nl or self.weights.shape[0] == 0:
            raise ValueError("packed network: inconsistent numbers of layers")
        # Offsets must stay inside the buffers the C kernel is about to read.
        w = np.asarray(self.width)
        for k in range(nl):
            if self.w_offset[k] < 0 or self.w_offset[k] + w[k] * w[k + 1] > self.weights.shape[0]:
                raise ValueError(f"packed network: weights of layer {k} out of range")
            if self.b_offset[k] >= 0 and self.b_offset[k] + w[k + 1] > self.bias.shape[0]:
                raise ValueError(f"packed network: bias of layer {k} out of range")
            if self.idt_offset[k] >= 0 and self.idt_offset[k] + w[k + 1] > self.idt.shape[0]:
                raise ValueError(f"packed network: idt of layer {k} out of range")
        self.n_out = self.width[nl]
        self.net.n_layers = <int>nl
        self.net.width = &self.width[0]
        self.net.activation = &self.activation[0]
        self.net.residual = &self.residual[0]
        self.net.weights = &self.weights[0]
        self.net.w_offset = &self.w_offset[0]
        self.net.bias = &self.bias[0] if self.bias.shape[0] > 0 else NULL
        self.net.b_offset = &self.b_offset[0]
        self.net.idt = &self.idt[0] if self.idt.shape[0] > 0 else NULL
        self.net.idt_offset = &self.idt_offset[0]


def embedding_derivatives(packed, x, int n_threads=1):
    """Value, first and second derivative of a packed scalar-input net at the points ``x``.

    Compiled twin of :func:`dpcompress.core.networks.embedding_with_derivatives`.

    Parameters
    ----------
    packed : PackedNetwork
        From :func:`dpcompress.tables.pack_network`.
    x : array_like of float64, shape (n,)
    n_threads : int
        OpenMP threads; the result does not depend on it.

    Returns
    -------
    ndarray, shape (n, 3, M)
        ``[:, 0]`` = g, ``[:, 1]`` = g', ``[:, 2]`` = g''.
    """
    cdef _NetView nv = _NetView(packed)
    cdef const double[::1] xv = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    cdef int64_t n = xv.shape[0]
    out = np.empty((n, 3, nv.n_out), dtype=np.float64)
    cdef double[:, :, ::1] ov = out
    cdef int status
    if n == 0:
        return out
    with nogil:
        status = dpc_embedding_derivatives(&nv.net, n, &xv[0], n_threads, &ov[0, 0, 0])
    if status != 0:
        _raise(status, "dpc_embedding_derivatives")
    return out


def build_table(packed, x, int64_t n_fine, int64_t n_coarse, double stride0, double stride1, int order=5,
                int n_threads=1, bint return_nodes=False, int64_t n_below=0):
    """Hermite coefficients of a packed scalar-input net on the nodes ``x``.

    Parameters
    ----------
    packed : PackedNetwork
    x : array_like of float64, shape (n_below + n_fine + n_coarse + 1,)
        The nodes (:meth:`dpcompress.tables.EmbeddingTable.nodes`).
    n_fine, n_coarse : int
        Interval counts; fine intervals have width ``stride0``, the others ``stride1``.
    stride0, stride1 : float
    order : {5, 3}
    n_threads : int
        OpenMP threads; the result does not depend on it.
    return_nodes : bool
        Also return the node data (n_nodes, 3, M).
    n_below : int
        Coarse intervals below the fine region (symmetric se_e3 grids).

    Returns
    -------
    coef : ndarray, shape (n_fine + n_coarse, order + 1, M)
    nodes : ndarray, shape (n_nodes, 3, M), only with ``return_nodes``
    """
    cdef _NetView nv = _NetView(packed)
    cdef const double[::1] xv = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    if n_fine < 1 or n_coarse < 0 or n_below < 0 or xv.shape[0] != n_below + n_fine + n_coarse + 1:
        raise ValueError(f"build_table: {xv.shape[0]} nodes for {n_below} + {n_fine} + {n_coarse} intervals")
    if order != 3 and order != 5:
        raise ValueError(f"build_table: order must be 3 or 5, got {order}")
    coef = np.empty((n_below + n_fine + n_coarse, order + 1, nv.n_out), dtype=np.float64)
    nodes = np.empty((xv.shape[0], 3, nv.n_out), dtype=np.float64)
    cdef double[:, :, ::1] cv = coef
    cdef double[:, :, ::1] ndv = nodes
    cdef int status
    with nogil:
        status = dpc_build_table(&nv.net, n_below, n_fine, n_coarse, stride0, stride1, &xv[0], order, n_threads,
                                 &cv[0, 0, 0], &ndv[0, 0, 0])
    if status != 0:
        _raise(status, "dpc_build_table")
    return (coef, nodes) if return_nodes else coef
