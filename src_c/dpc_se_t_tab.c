/* Fused se_e3 (se_t) kernels on tables; math, buffers and conventions in dpc_se_t_tab.h.
 * Numpy twin: dpcompress/reference/se_t_tab.py. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpc_env_mat.h"
#include "dpc_se_t_tab.h"
#include "dpc_table.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Per-thread scratch: the rows of one atom and what the passes accumulate. */
typedef struct {
    double *rr;       /* [nrows][3] angular parts of the normalised rows */
    double *w;        /* [nrows] multiplicity (1, or n_pad for a padding row) */
    dpc_index *slot;  /* [nrows] slot of a real row, -1 for a padding row */
    dpc_index *start; /* [nblocks + 1] first row of each block */
    double *grad;     /* [nrows][3] dE/drr (backward) */
    double *acc;      /* [M] (forward) */
    dpc_index *type;  /* [nrows] gated: neighbor type (n_gate_types - 1 for a padding row) */
    double *sw;       /* [nrows] gated: sw(r), or 1 when unswitched */
    double *gsw;      /* [nrows] gated: dE/dsw (backward) */
} scratch_t;

/* Carve the scratch out of buf (grown as needed); 0 when out of memory. */
static int scratch_take(scratch_t *s, const dpc_se_t_tab_args *a, dpc_buffer *buf)
{
    const size_t nrows = (size_t)(a->nnei + a->nblocks);
    const size_t sizes[9] = {sizeof(double) * 3 * nrows, sizeof(double) * nrows, sizeof(dpc_index) * nrows,
                             sizeof(dpc_index) * (size_t)(a->nblocks + 1), sizeof(double) * 3 * nrows,
                             sizeof(double) * (size_t)a->n_channels, sizeof(dpc_index) * nrows,
                             sizeof(double) * nrows, sizeof(double) * nrows};
    size_t total = 0;
    for (int k = 0; k < 9; k++) dpc_carve(NULL, &total, sizes[k]);
    char *base = (char *)dpc_buffer_reserve(buf, total);
    if (!base) return 0;
    size_t off = 0;
    s->rr = (double *)dpc_carve(base, &off, sizes[0]);
    s->w = (double *)dpc_carve(base, &off, sizes[1]);
    s->slot = (dpc_index *)dpc_carve(base, &off, sizes[2]);
    s->start = (dpc_index *)dpc_carve(base, &off, sizes[3]);
    s->grad = (double *)dpc_carve(base, &off, sizes[4]);
    s->acc = (double *)dpc_carve(base, &off, sizes[5]);
    s->type = (dpc_index *)dpc_carve(base, &off, sizes[6]);
    s->sw = (double *)dpc_carve(base, &off, sizes[7]);
    s->gsw = (double *)dpc_carve(base, &off, sizes[8]);
    return 1;
}

static inline double dot3(const double *x, const double *y) { return x[0] * y[0] + x[1] * y[1] + x[2] * y[2]; }

/* The non-zero rows of atom i, block by block (see the header). */
static void gather_rows(const dpc_se_t_tab_args *a, dpc_index i, scratch_t *s)
{
    const dpc_index nb = a->nblocks, ti = a->center_types[i];
    dpc_index n = 0;
    for (dpc_index b = 0; b < nb; b++) {
        s->start[b] = n;
        const dpc_index key = ti * nb + b;
        const double *avg = a->avg + 4 * key, *std = a->std + 4 * key;
        const dpc_index sel = a->sel_offsets[b + 1] - a->sel_offsets[b];
        const dpc_index nreal = a->counts[i * nb + b];
        const int mode = a->block_mode[key];
        if (mode == 0) {
            const double *vec = a->vectors + (i * a->nnei + a->sel_offsets[b]) * 3;
            for (dpc_index q = 0; q < nreal; q++) {
                /* gated: a neighbor of an excluded type pair has a zeroed row (e = 0): skipped */
                if (a->gate && a->neighbor_type[i * a->nnei + a->sel_offsets[b] + q] < 0) continue;
                double R[4];
                dpc_env_mat_row(vec + 3 * q, a->rcut, a->rcut_smth, a->protection, R, NULL);
                for (int c = 0; c < 3; c++) s->rr[3 * n + c] = (R[c + 1] - avg[c + 1]) / std[c + 1];
                s->w[n] = 1.0;
                s->slot[n] = a->sel_offsets[b] + q;
                if (a->gate) {
                    const double *v = vec + 3 * q;
                    double sw = 1.0, dsw;
                    if (!a->gate_unswitched) dpc_switch(sqrt(dot3(v, v)), a->rcut, a->rcut_smth, &sw, &dsw);
                    s->type[n] = a->neighbor_type[i * a->nnei + s->slot[n]];
                    s->sw[n] = sw;
                }
                n++;
            }
        }
        const dpc_index npad = (mode == 2) ? sel : sel - nreal;
        if (npad > 0 && (avg[1] != 0.0 || avg[2] != 0.0 || avg[3] != 0.0)) {
            for (int c = 0; c < 3; c++) s->rr[3 * n + c] = -avg[c + 1] / std[c + 1];
            s->w[n] = (double)npad;
            s->slot[n] = -1;
            s->type[n] = a->n_gate_types - 1; /* gated: the padding type, no switch (sw = 0) */
            s->sw[n] = a->gate_unswitched ? 1.0 : 0.0;
            n++;
        }
    }
    s->start[nb] = n;
}

/* acc[m] += we * g_m(e) for all channels, g continued linearly outside the table.  NCOEF is a
 * literal at every expansion, so the degree branch folds away and the channel loop vectorises. */
#define DPC_T_ACCUMULATE(NCOEF)                                               \
    do {                                                                      \
        if (delta == 0.0) {                                                   \
            _Pragma("omp simd")                                               \
            for (dpc_index m = 0; m < M; m++)                                 \
                acc[m] += we * dpc_poly_value(row + m, M, NCOEF, t);          \
        } else {                                                              \
            _Pragma("omp simd")                                               \
            for (dpc_index m = 0; m < M; m++) {                               \
                double g, dg;                                                 \
                dpc_poly_eval(row + m, M, NCOEF, t, &g, &dg);                 \
                acc[m] += we * (g + delta * dg);                              \
            }                                                                 \
        }                                                                     \
    } while (0)

/* s = sum_m dD[m] (g_m(e) + e g'_m(e)), a fixed compiled-in summation order. */
#define DPC_T_CHANNEL_SUM(NCOEF)                                              \
    do {                                                                      \
        _Pragma("omp simd reduction(+ : sum)")                                \
        for (dpc_index m = 0; m < M; m++) {                                   \
            double g, dg;                                                     \
            dpc_poly_eval(row + m, M, NCOEF, t, &g, &dg);                     \
            sum += dD[m] * (g + delta * dg + e * dg);                         \
        }                                                                     \
    } while (0)

/* Gated: acc[m] += we * g_m(e) (1 + hp (S1[m] + S2[m])), hp = p_jk / 2. */
#define DPC_T_ACCUMULATE_GATED(NCOEF)                                         \
    do {                                                                      \
        _Pragma("omp simd")                                                   \
        for (dpc_index m = 0; m < M; m++) {                                   \
            double g, dg;                                                     \
            dpc_poly_eval(row + m, M, NCOEF, t, &g, &dg);                     \
            acc[m] += we * (g + delta * dg) * (1.0 + hp * (S1[m] + S2[m]));   \
        }                                                                     \
    } while (0)

/* Gated: sum = sum_m dD[m] (g_m + e g'_m) c_m and sump = sum_m dD[m] g_m (S1[m] + S2[m]). */
#define DPC_T_CHANNEL_SUM_GATED(NCOEF)                                        \
    do {                                                                      \
        _Pragma("omp simd reduction(+ : sum, sump)")                          \
        for (dpc_index m = 0; m < M; m++) {                                   \
            double g, dg;                                                     \
            dpc_poly_eval(row + m, M, NCOEF, t, &g, &dg);                     \
            const double gv = g + delta * dg, sg = S1[m] + S2[m];             \
            sum += dD[m] * (gv + e * dg) * (1.0 + hp * sg);                   \
            sump += dD[m] * gv * sg;                                          \
        }                                                                     \
    } while (0)

/* D_i for one atom (rows already gathered); returns the out-of-table counts through the pointers. */
DPC_HOT static void forward_atom(const dpc_se_t_tab_args *a, scratch_t *s, double *restrict out, dpc_index *n_fine_out,
                                 dpc_index *n_table_out)
{
    const dpc_index M = a->n_channels, nb = a->nblocks;
    double *restrict acc = s->acc;
    const double *rr = s->rr, *w = s->w;
    memset(acc, 0, sizeof(double) * M);
    for (dpc_index b1 = 0; b1 < nb; b1++) {
        for (dpc_index b2 = b1; b2 < nb; b2++) {
            const dpc_index tab = a->table_of[b1 * nb + b2];
            if (tab < 0) continue;
            dpc_table_info info;
            dpc_table_unpack(a->tab_real, a->tab_count, tab, a->ncoef, (int)M, &info);
            const double *coef = a->coef + a->tab_offset[tab];
            const double xmin = info.lower - (double)info.n_below * info.stride1;
            const double scale =
                1.0 / ((double)(a->sel_offsets[b1 + 1] - a->sel_offsets[b1]) * (double)(a->sel_offsets[b2 + 1] - a->sel_offsets[b2]));
            for (dpc_index j = s->start[b1]; j < s->start[b1 + 1]; j++) {
                const dpc_index k0 = (b1 == b2) ? j : s->start[b2];
                for (dpc_index k = k0; k < s->start[b2 + 1]; k++) {
                    const double mult = (b1 == b2 && k != j) ? 2.0 : 1.0;
                    const double e = dot3(rr + 3 * j, rr + 3 * k);
                    double t, delta;
                    const dpc_index l = dpc_table_locate(&info, e, &t, &delta);
                    if (s->slot[j] >= 0 && s->slot[k] >= 0) {
                        if (e < info.lower || e >= info.upper) *n_fine_out += (dpc_index)mult;
                        if (e < xmin || e >= info.xmax) *n_table_out += (dpc_index)mult;
                    }
                    const double we = scale * mult * w[j] * w[k] * e;
                    const double *restrict row = coef + l * a->ncoef * M;
                    if (a->gate) {
                        const dpc_index ng = a->n_gate_types;
                        const double *S1 = a->gate + (s->type[j] * ng + s->type[k]) * M;
                        const double *S2 = a->gate + (s->type[k] * ng + s->type[j]) * M;
                        const double hp = 0.5 * s->sw[j] * s->sw[k];
                        if (a->ncoef == 6)
                            DPC_T_ACCUMULATE_GATED(6);
                        else
                            DPC_T_ACCUMULATE_GATED(4);
                    } else if (a->ncoef == 6)
                        DPC_T_ACCUMULATE(6);
                    else
                        DPC_T_ACCUMULATE(4);
                }
            }
        }
    }
    memcpy(out, acc, sizeof(double) * M);
}

dpc_status dpc_se_t_tab_forward(const dpc_se_t_tab_args *a, int n_threads, double *D, dpc_index *beyond_fine,
                                dpc_index *beyond_table)
{
    int failed = 0;
    if (n_threads < 1) n_threads = 1;
#pragma omp parallel num_threads(n_threads)
    {
        dpc_buffer own = {NULL, 0};
        scratch_t s;
        const int ok = scratch_take(&s, a, dpc_thread_buffer(a->thread_scratch, &own));
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 16)
        for (dpc_index i = 0; i < a->natoms; i++) {
            if (!ok) continue;
            dpc_index n_fine_out = 0, n_table_out = 0;
            gather_rows(a, i, &s);
            forward_atom(a, &s, D + i * a->n_channels, &n_fine_out, &n_table_out);
            if (beyond_fine) beyond_fine[i] = n_fine_out;
            if (beyond_table) beyond_table[i] = n_table_out;
        }
        dpc_buffer_free(&own);
    }
    return failed ? DPC_ERR_ALLOC : DPC_OK;
}

/* dE/dr_ij for the real slots of one atom (rows already gathered). */
DPC_HOT static void backward_atom(const dpc_se_t_tab_args *a, dpc_index i, scratch_t *s, const double *restrict dD,
                                  double *restrict grad_i)
{
    const dpc_index M = a->n_channels, nb = a->nblocks, ti = a->center_types[i];
    const double *rr = s->rr, *w = s->w;
    double *gr = s->grad, *gsw = s->gsw;
    memset(gr, 0, sizeof(double) * 3 * s->start[nb]);
    if (a->gate) memset(gsw, 0, sizeof(double) * s->start[nb]);
    memset(grad_i, 0, sizeof(double) * 3 * a->nnei);
    for (dpc_index b1 = 0; b1 < nb; b1++) {
        for (dpc_index b2 = b1; b2 < nb; b2++) {
            const dpc_index tab = a->table_of[b1 * nb + b2];
            if (tab < 0) continue;
            dpc_table_info info;
            dpc_table_unpack(a->tab_real, a->tab_count, tab, a->ncoef, (int)M, &info);
            const double *coef = a->coef + a->tab_offset[tab];
            const double scale =
                1.0 / ((double)(a->sel_offsets[b1 + 1] - a->sel_offsets[b1]) * (double)(a->sel_offsets[b2 + 1] - a->sel_offsets[b2]));
            for (dpc_index j = s->start[b1]; j < s->start[b1 + 1]; j++) {
                const dpc_index k0 = (b1 == b2) ? j : s->start[b2];
                const double *rj = rr + 3 * j;
                double gj0 = 0.0, gj1 = 0.0, gj2 = 0.0;
                for (dpc_index k = k0; k < s->start[b2 + 1]; k++) {
                    const double mult = (b1 == b2 && k != j) ? 2.0 : 1.0;
                    const double *rk = rr + 3 * k;
                    const double e = dot3(rj, rk);
                    double t, delta, sum = 0.0;
                    const dpc_index l = dpc_table_locate(&info, e, &t, &delta);
                    const double *restrict row = coef + l * a->ncoef * M;
                    if (a->gate) {
                        const dpc_index ng = a->n_gate_types;
                        const double *S1 = a->gate + (s->type[j] * ng + s->type[k]) * M;
                        const double *S2 = a->gate + (s->type[k] * ng + s->type[j]) * M;
                        const double hp = 0.5 * s->sw[j] * s->sw[k];
                        double sump = 0.0;
                        if (a->ncoef == 6)
                            DPC_T_CHANNEL_SUM_GATED(6);
                        else
                            DPC_T_CHANNEL_SUM_GATED(4);
                        /* dE/dp_jk, then p = sw_j sw_k (both terms land on j when k == j: d(sw_j^2) = 2 sw_j) */
                        const double dp = 0.5 * scale * mult * w[j] * w[k] * e * sump;
                        gsw[j] += dp * s->sw[k];
                        gsw[k] += dp * s->sw[j];
                    } else if (a->ncoef == 6)
                        DPC_T_CHANNEL_SUM(6);
                    else
                        DPC_T_CHANNEL_SUM(4);
                    const double de = scale * mult * w[j] * w[k] * sum;
                    /* de/drr_j = rr_k and de/drr_k = rr_j (both when k == j: e = |rr_j|^2) */
                    gj0 += de * rk[0];
                    gj1 += de * rk[1];
                    gj2 += de * rk[2];
                    gr[3 * k] += de * rj[0];
                    gr[3 * k + 1] += de * rj[1];
                    gr[3 * k + 2] += de * rj[2];
                }
                gr[3 * j] += gj0;
                gr[3 * j + 1] += gj1;
                gr[3 * j + 2] += gj2;
            }
        }
    }
    /* through rr = (R[1:4] - avg)/std and the environment-matrix derivative */
    for (dpc_index b = 0; b < nb; b++) {
        const double *std = a->std + 4 * (ti * nb + b);
        for (dpc_index n = s->start[b]; n < s->start[b + 1]; n++) {
            const dpc_index slot = s->slot[n];
            if (slot < 0) continue; /* padding row: no coordinates */
            double R[4], dR[12];
            dpc_env_mat_row(a->vectors + (i * a->nnei + slot) * 3, a->rcut, a->rcut_smth, a->protection, R, dR);
            const double e1 = gr[3 * n] / std[1], e2 = gr[3 * n + 1] / std[2], e3 = gr[3 * n + 2] / std[3];
            for (int c = 0; c < 3; c++) grad_i[3 * slot + c] = e1 * dR[3 + c] + e2 * dR[6 + c] + e3 * dR[9 + c];
            if (a->gate && !a->gate_unswitched) { /* the gate's switch: dE/dsw sw'(r) rhat */
                const double *v = a->vectors + (i * a->nnei + slot) * 3;
                const double r = sqrt(dot3(v, v));
                double sw, dsw;
                dpc_switch(r, a->rcut, a->rcut_smth, &sw, &dsw);
                const double f = gsw[n] * dsw / r;
                for (int c = 0; c < 3; c++) grad_i[3 * slot + c] += f * v[c];
            }
        }
    }
}

dpc_status dpc_se_t_tab_backward(const dpc_se_t_tab_args *a, int n_threads, const double *dD, double *pair_grad)
{
    int failed = 0;
    if (n_threads < 1) n_threads = 1;
#pragma omp parallel num_threads(n_threads)
    {
        dpc_buffer own = {NULL, 0};
        scratch_t s;
        const int ok = scratch_take(&s, a, dpc_thread_buffer(a->thread_scratch, &own));
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 16)
        for (dpc_index i = 0; i < a->natoms; i++) {
            if (!ok) continue;
            gather_rows(a, i, &s);
            backward_atom(a, i, &s, dD + i * a->n_channels, pair_grad + i * a->nnei * 3);
        }
        dpc_buffer_free(&own);
    }
    return failed ? DPC_ERR_ALLOC : DPC_OK;
}
