/* Fused, neighbor-exact se_e3 (se_t) kernels on tabulated embedding nets.
 *
 * Forward (dpc_se_t_tab_forward), per center atom i of type t, over the
 * neighbor-type block pairs a <= b (blocks = neighbor types):
 *
 *   D_i[m] = sum_{a <= b} 1/(sel_a sel_b) sum_{j in a, k in b} w_j w_k e_jk g^{(a,b)}_m(e_jk),
 *   e_jk   = rr_j . rr_k,   rr_j = (R_j[1:4] - avg[t][blk][1:4]) / std[t][blk][1:4]
 *
 * "Rows" j are the real neighbors of a block (the first counts[i][b] slots;
 * weight w = 1) plus, only when the padding row rr_pad = -avg/std is non-zero
 * (never for DeePMD-kit's statistics, whose angular average is 0), one row
 * standing for the block's n_pad padding slots with weight w = n_pad.  Zero
 * rows (padding with zero average, rows zeroed by exclusions) give e = 0 with
 * zero gradient and are skipped.  Inside a diagonal block pair (a == b) only
 * j <= k is visited, the off-diagonal terms counted twice (e_jk = e_kj).
 * The nj x nk x M tensor of embedding values is never stored: each pair's M
 * channel values are accumulated into D_i straight away.
 *
 * Backward (dpc_se_t_tab_backward), from dD = dE/dD_i:
 *
 *   de_jk      = w_j w_k / (sel_a sel_b) * sum_m dD[m] (g_m(e_jk) + e_jk g'_m(e_jk))
 *   dE/drr_j  += de_jk rr_k,   dE/drr_k += de_jk rr_j
 *   dE/dr_ij   = sum_{c=1..3} dE/drr_j[c] / std[c] * dR_c/dr_ij     -> pair_grad[i][slot]
 *
 * (rr does not depend on the radial component R_0.)  Padding slots and zeroed
 * rows get pair_grad = 0.
 *
 * Block modes (per center type t and block b), as in dpc_se_a_tab.h:
 *   0 normal;  1 real rows zeroed (descriptor exclude_types);  2 real neighbors
 *   removed (model pair_exclude_types): all sel_b slots are padding.
 *
 * Buffers (C-contiguous, row-major; ntypes = number of center types)
 *   center_types [natoms]                int64 in [0, ntypes)
 *   vectors      [natoms, nnei, 3]       r_ij per slot (only the real ones are read)
 *   counts       [natoms, nblocks]       real neighbors per block, <= sel_b
 *   sel_offsets  [nblocks + 1]           slot offsets of the blocks
 *   avg, std     [ntypes, nblocks, 4]    normalisation of each block (component 0 unused)
 *   block_mode   [ntypes, nblocks]       int8, see above
 *   table_of     [nblocks, nblocks]      table of the block pair (a, b), a <= b; -1 = none
 *                                        (a > b, or a block without slots)
 *   tab_real     [ntables, 5]            lower, upper, xmax, stride0, stride1
 *   tab_count    [ntables, 3]            n_fine, n_coarse, n_below
 *   tab_offset   [ntables]               start of each table in coef
 *   coef         [...]                   tables, layout of dpc_table.h (ncoef, M shared)
 *   D            [natoms, M]             forward output
 *   beyond_fine, beyond_table [natoms]   optional (NULL): entries e_jk between two real
 *                                        neighbors (ordered pairs) outside [lower, upper) /
 *                                        outside [xmin, xmax)
 *   dD           [natoms, M]             backward input
 *   pair_grad    [natoms, nnei, 3]       backward output, dE/dr_ij
 *
 * Gated mode (gate != NULL; se_e3_tebd: one mixed-type block, zero avg so no padding row):
 * every pair is scaled channel by channel by the type-pair gate of DeePMD-kit's stripped type
 * embedding, tt = gate [n_gate_types^2, M] (row a n_gate_types + b: slot j of type a first, slot k
 * of type b second; n_gate_types = ntypes + 1, the last type standing for padding):
 *
 *   D_i[m] = 1/N^2 sum_{j,k} e_jk g_m(e_jk) (1 + tt[q_jk][m] p_jk),   p_jk = sw(r_j) sw(r_k)
 *
 * (p_jk = 1 when gate_unswitched: DeePMD-kit's smooth false).  The j <= k walk takes both orders at
 * once, (1 + tt[q_jk] p) + (1 + tt[q_kj] p) = 2 (1 + p (tt[q_jk] + tt[q_kj])/2), and the backward
 * pass adds the switch's own dependence on r:
 *
 *   dE/dp_jk   = mult/N^2 e_jk sum_m dD[m] g_m (tt[q_jk][m] + tt[q_kj][m]) / 2
 *   dE/dsw_j  += dE/dp_jk sw_k,   dE/dsw_k += dE/dp_jk sw_j,   dE/dr_ij += dE/dsw_j sw'(r) rhat
 *
 * neighbor_type [natoms, nnei] gives each real slot's type (in [0, n_gate_types - 1)), or -1 for a
 * neighbor of an excluded type pair (exclude_types: its row is zeroed, so it adds nothing).
 *
 * Each atom's result depends on that atom only, in a fixed summation order,
 * so any thread count gives identical numbers.  Returns DPC_ERR_ALLOC when the
 * per-thread scratch (11 (nnei + nblocks) + nblocks + M values of 8 bytes) cannot be allocated.
 */
#ifndef DPC_SE_T_TAB_H
#define DPC_SE_T_TAB_H

#include "dpc_buffer.h"
#include "dpc_common.h"

typedef struct {
    dpc_index natoms, nnei, ntypes, nblocks, ntables, n_channels;
    int ncoef;
    double rcut, rcut_smth, protection;
    const dpc_index *center_types;
    const double *vectors;
    const dpc_index *counts;
    const dpc_index *sel_offsets;
    const double *avg, *std;
    const signed char *block_mode;
    const dpc_index *table_of;
    const double *tab_real;
    const dpc_index *tab_count;
    const dpc_index *tab_offset;
    const double *coef;
    dpc_buffer *thread_scratch; /* [n_threads] kept between calls, or NULL (allocated per call) */
    /* gated mode (se_e3_tebd); gate NULL: plain se_e3 */
    const double *gate;             /* [n_gate_types^2, M] */
    dpc_index n_gate_types;         /* ntypes + 1 */
    const dpc_index *neighbor_type; /* [natoms, nnei] type of each real slot */
    int gate_unswitched;            /* 1: p_jk = 1 (no switch in the gate) */
} dpc_se_t_tab_args;

dpc_status dpc_se_t_tab_forward(const dpc_se_t_tab_args *a, int n_threads, double *D, dpc_index *beyond_fine,
                                dpc_index *beyond_table);

dpc_status dpc_se_t_tab_backward(const dpc_se_t_tab_args *a, int n_threads, const double *dD, double *pair_grad);

#endif
