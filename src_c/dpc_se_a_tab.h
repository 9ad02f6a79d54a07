/* Fused, neighbor-exact se_e2_a kernels on tabulated embedding nets (and their radial se_e2_r and
 * gated se_atten_v2 variants, below).
 *
 * Forward (dpc_se_a_tab_forward), per center atom i of type t:
 *
 *   T_i[k][m] = (1/N) * ( sum over REAL neighbors j (first counts[i][b] slots of each block b)
 *                             Rt_j[k] * g^{(t,b)}_m(Rt_j[0])
 *                       + n_pad(i,b) * Rt_pad[k] * g^{(t,b)}_m(Rt_pad[0]) )
 *
 * where Rt = (R - avg[t][b]) / std[t][b] is the normalised environment row
 * (dpc_env_mat.h), Rt_pad = -avg/std the row of a padding slot (raw R = 0), and
 * g the table of block (t, b) (dpc_table.h).  N = nnei counts padding slots.
 * The G matrix (nnei x M) is never stored: each neighbor's M channel values are
 * accumulated into the 4 x M block straight away.
 *
 * Backward (dpc_se_a_tab_backward), from dT = dE/dT_i:
 *
 *   dE/dRt_j[k] = (1/N) sum_m dT[k][m] g_m(x_j) + [k == 0] (1/N) sum_m g'_m(x_j) sum_k' Rt_j[k'] dT[k'][m]
 *   dE/dr_ij    = sum_k dE/dRt_j[k] / std[k] * dR_k/dr_ij               -> pair_grad[i][slot]
 *
 * Padding slots do not depend on coordinates; their pair_grad is 0.
 *
 * Block modes (per center type t and block b), for the model's type exclusions:
 *   0  normal
 *   1  real rows zeroed (descriptor exclude_types): real neighbors add nothing,
 *      the sel_b - count padding slots still add their term
 *   2  real neighbors removed (model pair_exclude_types): all sel_b slots are padding
 *
 * Two variants share the blocks, tables, exclusion modes and entry points (selected by n_rows / gate):
 *
 * Radial mode (n_rows = 1; se_e2_r): every slot adds its channel values with weight 1 to a single row,
 *   T_i[0][m] = (1/N) * ( sum_real g_m(x_j) + n_pad g_m(x_pad) [+ count g_m(0) in block mode 1] ),
 *   x = Rt[0]; in block mode 1 the zeroed rows have x = 0 and still add g(0) (se_e2_r has no angular
 *   factor that would cancel them).  Backward: dE/dr_ij = (1/N) (sum_m dT[0][m] g'_m(x_j)) / std[0] * dR_0/dr_ij.
 *
 * Gated mode (n_rows = 4, gate != NULL; se_atten_v2 with attention layers 0, one mixed-type block):
 * each real neighbor's channels are scaled by 1 + tau_jm, tau_jm = gate[q][m] * sw(r_ij) with
 * q = gate_index[i][slot] (the type-pair row of the stripped type-embedding table; q = -1: the
 * descriptor excludes the pair, the row is zeroed and adds nothing):
 *   T_i[k][m] = (1/N) ( sum_real Rt_j[k] g_m(x_j) (1 + tau_jm) + n_pad Rt_pad[k] g_m(x_pad) )
 * (padding has sw = 0).  Backward adds to the se_e2_a terms the gate's own dependence on r:
 *   dE/dRt_j[k] = (1/N) sum_m dT[k][m] g_m (1 + tau_m) + [k == 0] (1/N) sum_m g'_m (1 + tau_m) u_m,
 *   dE/dsw_j    = (1/N) sum_m g_m gate[q][m] u_m,        u_m = sum_k Rt_j[k] dT[k][m],
 *   dE/dr_ij    = sum_k dE/dRt_j[k] / std[k] dR_k/dr_ij + dE/dsw_j sw'(r) rhat.
 * Unswitched gated mode (gate_pad != NULL; se_atten v1, DeePMD-kit's smooth_type_embedding false):
 * sw(r) is replaced by 1, tau_jm = gate[q][m], so the dE/dsw term vanishes; the padding slots of a
 * center of type t are gated too, by row gate_pad[t] (the padding type's row):
 *   T_i[k][m] = (1/N) ( sum_real Rt_j[k] g_m(x_j) (1 + gate[q_j][m]) + n_pad Rt_pad[k] g_m(x_pad) (1 + gate[gate_pad[t]][m]) ).
 *
 * Buffers (C-contiguous, row-major; ntypes = number of center types)
 *   center_types [natoms]                int64 in [0, ntypes)
 *   vectors      [natoms, nnei, 3]       r_ij per slot (only the real ones are read)
 *   counts       [natoms, nblocks]       real neighbors per block, <= sel_b
 *   sel_offsets  [nblocks + 1]           slot offsets of the blocks
 *   avg, std     [ntypes, nblocks, 4]    normalisation of each block
 *   block_mode   [ntypes, nblocks]       int8, see above
 *   table_of     [ntypes, nblocks]       table index of the block, -1 if the block has no slots
 *   tab_real     [ntables, 5]            lower, upper, xmax, stride0, stride1
 *   tab_count    [ntables, 3]            n_fine, n_coarse, n_below
 *   tab_offset   [ntables]               start of each table in coef
 *   coef         [...]                   tables, layout of dpc_table.h (ncoef, M shared)
 *   gate         [n_gate_rows, M]        gated mode only (else NULL)
 *   gate_index   [natoms, nnei]          gated mode only: row of gate per slot (real slots read), -1 = zeroed
 *   gate_pad     [ntypes]                unswitched gated mode only (else NULL): gate row of the padding slots
 *   T            [natoms, n_rows, M]     forward output
 *   beyond_fine, beyond_table [natoms]   optional (NULL): real neighbors with x >= upper / outside [lower, xmax)
 *   dT           [natoms, n_rows, M]     backward input
 *   pair_grad    [natoms, nnei, 3]       backward output, dE/dr_ij
 */
#ifndef DPC_SE_A_TAB_H
#define DPC_SE_A_TAB_H

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
    int n_rows;                  /* 4 (se_e2_a, gated) or 1 (radial) */
    const double *gate;          /* gated mode: [n_gate_rows, M]; NULL otherwise */
    const dpc_index *gate_index; /* gated mode: [natoms, nnei], values in [-1, n_gate_rows) */
    dpc_index n_gate_rows;
    const dpc_index *gate_pad;   /* unswitched gated mode: [ntypes] gate row of padding; NULL: switched or no gate */
} dpc_se_a_tab_args;

dpc_status dpc_se_a_tab_forward(const dpc_se_a_tab_args *a, int n_threads, double *T,
                                dpc_index *beyond_fine, dpc_index *beyond_table);

dpc_status dpc_se_a_tab_backward(const dpc_se_a_tab_args *a, int n_threads, const double *dT, double *pair_grad);

/* Forces and per-atom virials from pair gradients, in a fixed (serial) order:
 *   F_i += g_ij, F_j -= g_ij, W_j[a][b] -= g_ij[a] * r_ij[b]   for every slot with index >= 0.
 * The first ncenter of natoms atoms are centers (the rest: ghosts of domain decomposition, which
 * only receive); index, vectors, pair_grad [ncenter, nnei(, 3)] (-1 = padding), index < natoms;
 * force [natoms, 3] and atom_virial [natoms, 9] are accumulated into. */
dpc_status dpc_scatter_pair_gradients(dpc_index ncenter, dpc_index natoms, dpc_index nnei, const dpc_index *index,
                                      const double *vectors, const double *pair_grad, double *force, double *atom_virial);

/* The same scatter for rows of a chunk: row r belongs to center centers[r] (all < natoms);
 * atom_virial may be NULL; virial [9] (or NULL) accumulates -g_ij[a] r_ij[b] in the same order.
 * Indices are trusted (the model runtime built them). */
void dpc_scatter_rows(dpc_index nrows, const dpc_index *centers, dpc_index nnei, const dpc_index *index,
                      const double *vectors, const double *pair_grad, double *force, double *atom_virial,
                      double *virial);

/* D_i = T_i^T T_i[:, :A] per atom: T [natoms, 4, M], D [natoms, M, A] out,
 *   D[m][a] = sum_{k=0..3} T[k][m] T[k][a]   (k ascending).  0 < A <= M. */
dpc_status dpc_descriptor_from_T(dpc_index natoms, dpc_index M, dpc_index A, const double *T, double *D, int n_threads);

/* One atom of dpc_descriptor_from_T: T [4, M] -> D [M, A]. */
void dpc_descriptor_from_T_atom(dpc_index M, dpc_index A, const double *T, double *D);

/* Largest axis_neuron A of dpc_descriptor_gradient_to_T (a per-thread stack buffer of 4 A doubles). */
#define DPC_MAX_AXIS_NEURON 512

/* Chain rule through D = T^T T_<: dT [natoms, 4, M] out from dD [natoms, M, A],
 *   dT[k][m] = sum_a T[k][a] dD[m][a]  +  (m < A ? sum_m' T[k][m'] dD[m'][m] : 0)
 * (the first sum as four partial sums over a = 0, 1, 2, 3 mod 4 added as
 * (s0 + s1) + (s2 + s3); the second in ascending m, added to the first). */
dpc_status dpc_descriptor_gradient_to_T(dpc_index natoms, dpc_index M, dpc_index A, const double *T, const double *dD,
                                        double *dT, int n_threads);

/* One atom of dpc_descriptor_gradient_to_T: T [4, M], dD [M, A] -> dT [4, M]; A <= DPC_MAX_AXIS_NEURON. */
void dpc_descriptor_gradient_to_T_atom(dpc_index M, dpc_index A, const double *T, const double *dD, double *dT);

#endif
