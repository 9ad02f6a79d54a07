/* Fused se_e2_a kernels on tabulated embedding nets, GPU version.
 *
 * Same mathematics, buffers and block modes as the CPU kernels
 * (src_c/dpc_se_a_tab.h, .c): per center atom i of type t
 *
 *   T_i[k][m] = (1/N) ( sum_{real j} Rt_j[k] g_m(Rt_j[0]) + n_pad Rt_pad[k] g_m(Rt_pad[0]) )
 *
 * with the environment rows of dpc_env_mat.h and the tables of dpc_table.h
 * (both compiled here from the same headers as the C kernels).  The nnei x M
 * embedding matrix is never stored.  All offsets are 64-bit; M is unlimited.
 * Each kernel carries the name of its C twin, so a GPU result is checked
 * against the function of the same name (tests/test_gpu.py).
 *
 * Thread mapping
 * --------------
 * dpc_se_a_tab_forward<NCOEF, CPL>: one warp per center atom (grid-stride).
 *   Lanes over channels: lane L owns channels m = c0 + L + 32 c, c < CPL, and
 *   keeps their 4 x CPL accumulators in registers; channel tiles of 32 CPL
 *   channels are looped over when M > 32 CPL (CPL <= 4), so any M works.
 *   Neighbors are taken 32 at a time: lane L computes the environment row,
 *   normalisation and table location of neighbor s0 + L and stages them in
 *   shared memory; then the whole warp walks the 32 staged neighbors, each
 *   lane evaluating its channels' polynomials (coalesced coefficient loads,
 *   coefficient-major rows) and accumulating Rt[k] g_m.  No reduction across
 *   lanes is needed; T[i] is written coalesced along m.
 * dpc_se_a_tab_backward<NCOEF, G>: one warp per center atom; the warp is split in
 *   32/G groups of G lanes, each group takes one neighbor (32/G neighbors per
 *   round), its lanes stride over channels m = q, q + G, ... and accumulate the
 *   five channel sums s_k = sum_m dT[k][m] g_m and sx = sum_m g'_m (Rt dT)_m,
 *   reduced inside the group by a butterfly of shuffles (log2 G steps).  The
 *   group's first lane forms dE/dr_ij from the staged environment derivative.
 *   G trades shuffles (5 log2 G per neighbor) against coalescing (G lanes read
 *   G consecutive channels): G = 8 for M <= 128.
 * dpc_descriptor_from_T / dpc_descriptor_gradient_to_T: one thread per output
 *   element, D = T^T T_<, and dE/dT = T_< dD^T + [T dD]_<, sums in a fixed order.
 * dpc_se_a_tab_forward_radial / dpc_se_a_tab_backward_radial: the radial mode
 *   (se_e2_r: n_rows = 1 of dpc_se_a_tab_forward / _backward, which branch on it
 *   per atom; here it is a kernel of its own), same mappings with one row.
 */
#include "dpc_cuda.cuh"

/* tab_count is dpc_index, the type dpc_table_unpack reads (long under nvcc and g++, long long
 * under NVRTC); the 64-bit scalars stay long long, the C type the launchers pass. */
#define DPC_SE_A_TAB_PARAMS                                                                                           \
    long long natoms, long long nnei, long long nblocks, long long M, double rcut, double rcut_smth,                  \
        double protection, const long long *__restrict__ center_types, const double *__restrict__ vectors,            \
        const long long *__restrict__ counts, const long long *__restrict__ sel_offsets,                              \
        const double *__restrict__ avg, const double *__restrict__ std, const signed char *__restrict__ block_mode,  \
        const long long *__restrict__ table_of, const double *__restrict__ tab_real,                                 \
        const dpc_index *__restrict__ tab_count, const long long *__restrict__ tab_offset,                           \
        const double *__restrict__ coef

/* ------------------------------------------------------------------ forward */

/* T [natoms, 4, M]; with want_beyond, beyond[0][i] / beyond[1][i] = real neighbors of i with
 * x >= upper (beyond the fine table) / outside [xmin, xmax) (linear extrapolation). */
template <int NCOEF, int CPL>
__global__ void __launch_bounds__(128)
    dpc_se_a_tab_forward(DPC_SE_A_TAB_PARAMS, double *__restrict__ T, int want_beyond, long long *__restrict__ beyond)
{
    __shared__ double s_rt[DPC_MAX_WARPS][4][DPC_WARP];
    __shared__ double s_t[DPC_MAX_WARPS][DPC_WARP];
    __shared__ double s_dl[DPC_MAX_WARPS][DPC_WARP];
    __shared__ long long s_row[DPC_MAX_WARPS][DPC_WARP];
    const int w = dpc_warp_in_block(), lane = dpc_lane();
    const double inv_n = 1.0 / (double)nnei;

    for (long long i = dpc_first_warp(); i < natoms; i += dpc_warp_stride()) {
        const long long ti = center_types[i];
        long long n_fine_out = 0, n_table_out = 0; /* this lane's staged neighbors */
        for (long long c0 = 0; c0 < M; c0 += 32 * CPL) {
            double acc[4][CPL];
#pragma unroll
            for (int c = 0; c < CPL; c++) acc[0][c] = acc[1][c] = acc[2][c] = acc[3][c] = 0.0;
            for (long long b = 0; b < nblocks; b++) {
                const long long key = ti * nblocks + b;
                const long long tab = table_of[key];
                if (tab < 0) continue;
                dpc_table_info info;
                dpc_table_unpack(tab_real, tab_count, tab, NCOEF, (int)M, &info);
                const double *cf = coef + tab_offset[tab];
                const double *av = avg + 4 * key, *sd = std + 4 * key;
                const long long sel = sel_offsets[b + 1] - sel_offsets[b];
                const long long nreal = counts[i * nblocks + b];
                const int mode = block_mode[key];
                if (mode == 0) {
                    const double *vec = vectors + (i * nnei + sel_offsets[b]) * 3;
                    for (long long s0 = 0; s0 < nreal; s0 += DPC_WARP) {
                        const long long s = s0 + lane;
                        if (s < nreal) {
                            double R[4], t, delta;
                            dpc_env_mat_row(vec + 3 * s, rcut, rcut_smth, protection, R, (double *)0);
#pragma unroll
                            for (int k = 0; k < 4; k++) s_rt[w][k][lane] = (R[k] - av[k]) / sd[k];
                            const double x = s_rt[w][0][lane];
                            const long long l = dpc_table_locate(&info, x, &t, &delta);
                            if (c0 == 0) {
                                n_fine_out += x >= info.upper;
                                n_table_out += delta != 0.0;
                            }
                            s_t[w][lane] = t;
                            s_dl[w][lane] = delta;
                            s_row[w][lane] = l * NCOEF * M;
                        }
                        __syncwarp();
                        const long long left = nreal - s0;
                        const int nn = left < DPC_WARP ? (int)left : DPC_WARP;
                        for (int q = 0; q < nn; q++) {
                            const double r0 = s_rt[w][0][q], r1 = s_rt[w][1][q], r2 = s_rt[w][2][q], r3 = s_rt[w][3][q];
                            const double t = s_t[w][q], delta = s_dl[w][q];
                            const double *row = cf + s_row[w][q];
                            if (delta == 0.0) { /* warp-uniform */
#pragma unroll
                                for (int c = 0; c < CPL; c++) {
                                    const long long m = c0 + lane + 32 * c;
                                    if (m < M) {
                                        const double g = dpc_poly_value(row + m, M, NCOEF, t);
                                        acc[0][c] += r0 * g;
                                        acc[1][c] += r1 * g;
                                        acc[2][c] += r2 * g;
                                        acc[3][c] += r3 * g;
                                    }
                                }
                            } else {
#pragma unroll
                                for (int c = 0; c < CPL; c++) {
                                    const long long m = c0 + lane + 32 * c;
                                    if (m < M) {
                                        double g, dg;
                                        dpc_poly_eval(row + m, M, NCOEF, t, &g, &dg);
                                        g += delta * dg;
                                        acc[0][c] += r0 * g;
                                        acc[1][c] += r1 * g;
                                        acc[2][c] += r2 * g;
                                        acc[3][c] += r3 * g;
                                    }
                                }
                            }
                        }
                        __syncwarp();
                    }
                }
                /* padding slots (raw R = 0) all share one row: add them at once */
                const long long npad = (mode == 2) ? sel : sel - nreal;
                if (npad > 0) {
                    double Rt[4], t, delta;
                    for (int k = 0; k < 4; k++) Rt[k] = -av[k] / sd[k];
                    const long long l = dpc_table_locate(&info, Rt[0], &t, &delta);
                    const double *row = cf + l * NCOEF * M;
                    const double weight = (double)npad;
                    const double r0 = weight * Rt[0], r1 = weight * Rt[1], r2 = weight * Rt[2], r3 = weight * Rt[3];
#pragma unroll
                    for (int c = 0; c < CPL; c++) {
                        const long long m = c0 + lane + 32 * c;
                        if (m < M) {
                            double g, dg;
                            dpc_poly_eval(row + m, M, NCOEF, t, &g, &dg);
                            if (delta != 0.0) g += delta * dg;
                            acc[0][c] += r0 * g;
                            acc[1][c] += r1 * g;
                            acc[2][c] += r2 * g;
                            acc[3][c] += r3 * g;
                        }
                    }
                }
            }
            double *Ti = T + i * 4 * M;
#pragma unroll
            for (int c = 0; c < CPL; c++) {
                const long long m = c0 + lane + 32 * c;
                if (m < M) {
                    Ti[m] = acc[0][c] * inv_n;
                    Ti[M + m] = acc[1][c] * inv_n;
                    Ti[2 * M + m] = acc[2][c] * inv_n;
                    Ti[3 * M + m] = acc[3][c] * inv_n;
                }
            }
        }
        if (want_beyond) { /* kernel argument: warp-uniform */
            n_fine_out = dpc_warp_sum_ll(n_fine_out);
            n_table_out = dpc_warp_sum_ll(n_table_out);
            if (lane == 0) {
                beyond[i] = n_fine_out;
                beyond[natoms + i] = n_table_out;
            }
        }
    }
}

/* ----------------------------------------------------------------- backward */

/* pair_grad [natoms, nnei, 3] = dE/dr_ij from dT = dE/dT [natoms, 4, M]; 0 on padding and excluded slots. */
template <int NCOEF, int G>
__global__ void __launch_bounds__(128)
    dpc_se_a_tab_backward(DPC_SE_A_TAB_PARAMS, const double *__restrict__ dT, double *__restrict__ pair_grad)
{
    __shared__ double s_rt[DPC_MAX_WARPS][4][DPC_WARP];
    __shared__ double s_dR[DPC_MAX_WARPS][12][DPC_WARP];
    __shared__ double s_t[DPC_MAX_WARPS][DPC_WARP];
    __shared__ double s_dl[DPC_MAX_WARPS][DPC_WARP];
    __shared__ long long s_row[DPC_MAX_WARPS][DPC_WARP];
    const int w = dpc_warp_in_block(), lane = dpc_lane();
    const int NG = DPC_WARP / G, group = lane / G, q = lane % G;
    const double inv_n = 1.0 / (double)nnei;

    for (long long i = dpc_first_warp(); i < natoms; i += dpc_warp_stride()) {
        const long long ti = center_types[i];
        const double *d0 = dT + i * 4 * M, *d1 = d0 + M, *d2 = d0 + 2 * M, *d3 = d0 + 3 * M;
        for (long long b = 0; b < nblocks; b++) {
            const long long key = ti * nblocks + b;
            const long long tab = table_of[key];
            const long long sel = sel_offsets[b + 1] - sel_offsets[b];
            const long long nreal = counts[i * nblocks + b];
            double *grad = pair_grad + (i * nnei + sel_offsets[b]) * 3;
            const int live = tab >= 0 && block_mode[key] == 0;
            for (long long s = (live ? nreal : 0) + lane; s < sel; s += DPC_WARP) {
                grad[3 * s] = 0.0;
                grad[3 * s + 1] = 0.0;
                grad[3 * s + 2] = 0.0;
            }
            if (!live) continue;
            dpc_table_info info;
            dpc_table_unpack(tab_real, tab_count, tab, NCOEF, (int)M, &info);
            const double *cf = coef + tab_offset[tab];
            const double *av = avg + 4 * key, *sd = std + 4 * key;
            const double *vec = vectors + (i * nnei + sel_offsets[b]) * 3;
            for (long long s0 = 0; s0 < nreal; s0 += DPC_WARP) {
                const long long s = s0 + lane;
                if (s < nreal) {
                    double R[4], dR[12], t, delta;
                    dpc_env_mat_row(vec + 3 * s, rcut, rcut_smth, protection, R, dR);
#pragma unroll
                    for (int k = 0; k < 4; k++) s_rt[w][k][lane] = (R[k] - av[k]) / sd[k];
#pragma unroll
                    for (int k = 0; k < 12; k++) s_dR[w][k][lane] = dR[k];
                    const long long l = dpc_table_locate(&info, s_rt[w][0][lane], &t, &delta);
                    s_t[w][lane] = t;
                    s_dl[w][lane] = delta;
                    s_row[w][lane] = l * NCOEF * M;
                }
                __syncwarp();
                const long long left = nreal - s0;
                const int nn = left < DPC_WARP ? (int)left : DPC_WARP;
                for (int r0 = 0; r0 < nn; r0 += NG) { /* warp-uniform */
                    const int n = r0 + group;
                    const int active = n < nn;
                    double p0 = 0.0, p1 = 0.0, p2 = 0.0, p3 = 0.0, px = 0.0;
                    if (active) {
                        const double q0 = s_rt[w][0][n], q1 = s_rt[w][1][n], q2 = s_rt[w][2][n], q3 = s_rt[w][3][n];
                        const double t = s_t[w][n], delta = s_dl[w][n];
                        const double *row = cf + s_row[w][n];
                        for (long long m = q; m < M; m += G) {
                            double g, dg;
                            dpc_poly_eval(row + m, M, NCOEF, t, &g, &dg);
                            g += delta * dg;
                            const double e0 = d0[m], e1 = d1[m], e2 = d2[m], e3 = d3[m];
                            p0 += e0 * g;
                            p1 += e1 * g;
                            p2 += e2 * g;
                            p3 += e3 * g;
                            px += dg * (q0 * e0 + q1 * e1 + q2 * e2 + q3 * e3);
                        }
                    }
                    p0 = dpc_group_sum<G>(p0);
                    p1 = dpc_group_sum<G>(p1);
                    p2 = dpc_group_sum<G>(p2);
                    p3 = dpc_group_sum<G>(p3);
                    px = dpc_group_sum<G>(px);
                    if (active && q == 0) {
                        const double e0 = (p0 + px) * inv_n / sd[0], e1 = p1 * inv_n / sd[1], e2 = p2 * inv_n / sd[2],
                                     e3 = p3 * inv_n / sd[3];
                        double *gr = grad + 3 * (s0 + n);
                        for (int c = 0; c < 3; c++)
                            gr[c] = e0 * s_dR[w][c][n] + e1 * s_dR[w][3 + c][n] + e2 * s_dR[w][6 + c][n] +
                                    e3 * s_dR[w][9 + c][n];
                    }
                }
                __syncwarp();
            }
        }
    }
}

/* ------------------------------------------------------- radial mode (se_e2_r) */

/* The CPU kernels' radial mode (n_rows = 1, dpc_se_a_tab.h): T_i[m] = (1/N) ( sum_real g_m(x_j)
 * + [mode 1] count g_m(0) + n_pad g_m(x_pad) ), x = (R_0 - avg_0) / std_0.  Same mapping as
 * dpc_se_a_tab_forward with one accumulator per channel.  T [natoms, M]. */
template <int NCOEF, int CPL>
__global__ void __launch_bounds__(128)
    dpc_se_a_tab_forward_radial(DPC_SE_A_TAB_PARAMS, double *__restrict__ T, int want_beyond,
                                long long *__restrict__ beyond)
{
    __shared__ double s_t[DPC_MAX_WARPS][DPC_WARP];
    __shared__ double s_dl[DPC_MAX_WARPS][DPC_WARP];
    __shared__ long long s_row[DPC_MAX_WARPS][DPC_WARP];
    const int w = dpc_warp_in_block(), lane = dpc_lane();
    const double inv_n = 1.0 / (double)nnei;

    for (long long i = dpc_first_warp(); i < natoms; i += dpc_warp_stride()) {
        const long long ti = center_types[i];
        long long n_fine_out = 0, n_table_out = 0;
        for (long long c0 = 0; c0 < M; c0 += 32 * CPL) {
            double acc[CPL];
#pragma unroll
            for (int c = 0; c < CPL; c++) acc[c] = 0.0;
            for (long long b = 0; b < nblocks; b++) {
                const long long key = ti * nblocks + b;
                const long long tab = table_of[key];
                if (tab < 0) continue;
                dpc_table_info info;
                dpc_table_unpack(tab_real, tab_count, tab, NCOEF, (int)M, &info);
                const double *cf = coef + tab_offset[tab];
                const double av = avg[4 * key], sd = std[4 * key];
                const long long sel = sel_offsets[b + 1] - sel_offsets[b];
                const long long nreal = counts[i * nblocks + b];
                const int mode = block_mode[key];
                if (mode == 0) {
                    const double *vec = vectors + (i * nnei + sel_offsets[b]) * 3;
                    for (long long s0 = 0; s0 < nreal; s0 += DPC_WARP) {
                        const long long s = s0 + lane;
                        if (s < nreal) {
                            double R0, t, delta;
                            dpc_env_mat_radial(vec + 3 * s, rcut, rcut_smth, protection, &R0, (double *)0);
                            const double x = (R0 - av) / sd;
                            const long long l = dpc_table_locate(&info, x, &t, &delta);
                            if (c0 == 0) {
                                n_fine_out += x >= info.upper;
                                n_table_out += delta != 0.0;
                            }
                            s_t[w][lane] = t;
                            s_dl[w][lane] = delta;
                            s_row[w][lane] = l * NCOEF * M;
                        }
                        __syncwarp();
                        const long long left = nreal - s0;
                        const int nn = left < DPC_WARP ? (int)left : DPC_WARP;
                        for (int q = 0; q < nn; q++) {
                            const double t = s_t[w][q], delta = s_dl[w][q];
                            const double *row = cf + s_row[w][q];
#pragma unroll
                            for (int c = 0; c < CPL; c++) {
                                const long long m = c0 + lane + 32 * c;
                                if (m < M) {
                                    double g, dg;
                                    if (delta == 0.0) {
                                        g = dpc_poly_value(row + m, M, NCOEF, t);
                                    } else {
                                        dpc_poly_eval(row + m, M, NCOEF, t, &g, &dg);
                                        g += delta * dg;
                                    }
                                    acc[c] += 1.0 * g;
                                }
                            }
                        }
                        __syncwarp();
                    }
                }
                /* constant rows: zeroed real rows (mode 1, x = 0) and padding (x = -avg/std) */
                for (int kind = 0; kind < 2; kind++) {
                    const long long weight_n = kind == 0 ? (mode == 1 ? nreal : 0) : (mode == 2 ? sel : sel - nreal);
                    if (weight_n <= 0) continue;
                    double t, delta;
                    const long long l = dpc_table_locate(&info, kind == 0 ? 0.0 : -av / sd, &t, &delta);
                    const double *row = cf + l * NCOEF * M;
                    const double weight = (double)weight_n;
#pragma unroll
                    for (int c = 0; c < CPL; c++) {
                        const long long m = c0 + lane + 32 * c;
                        if (m < M) {
                            double g, dg;
                            dpc_poly_eval(row + m, M, NCOEF, t, &g, &dg);
                            if (delta != 0.0) g += delta * dg;
                            acc[c] += weight * g;
                        }
                    }
                }
            }
#pragma unroll
            for (int c = 0; c < CPL; c++) {
                const long long m = c0 + lane + 32 * c;
                if (m < M) T[i * M + m] = acc[c] * inv_n;
            }
        }
        if (want_beyond) {
            n_fine_out = dpc_warp_sum_ll(n_fine_out);
            n_table_out = dpc_warp_sum_ll(n_table_out);
            if (lane == 0) {
                beyond[i] = n_fine_out;
                beyond[natoms + i] = n_table_out;
            }
        }
    }
}

/* dE/dr_ij = (1/N) (sum_m dT[m] g'_m(x_j)) / std_0 * dR_0/dr_ij; dT [natoms, M].  Mapping of dpc_se_a_tab_backward. */
template <int NCOEF, int G>
__global__ void __launch_bounds__(128)
    dpc_se_a_tab_backward_radial(DPC_SE_A_TAB_PARAMS, const double *__restrict__ dT, double *__restrict__ pair_grad)
{
    __shared__ double s_dR[DPC_MAX_WARPS][3][DPC_WARP];
    __shared__ double s_t[DPC_MAX_WARPS][DPC_WARP];
    __shared__ double s_dl[DPC_MAX_WARPS][DPC_WARP];
    __shared__ long long s_row[DPC_MAX_WARPS][DPC_WARP];
    const int w = dpc_warp_in_block(), lane = dpc_lane();
    const int NG = DPC_WARP / G, group = lane / G, q = lane % G;
    const double inv_n = 1.0 / (double)nnei;

    for (long long i = dpc_first_warp(); i < natoms; i += dpc_warp_stride()) {
        const long long ti = center_types[i];
        const double *d0 = dT + i * M;
        for (long long b = 0; b < nblocks; b++) {
            const long long key = ti * nblocks + b;
            const long long tab = table_of[key];
            const long long sel = sel_offsets[b + 1] - sel_offsets[b];
            const long long nreal = counts[i * nblocks + b];
            double *grad = pair_grad + (i * nnei + sel_offsets[b]) * 3;
            const int live = tab >= 0 && block_mode[key] == 0;
            for (long long s = (live ? nreal : 0) + lane; s < sel; s += DPC_WARP) {
                grad[3 * s] = 0.0;
                grad[3 * s + 1] = 0.0;
                grad[3 * s + 2] = 0.0;
            }
            if (!live) continue;
            dpc_table_info info;
            dpc_table_unpack(tab_real, tab_count, tab, NCOEF, (int)M, &info);
            const double *cf = coef + tab_offset[tab];
            const double av = avg[4 * key], sd = std[4 * key];
            const double *vec = vectors + (i * nnei + sel_offsets[b]) * 3;
            for (long long s0 = 0; s0 < nreal; s0 += DPC_WARP) {
                const long long s = s0 + lane;
                if (s < nreal) {
                    double R0, dR0[3], t, delta;
                    dpc_env_mat_radial(vec + 3 * s, rcut, rcut_smth, protection, &R0, dR0);
                    const long long l = dpc_table_locate(&info, (R0 - av) / sd, &t, &delta);
                    for (int c = 0; c < 3; c++) s_dR[w][c][lane] = dR0[c];
                    s_t[w][lane] = t;
                    s_dl[w][lane] = delta;
                    s_row[w][lane] = l * NCOEF * M;
                }
                __syncwarp();
                const long long left = nreal - s0;
                const int nn = left < DPC_WARP ? (int)left : DPC_WARP;
                for (int r0 = 0; r0 < nn; r0 += NG) { /* warp-uniform */
                    const int n = r0 + group;
                    const int active = n < nn;
                    double px = 0.0;
                    if (active) {
                        const double t = s_t[w][n];
                        const double *row = cf + s_row[w][n];
                        for (long long m = q; m < M; m += G) {
                            double g, dg;
                            dpc_poly_eval(row + m, M, NCOEF, t, &g, &dg);
                            px += dg * d0[m];
                        }
                    }
                    px = dpc_group_sum<G>(px);
                    if (active && q == 0) {
                        const double e0 = px * inv_n / sd;
                        double *gr = grad + 3 * (s0 + n);
                        for (int c = 0; c < 3; c++) gr[c] = e0 * s_dR[w][c][n];
                    }
                }
                __syncwarp();
            }
        }
    }
}

/* ------------------------------------------------------------- D = T^T T_< */

/* D[r, col0 + m * A + a] (row stride ldd) = sum_k T[i][k][m] T[i][k][a], i = rows[r]. */
extern "C" __global__ void dpc_descriptor_from_T(long long nrows, const long long *__restrict__ rows,
                                                 const double *__restrict__ T, long long M, long long A, long long ldd,
                                                 long long col0, double *__restrict__ D)
{
    const long long per_row = M * A;
    for (long long idx = dpc_first_thread(); idx < nrows * per_row; idx += dpc_thread_stride()) {
        const long long r = idx / per_row, rem = idx - r * per_row, m = rem / A, a = rem - m * A;
        const double *Ti = T + rows[r] * 4 * M;
        D[r * ldd + col0 + rem] = ((Ti[m] * Ti[a] + Ti[M + m] * Ti[M + a]) + Ti[2 * M + m] * Ti[2 * M + a]) +
                                  Ti[3 * M + m] * Ti[3 * M + a];
    }
}

/* dT[i][k][m] = sum_a T[i][k][a] dD[r, m A + a] + [m < A] sum_m' T[i][k][m'] dD[r, m' A + m], i = rows[r]
 * (dD row r at dD + r * ldd + col0).  Rows of dT not listed are left alone. */
extern "C" __global__ void dpc_descriptor_gradient_to_T(long long nrows, const long long *__restrict__ rows,
                                                        const double *__restrict__ T, long long M, long long A,
                                                        long long ldd, long long col0, const double *__restrict__ dD,
                                                        double *__restrict__ dT)
{
    const long long per_row = 4 * M;
    for (long long idx = dpc_first_thread(); idx < nrows * per_row; idx += dpc_thread_stride()) {
        const long long r = idx / per_row, rem = idx - r * per_row, k = rem / M, m = rem - k * M;
        const long long i = rows[r];
        const double *Tk = T + (i * 4 + k) * M;
        const double *g = dD + r * ldd + col0;
        double v = 0.0;
        for (long long a = 0; a < A; a++) v += Tk[a] * g[m * A + a];
        if (m < A)
            for (long long mm = 0; mm < M; mm++) v += Tk[mm] * g[mm * A + m];
        dT[(i * 4 + k) * M + m] = v;
    }
}

/* ------------------------------------------------------------ instantiation */

/* NVRTC instantiates what the Python layer names (name_expressions); nvcc
 * builds (the compile checks) and the CPU emulator instantiate every variant. */
#if !defined(__CUDACC_RTC__)
#define DPC_FWD(NC, CPL) template __global__ void dpc_se_a_tab_forward<NC, CPL>(DPC_SE_A_TAB_PARAMS, double *__restrict__, int, long long *__restrict__);
#define DPC_BWD(NC, G) template __global__ void dpc_se_a_tab_backward<NC, G>(DPC_SE_A_TAB_PARAMS, const double *__restrict__, double *__restrict__);
DPC_FWD(4, 1) DPC_FWD(4, 2) DPC_FWD(4, 3) DPC_FWD(4, 4)
DPC_FWD(6, 1) DPC_FWD(6, 2) DPC_FWD(6, 3) DPC_FWD(6, 4)
DPC_BWD(4, 4) DPC_BWD(4, 8) DPC_BWD(4, 16) DPC_BWD(4, 32)
DPC_BWD(6, 4) DPC_BWD(6, 8) DPC_BWD(6, 16) DPC_BWD(6, 32)
#define DPC_RFWD(NC, CPL) template __global__ void dpc_se_a_tab_forward_radial<NC, CPL>(DPC_SE_A_TAB_PARAMS, double *__restrict__, int, long long *__restrict__);
#define DPC_RBWD(NC, G) template __global__ void dpc_se_a_tab_backward_radial<NC, G>(DPC_SE_A_TAB_PARAMS, const double *__restrict__, double *__restrict__);
DPC_RFWD(4, 1) DPC_RFWD(4, 2) DPC_RFWD(4, 3) DPC_RFWD(4, 4)
DPC_RFWD(6, 1) DPC_RFWD(6, 2) DPC_RFWD(6, 3) DPC_RFWD(6, 4)
DPC_RBWD(4, 4) DPC_RBWD(4, 8) DPC_RBWD(4, 16) DPC_RBWD(4, 32)
DPC_RBWD(6, 4) DPC_RBWD(6, 8) DPC_RBWD(6, 16) DPC_RBWD(6, 32)
#undef DPC_FWD
#undef DPC_BWD
#undef DPC_RFWD
#undef DPC_RBWD
#endif
