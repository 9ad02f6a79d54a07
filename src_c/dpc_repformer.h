/* One DPA-2 repformer layer on the CPU, the compressed form's options only (issue 16).
 *
 * Options (dpcompress/descriptors/dpa2_tables.py, check_compressible): res_avg, res_incr or
 * res_residual (update_style), g1 update with
 * self MLP (or g1 into linear1: g1_in_linear1), projected-g2 convolution (g1_out_conv; or into linear1:
 * conv_in_linear1), grrg and drrd, local attention; g2 update
 * (update_chnnl_2, every layer but the last) with linear2, g1g1 and the gated-off pair attention
 * with its layer norm; smooth, use_sqrt_nnei; no h2 update.  Math and numpy twin:
 * dpcompress/evaluators/exact/repformer_layer.py and repformer_attention.py (same names).
 *
 * Forward and backward of one layer (tests/test_repformer_kernel.py); the runtime's frame path
 * (part kind 7) runs the stack: dpc_dpa2_frame.h.  Weights are row-major
 * (n_in x n_out), x W + b, column orders as the twin's.
 */
#ifndef DPC_REPFORMER_H
#define DPC_REPFORMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t g1_dim, g2_dim, axis_neuron, update_chnnl_2;
    int64_t attn1_hidden, attn1_nhead, attn2_hidden, attn2_nhead;
    double attn1_shift, attn2_shift, ln_eps;
    int activation; /* dpc_activations.h code */
    /* g1 update */
    const double *linear1_w, *linear1_b;         /* ([d1] + [d2] + ax*(d2+d1), d1), (d1): g1 / conv rows first when
                                                  * g1_in_linear1 / conv_in_linear1 */
    const double *g1_self_mlp_w, *g1_self_mlp_b; /* (d1, d1), (d1) */
    const double *proj_g1g2_w;                   /* (d2, d1); conv_in_linear1: (d1, d2) */
    const double *mapq_w;                        /* (d1, h1*n1) */
    const double *mapkv_w;                       /* (d1, (h1+d1)*n1) */
    const double *head_map1_w, *head_map1_b;     /* (d1*n1, d1), (d1) */
    /* g2 update (update_chnnl_2) */
    const double *linear2_w, *linear2_b;         /* (d2, d2), (d2) */
    const double *proj_g1g1g2_w;                 /* (d1, d2) */
    const double *mapqk_w;                       /* (d2, 2*h2*n2) */
    const double *mapv_w;                        /* (d2, d2*n2) */
    const double *head_map2_w, *head_map2_b;     /* (d2*n2, d2), (d2) */
    const double *ln_w, *ln_b;                   /* (d2), (d2) */
    /* the update rule (zero-initialised: res_avg).  With t_0 the input and t_1..t_K the terms in the order
     * above (g1: self MLP, conv, linear1, local attention, K = 4 (one less each for g1_in_linear1 and
     * conv_in_linear1); g2: linear2, g1g1, attention, K = 3):
     * res_avg sum_k t_k / sqrt(K+1), res_incr t_0 + sum_k t_k / sqrt K, res_residual t_0 + sum_k r_k . t_k */
    int update_style;                            /* DPC_RF_RES_AVG, DPC_RF_RES_INCR, DPC_RF_RES_RESIDUAL */
    const double *g1_residual;                   /* res_residual: (K, d1), r_1..r_K of the g1 update */
    const double *g2_residual;                   /* res_residual and update_chnnl_2: (3, d2) */
    /* g1_out_mlp false (zero-initialised: true): no self-MLP term (g1_self_mlp_* unused, the g1 update has
     * K = 3 terms and g1_residual 3 rows) and g1 heads linear1's input: linear1_w is (d1 + ax*(d2+d1), d1) */
    int g1_in_linear1;
    /* g1_out_conv false (zero-initialised: true): the conv c1 sum_j g2_j . w_j (g1[idx_j] Wp) goes into
     * linear1's input after g1 (proj_g1g2_w is (d1, d2), linear1_w gains d2 rows) and is no update term */
    int conv_in_linear1;
    /* attn2_has_gate (zero-initialised: off): the g2 attention's logits q_a.k_b / sqrt d times h2_a.h2_b */
    int attn2_has_gate;
} dpc_repformer_layer;

enum { DPC_RF_RES_AVG = 0, DPC_RF_RES_INCR = 1, DPC_RF_RES_RESIDUAL = 2 };

/* g1_out (n, d1) and, with update_chnnl_2, g2_out (n, J, d2) from g1 (n, d1), g2 (n, J, d2),
 * h2 (n, J, 3), idx (n, J: the slot's local atom, any valid index on empty slots), m (n, J: 1 on
 * real slots) and sw (n, J: the switch, 0 on empty slots).  OpenMP over centers; per-thread
 * workspace allocated once per call.  Returns 0, or -1 when out of memory / a bad size.
 *
 * Cost and memory: the g2 attention runs on the real slots only (m or sw nonzero, nr of them; an
 * empty slot's logit is the constant -shift, so it only adds exp(-shift - top) to each softmax
 * denominator), i.e. nh nr^2 exponentials per center; per thread ~ (2 nh + 4) J^2 + 2 nh J (2d + d2)
 * doubles of work arrays (0.18 MB at J = 40, nh = 4); per call one (n, (h1 + d1) n1) table of the
 * atoms' g1 W_kv (a neighbor's key and value do not depend on the center). */
int dpc_repformer_layer_forward(const dpc_repformer_layer *L, int64_t n, int64_t J, const double *g1,
                                const double *g2, const double *h2, const int64_t *idx, const double *m,
                                const double *sw, int n_threads, double *g1_out, double *g2_out);

/* Gradients of one layer from those of its outputs (dg1_new (n, d1); dg2_new (n, J, d2) and dh2_new
 * (n, J, 3), either may be NULL for zero): dg1 (n, d1, the messages scattered onto idx), dg2, dh2 and
 * dsw (n, J).  Recomputes the forward per center (no cache: the attention weights alone would be
 * nh J^2 doubles per center and g2 layer, 78 MB at 1,536 atoms, J = 40, nh = 4); the messages are
 * added by one thread in slot order, so any thread count gives the same bits.  An empty slot's dsw
 * (the softmax's dependence on its switch) is kept: it is a reduced sum over the real rows.
 * Memory: the forward's, plus (n, J, d1) doubles of per-slot messages.  Returns 0, or -1 (memory,
 * bad size). */
int dpc_repformer_layer_backward(const dpc_repformer_layer *L, int64_t n, int64_t J, const double *g1,
                                 const double *g2, const double *h2, const int64_t *idx, const double *m,
                                 const double *sw, const double *dg1_new, const double *dg2_new,
                                 const double *dh2_new, int n_threads, double *dg1, double *dg2, double *dh2,
                                 double *dsw);

/* The repformer stack of a DPA-2 between the repinit and the fitting:
 *   g1 = phi(D0 Wshape [+ E_t Wtebd]),  g2_ij = phi(P_ij0 w + b),  h2_ij = P_ij1..3,
 * then the layers; P (n, J, 4) are the repformer pair inputs (R/std on real slots, 0 on empty). */
typedef struct {
    int64_t n_layers, repinit_dim, g1_dim, g2_dim, tebd_dim;
    int activation;
    const dpc_repformer_layer *layers;
    const double *g1_shape_w;       /* (repinit_dim, g1) or NULL (identity, repinit_dim == g1) */
    const double *tebd_transform_w; /* (tebd_dim, g1) or NULL */
    const double *type_embedding;   /* (ntypes, tebd_dim), read with tebd_transform_w */
    const double *g2_embd_w, *g2_embd_b; /* (g2), (g2) */
} dpc_repformer_stack;

/* doubles of the workspace that forward fills and backward reads (every layer's inputs) */
size_t dpc_repformer_stack_workspace(const dpc_repformer_stack *S, int64_t n, int64_t J);

/* g1_out (n, g1) of the last layer; ws as sized above.  Returns 0 or -1. */
int dpc_repformer_stack_forward(const dpc_repformer_stack *S, int64_t n, int64_t J, const double *D0,
                                const int64_t *types, const double *P, const int64_t *idx, const double *m,
                                const double *sw, int n_threads, double *ws, double *g1_out);

/* from dg1_out (n, g1): dD0 (n, repinit_dim), dP (n, J, 4), dsw (n, J); ws from the forward. */
int dpc_repformer_stack_backward(const dpc_repformer_stack *S, int64_t n, int64_t J, const double *P,
                                 const int64_t *idx, const double *m, const double *sw, const double *ws,
                                 const double *dg1_out, int n_threads, double *dD0, double *dP, double *dsw);

/* The stack on rows of which only some are centers (a domain's atoms plus ghosts, the runtime's frame):
 * depth (n) is a row's message distance from the nearest center (0: a center; every real neighbor of a
 * row of depth d < n_layers has depth <= d + 1; larger values, e.g. INT64_MAX: not needed).  Layer l
 * updates g1 only on rows of depth <= n_layers - 1 - l and g2 only on rows of depth <= n_layers - 2 - l
 * (the rows whose outputs a center's result reads); the other rows keep their inputs.  The centers' g1
 * and every gradient of the centers' result are those of dpc_repformer_stack_forward/backward (dsw
 * on real slots: an empty slot's dsw reads the g1 of its placeholder atom, which may be left as it
 * was; it multiplies a zero switch derivative); dg1_out is read on the centers only.  Cost: the g2 attention (most of the time) runs on the rows within
 * n_layers - 2 message steps of a center instead of all rows.  depth NULL: every row, as the plain calls. */
int dpc_repformer_stack_forward_depth(const dpc_repformer_stack *S, int64_t n, int64_t J, const double *D0,
                                      const int64_t *types, const double *P, const int64_t *idx, const double *m,
                                      const double *sw, const int64_t *depth, int n_threads, double *ws,
                                      double *g1_out);
int dpc_repformer_stack_backward_depth(const dpc_repformer_stack *S, int64_t n, int64_t J, const double *P,
                                       const int64_t *idx, const double *m, const double *sw, const int64_t *depth,
                                       const double *ws, const double *dg1_out, int n_threads, double *dD0,
                                       double *dP, double *dsw);

#endif
