/* NEP (neuroevolution potential) energy, forces and virials: fused CPU kernel.
 *
 * Numpy twin: dpcompress/nep/reference.py (same math, same order of blocks).
 *
 * Buffers (all C-contiguous, T = ntypes, D = dim, nR1 = n_max_R + 1, nA1 = n_max_A + 1;
 * nR1p, nA1p = nR1, nA1 rounded up to a multiple of 4: channel axes are zero-padded so that the
 * kernel's n loops vectorise without remainder):
 *   rc_R, rc_A      [T*T]                 pair cutoffs (t_centre * T + t_neighbour)
 *   c_R             [T*T][nb_R+1][nR1p]   radial expansion coefficients, pair-major, n fastest
 *   c_A             [T*T][nb_A+1][nA1p]
 *   w0 [T][N_neu][D], b0 [T][N_neu], w1 [T][N_neu], b1_type [T], b1 (scalar)
 *   q_scaler [D]
 *   mono [nmono][5] (coefficient, 4 s-indices or -1), block_start [num_L + 1]   angular blocks
 *   zcoef [8][9][9]  Z_lm(z) polynomial coefficients
 *   zbl_kind 0 none / 1 universal ZBL parameters / 2 flexible per-pair parameters
 *   zbl_inner, zbl_outer [T*T], zbl_params [T*T][8], atomic_z [T]
 *   tabulated 1: g_n and g_n' come from quintic tables instead of the Chebyshev sum:
 *     tab_M [2][T*T] intervals on [0, rc_pair], tab_off [2][T*T] offsets into tab_coef,
 *     tab_grid [2][T*T][2] = (w, 1/w), w = rc_pair / M (interval l = floor(r * (1/w)), clamped),
 *     tab_coef[off + (l * 6 + k) * nch_p + n] = a_k of channel n on interval l, nch_p = nR1p or nA1p
 *     (local offset t = r - l * w; part 0 = radial, 1 = angular)
 *
 * Frame: index [N][nnei] (-1 padding), vectors [N][nnei][3] r_ij = r_j - r_i, counts [N].
 * Outputs: atom_energy [N], force [N][3], atom_virial [N][9] row-major
 * W_j^{ab} -= r_ij^a f_ij^b (NEP_CPU split), pair_force [N][nnei][3] scratch (f_ij = dU_i/dr_ij),
 * descriptor [N][D] (after q_scaler) or NULL.
 *
 * Parallel over centre atoms (OpenMP); the scatter into forces/virials is parallel over target
 * atoms but sums every component in serial atom/slot order, so results do not depend on the
 * thread count (bit for bit).
 */
#ifndef DPC_NEP_H
#define DPC_NEP_H

#include "dpc_buffer.h"
#include "dpc_common.h"

typedef struct {
    int64_t ntypes, n_max_R, n_max_A, basis_R, basis_A, l_need, num_L, n_neuron, dim, nmono;
    const double *rc_R, *rc_A, *c_R, *c_A;
    const double *w0, *b0, *w1, *b1_type;
    double b1;
    const double *q_scaler, *mono;
    const int64_t *block_start;
    const double *zcoef;
    int64_t zbl_kind;
    const double *zbl_inner, *zbl_outer, *zbl_params, *atomic_z;
    int64_t tabulated;
    const int64_t *tab_M, *tab_off;
    const double *tab_grid, *tab_coef;
} dpc_nep_model;

/* DPC_OK, or DPC_ERR_ARGUMENT when the model's sizes exceed the kernel's limits. */
int dpc_nep_check(const dpc_nep_model *m);

/* Energies and pair forces of nrows rows: row r is center centers[r] (r without centers), its
 * neighbors index/vectors/counts row-relative, types over all natoms atoms; energy [nrows],
 * pair_force [nrows][nnei][3], descriptor [nrows][D] or NULL, virial_rows [nrows][9] (each
 * center's -sum_j r_ij (x) f_ij) or NULL.  thread_scratch: [n_threads] buffers kept between calls,
 * or NULL. */
int dpc_nep_rows(const dpc_nep_model *m, int64_t nrows, const int64_t *centers, int64_t natoms, const int64_t *types,
                 int64_t nnei, const int64_t *index, const double *vectors, const int64_t *counts, int n_threads,
                 dpc_buffer *thread_scratch, double *energy, double *pair_force, double *descriptor,
                 double *virial_rows);

/* Add the rows' forces and per-atom virials (atom_virial may be NULL) to force [natoms][3]. */
void dpc_nep_scatter_rows(int64_t nrows, const int64_t *centers, int64_t natoms, int64_t nnei, const int64_t *index,
                          const double *vectors, const int64_t *counts, const double *pair_force, int n_threads,
                          double *force, double *atom_virial);

/* The whole frame (every atom a center): outputs overwritten. */
int dpc_nep_compute(const dpc_nep_model *m, int64_t natoms, int64_t nnei, const int64_t *types,
                    const int64_t *index, const double *vectors, const int64_t *counts, int n_threads,
                    double *atom_energy, double *force, double *atom_virial, double *pair_force,
                    double *descriptor);

#endif
