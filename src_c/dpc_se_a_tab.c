#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpc_env_mat.h"
#include "dpc_se_a_tab.h"
#include "dpc_table.h"

/* acc[k][m] += weight * Rt[k] * g_m(x) for all channels; g continued linearly outside the table.
 * NCOEF is a literal at every expansion, so the polynomial's degree branch folds away and the
 * channel loop vectorises. */
#define DPC_ACCUMULATE(NCOEF)                                                   \
    do {                                                                        \
        if (delta == 0.0) {                                                     \
            _Pragma("omp simd")                                                 \
            for (dpc_index m = 0; m < M; m++) {                                 \
                const double g = dpc_poly_value(row + m, M, NCOEF, t);          \
                a0[m] += r0 * g;                                                \
                a1[m] += r1 * g;                                                \
                a2[m] += r2 * g;                                                \
                a3[m] += r3 * g;                                                \
            }                                                                   \
        } else {                                                                \
            _Pragma("omp simd")                                                 \
            for (dpc_index m = 0; m < M; m++) {                                 \
                double g, dg;                                                   \
                dpc_poly_eval(row + m, M, NCOEF, t, &g, &dg);                   \
                g += delta * dg;                                                \
                a0[m] += r0 * g;                                                \
                a1[m] += r1 * g;                                                \
                a2[m] += r2 * g;                                                \
                a3[m] += r3 * g;                                                \
            }                                                                   \
        }                                                                       \
    } while (0)

static inline __attribute__((always_inline)) void accumulate_row(const double *restrict row, dpc_index M, int ncoef,
                                                                 double t, double delta, const double Rt[4],
                                                                 double weight, double *restrict acc)
{
    const double r0 = weight * Rt[0], r1 = weight * Rt[1], r2 = weight * Rt[2], r3 = weight * Rt[3];
    double *restrict a0 = acc, *restrict a1 = acc + M, *restrict a2 = acc + 2 * M, *restrict a3 = acc + 3 * M;
    if (ncoef == 6)
        DPC_ACCUMULATE(6);
    else
        DPC_ACCUMULATE(4);
}

/* Channel sums of the backward pass for one neighbor:
 *   s_k = sum_m dT[k][m] g_m,   sx = sum_m g'_m sum_k Rt[k] dT[k][m]. */
#define DPC_CHANNEL_SUMS(NCOEF)                                                      \
    do {                                                                             \
        _Pragma("omp simd reduction(+ : s0, s1, s2, s3, sx)")                        \
        for (dpc_index m = 0; m < M; m++) {                                          \
            double g, dg;                                                            \
            dpc_poly_eval(row + m, M, NCOEF, t, &g, &dg);                            \
            g += delta * dg;                                                         \
            s0 += d0[m] * g;                                                         \
            s1 += d1[m] * g;                                                         \
            s2 += d2[m] * g;                                                         \
            s3 += d3[m] * g;                                                         \
            sx += dg * (q0 * d0[m] + q1 * d1[m] + q2 * d2[m] + q3 * d3[m]);          \
        }                                                                            \
    } while (0)

/* T_i for one atom; returns the out-of-table counts through the pointers. */
DPC_HOT static void forward_atom(const dpc_se_a_tab_args *a, dpc_index i, double *restrict acc, dpc_index *n_fine_out,
                                 dpc_index *n_table_out)
{
    const dpc_index M = a->n_channels, nb = a->nblocks;
    const dpc_index ti = a->center_types[i];
    memset(acc, 0, sizeof(double) * 4 * M);
    for (dpc_index b = 0; b < nb; b++) {
        const dpc_index key = ti * nb + b;
        const dpc_index tab = a->table_of[key];
        if (tab < 0) continue;
        dpc_table_info info;
        dpc_table_unpack(a->tab_real, a->tab_count, tab, a->ncoef, (int)M, &info);
        const double *coef = a->coef + a->tab_offset[tab];
        const double *avg = a->avg + 4 * key, *std = a->std + 4 * key;
        const dpc_index sel = a->sel_offsets[b + 1] - a->sel_offsets[b];
        const dpc_index nreal = a->counts[i * nb + b];
        const int mode = a->block_mode[key];
        if (mode == 0) {
            const double *vec = a->vectors + (i * a->nnei + a->sel_offsets[b]) * 3;
            for (dpc_index s = 0; s < nreal; s++) {
                double R[4], Rt[4], t, delta;
                dpc_env_mat_row(vec + 3 * s, a->rcut, a->rcut_smth, a->protection, R, NULL);
                for (int k = 0; k < 4; k++) Rt[k] = (R[k] - avg[k]) / std[k];
                const dpc_index l = dpc_table_locate(&info, Rt[0], &t, &delta);
                if (Rt[0] >= info.upper) (*n_fine_out)++;
                if (delta != 0.0) (*n_table_out)++;
                accumulate_row(coef + l * a->ncoef * M, M, a->ncoef, t, delta, Rt, 1.0, acc);
            }
        }
        /* padding slots (raw R = 0) all share one row: add them at once */
        const dpc_index npad = (mode == 2) ? sel : sel - nreal;
        if (npad > 0) {
            double Rt[4], t, delta;
            for (int k = 0; k < 4; k++) Rt[k] = -avg[k] / std[k];
            const dpc_index l = dpc_table_locate(&info, Rt[0], &t, &delta);
            accumulate_row(coef + l * a->ncoef * M, M, a->ncoef, t, delta, Rt, (double)npad, acc);
        }
    }
    const double inv_n = 1.0 / (double)a->nnei;
    for (dpc_index q = 0; q < 4 * M; q++) acc[q] *= inv_n;
}

/* ---- radial mode (se_e2_r): one row, every slot adds g(x) with weight 1 ---------------------- */

/* acc[m] += weight * g_m(x) for all channels (g continued linearly outside the table). */
#define DPC_ACCUMULATE_VALUE(NCOEF)                                             \
    do {                                                                        \
        if (delta == 0.0) {                                                     \
            _Pragma("omp simd")                                                 \
            for (dpc_index m = 0; m < M; m++)                                   \
                acc[m] += weight * dpc_poly_value(row + m, M, NCOEF, t);        \
        } else {                                                                \
            _Pragma("omp simd")                                                 \
            for (dpc_index m = 0; m < M; m++) {                                 \
                double g, dg;                                                   \
                dpc_poly_eval(row + m, M, NCOEF, t, &g, &dg);                   \
                acc[m] += weight * (g + delta * dg);                            \
            }                                                                   \
        }                                                                       \
    } while (0)

static inline __attribute__((always_inline)) void accumulate_value(const double *restrict row, dpc_index M, int ncoef,
                                                                   double t, double delta, double weight,
                                                                   double *restrict acc)
{
    if (ncoef == 6)
        DPC_ACCUMULATE_VALUE(6);
    else
        DPC_ACCUMULATE_VALUE(4);
}

/* weight * g(x) at a constant x (padding or zeroed rows) */
static inline void accumulate_constant(const dpc_se_a_tab_args *a, const dpc_table_info *info, const double *coef,
                                       double x, double weight, double *restrict acc)
{
    double t, delta;
    const dpc_index l = dpc_table_locate(info, x, &t, &delta);
    accumulate_value(coef + l * a->ncoef * a->n_channels, a->n_channels, a->ncoef, t, delta, weight, acc);
}

DPC_HOT static void forward_atom_radial(const dpc_se_a_tab_args *a, dpc_index i, double *restrict acc,
                                        dpc_index *n_fine_out, dpc_index *n_table_out)
{
    const dpc_index M = a->n_channels, nb = a->nblocks;
    const dpc_index ti = a->center_types[i];
    memset(acc, 0, sizeof(double) * M);
    for (dpc_index b = 0; b < nb; b++) {
        const dpc_index key = ti * nb + b;
        const dpc_index tab = a->table_of[key];
        if (tab < 0) continue;
        dpc_table_info info;
        dpc_table_unpack(a->tab_real, a->tab_count, tab, a->ncoef, (int)M, &info);
        const double *coef = a->coef + a->tab_offset[tab];
        const double avg = a->avg[4 * key], std = a->std[4 * key];
        const dpc_index sel = a->sel_offsets[b + 1] - a->sel_offsets[b];
        const dpc_index nreal = a->counts[i * nb + b];
        const int mode = a->block_mode[key];
        if (mode == 0) {
            const double *vec = a->vectors + (i * a->nnei + a->sel_offsets[b]) * 3;
            for (dpc_index s = 0; s < nreal; s++) {
                double R0, t, delta;
                dpc_env_mat_radial(vec + 3 * s, a->rcut, a->rcut_smth, a->protection, &R0, NULL);
                const double x = (R0 - avg) / std;
                const dpc_index l = dpc_table_locate(&info, x, &t, &delta);
                if (x >= info.upper) (*n_fine_out)++;
                if (delta != 0.0) (*n_table_out)++;
                accumulate_value(coef + l * a->ncoef * M, M, a->ncoef, t, delta, 1.0, acc);
            }
        } else if (mode == 1 && nreal > 0) {
            accumulate_constant(a, &info, coef, 0.0, (double)nreal, acc); /* zeroed rows: x = 0 */
        }
        const dpc_index npad = (mode == 2) ? sel : sel - nreal;
        if (npad > 0) accumulate_constant(a, &info, coef, -avg / std, (double)npad, acc);
    }
    const double inv_n = 1.0 / (double)a->nnei;
    for (dpc_index m = 0; m < M; m++) acc[m] *= inv_n;
}

/* ---- gated mode (se_atten): channels scaled by 1 + gate[q][m] * w(r), w = sw(r) (se_atten_v2) or
 * w = 1 (unswitched, se_atten v1: gate_pad set, padding slots gated by their center type's row) ---- */

#define DPC_ACCUMULATE_GATED(NCOEF)                                             \
    do {                                                                        \
        if (delta == 0.0) {                                                     \
            _Pragma("omp simd")                                                 \
            for (dpc_index m = 0; m < M; m++) {                                 \
                const double g = dpc_poly_value(row + m, M, NCOEF, t)           \
                                 * (1.0 + sw * gate[m]);                        \
                a0[m] += r0 * g;                                                \
                a1[m] += r1 * g;                                                \
                a2[m] += r2 * g;                                                \
                a3[m] += r3 * g;                                                \
            }                                                                   \
        } else {                                                                \
            _Pragma("omp simd")                                                 \
            for (dpc_index m = 0; m < M; m++) {                                 \
                double g, dg;                                                   \
                dpc_poly_eval(row + m, M, NCOEF, t, &g, &dg);                   \
                g = (g + delta * dg) * (1.0 + sw * gate[m]);                    \
                a0[m] += r0 * g;                                                \
                a1[m] += r1 * g;                                                \
                a2[m] += r2 * g;                                                \
                a3[m] += r3 * g;                                                \
            }                                                                   \
        }                                                                       \
    } while (0)

static inline __attribute__((always_inline)) void accumulate_row_gated(const double *restrict row, dpc_index M,
                                                                       int ncoef, double t, double delta,
                                                                       const double Rt[4], const double *restrict gate,
                                                                       double sw, double *restrict acc)
{
    const double r0 = Rt[0], r1 = Rt[1], r2 = Rt[2], r3 = Rt[3];
    double *restrict a0 = acc, *restrict a1 = acc + M, *restrict a2 = acc + 2 * M, *restrict a3 = acc + 3 * M;
    if (ncoef == 6)
        DPC_ACCUMULATE_GATED(6);
    else
        DPC_ACCUMULATE_GATED(4);
}

static inline double vector_norm(const double *v) { return sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]); }

DPC_HOT static void forward_atom_gated(const dpc_se_a_tab_args *a, dpc_index i, double *restrict acc,
                                       dpc_index *n_fine_out, dpc_index *n_table_out)
{
    const dpc_index M = a->n_channels, nb = a->nblocks;
    const dpc_index ti = a->center_types[i];
    const int unswitched = a->gate_pad != NULL;
    memset(acc, 0, sizeof(double) * 4 * M);
    for (dpc_index b = 0; b < nb; b++) {
        const dpc_index key = ti * nb + b;
        const dpc_index tab = a->table_of[key];
        if (tab < 0) continue;
        dpc_table_info info;
        dpc_table_unpack(a->tab_real, a->tab_count, tab, a->ncoef, (int)M, &info);
        const double *coef = a->coef + a->tab_offset[tab];
        const double *avg = a->avg + 4 * key, *std = a->std + 4 * key;
        const dpc_index sel = a->sel_offsets[b + 1] - a->sel_offsets[b];
        const dpc_index nreal = a->counts[i * nb + b];
        const int mode = a->block_mode[key];
        if (mode == 0) {
            const dpc_index first = i * a->nnei + a->sel_offsets[b];
            const double *vec = a->vectors + first * 3;
            const dpc_index *gidx = a->gate_index + first;
            for (dpc_index s = 0; s < nreal; s++) {
                if (gidx[s] < 0) continue; /* excluded pair: row zeroed */
                double R[4], Rt[4], t, delta, sw, dsw;
                dpc_env_mat_row(vec + 3 * s, a->rcut, a->rcut_smth, a->protection, R, NULL);
                dpc_switch(vector_norm(vec + 3 * s), a->rcut, a->rcut_smth, &sw, &dsw);
                if (unswitched) sw = 1.0;
                for (int k = 0; k < 4; k++) Rt[k] = (R[k] - avg[k]) / std[k];
                const dpc_index l = dpc_table_locate(&info, Rt[0], &t, &delta);
                if (Rt[0] >= info.upper) (*n_fine_out)++;
                if (delta != 0.0) (*n_table_out)++;
                accumulate_row_gated(coef + l * a->ncoef * M, M, a->ncoef, t, delta, Rt, a->gate + gidx[s] * M, sw, acc);
            }
        }
        /* padding: sw = 0, no gate (switched); the padding row of the gate (unswitched) */
        const dpc_index npad = (mode == 2) ? sel : sel - nreal;
        if (npad > 0) {
            double Rt[4], t, delta;
            for (int k = 0; k < 4; k++) Rt[k] = -avg[k] / std[k];
            const dpc_index l = dpc_table_locate(&info, Rt[0], &t, &delta);
            if (unswitched) {
                double Rw[4];
                for (int k = 0; k < 4; k++) Rw[k] = (double)npad * Rt[k];
                accumulate_row_gated(coef + l * a->ncoef * M, M, a->ncoef, t, delta, Rw, a->gate + a->gate_pad[ti] * M,
                                     1.0, acc);
            } else {
                accumulate_row(coef + l * a->ncoef * M, M, a->ncoef, t, delta, Rt, (double)npad, acc);
            }
        }
    }
    const double inv_n = 1.0 / (double)a->nnei;
    for (dpc_index q = 0; q < 4 * M; q++) acc[q] *= inv_n;
}

static int valid_mode(const dpc_se_a_tab_args *a)
{
    if (a->n_rows == 1) return a->gate == NULL && a->gate_pad == NULL;
    if (a->n_rows != 4) return 0;
    if (a->gate == NULL) return a->gate_pad == NULL;
    return a->gate_index != NULL && a->n_gate_rows > 0;
}

dpc_status dpc_se_a_tab_forward(const dpc_se_a_tab_args *a, int n_threads, double *T,
                                dpc_index *beyond_fine, dpc_index *beyond_table)
{
    if (!valid_mode(a)) return DPC_ERR_ARGUMENT;
    if (n_threads < 1) n_threads = 1;
    const dpc_index stride = a->n_rows * a->n_channels;
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 16)
    for (dpc_index i = 0; i < a->natoms; i++) {
        dpc_index n_fine_out = 0, n_table_out = 0;
        if (a->n_rows == 1)
            forward_atom_radial(a, i, T + i * stride, &n_fine_out, &n_table_out);
        else if (a->gate)
            forward_atom_gated(a, i, T + i * stride, &n_fine_out, &n_table_out);
        else
            forward_atom(a, i, T + i * stride, &n_fine_out, &n_table_out);
        if (beyond_fine) beyond_fine[i] = n_fine_out;
        if (beyond_table) beyond_table[i] = n_table_out;
    }
    return DPC_OK;
}

/* dE/dr_ij for the real slots of one atom. */
DPC_HOT static void backward_atom(const dpc_se_a_tab_args *a, dpc_index i, const double *restrict dT, double *restrict grad_i)
{
    const dpc_index M = a->n_channels, nb = a->nblocks;
    const double inv_n = 1.0 / (double)a->nnei;
    const dpc_index ti = a->center_types[i];
    const double *restrict d0 = dT, *restrict d1 = dT + M, *restrict d2 = dT + 2 * M, *restrict d3 = dT + 3 * M;
    memset(grad_i, 0, sizeof(double) * 3 * a->nnei);
    for (dpc_index b = 0; b < nb; b++) {
        const dpc_index key = ti * nb + b;
        const dpc_index tab = a->table_of[key];
        if (tab < 0 || a->block_mode[key] != 0) continue;
        dpc_table_info info;
        dpc_table_unpack(a->tab_real, a->tab_count, tab, a->ncoef, (int)M, &info);
        const double *coef = a->coef + a->tab_offset[tab];
        const double *avg = a->avg + 4 * key, *std = a->std + 4 * key;
        const dpc_index nreal = a->counts[i * nb + b];
        const double *vec = a->vectors + (i * a->nnei + a->sel_offsets[b]) * 3;
        double *grad = grad_i + a->sel_offsets[b] * 3;
        const int ncoef = a->ncoef;
        for (dpc_index s = 0; s < nreal; s++) {
            double R[4], dR[12], Rt[4], t, delta;
            dpc_env_mat_row(vec + 3 * s, a->rcut, a->rcut_smth, a->protection, R, dR);
            for (int k = 0; k < 4; k++) Rt[k] = (R[k] - avg[k]) / std[k];
            const dpc_index l = dpc_table_locate(&info, Rt[0], &t, &delta);
            const double *row = coef + l * ncoef * M;
            const double q0 = Rt[0], q1 = Rt[1], q2 = Rt[2], q3 = Rt[3];
            double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, sx = 0.0;
            /* simd reduction: a fixed, compiled-in summation order (thread-count independent) */
            if (ncoef == 6)
                DPC_CHANNEL_SUMS(6);
            else
                DPC_CHANNEL_SUMS(4);
            /* dE/dR_k = dE/dRt_k / std_k */
            const double e0 = (s0 + sx) * inv_n / std[0], e1 = s1 * inv_n / std[1], e2 = s2 * inv_n / std[2],
                         e3 = s3 * inv_n / std[3];
            for (int c = 0; c < 3; c++)
                grad[3 * s + c] = e0 * dR[c] + e1 * dR[3 + c] + e2 * dR[6 + c] + e3 * dR[9 + c];
        }
    }
}

/* Radial mode: dE/dr_ij = (1/N) sum_m dT[0][m] g'_m(x_j) / std * dR_0/dr_ij. */
#define DPC_RADIAL_SUM(NCOEF)                                                        \
    do {                                                                             \
        _Pragma("omp simd reduction(+ : sx)")                                        \
        for (dpc_index m = 0; m < M; m++) {                                          \
            double g, dg;                                                            \
            dpc_poly_eval(row + m, M, NCOEF, t, &g, &dg);                            \
            sx += dg * d0[m];                                                        \
        }                                                                            \
    } while (0)

DPC_HOT static void backward_atom_radial(const dpc_se_a_tab_args *a, dpc_index i, const double *restrict d0,
                                         double *restrict grad_i)
{
    const dpc_index M = a->n_channels, nb = a->nblocks;
    const double inv_n = 1.0 / (double)a->nnei;
    const dpc_index ti = a->center_types[i];
    memset(grad_i, 0, sizeof(double) * 3 * a->nnei);
    for (dpc_index b = 0; b < nb; b++) {
        const dpc_index key = ti * nb + b;
        const dpc_index tab = a->table_of[key];
        if (tab < 0 || a->block_mode[key] != 0) continue;
        dpc_table_info info;
        dpc_table_unpack(a->tab_real, a->tab_count, tab, a->ncoef, (int)M, &info);
        const double *coef = a->coef + a->tab_offset[tab];
        const double avg = a->avg[4 * key], std = a->std[4 * key];
        const dpc_index nreal = a->counts[i * nb + b];
        const double *vec = a->vectors + (i * a->nnei + a->sel_offsets[b]) * 3;
        double *grad = grad_i + a->sel_offsets[b] * 3;
        for (dpc_index s = 0; s < nreal; s++) {
            double R0, dR0[3], t, delta;
            dpc_env_mat_radial(vec + 3 * s, a->rcut, a->rcut_smth, a->protection, &R0, dR0);
            const dpc_index l = dpc_table_locate(&info, (R0 - avg) / std, &t, &delta);
            const double *row = coef + l * a->ncoef * M;
            double sx = 0.0;
            if (a->ncoef == 6)
                DPC_RADIAL_SUM(6);
            else
                DPC_RADIAL_SUM(4);
            const double e0 = sx * inv_n / std;
            for (int c = 0; c < 3; c++) grad[3 * s + c] = e0 * dR0[c];
        }
    }
}

/* Gated mode: the se_e2_a channel sums with g (1 + tau), plus st = sum_m g_m gate_m u_m for the switch. */
#define DPC_CHANNEL_SUMS_GATED(NCOEF)                                                \
    do {                                                                             \
        _Pragma("omp simd reduction(+ : s0, s1, s2, s3, sx, st)")                    \
        for (dpc_index m = 0; m < M; m++) {                                          \
            double g, dg;                                                            \
            dpc_poly_eval(row + m, M, NCOEF, t, &g, &dg);                            \
            g += delta * dg;                                                         \
            const double h = 1.0 + sw * gate[m];                                     \
            const double u = q0 * d0[m] + q1 * d1[m] + q2 * d2[m] + q3 * d3[m];      \
            const double gh = g * h;                                                 \
            s0 += d0[m] * gh;                                                        \
            s1 += d1[m] * gh;                                                        \
            s2 += d2[m] * gh;                                                        \
            s3 += d3[m] * gh;                                                        \
            sx += dg * h * u;                                                        \
            st += g * gate[m] * u;                                                   \
        }                                                                            \
    } while (0)

DPC_HOT static void backward_atom_gated(const dpc_se_a_tab_args *a, dpc_index i, const double *restrict dT,
                                        double *restrict grad_i)
{
    const dpc_index M = a->n_channels, nb = a->nblocks;
    const double inv_n = 1.0 / (double)a->nnei;
    const dpc_index ti = a->center_types[i];
    const int unswitched = a->gate_pad != NULL;
    const double *restrict d0 = dT, *restrict d1 = dT + M, *restrict d2 = dT + 2 * M, *restrict d3 = dT + 3 * M;
    memset(grad_i, 0, sizeof(double) * 3 * a->nnei);
    for (dpc_index b = 0; b < nb; b++) {
        const dpc_index key = ti * nb + b;
        const dpc_index tab = a->table_of[key];
        if (tab < 0 || a->block_mode[key] != 0) continue;
        dpc_table_info info;
        dpc_table_unpack(a->tab_real, a->tab_count, tab, a->ncoef, (int)M, &info);
        const double *coef = a->coef + a->tab_offset[tab];
        const double *avg = a->avg + 4 * key, *std = a->std + 4 * key;
        const dpc_index nreal = a->counts[i * nb + b];
        const dpc_index first = i * a->nnei + a->sel_offsets[b];
        const double *vec = a->vectors + first * 3;
        const dpc_index *gidx = a->gate_index + first;
        double *grad = grad_i + a->sel_offsets[b] * 3;
        const int ncoef = a->ncoef;
        for (dpc_index s = 0; s < nreal; s++) {
            if (gidx[s] < 0) continue;
            double R[4], dR[12], Rt[4], t, delta, sw, dsw;
            const double *v = vec + 3 * s;
            dpc_env_mat_row(v, a->rcut, a->rcut_smth, a->protection, R, dR);
            const double r = vector_norm(v);
            dpc_switch(r, a->rcut, a->rcut_smth, &sw, &dsw);
            if (unswitched) { /* w = 1: the gate does not depend on r */
                sw = 1.0;
                dsw = 0.0;
            }
            for (int k = 0; k < 4; k++) Rt[k] = (R[k] - avg[k]) / std[k];
            const dpc_index l = dpc_table_locate(&info, Rt[0], &t, &delta);
            const double *row = coef + l * ncoef * M;
            const double *restrict gate = a->gate + gidx[s] * M;
            const double q0 = Rt[0], q1 = Rt[1], q2 = Rt[2], q3 = Rt[3];
            double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, sx = 0.0, st = 0.0;
            if (ncoef == 6)
                DPC_CHANNEL_SUMS_GATED(6);
            else
                DPC_CHANNEL_SUMS_GATED(4);
            const double e0 = (s0 + sx) * inv_n / std[0], e1 = s1 * inv_n / std[1], e2 = s2 * inv_n / std[2],
                         e3 = s3 * inv_n / std[3];
            const double es = st * inv_n * dsw / r; /* dE/dsw * sw'(r) / r, times r_ij below */
            for (int c = 0; c < 3; c++)
                grad[3 * s + c] = e0 * dR[c] + e1 * dR[3 + c] + e2 * dR[6 + c] + e3 * dR[9 + c] + es * v[c];
        }
    }
}

dpc_status dpc_se_a_tab_backward(const dpc_se_a_tab_args *a, int n_threads, const double *dT, double *pair_grad)
{
    if (!valid_mode(a)) return DPC_ERR_ARGUMENT;
    if (n_threads < 1) n_threads = 1;
    const dpc_index stride = a->n_rows * a->n_channels;
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 16)
    for (dpc_index i = 0; i < a->natoms; i++) {
        if (a->n_rows == 1)
            backward_atom_radial(a, i, dT + i * stride, pair_grad + i * a->nnei * 3);
        else if (a->gate)
            backward_atom_gated(a, i, dT + i * stride, pair_grad + i * a->nnei * 3);
        else
            backward_atom(a, i, dT + i * stride, pair_grad + i * a->nnei * 3);
    }
    return DPC_OK;
}

void dpc_scatter_rows(dpc_index nrows, const dpc_index *centers, dpc_index nnei, const dpc_index *index,
                      const double *vectors, const double *pair_grad, double *force, double *atom_virial,
                      double *virial)
{
    for (dpc_index r = 0; r < nrows; r++) {
        const dpc_index i = centers[r];
        double wi[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0}; /* this center's share of the total virial */
        for (dpc_index s = 0; s < nnei; s++) {
            const dpc_index p = r * nnei + s;
            const dpc_index j = index[p];
            if (j < 0) continue;
            const double *g = pair_grad + 3 * p, *v = vectors + 3 * p;
            for (int c = 0; c < 3; c++) {
                force[3 * i + c] += g[c];
                force[3 * j + c] -= g[c];
            }
            double *w = atom_virial ? atom_virial + 9 * j : NULL;
            for (int x = 0; x < 3; x++)
                for (int y = 0; y < 3; y++) {
                    const double gv = g[x] * v[y]; /* one product for both sums (this function is never contracted: not DPC_HOT) */
                    if (w) w[3 * x + y] -= gv;
                    wi[3 * x + y] -= gv;
                }
        }
        if (virial)
            for (int q = 0; q < 9; q++) virial[q] += wi[q];
    }
}

dpc_status dpc_scatter_pair_gradients(dpc_index ncenter, dpc_index natoms, dpc_index nnei, const dpc_index *index,
                                      const double *vectors, const double *pair_grad, double *force, double *atom_virial)
{
    if (ncenter < 0 || ncenter > natoms || nnei < 0) return DPC_ERR_ARGUMENT;
    for (dpc_index i = 0; i < ncenter; i++) {
        for (dpc_index s = 0; s < nnei; s++) {
            const dpc_index p = i * nnei + s;
            const dpc_index j = index[p];
            if (j < 0) continue;
            if (j >= natoms) return DPC_ERR_INDEX;
            const double *g = pair_grad + 3 * p, *r = vectors + 3 * p;
            for (int c = 0; c < 3; c++) {
                force[3 * i + c] += g[c];
                force[3 * j + c] -= g[c];
            }
            double *w = atom_virial + 9 * j;
            for (int x = 0; x < 3; x++)
                for (int y = 0; y < 3; y++) w[3 * x + y] -= g[x] * r[y];
        }
    }
    return DPC_OK;
}

/* D = T^T T_< and its chain rule: 4 x M x A multiply-adds per atom, done here
 * rather than as batched BLAS calls so that they run on the kernels' threads
 * (BLAS threads spinning beside OpenMP ones cost more than the products). */
DPC_HOT void dpc_descriptor_from_T_atom(dpc_index M, dpc_index A, const double *restrict T, double *restrict D)
{
    for (dpc_index m = 0; m < M; m++) {
        double *restrict row = D + m * A;
        const double t0 = T[m], t1 = T[M + m], t2 = T[2 * M + m], t3 = T[3 * M + m];
        for (dpc_index c = 0; c < A; c++)
            row[c] = ((t0 * T[c] + t1 * T[M + c]) + t2 * T[2 * M + c]) + t3 * T[3 * M + c];
    }
}

dpc_status dpc_descriptor_from_T(dpc_index natoms, dpc_index M, dpc_index A, const double *T, double *D, int n_threads)
{
    const int nt = n_threads < 1 ? 1 : n_threads;
    if (natoms < 0 || A < 1 || A > M) return DPC_ERR_ARGUMENT;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (dpc_index i = 0; i < natoms; i++) dpc_descriptor_from_T_atom(M, A, T + i * 4 * M, D + i * M * A);
    (void)nt;
    return DPC_OK;
}

DPC_HOT void dpc_descriptor_gradient_to_T_atom(dpc_index M, dpc_index A, const double *restrict T,
                                               const double *restrict dD, double *restrict dT)
{
    /* one pass over the rows of dD (each read once, for the four k) */
    double second[4 * DPC_MAX_AXIS_NEURON];
    for (dpc_index c = 0; c < 4 * A; c++) second[c] = 0.0;
    for (dpc_index m = 0; m < M; m++) {
        const double *restrict g = dD + m * A;
        for (int k = 0; k < 4; k++) {
            const double *restrict Tk = T + k * M;
            /* four interleaved partial sums (lane c % 4), so that the dot
             * product is not one serial chain of multiply-adds */
            double p0 = 0.0, p1 = 0.0, p2 = 0.0, p3 = 0.0;
            dpc_index c = 0;
            for (; c + 4 <= A; c += 4) {
                p0 += Tk[c] * g[c];
                p1 += Tk[c + 1] * g[c + 1];
                p2 += Tk[c + 2] * g[c + 2];
                p3 += Tk[c + 3] * g[c + 3];
            }
            for (; c < A; c++) p0 += Tk[c] * g[c];
            dT[k * M + m] = (p0 + p1) + (p2 + p3);
            const double t = Tk[m];
            double *restrict acc = second + k * A;
            for (c = 0; c < A; c++) acc[c] += t * g[c];
        }
    }
    for (int k = 0; k < 4; k++)
        for (dpc_index c = 0; c < A; c++) dT[k * M + c] += second[k * A + c];
}

dpc_status dpc_descriptor_gradient_to_T(dpc_index natoms, dpc_index M, dpc_index A, const double *T, const double *dD,
                                        double *dT, int n_threads)
{
    const int nt = n_threads < 1 ? 1 : n_threads;
    if (natoms < 0 || A < 1 || A > M || A > DPC_MAX_AXIS_NEURON) return DPC_ERR_ARGUMENT;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (dpc_index i = 0; i < natoms; i++)
        dpc_descriptor_gradient_to_T_atom(M, A, T + i * 4 * M, dD + i * M * A, dT + i * 4 * M);
    (void)nt;
    return DPC_OK;
}
