/* DPA-1 with attention layers on a tabulated geometric net (part kind 6); numpy twin:
 * dpcompress/reference/attention.py (same function names).
 *
 * Per center atom i (one mixed-type block of N = nnei slots; its n real neighbors first):
 *
 *   X0_j[m] = g_m(x_j) (1 + w_j gate[q_j][m]),  x_j = Rt_j[0],  w_j = sw(r_j) (smooth) or 1
 *   L attention layers (dpcompress/descriptors/dpa1_attention.py has the math), each
 *     [q|k|v] = X W_in + b_in; q, k, v rows normalised (normalize); Lam = alpha q k^T;
 *     A0 = softmax over k of Lam (real k only) or, smooth, of (Lam + c) w_j w_k - c over all N slots
 *     (the N - n padding slots have the constant logit -c); A = A0 (w_j w_k if smooth) (rhat_j.rhat_k if dotr);
 *     X' = LayerNorm(X + (A v) W_out + b_out)
 *   T_i[k][m] = (1/N) sum_j Rt_j[k] X^L_j[m]
 *
 * Only the n real rows are computed: with davg = 0 (checked when the model is opened) a padding slot
 * has Rt = 0, and its row reaches neither T nor the real rows (masked or switched off).
 * rhat_j = Rt_j[1:4] / max(|Rt_j[1:4]|, 1e-12), and sw(r) is evaluated in DeePMD-kit's operation order
 * (u2 = u*u; s = u2 u (-6 u2 + 15 u - 10) + 1): within ~1e-4 A of rcut sw is round-off, and the
 * floored direction passes it on.
 *
 * Backward: the forward pass of the center is recomputed with its caches (per-thread workspace), then
 * the adjoint of every step (the exact evaluator's formulas, dpcompress/evaluators/exact/dpa1_attention.py),
 * and pair_grad[i][j] = sum_k dE/dRt_j[k] / std[k] dR_k/dr_ij + dE/dw_j sw'(r) r_ij / r.
 * Every sum runs in a fixed order per center: results do not depend on the thread count.
 */
#ifndef DPC_ATTENTION_H
#define DPC_ATTENTION_H

#include "dpc_buffer.h"
#include "dpc_common.h"
#include "dpc_se_a_tab.h"

/* DeePMD-kit's logit shift of the smooth attention */
#define DPC_ATTENTION_SHIFT 20.0
/* floor of |Rt[1:4]| in the direction rhat */
#define DPC_ATTENTION_DIR_EPS 1e-12

typedef struct {
    dpc_index n_layers, hidden; /* L, d (one head) */
    double alpha;               /* logit scale */
    int normalize, dotr, smooth;
    const double *w_in;   /* [L][M][3d] */
    const double *b_in;   /* [L][3d] */
    const double *w_out;  /* [L][d][M] */
    const double *b_out;  /* [L][M] */
    const double *ln;     /* [L][2][M]: gamma, beta */
    const double *ln_eps; /* [L] */
} dpc_attention_params;

/* T [natoms][4][M]; beyond_fine / beyond_table [natoms] or NULL (as dpc_se_a_tab_forward).
 * a: gated mode, one block (a->gate, a->gate_index set).  thread_scratch: [n_threads] buffers kept
 * between calls (the runtime's workspace), or NULL (allocated per call). */
dpc_status dpc_dpa1_forward(const dpc_se_a_tab_args *a, const dpc_attention_params *att, dpc_buffer *thread_scratch,
                            int n_threads, double *T, dpc_index *beyond_fine, dpc_index *beyond_table);

/* pair_grad [natoms][nnei][3] = dE/dr_ij from dT [natoms][4][M] (0 on padding slots). */
dpc_status dpc_dpa1_backward(const dpc_se_a_tab_args *a, const dpc_attention_params *att, dpc_buffer *thread_scratch,
                             int n_threads, const double *dT, double *pair_grad);

#endif
