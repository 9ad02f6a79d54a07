"""One DPA-2 repformer layer, forward and backward, in C: thin wrapper over ``src_c/dpc_repformer.c``.

For the test that holds it equal to its numpy twin
(``layer_forward`` and ``layer_backward`` of :mod:`dpcompress.evaluators.exact.repformer_layer`); the compressed form's options
only (:func:`dpcompress.descriptors.dpa2_tables.check_compressible`).  The runtime does not call it yet.
"""

import numpy as np

from ..core.errors import InputError
from .table_build import ACTIVATION_CODES

#: ``RepformerLayer.update_style`` -> ``DPC_RF_RES_*`` of ``src_c/dpc_repformer.h``
UPDATE_STYLE_CODES = {"res_avg": 0, "res_incr": 1, "res_residual": 2}

from libc.stdint cimport int64_t


cdef extern from "dpc_repformer.h":
    ctypedef struct dpc_repformer_layer:
        int64_t g1_dim, g2_dim, axis_neuron, update_chnnl_2
        int64_t attn1_hidden, attn1_nhead, attn2_hidden, attn2_nhead
        double attn1_shift, attn2_shift, ln_eps
        int activation
        const double *linear1_w
        const double *linear1_b
        const double *g1_self_mlp_w
        const double *g1_self_mlp_b
        const double *proj_g1g2_w
        const double *mapq_w
        const double *mapkv_w
        const double *head_map1_w
        const double *head_map1_b
        const double *linear2_w
        const double *linear2_b
        const double *proj_g1g1g2_w
        const double *mapqk_w
        const double *mapv_w
        const double *head_map2_w
        const double *head_map2_b
        const double *ln_w
        const double *ln_b
        int update_style
        const double *g1_residual
        const double *g2_residual
        int g1_in_linear1
        int conv_in_linear1
        int attn2_has_gate

    int dpc_repformer_layer_forward(const dpc_repformer_layer *L, int64_t n, int64_t J, const double *g1,
                                    const double *g2, const double *h2, const int64_t *idx, const double *m,
                                    const double *sw, int n_threads, double *g1_out, double *g2_out) nogil
    int dpc_repformer_layer_backward(const dpc_repformer_layer *L, int64_t n, int64_t J, const double *g1,
                                     const double *g2, const double *h2, const int64_t *idx, const double *m,
                                     const double *sw, const double *dg1_new, const double *dg2_new,
                                     const double *dh2_new, int n_threads, double *dg1, double *dg2, double *dh2,
                                     double *dsw) nogil


cdef const double *_ptr(double[::1] a):
    return &a[0]


cdef dict _fill(dpc_repformer_layer *L, layer, activation):
    """Point ``L`` at the layer's weights (float64 copies, kept alive by the returned dict)."""
    c = lambda a: np.ascontiguousarray(a, dtype=np.float64).ravel()  # noqa: E731
    d1, d2 = layer.g1_dim, layer.g2_dim
    keep = {}
    L[0].g1_dim, L[0].g2_dim, L[0].axis_neuron, L[0].update_chnnl_2 = d1, d2, layer.axis_neuron, int(layer.update_chnnl_2)
    L[0].attn1_hidden, L[0].attn1_nhead = layer.attn1_hidden, layer.attn1_nhead
    L[0].attn2_hidden, L[0].attn2_nhead = layer.attn2_hidden, layer.attn2_nhead
    L[0].attn1_shift, L[0].attn2_shift = layer.attn1_shift, layer.attn2_shift
    L[0].ln_eps = layer.ln[2] if layer.ln is not None else 1e-5
    L[0].activation = ACTIVATION_CODES[activation]
    for name in ("linear1", "g1_self_mlp", "proj_g1g2", "mapq", "mapkv", "head_map1", "linear2", "proj_g1g1g2",
                 "mapqk", "mapv", "head_map2"):
        lin = getattr(layer, name)
        keep[name + "_w"] = c(lin.w) if lin is not None else None
        keep[name + "_b"] = c(lin.b) if lin is not None and lin.b is not None else None
    if layer.ln is not None:
        keep["ln_w"], keep["ln_b"] = c(layer.ln[0]), c(layer.ln[1])
    cdef const double *nul = NULL
    p = lambda k: k in keep and keep[k] is not None  # noqa: E731
    L[0].linear1_w = _ptr(keep["linear1_w"]); L[0].linear1_b = _ptr(keep["linear1_b"])
    # g1_out_mlp false: no self MLP, g1 heads linear1's input
    L[0].g1_in_linear1 = 0 if layer.g1_out_mlp else 1
    L[0].conv_in_linear1 = 0 if layer.g1_out_conv else 1  # g1_out_conv false: the conv goes into linear1
    L[0].attn2_has_gate = 1 if layer.attn2_has_gate else 0
    L[0].g1_self_mlp_w = _ptr(keep["g1_self_mlp_w"]) if layer.g1_out_mlp else nul
    L[0].g1_self_mlp_b = _ptr(keep["g1_self_mlp_b"]) if layer.g1_out_mlp else nul
    L[0].proj_g1g2_w = _ptr(keep["proj_g1g2_w"]); L[0].mapq_w = _ptr(keep["mapq_w"]); L[0].mapkv_w = _ptr(keep["mapkv_w"])
    L[0].head_map1_w = _ptr(keep["head_map1_w"]); L[0].head_map1_b = _ptr(keep["head_map1_b"])
    L[0].linear2_w = _ptr(keep["linear2_w"]) if p("linear2_w") else nul
    L[0].linear2_b = _ptr(keep["linear2_b"]) if p("linear2_b") else nul
    L[0].proj_g1g1g2_w = _ptr(keep["proj_g1g1g2_w"]) if p("proj_g1g1g2_w") else nul
    L[0].mapqk_w = _ptr(keep["mapqk_w"]) if p("mapqk_w") else nul
    L[0].mapv_w = _ptr(keep["mapv_w"]) if p("mapv_w") else nul
    L[0].head_map2_w = _ptr(keep["head_map2_w"]) if p("head_map2_w") else nul
    L[0].head_map2_b = _ptr(keep["head_map2_b"]) if p("head_map2_b") else nul
    L[0].ln_w = _ptr(keep["ln_w"]) if p("ln_w") else nul
    L[0].ln_b = _ptr(keep["ln_b"]) if p("ln_b") else nul
    if layer.update_chnnl_2 and not all(p(k) for k in ("linear2_w", "linear2_b", "proj_g1g1g2_w", "mapqk_w", "mapv_w",
                                                        "head_map2_w", "head_map2_b", "ln_w", "ln_b")):
        raise InputError("repformer layer: a g2-updating layer needs linear2, proj_g1g1g2, mapqk, mapv, head_map2, ln")
    if layer.update_style not in UPDATE_STYLE_CODES:
        raise InputError(f"repformer layer: update_style {layer.update_style!r} has no compiled form "
                         f"(known: {sorted(UPDATE_STYLE_CODES)})")
    L[0].update_style = UPDATE_STYLE_CODES[layer.update_style]
    L[0].g1_residual = nul
    L[0].g2_residual = nul
    if layer.update_style == "res_residual":
        # the C kernel's terms: g1 ([self MLP], [conv], linear1, local attention), g2 (linear2, g1g1, attention)
        n1, n2 = 2 + int(layer.g1_out_mlp) + int(layer.g1_out_conv), (3 if layer.update_chnnl_2 else 0)
        if len(layer.g1_residual) != n1 or len(layer.g2_residual) != n2:
            raise InputError(f"repformer layer: res_residual needs {n1} g1 and {n2} g2 residual vectors, got "
                             f"{len(layer.g1_residual)} and {len(layer.g2_residual)}")
        keep["g1_residual"] = c(np.stack(layer.g1_residual)).reshape(-1)
        if keep["g1_residual"].shape[0] != n1 * d1:
            raise InputError(f"repformer layer: g1 residual vectors of width {d1} expected")
        L[0].g1_residual = _ptr(keep["g1_residual"])
        if n2:
            keep["g2_residual"] = c(np.stack(layer.g2_residual)).reshape(-1)
            if keep["g2_residual"].shape[0] != 3 * d2:
                raise InputError(f"repformer layer: g2 residual vectors of width {d2} expected")
            L[0].g2_residual = _ptr(keep["g2_residual"])
    return keep


def _layer_inputs(layer, activation, g1, g2, h2, idx, m, sw, grads=()):
    """The layer's inputs (and the backward's incoming gradients) as contiguous float64/int64 arrays, their
    shapes checked: g1 (n, g1_dim), g2 (n, J, g2_dim), h2 (n, J, 3), idx/m/sw (n, J), idx in [0, n)."""
    if activation not in ACTIVATION_CODES:
        raise InputError(f"activation {activation!r} unknown (known: {sorted(ACTIVATION_CODES)})")
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    n, J = idx.shape
    d1, d2 = layer.g1_dim, layer.g2_dim
    want = [(n, d1), (n, J, d2), (n, J, 3), (n, J), (n, J)] + [(n, d1), (n, J, d2), (n, J, 3)][:len(grads)]
    arrays = [np.ascontiguousarray(x, dtype=np.float64) for x in (g1, g2, h2, m, sw) + tuple(grads)]
    if [a.shape for a in arrays] != want:
        raise InputError("repformer layer: g1" + (" and dg1" if grads else "") + " (n, g1_dim), g2"
                         + (" and dg2" if grads else "") + " (n, J, g2_dim), h2" + (" and dh2" if grads else "")
                         + " (n, J, 3), m and sw (n, J) expected")
    if n and (np.min(idx) < 0 or np.max(idx) >= n):
        raise InputError(f"repformer layer: idx must lie in [0, {n})")
    return idx, arrays


def layer_forward(layer, activation, g1, g2, h2, idx, m, sw, int n_threads=1):
    """(g1', g2') of one layer (g2' is None on the last layer); arguments as the numpy twin's."""
    idx_c, (g1_c, g2_c, h2_c, m_c, sw_c) = _layer_inputs(layer, activation, g1, g2, h2, idx, m, sw)
    cdef double[:, ::1] G1 = g1_c
    cdef double[:, :, ::1] G2 = g2_c
    cdef double[:, :, ::1] H2 = h2_c
    cdef int64_t[:, ::1] IDX = idx_c
    cdef double[:, ::1] M = m_c
    cdef double[:, ::1] SW = sw_c
    n, J = IDX.shape[0], IDX.shape[1]
    d1, d2 = layer.g1_dim, layer.g2_dim
    cdef dpc_repformer_layer L
    keep = _fill(&L, layer, activation)
    out1 = np.zeros((n, d1))
    out2 = np.zeros((n, J, d2)) if layer.update_chnnl_2 else np.zeros((1, 1, 1))
    cdef double[:, ::1] O1 = out1
    cdef double[:, :, ::1] O2 = out2
    cdef int status
    if n == 0:
        return out1, (out2 if layer.update_chnnl_2 else None)
    with nogil:
        status = dpc_repformer_layer_forward(&L, n, J, &G1[0, 0], &G2[0, 0, 0], &H2[0, 0, 0], &IDX[0, 0], &M[0, 0],
                                             &SW[0, 0], n_threads, &O1[0, 0], &O2[0, 0, 0])
    if status != 0:
        raise MemoryError("repformer layer: out of memory for the per-thread workspace")
    return out1, (out2 if layer.update_chnnl_2 else None)


def layer_backward(layer, activation, g1, g2, h2, idx, m, sw, dg1_new, dg2_new, dh2_new, int n_threads=1):
    """(dg1, dg2, dh2, dsw) of one layer; arguments and results as the numpy twin's ``layer_backward``."""
    idx_c, (g1_c, g2_c, h2_c, m_c, sw_c, dg1_c, dg2_c, dh2_c) = _layer_inputs(
        layer, activation, g1, g2, h2, idx, m, sw, grads=(dg1_new, dg2_new, dh2_new))
    cdef double[:, ::1] G1 = g1_c
    cdef double[:, :, ::1] G2 = g2_c
    cdef double[:, :, ::1] H2 = h2_c
    cdef int64_t[:, ::1] IDX = idx_c
    cdef double[:, ::1] M = m_c
    cdef double[:, ::1] SW = sw_c
    cdef double[:, ::1] DG1N = dg1_c
    cdef double[:, :, ::1] DG2N = dg2_c
    cdef double[:, :, ::1] DH2N = dh2_c
    n, J = IDX.shape[0], IDX.shape[1]
    d1, d2 = layer.g1_dim, layer.g2_dim
    cdef dpc_repformer_layer L
    keep = _fill(&L, layer, activation)
    dg1 = np.zeros((n, d1))
    dg2 = np.zeros((n, J, d2))
    dh2 = np.zeros((n, J, 3))
    dsw = np.zeros((n, J))
    if n == 0:
        return dg1, dg2, dh2, dsw
    cdef double[:, ::1] O1 = dg1
    cdef double[:, :, ::1] O2 = dg2
    cdef double[:, :, ::1] O3 = dh2
    cdef double[:, ::1] O4 = dsw
    cdef int status
    with nogil:
        status = dpc_repformer_layer_backward(&L, n, J, &G1[0, 0], &G2[0, 0, 0], &H2[0, 0, 0], &IDX[0, 0], &M[0, 0],
                                              &SW[0, 0], &DG1N[0, 0], &DG2N[0, 0, 0], &DH2N[0, 0, 0], n_threads,
                                              &O1[0, 0], &O2[0, 0, 0], &O3[0, 0, 0], &O4[0, 0])
    if status != 0:
        raise MemoryError("repformer layer: out of memory for the workspace")
    return dg1, dg2, dh2, dsw


cdef extern from "dpc_repformer.h":
    ctypedef struct dpc_repformer_stack:
        int64_t n_layers, repinit_dim, g1_dim, g2_dim, tebd_dim
        int activation
        const dpc_repformer_layer *layers
        const double *g1_shape_w
        const double *tebd_transform_w
        const double *type_embedding
        const double *g2_embd_w
        const double *g2_embd_b

    size_t dpc_repformer_stack_workspace(const dpc_repformer_stack *S, int64_t n, int64_t J)
    int dpc_repformer_stack_forward(const dpc_repformer_stack *S, int64_t n, int64_t J, const double *D0,
                                    const int64_t *types, const double *P, const int64_t *idx, const double *m,
                                    const double *sw, int n_threads, double *ws, double *g1_out) nogil
    int dpc_repformer_stack_backward(const dpc_repformer_stack *S, int64_t n, int64_t J, const double *P,
                                     const int64_t *idx, const double *m, const double *sw, const double *ws,
                                     const double *dg1_out, int n_threads, double *dD0, double *dP,
                                     double *dsw) nogil
    int dpc_repformer_stack_forward_depth(const dpc_repformer_stack *S, int64_t n, int64_t J, const double *D0,
                                          const int64_t *types, const double *P, const int64_t *idx, const double *m,
                                          const double *sw, const int64_t *depth, int n_threads, double *ws,
                                          double *g1_out) nogil
    int dpc_repformer_stack_backward_depth(const dpc_repformer_stack *S, int64_t n, int64_t J, const double *P,
                                           const int64_t *idx, const double *m, const double *sw,
                                           const int64_t *depth, const double *ws, const double *dg1_out,
                                           int n_threads, double *dD0, double *dP, double *dsw) nogil

from libc.stdlib cimport malloc, free


def repformer_stack(desc, D0, types, P, idx, m, sw, dg1_out, int n_threads=1, depth=None):
    """``(g1, dD0, dP, dsw)``: the stack's forward and backward (twin: :mod:`dpcompress.reference.repformer_stack`).

    ``depth`` (n,), optional: each row's message distance from the nearest center (0: a center); then only
    the rows a center's result reads are updated (``dpc_repformer_stack_forward_depth``) and ``dg1_out`` is
    read on the centers only.
    """
    cdef double[:, ::1] d0 = np.ascontiguousarray(D0, dtype=np.float64)
    cdef int64_t[::1] T = np.ascontiguousarray(types, dtype=np.int64)
    cdef double[:, :, ::1] PP = np.ascontiguousarray(P, dtype=np.float64)
    cdef int64_t[:, ::1] IDX = np.ascontiguousarray(idx, dtype=np.int64)
    cdef double[:, ::1] M = np.ascontiguousarray(m, dtype=np.float64)
    cdef double[:, ::1] SW = np.ascontiguousarray(sw, dtype=np.float64)
    cdef double[:, ::1] DG = np.ascontiguousarray(dg1_out, dtype=np.float64)
    n, J = IDX.shape[0], IDX.shape[1]
    nl = len(desc.layers)
    d1, d2 = desc.layers[0].g1_dim, desc.layers[0].g2_dim
    n0 = d0.shape[1]
    if (d0.shape[0], T.shape[0], PP.shape[0], PP.shape[1], PP.shape[2], M.shape[0], SW.shape[0], DG.shape[0], DG.shape[1]) \
            != (n, n, n, J, 4, n, n, n, d1) or n == 0:
        raise InputError("repformer stack: D0 (n, n0), types (n,), P (n, J, 4), m, sw (n, J), dg1 (n, g1_dim) expected")
    if np.min(idx) < 0 or np.max(idx) >= n:
        raise InputError(f"repformer stack: idx must lie in [0, {n})")
    cdef int64_t[::1] DEPTH
    cdef const int64_t *depth_ptr = NULL
    if depth is not None:
        DEPTH = np.ascontiguousarray(depth, dtype=np.int64)
        if DEPTH.shape[0] != n or np.min(depth) < 0:
            raise InputError("repformer stack: depth must be (n,) non-negative integers")
        depth_ptr = &DEPTH[0]
    cdef dpc_repformer_layer *layers = <dpc_repformer_layer *>malloc(sizeof(dpc_repformer_layer) * nl)
    if layers == NULL:
        raise MemoryError()
    keep = []
    cdef dpc_repformer_stack S
    cdef double[::1] wsh, wtt, wte, wgw, wgb
    cdef double[:, ::1] O1, DD0, DSW
    cdef double[:, :, ::1] DP
    cdef double[::1] WS
    cdef int status
    cdef int64_t cn = n, cJ = J
    try:
        for k in range(nl):
            keep.append(_fill(&layers[k], desc.layers[k], desc.activation))
        S.n_layers, S.repinit_dim, S.g1_dim, S.g2_dim = nl, n0, d1, d2
        S.activation = ACTIVATION_CODES[desc.activation]
        S.layers = layers
        S.g1_shape_w = NULL
        S.tebd_transform_w = NULL
        S.type_embedding = NULL
        S.tebd_dim = 0
        if desc.g1_shape is not None:
            wsh = np.ascontiguousarray(desc.g1_shape.w, dtype=np.float64).ravel()
            S.g1_shape_w = &wsh[0]
        if desc.tebd_transform is not None:
            wtt = np.ascontiguousarray(desc.tebd_transform.w, dtype=np.float64).ravel()
            wte = np.ascontiguousarray(desc.type_embedding, dtype=np.float64).ravel()
            S.tebd_transform_w, S.type_embedding = &wtt[0], &wte[0]
            S.tebd_dim = desc.type_embedding.shape[1]
        wgw = np.ascontiguousarray(desc.g2_embd.w, dtype=np.float64).ravel()
        wgb = np.ascontiguousarray(desc.g2_embd.b, dtype=np.float64).ravel()
        S.g2_embd_w, S.g2_embd_b = &wgw[0], &wgb[0]
        ws = np.zeros(dpc_repformer_stack_workspace(&S, n, J) + 1)
        WS = ws
        g1 = np.zeros((n, d1))
        dD0 = np.zeros((n, n0))
        dP = np.zeros((n, J, 4))
        dsw = np.zeros((n, J))
        O1, DD0, DP, DSW = g1, dD0, dP, dsw
        with nogil:
            status = dpc_repformer_stack_forward_depth(&S, cn, cJ, &d0[0, 0], &T[0], &PP[0, 0, 0], &IDX[0, 0],
                                                       &M[0, 0], &SW[0, 0], depth_ptr, n_threads, &WS[0], &O1[0, 0])
            if status == 0:
                status = dpc_repformer_stack_backward_depth(&S, cn, cJ, &PP[0, 0, 0], &IDX[0, 0], &M[0, 0], &SW[0, 0],
                                                            depth_ptr, &WS[0], &DG[0, 0], n_threads, &DD0[0, 0],
                                                            &DP[0, 0, 0], &DSW[0, 0])
    finally:
        free(layers)
    if status != 0:
        raise InputError("repformer stack: inconsistent sizes or out of memory")
    return g1, dD0, dP, dsw
