/* Construction of embedding-net tables (grid, layout, formulas: dpc_table.h).
 *
 * A dense net is passed as flat buffers so that any layer stack fits one
 * struct: layer k maps width[k] -> width[k+1] with
 *
 *     y_k = d_k * phi_k(y_{k-1} W_k + b_k) + rho_k(y_{k-1})
 *
 * W_k row-major (width[k] x width[k+1]) at weights + w_offset[k], b_k at
 * bias + b_offset[k], d_k (resnet_dt "idt") at idt + idt_offset[k]; a negative
 * offset means "absent" (b = 0, d = 1).  rho_k is given by residual[k]:
 * DPC_RESIDUAL_NONE, _IDENTITY (width[k+1] == width[k]) or _DOUBLE
 * (width[k+1] == 2 width[k], rho(v) = [v, v]).  The numpy twin is
 * dpcompress/reference/networks.py (Layer rule and embedding_with_derivatives).
 */
#ifndef DPC_TABLE_BUILD_H
#define DPC_TABLE_BUILD_H

#include "dpc_common.h"

enum { DPC_RESIDUAL_NONE = 0, DPC_RESIDUAL_IDENTITY = 1, DPC_RESIDUAL_DOUBLE = 2 };

typedef struct {
    int n_layers;
    const dpc_index *width;      /* n_layers + 1 widths */
    const int *activation;       /* n_layers DPC_ACT_* codes (dpc_activations.h) */
    const int *residual;         /* n_layers DPC_RESIDUAL_* */
    const double *weights;
    const dpc_index *w_offset;   /* n_layers */
    const double *bias;          /* may be NULL when every b_offset < 0 */
    const dpc_index *b_offset;
    const double *idt;           /* may be NULL when every idt_offset < 0 */
    const dpc_index *idt_offset;
} dpc_dense_net;

/* Check the structure of a net (codes, residual widths, offsets present where
 * used).  Buffer lengths are the caller's responsibility. */
dpc_status dpc_dense_net_check(const dpc_dense_net *net);

/* Value, first and second derivative of a scalar-input net (width[0] == 1) at
 * n points, forward mode:
 *     out[(p*3 + 0)*M + m] = g_m(x_p), [.. 1 ..] = g_m'(x_p), [.. 2 ..] = g_m''(x_p)
 * with M = width[n_layers].  Parallel over points; the result does not depend
 * on n_threads (every point is computed alone, in a fixed order). */
dpc_status dpc_embedding_derivatives(const dpc_dense_net *net, dpc_index n, const double *x, int n_threads, double *out);

/* Hermite table of a scalar-input net on the nodes x[0 .. n_below + n_fine + n_coarse]:
 * interval l has width stride0 for n_below <= l < n_below + n_fine, else stride1
 * (the widths are the strides themselves, not x[l+1] - x[l], so that they agree
 * with the lookup in dpc_table.h).  order 5: quintic from (y, y', y''), order 3: cubic from (y, y').
 *     coef[(l*(order+1) + k)*M + m] = a_k of channel m on interval l.
 * node_data (3 * n_nodes * M, layout of dpc_embedding_derivatives) receives the
 * node values when not NULL.  Returns DPC_ERR_NONFINITE when a node value or
 * derivative is NaN or infinite, DPC_ERR_ARGUMENT on inconsistent sizes. */
dpc_status dpc_build_table(const dpc_dense_net *net, dpc_index n_below, dpc_index n_fine, dpc_index n_coarse, double stride0,
                           double stride1, const double *x, int order, int n_threads, double *coef,
                           double *node_data);

#endif
