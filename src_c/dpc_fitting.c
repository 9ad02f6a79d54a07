/* Fitting nets, forward and backward per chunk of rows: see dpc_fitting.h.
 * Numpy twin: dpcompress/reference/dp_model.py::fitting_forward_backward. */
#include "dpc_fitting.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dpc_activations.h"

#ifdef _OPENMP
#include <omp.h>
#endif

int dpc_fitting_chunk(void) { return DPC_FIT_CHUNK; }

/* ---------------------------------------------------------------------------
 * tanh without a libm call, so that the activation loops vectorise.
 *
 *   tanh|x| = e / (e + 2),  e = expm1(2|x|) = 2^k (1 + p) - 1 = 2^k p + (2^k - 1),
 *   2|x| = k ln2 + r, |r| <= ln2/2, p = expm1(r) by its Taylor series to r^14
 *   (truncation below 3e-19 relative).
 *
 * For k = 0 (|x| < 0.17) e = p with r = 2|x| exact: no cancellation anywhere.
 * For k >= 1 the two terms of e are positive or cancel by at most a factor 2.5.
 * Measured against long double tanhl: below 2.5 ulp (tests/test_fitting_kernel.py
 * allows 3), against about 1 ulp for glibc's tanh at 4-5 times the cost.
 * 2|x| is clamped at 44, where e/(e+2) already rounds to 1; NaN propagates.
 * Pure arithmetic on the argument alone: the thread count cannot change it. */
static inline double fit_tanh(double x)
{
    double y = 2.0 * fabs(x);
    /* y = min(y, 44) for y in (44, inf], NaN untouched: on the bits (y >= 0, so they order
     * like the values), with masks rather than a select that GCC would not vectorise. */
    int64_t yb;
    memcpy(&yb, &y, sizeof yb);
    const int64_t b44 = INT64_C(0x4046000000000000), binf = INT64_C(0x7ff0000000000000);
    const int64_t clamp = -(int64_t)((yb > b44) & (yb <= binf));
    yb = (yb & ~clamp) | (b44 & clamp);
    memcpy(&y, &yb, sizeof y);
    const double shift = 0x1.8p52;
    const double kd = y * 0x1.71547652b82fep0 + shift; /* round(y / ln2) in the low bits */
    const double k = kd - shift;
    const double r = (y - k * 0x1.62e42fee00000p-1) - k * 0x1.a39ef35793c76p-33; /* Cody-Waite ln2 hi/lo */
    double p = 1.0 / 87178291200.0;                                                /* 1/14! */
    p = p * r + 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * (r * r) + r; /* expm1(r) */
    uint64_t kbits;
    memcpy(&kbits, &kd, sizeof kbits);
    const uint64_t sbits = (kbits << 52) + ((uint64_t)1023 << 52); /* 2^k, 0 <= k <= 64 */
    double s;
    memcpy(&s, &sbits, sizeof s);
    const double e = s * p + (s - 1.0);
    return copysign(e / (e + 2.0), x);
}

DPC_HOT void dpc_fitting_tanh(dpc_index n, const double *restrict x, double *restrict out)
{
    for (dpc_index i = 0; i < n; i++) out[i] = fit_tanh(x[i]);
}

/* ---------------------------------------------------------------------------
 * Validation. */

static dpc_status check_args(const dpc_fitting_args *a, dpc_index *max_width, dpc_index *max_sum_out)
{
    if (a->natoms < 0 || a->dim < 1 || a->dim > INT_MAX || a->ntypes < 1 || !a->dgemm) return DPC_ERR_ARGUMENT;
    dpc_index width = 1, sum_max = 1;
    for (dpc_index t = 0; t < a->ntypes; t++) {
        const dpc_index first = a->net_start[t], last = a->net_start[t + 1];
        if (first < 0 || last <= first) return DPC_ERR_ARGUMENT;
        dpc_index prev = a->dim, sum = 0;
        for (dpc_index k = first; k < last; k++) {
            const dpc_fit_layer *L = a->layers + k;
            if (L->n_in != prev || L->n_out < 1 || L->n_out > INT_MAX || !L->w) return DPC_ERR_ARGUMENT;
            if (!dpc_activation_valid(L->activation)) return DPC_ERR_ARGUMENT;
            if (L->residual == DPC_FIT_RESIDUAL_IDENTITY && L->n_out != L->n_in) return DPC_ERR_ARGUMENT;
            if (L->residual == DPC_FIT_RESIDUAL_DOUBLE && L->n_out != 2 * L->n_in) return DPC_ERR_ARGUMENT;
            if (L->residual < DPC_FIT_RESIDUAL_NONE || L->residual > DPC_FIT_RESIDUAL_DOUBLE) return DPC_ERR_ARGUMENT;
            if (L->n_out > width) width = L->n_out;
            sum += L->n_out;
            prev = L->n_out;
        }
        if (prev != 1) return DPC_ERR_ARGUMENT;
        if (sum > sum_max) sum_max = sum;
    }
    for (dpc_index i = 0; i < a->natoms; i++)
        if (a->atom_types[i] < 0 || a->atom_types[i] >= a->ntypes) return DPC_ERR_INDEX;
    *max_width = width;
    *max_sum_out = sum_max;
    return DPC_OK;
}

/* ---------------------------------------------------------------------------
 * Matrix products.  Row-major A (m x n) is column-major A^T (n x m). */

/* Z (m x n_out) = X (m x n_in) W (n_in x n_out), i.e. Z^T = W^T X^T. */
static void gemm_forward(dpc_dgemm_t gemm, dpc_index m, const dpc_fit_layer *L, const double *x, double *z)
{
    char tn = 'N';
    int M = (int)L->n_out, N = (int)m, K = (int)L->n_in, lda = (int)L->n_out, ldb = (int)L->n_in, ldc = (int)L->n_out;
    double one = 1.0, zero = 0.0;
    gemm(&tn, &tn, &M, &N, &K, &one, (double *)L->w, &lda, (double *)x, &ldb, &zero, z, &ldc);
}

/* DX (m x n_in) = G (m x n_out) W^T, i.e. DX^T = W G^T (W read as the transpose of W^T). */
static void gemm_backward(dpc_dgemm_t gemm, dpc_index m, const dpc_fit_layer *L, const double *g, double *dx)
{
    char tt = 'T', tn = 'N';
    int M = (int)L->n_in, N = (int)m, K = (int)L->n_out, lda = (int)L->n_out, ldb = (int)L->n_out, ldc = (int)L->n_in;
    double one = 1.0, zero = 0.0;
    gemm(&tt, &tn, &M, &N, &K, &one, (double *)L->w, &lda, (double *)g, &ldb, &zero, dx, &ldc);
}

/* ---------------------------------------------------------------------------
 * Elementwise parts of a layer, in place on z (m x n_out): z <- d phi(z + b) + rho(x),
 * dphi <- d phi'(z + b).  The same operations, in the same order, as the numpy twin. */

#define FIT_ACT_LOOP(FN)                                          \
    for (dpc_index j = 0; j < n; j++) {                           \
        double y_, d1_, d2_;                                      \
        FN(zr[j], &y_, &d1_, &d2_);                               \
        zr[j] = y_;                                               \
        dr[j] = d1_;                                              \
    }

static inline void fit_act_tanh(double z, double *y, double *d1, double *d2)
{
    const double t = fit_tanh(z);
    *y = t;
    *d1 = 1.0 - t * t;
    *d2 = 0.0;
}

DPC_HOT static void activate_layer(const dpc_fit_layer *L, dpc_index m, const double *restrict x, double *restrict z,
                                   double *restrict dphi)
{
    const dpc_index n = L->n_out, n_in = L->n_in;
    const double *restrict b = L->b;
    const double *restrict idt = L->idt;
    for (dpc_index i = 0; i < m; i++) {
        double *restrict zr = z + i * n;
        double *restrict dr = dphi + i * n;
        const double *restrict xr = x + i * n_in;
        if (b)
            for (dpc_index j = 0; j < n; j++) zr[j] += b[j];
        switch (L->activation) {
        case DPC_ACT_TANH: FIT_ACT_LOOP(fit_act_tanh); break;
        case DPC_ACT_GELU: FIT_ACT_LOOP(dpc_act_gelu); break;
        case DPC_ACT_RELU: FIT_ACT_LOOP(dpc_act_relu); break;
        case DPC_ACT_RELU6: FIT_ACT_LOOP(dpc_act_relu6); break;
        case DPC_ACT_SOFTPLUS: FIT_ACT_LOOP(dpc_act_softplus); break;
        case DPC_ACT_SIGMOID: FIT_ACT_LOOP(dpc_act_sigmoid); break;
        case DPC_ACT_SILU: FIT_ACT_LOOP(dpc_act_silu); break;
        default: /* linear */
            for (dpc_index j = 0; j < n; j++) dr[j] = 1.0;
            break;
        }
        if (idt)
            for (dpc_index j = 0; j < n; j++) {
                zr[j] *= idt[j];
                dr[j] *= idt[j];
            }
        if (L->residual == DPC_FIT_RESIDUAL_IDENTITY) {
            for (dpc_index j = 0; j < n; j++) zr[j] += xr[j];
        } else if (L->residual == DPC_FIT_RESIDUAL_DOUBLE) {
            for (dpc_index j = 0; j < n_in; j++) zr[j] += xr[j];
            for (dpc_index j = 0; j < n_in; j++) zr[n_in + j] += xr[j];
        }
    }
}

/* dphi <- dphi * g (the gradient reaching the layer's output). */
DPC_HOT static void scale_rows(dpc_index count, double *restrict dphi, const double *restrict g)
{
    for (dpc_index i = 0; i < count; i++) dphi[i] *= g[i];
}

/* dx += rho^T(g): the gradient the skip connection carries back (g NULL: g = 1). */
DPC_HOT static void residual_backward(const dpc_fit_layer *L, dpc_index m, const double *restrict g, double *restrict dx)
{
    const dpc_index n = L->n_out, n_in = L->n_in;
    if (L->residual == DPC_FIT_RESIDUAL_NONE) return;
    for (dpc_index i = 0; i < m; i++) {
        double *restrict d = dx + i * n_in;
        if (!g) {
            const double add = L->residual == DPC_FIT_RESIDUAL_DOUBLE ? 2.0 : 1.0;
            for (dpc_index j = 0; j < n_in; j++) d[j] += add;
            continue;
        }
        const double *restrict gr = g + i * n;
        if (L->residual == DPC_FIT_RESIDUAL_DOUBLE)
            for (dpc_index j = 0; j < n_in; j++) d[j] += gr[j] + gr[n_in + j];
        else
            for (dpc_index j = 0; j < n_in; j++) d[j] += gr[j];
    }
}

/* ---------------------------------------------------------------------------
 * One chunk of rows of one type. */

typedef struct {
    double *xin;     /* DPC_FIT_CHUNK x dim: gathered input rows, then dE/dD of the chunk */
    double *act[2];  /* DPC_FIT_CHUNK x width: layer outputs, alternating */
    double *grad[2]; /* DPC_FIT_CHUNK x width: gradients of layer inputs, alternating */
    double *dphi;    /* DPC_FIT_CHUNK x (sum of n_out): d phi'(z) of every layer */
} scratch_t;

/* Carve the chunk scratch out of buf (grown as needed); 0 when out of memory. */
static int scratch_take(scratch_t *s, dpc_buffer *buf, dpc_index dim, dpc_index width, dpc_index sum_out)
{
    const size_t c = DPC_FIT_CHUNK;
    const size_t sizes[6] = {c * (size_t)dim, c * (size_t)width, c * (size_t)width,
                             c * (size_t)width, c * (size_t)width, c * (size_t)sum_out};
    size_t total = 0;
    for (int k = 0; k < 6; k++) dpc_carve(NULL, &total, sizeof(double) * sizes[k]);
    char *base = (char *)dpc_buffer_reserve(buf, total);
    if (!base) return 0;
    size_t off = 0;
    double **slot[6] = {&s->xin, &s->act[0], &s->act[1], &s->grad[0], &s->grad[1], &s->dphi};
    for (int k = 0; k < 6; k++) *slot[k] = (double *)dpc_carve(base, &off, sizeof(double) * sizes[k]);
    return 1;
}

static void run_chunk(const dpc_fitting_args *a, dpc_index t, const dpc_index *rows, dpc_index m, scratch_t *s,
                      double *e, double *dD)
{
    const dpc_index dim = a->dim;
    const dpc_fit_layer *layers = a->layers + a->net_start[t];
    const dpc_index nl = a->net_start[t + 1] - a->net_start[t];
    /* Rows of one type come in increasing order: a chunk is a block of D iff its span is m. */
    const int contiguous = !a->fill && !a->take && rows[m - 1] - rows[0] == m - 1;

    const double *x;
    if (contiguous) {
        x = a->D + rows[0] * dim;
    } else if (a->fill) {
        a->fill(a->ctx, rows, m, s->xin);
        x = s->xin;
    } else {
        for (dpc_index i = 0; i < m; i++) memcpy(s->xin + i * dim, a->D + rows[i] * dim, sizeof(double) * dim);
        x = s->xin;
    }

    /* Forward: every layer's phi' kept in s->dphi (layer k at offset m * sum_{l<k} n_out_l). */
    dpc_index off = 0;
    for (dpc_index k = 0; k < nl; k++) {
        const dpc_fit_layer *L = layers + k;
        double *z = s->act[k & 1];
        gemm_forward(a->dgemm, m, L, x, z);
        activate_layer(L, m, x, z, s->dphi + off);
        off += m * L->n_out;
        x = z;
    }
    for (dpc_index i = 0; i < m; i++) e[rows[i]] = x[i] + a->bias[t];

    /* Backward from g = 1 (NULL) at the single output. */
    const double *g = NULL;
    for (dpc_index k = nl - 1; k >= 0; k--) {
        const dpc_fit_layer *L = layers + k;
        off -= m * L->n_out;
        double *dp = s->dphi + off;
        if (g) scale_rows(m * L->n_out, dp, g);
        double *dx = k > 0 ? s->grad[k & 1] : (contiguous ? dD + rows[0] * dim : s->xin);
        gemm_backward(a->dgemm, m, L, dp, dx);
        residual_backward(L, m, g, dx);
        g = dx;
    }
    if (a->take)
        a->take(a->ctx, rows, m, s->xin);
    else if (!contiguous)
        for (dpc_index i = 0; i < m; i++) memcpy(dD + rows[i] * dim, s->xin + i * dim, sizeof(double) * dim);
}

dpc_status dpc_fitting_forward_backward(const dpc_fitting_args *a, int n_threads, double *e, double *dD)
{
    dpc_index width = 0, sum_out = 0;
    dpc_status status = check_args(a, &width, &sum_out);
    if (status != DPC_OK) return status;
    if ((!a->fill && !a->D) || (!a->take && !dD)) return DPC_ERR_ARGUMENT;
    if (a->natoms == 0) return DPC_OK;
    if (n_threads < 1) n_threads = 1;

    /* Rows sorted by type (stable), then cut into chunks that never mix types. */
    const dpc_index nt = a->ntypes, n = a->natoms;
    dpc_buffer own_shared = {NULL, 0};
    dpc_buffer *shared = a->shared_scratch ? a->shared_scratch : &own_shared;
    size_t total = 0;
    dpc_carve(NULL, &total, sizeof(dpc_index) * (size_t)n);
    dpc_carve(NULL, &total, sizeof(dpc_index) * (size_t)(nt + 1));
    dpc_carve(NULL, &total, sizeof(dpc_index) * (size_t)(n + nt + 1));
    dpc_carve(NULL, &total, sizeof(dpc_index) * (size_t)(n + nt + 1));
    char *base = (char *)dpc_buffer_reserve(shared, total);
    if (!base) return DPC_ERR_ALLOC;
    size_t off = 0;
    dpc_index *order = (dpc_index *)dpc_carve(base, &off, sizeof(dpc_index) * (size_t)n);
    dpc_index *start = (dpc_index *)dpc_carve(base, &off, sizeof(dpc_index) * (size_t)(nt + 1));
    dpc_index *chunk_start = (dpc_index *)dpc_carve(base, &off, sizeof(dpc_index) * (size_t)(n + nt + 1));
    dpc_index *chunk_type = (dpc_index *)dpc_carve(base, &off, sizeof(dpc_index) * (size_t)(n + nt + 1));
    memset(start, 0, sizeof(dpc_index) * (size_t)(nt + 1));
    for (dpc_index i = 0; i < n; i++) start[a->atom_types[i] + 1]++;
    for (dpc_index t = 0; t < nt; t++) start[t + 1] += start[t];
    {
        dpc_index *fill = chunk_type; /* borrowed as a cursor per type */
        for (dpc_index t = 0; t < nt; t++) fill[t] = start[t];
        for (dpc_index i = 0; i < n; i++) order[fill[a->atom_types[i]]++] = i;
    }
    /* The rows of type t cut into q = ceil(count / DPC_FIT_CHUNK) chunks of near-equal size
     * (they differ by at most one row): the cut depends on the counts only. */
    dpc_index n_chunks = 0;
    for (dpc_index t = 0; t < nt; t++) {
        const dpc_index count = start[t + 1] - start[t];
        const dpc_index q = (count + DPC_FIT_CHUNK - 1) / DPC_FIT_CHUNK;
        for (dpc_index c = 0; c < q; c++) {
            chunk_start[n_chunks] = start[t] + c * (count / q) + (c < count % q ? c : count % q);
            chunk_type[n_chunks] = t;
            n_chunks++;
        }
    }
    chunk_start[n_chunks] = n;

    int failed = 0;
#pragma omp parallel num_threads(n_threads)
    {
        dpc_buffer own = {NULL, 0};
        dpc_buffer *buf = dpc_thread_buffer(a->thread_scratch, &own);
        scratch_t s;
        const int ok = scratch_take(&s, buf, a->dim, width, sum_out);
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (dpc_index c = 0; c < n_chunks; c++) {
            if (!ok) continue;
            run_chunk(a, chunk_type[c], order + chunk_start[c], chunk_start[c + 1] - chunk_start[c], &s, e, dD);
        }
        dpc_buffer_free(&own);
    }
    dpc_buffer_free(&own_shared);
    return failed ? DPC_ERR_ALLOC : DPC_OK;
}
