/* DPA-1 attention layers on tabulated G_s: see dpc_attention.h. Plain loops, n x n per center. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpc_attention.h"
#include "dpc_table.h"

/* One center's workspace: per-slot values, the per-layer caches the backward pass needs, temporaries. */
typedef struct {
    dpc_index n;                     /* real slots of this center */
    dpc_index *slot;                 /* [N] slot index of compact row j */
    double *Rt, *dR, *sw, *dsw;      /* [N][4], [N][4][3], [N], [N] */
    double *g, *dg, *w;              /* [N][M], [N][M] (table value, derivative), [N] gate weight */
    double *rhat, *nv;               /* [N][3], [N] */
    double *X;                       /* [N][M] current rows (X^L at the end) */
    double *P;                       /* [N][3d] */
    /* per layer l: */
    double *qkv;                     /* [L][N][3d] the (normalised) q, k, v */
    double *norms;                   /* [L][N][3] */
    double *Lam, *A0;                /* [L][N][N] */
    double *rowsum;                  /* [L][N] softmax denominators (unused after forward, kept for clarity) */
    double *zb, *sigma;              /* [L][N][M], [L][N] */
    double *C;                       /* [N][N] rhat_j . rhat_k */
    /* backward temporaries */
    double *dX, *dZ, *dO, *dA, *dC, *dP, *dswa; /* [N][M], [N][M], [N][d], [N][N], [N][N], [N][3d], [N] */
    double *dRt;                     /* [N][4] */
} work;

static void *carve(char **p, size_t bytes)
{
    void *r = *p;
    *p += (bytes + 63) & ~(size_t)63;
    return r;
}

static size_t work_layout(work *w, char *base, dpc_index N, dpc_index M, dpc_index d, dpc_index L)
{
    char *p = base;
    char *start = base;
    const size_t D = sizeof(double);
#define C_(field, count) w->field = carve(&p, (size_t)(count)*D)
    w->slot = carve(&p, (size_t)N * sizeof(dpc_index));
    C_(Rt, 4 * N); C_(dR, 12 * N); C_(sw, N); C_(dsw, N);
    C_(g, N * M); C_(dg, N * M); C_(w, N);
    C_(rhat, 3 * N); C_(nv, N);
    C_(X, N * M); C_(P, N * 3 * d);
    C_(qkv, L * N * 3 * d); C_(norms, L * N * 3);
    C_(Lam, L * N * N); C_(A0, L * N * N); C_(rowsum, L * N);
    C_(zb, L * N * M); C_(sigma, L * N);
    C_(C, N * N);
    C_(dX, N * M); C_(dZ, N * M); C_(dO, N * d); C_(dA, N * N); C_(dC, N * N); C_(dP, N * 3 * d); C_(dswa, N);
    C_(dRt, 4 * N);
#undef C_
    return (size_t)(p - start);
}

/* sw(r) in DeePMD-kit's operation order, and the exact sw'(r) */
static void switch_deepmd(double r, double rc, double rs, double *s, double *ds)
{
    double u = (r - rs) / (rc - rs);
    if (u <= 0.0) {
        *s = 1.0;
        *ds = 0.0;
        return;
    }
    if (u >= 1.0) {
        *s = 0.0;
        *ds = 0.0;
        return;
    }
    const double u2 = u * u;
    *s = u2 * u * (-6.0 * u2 + 15.0 * u - 10.0) + 1.0;
    *ds = -30.0 * u2 * (u - 1.0) * (u - 1.0) / (rc - rs);
}

/* R = s (1/rho, r/rho^2) and dR [4][3] (as dpc_env_mat_row, with switch_deepmd) */
static void env_row(const double *vec, double rc, double rs, double prot, double *R, double *dR, double *s_out,
                    double *ds_out)
{
    const double x = vec[0], y = vec[1], z = vec[2];
    const double r = sqrt(x * x + y * y + z * z);
    double s, ds;
    switch_deepmd(r, rc, rs, &s, &ds);
    const double rho = r + prot, inv = 1.0 / rho, inv2 = inv * inv;
    R[0] = s * inv;
    R[1] = s * x * inv2;
    R[2] = s * y * inv2;
    R[3] = s * z * inv2;
    const double rinv = 1.0 / r;
    const double rh[3] = {x * rinv, y * rinv, z * rinv}, xs[3] = {x, y, z};
    const double c0 = ds * inv - s * inv2, c1 = ds * inv2, c2 = s * inv2, c3 = 2.0 * s * inv2 * inv;
    for (int b = 0; b < 3; b++) dR[b] = c0 * rh[b];
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) dR[(a + 1) * 3 + b] = (c1 - c3) * xs[a] * rh[b] + (a == b ? c2 : 0.0);
    *s_out = s;
    *ds_out = ds * rinv; /* times r_ij: d sw / d r_ij */
}

/* The embedding rows X0 of the real slots; returns n (also the out-of-table counts). */
static dpc_index center_inputs(const dpc_se_a_tab_args *a, const dpc_attention_params *att, dpc_index i, work *w,
                               dpc_index *n_fine_out, dpc_index *n_table_out)
{
    const dpc_index M = a->n_channels, ti = a->center_types[i];
    const dpc_index tab = a->table_of[ti];
    dpc_table_info info;
    dpc_table_unpack(a->tab_real, a->tab_count, tab, a->ncoef, (int)M, &info);
    const double *coef = a->coef + a->tab_offset[tab];
    const double *avg = a->avg + 4 * ti, *std = a->std + 4 * ti;
    const dpc_index nreal = a->counts[i];
    const double *vec = a->vectors + i * a->nnei * 3;
    const dpc_index *gidx = a->gate_index + i * a->nnei;
    dpc_index n = 0;
    for (dpc_index s = 0; s < nreal; s++) {
        if (gidx[s] < 0) continue; /* exclude_types pair: a padding slot, as in DeePMD-kit (counted in N - n) */
        double R[4], sw, dsw, t, delta;
        double *Rt = w->Rt + 4 * n;
        env_row(vec + 3 * s, a->rcut, a->rcut_smth, a->protection, R, w->dR + 12 * n, &sw, &dsw);
        for (int k = 0; k < 4; k++) Rt[k] = (R[k] - avg[k]) / std[k];
        w->sw[n] = sw;
        w->dsw[n] = dsw;
        const dpc_index l = dpc_table_locate(&info, Rt[0], &t, &delta);
        if (Rt[0] >= info.upper) (*n_fine_out)++;
        if (delta != 0.0) (*n_table_out)++;
        const double *row = coef + l * a->ncoef * M;
        const double *gate = a->gate + gidx[s] * M;
        const double wgt = att->smooth ? sw : 1.0;
        w->w[n] = wgt;
        double *g = w->g + n * M, *dg = w->dg + n * M, *X = w->X + n * M;
        for (dpc_index m = 0; m < M; m++) {
            double v, d;
            dpc_poly_eval(row + m, M, a->ncoef, t, &v, &d);
            g[m] = v + delta * d;
            dg[m] = d;
            X[m] = g[m] * (1.0 + wgt * gate[m]);
        }
        const double *v3 = Rt + 1;
        const double nrm = sqrt(v3[0] * v3[0] + v3[1] * v3[1] + v3[2] * v3[2]);
        const double den = nrm > DPC_ATTENTION_DIR_EPS ? nrm : DPC_ATTENTION_DIR_EPS;
        w->nv[n] = nrm;
        for (int c = 0; c < 3; c++) w->rhat[3 * n + c] = v3[c] / den;
        w->slot[n] = s;
        n++;
    }
    w->n = n;
    return n;
}

/* All layers forward over the n real rows (w->X in place), caches kept per layer. */
static void layers_forward(const dpc_attention_params *att, dpc_index N, dpc_index M, work *w)
{
    const dpc_index n = w->n, d = att->hidden, d3 = 3 * d, npad = N - n;
    if (att->dotr)
        for (dpc_index j = 0; j < n; j++)
            for (dpc_index k = 0; k < n; k++) {
                const double *a = w->rhat + 3 * j, *b = w->rhat + 3 * k;
                w->C[j * n + k] = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
            }
    for (dpc_index l = 0; l < att->n_layers; l++) {
        const double *Win = att->w_in + l * M * d3, *bin = att->b_in + l * d3;
        const double *Wout = att->w_out + l * d * M, *bout = att->b_out + l * M;
        const double *gamma = att->ln + l * 2 * M, *beta = gamma + M;
        double *qkv = w->qkv + l * N * d3, *norms = w->norms + l * N * 3;
        double *Lam = w->Lam + l * N * N, *A0 = w->A0 + l * N * N, *zb = w->zb + l * N * M, *sig = w->sigma + l * N;
        for (dpc_index j = 0; j < n; j++) {
            double *out = qkv + j * d3;
            const double *x = w->X + j * M;
            for (dpc_index c = 0; c < d3; c++) out[c] = bin[c];
            for (dpc_index m = 0; m < M; m++) {
                const double xm = x[m];
                const double *wr = Win + m * d3;
                for (dpc_index c = 0; c < d3; c++) out[c] += xm * wr[c];
            }
            for (int part = 0; part < 3; part++) {
                double *v = out + part * d, s = 0.0;
                for (dpc_index c = 0; c < d; c++) s += v[c] * v[c];
                const double nrm = sqrt(s);
                norms[3 * j + part] = nrm;
                if (att->normalize)
                    for (dpc_index c = 0; c < d; c++) v[c] /= nrm;
            }
        }
        for (dpc_index j = 0; j < n; j++) {
            const double *q = qkv + j * d3;
            double mx = -INFINITY;
            for (dpc_index k = 0; k < n; k++) {
                const double *kk = qkv + k * d3 + d;
                double s = 0.0;
                for (dpc_index c = 0; c < d; c++) s += (att->alpha * q[c]) * kk[c];
                Lam[j * n + k] = s;
                const double lp = att->smooth ? (s + DPC_ATTENTION_SHIFT) * w->sw[j] * w->sw[k] - DPC_ATTENTION_SHIFT : s;
                A0[j * n + k] = lp;
                if (lp > mx) mx = lp;
            }
            if (att->smooth && npad > 0 && -DPC_ATTENTION_SHIFT > mx) mx = -DPC_ATTENTION_SHIFT;
            double sum = 0.0;
            for (dpc_index k = 0; k < n; k++) {
                const double e = exp(A0[j * n + k] - mx);
                A0[j * n + k] = e;
                sum += e;
            }
            if (att->smooth && npad > 0) sum += (double)npad * exp(-DPC_ATTENTION_SHIFT - mx);
            w->rowsum[l * N + j] = sum;
            for (dpc_index k = 0; k < n; k++) A0[j * n + k] /= sum;
        }
        /* O = A v, Z = X + O W_out + b_out, LayerNorm */
        for (dpc_index j = 0; j < n; j++) {
            double o[512];
            for (dpc_index c = 0; c < d; c++) o[c] = 0.0;
            for (dpc_index k = 0; k < n; k++) {
                double a = A0[j * n + k];
                if (att->smooth) a *= w->sw[j] * w->sw[k];
                if (att->dotr) a *= w->C[j * n + k];
                const double *v = qkv + k * d3 + 2 * d;
                for (dpc_index c = 0; c < d; c++) o[c] += a * v[c];
            }
            double *x = w->X + j * M, *z = zb + j * M;
            double mean = 0.0;
            for (dpc_index m = 0; m < M; m++) {
                double y = bout[m];
                for (dpc_index c = 0; c < d; c++) y += o[c] * Wout[c * M + m];
                z[m] = x[m] + y;
                mean += z[m];
            }
            mean /= (double)M;
            double var = 0.0;
            for (dpc_index m = 0; m < M; m++) {
                z[m] -= mean;
                var += z[m] * z[m];
            }
            const double sg = sqrt(var / (double)M + att->ln_eps[l]);
            sig[j] = sg;
            for (dpc_index m = 0; m < M; m++) {
                z[m] /= sg;
                x[m] = z[m] * gamma[m] + beta[m];
            }
        }
    }
}

static void center_T(const dpc_se_a_tab_args *a, const work *w, double *T)
{
    const dpc_index M = a->n_channels;
    memset(T, 0, sizeof(double) * 4 * M);
    for (dpc_index j = 0; j < w->n; j++)
        for (int k = 0; k < 4; k++) {
            const double r = w->Rt[4 * j + k];
            for (dpc_index m = 0; m < M; m++) T[k * M + m] += r * w->X[j * M + m];
        }
    const double inv = 1.0 / (double)a->nnei;
    for (dpc_index q = 0; q < 4 * M; q++) T[q] *= inv;
}

/* Adjoint of x / |x| (or of x / eps below the floor) for one d-vector. */
static void unit_backward(const double *xh, double nrm, double *g, dpc_index d)
{
    double dot = 0.0;
    for (dpc_index c = 0; c < d; c++) dot += xh[c] * g[c];
    for (dpc_index c = 0; c < d; c++) g[c] = (g[c] - xh[c] * dot) / nrm;
}

static void center_backward(const dpc_se_a_tab_args *a, const dpc_attention_params *att, dpc_index i, work *w,
                            const double *dT, double *grad)
{
    const dpc_index M = a->n_channels, N = a->nnei, n = w->n, d = att->hidden, d3 = 3 * d;
    const double invN = 1.0 / (double)N;
    /* dX^L = Rt dT / N, dRt = dT X^L / N */
    for (dpc_index j = 0; j < n; j++) {
        const double *Rt = w->Rt + 4 * j;
        for (dpc_index m = 0; m < M; m++)
            w->dX[j * M + m] = (Rt[0] * dT[m] + Rt[1] * dT[M + m] + Rt[2] * dT[2 * M + m] + Rt[3] * dT[3 * M + m]) * invN;
        for (int k = 0; k < 4; k++) {
            double s = 0.0;
            for (dpc_index m = 0; m < M; m++) s += dT[k * M + m] * w->X[j * M + m];
            w->dRt[4 * j + k] = s * invN;
        }
        w->dswa[j] = 0.0;
    }
    if (att->dotr) memset(w->dC, 0, sizeof(double) * n * n);
    for (dpc_index l = att->n_layers - 1; l >= 0; l--) {
        const double *Win = att->w_in + l * M * d3;
        const double *Wout = att->w_out + l * d * M;
        const double *gamma = att->ln + l * 2 * M;
        const double *qkv = w->qkv + l * N * d3, *norms = w->norms + l * N * 3;
        const double *Lam = w->Lam + l * N * N, *A0 = w->A0 + l * N * N, *zb = w->zb + l * N * M, *sig = w->sigma + l * N;
        /* LayerNorm and out_proj */
        for (dpc_index j = 0; j < n; j++) {
            double gm[1024], mg = 0.0, mgz = 0.0;
            const double *z = zb + j * M;
            for (dpc_index m = 0; m < M; m++) {
                gm[m] = w->dX[j * M + m] * gamma[m];
                mg += gm[m];
                mgz += gm[m] * z[m];
            }
            mg /= (double)M;
            mgz /= (double)M;
            for (dpc_index m = 0; m < M; m++) w->dZ[j * M + m] = (gm[m] - mg - z[m] * mgz) / sig[j];
            for (dpc_index c = 0; c < d; c++) {
                double s = 0.0;
                for (dpc_index m = 0; m < M; m++) s += w->dZ[j * M + m] * Wout[c * M + m];
                w->dO[j * d + c] = s;
            }
        }
        /* dA = dO v^T; dv = A^T dO */
        for (dpc_index j = 0; j < n * d3; j++) w->dP[j] = 0.0;
        for (dpc_index j = 0; j < n; j++)
            for (dpc_index k = 0; k < n; k++) {
                const double *v = qkv + k * d3 + 2 * d, *dO = w->dO + j * d;
                double s = 0.0;
                for (dpc_index c = 0; c < d; c++) s += dO[c] * v[c];
                w->dA[j * n + k] = s;
            }
        for (dpc_index k = 0; k < n; k++) {
            double *dv = w->dP + k * d3 + 2 * d;
            for (dpc_index j = 0; j < n; j++) {
                double a = A0[j * n + k];
                if (att->smooth) a *= w->sw[j] * w->sw[k];
                if (att->dotr) a *= w->C[j * n + k];
                const double *dO = w->dO + j * d;
                for (dpc_index c = 0; c < d; c++) dv[c] += a * dO[c];
            }
        }
        /* back through dotr, the smooth products and the softmax; dLam into dA */
        for (dpc_index j = 0; j < n; j++) {
            double rs = 0.0;
            for (dpc_index k = 0; k < n; k++) {
                const dpc_index q = j * n + k;
                const double pi = att->smooth ? w->sw[j] * w->sw[k] : 1.0;
                double dA1 = w->dA[q];
                if (att->dotr) {
                    w->dC[q] += dA1 * A0[q] * pi;
                    dA1 *= w->C[q];
                }
                if (att->smooth) { /* dA1 * A0 is the A1 = A0 pi product's share of d(pi) */
                    const double dpi = dA1 * A0[q];
                    w->dswa[j] += dpi * w->sw[k];
                    w->dswa[k] += dpi * w->sw[j];
                }
                const double dA0 = dA1 * pi;
                w->dA[q] = dA0;
                rs += dA0 * A0[q];
            }
            for (dpc_index k = 0; k < n; k++) {
                const dpc_index q = j * n + k;
                const double dLp = A0[q] * (w->dA[q] - rs);
                if (att->smooth) {
                    const double dpi = dLp * (Lam[q] + DPC_ATTENTION_SHIFT);
                    w->dswa[j] += dpi * w->sw[k];
                    w->dswa[k] += dpi * w->sw[j];
                    w->dA[q] = dLp * w->sw[j] * w->sw[k];
                } else {
                    w->dA[q] = dLp;
                }
            }
        }
        /* dq = alpha dLam k, dk = alpha dLam^T q */
        for (dpc_index j = 0; j < n; j++) {
            double *dq = w->dP + j * d3;
            for (dpc_index k = 0; k < n; k++) {
                const double s = att->alpha * w->dA[j * n + k];
                const double *kk = qkv + k * d3 + d, *qq = qkv + j * d3;
                double *dk = w->dP + k * d3 + d;
                for (dpc_index c = 0; c < d; c++) {
                    dq[c] += s * kk[c];
                    dk[c] += s * qq[c];
                }
            }
        }
        for (dpc_index j = 0; j < n; j++) {
            if (att->normalize)
                for (int part = 0; part < 3; part++)
                    unit_backward(qkv + j * d3 + part * d, norms[3 * j + part], w->dP + j * d3 + part * d, d);
            /* dX = dZ + dP W_in^T */
            const double *dp = w->dP + j * d3;
            for (dpc_index m = 0; m < M; m++) {
                double s = w->dZ[j * M + m];
                const double *wr = Win + m * d3;
                for (dpc_index c = 0; c < d3; c++) s += dp[c] * wr[c];
                w->dX[j * M + m] = s;
            }
        }
    }
    /* X0 = g (1 + w S): dx, dw; directions; pair gradients */
    const dpc_index ti = a->center_types[i];
    const double *std = a->std + 4 * ti;
    const dpc_index *gidx = a->gate_index + i * a->nnei;
    memset(grad, 0, sizeof(double) * 3 * a->nnei);
    for (dpc_index j = 0; j < n; j++) {
        const dpc_index s = w->slot[j];
        const double *gate = a->gate + gidx[s] * M, *g = w->g + j * M, *dg = w->dg + j * M, *dX = w->dX + j * M;
        double dx = 0.0, dwt = 0.0;
        for (dpc_index m = 0; m < M; m++) {
            dx += dX[m] * (1.0 + w->w[j] * gate[m]) * dg[m];
            dwt += dX[m] * g[m] * gate[m];
        }
        double *dRt = w->dRt + 4 * j;
        dRt[0] += dx;
        if (att->dotr) {
            double dr[3] = {0.0, 0.0, 0.0};
            for (dpc_index k = 0; k < n; k++) {
                const double c = w->dC[j * n + k] + w->dC[k * n + j];
                for (int b = 0; b < 3; b++) dr[b] += c * w->rhat[3 * k + b];
            }
            const double *rh = w->rhat + 3 * j;
            if (w->nv[j] < DPC_ATTENTION_DIR_EPS) {
                for (int b = 0; b < 3; b++) dRt[1 + b] += dr[b] / DPC_ATTENTION_DIR_EPS;
            } else {
                unit_backward(rh, w->nv[j], dr, 3);
                for (int b = 0; b < 3; b++) dRt[1 + b] += dr[b];
            }
        }
        const double dsw = att->smooth ? dwt + w->dswa[j] : 0.0;
        const double *vec = a->vectors + (i * a->nnei + s) * 3;
        double *gr = grad + 3 * s;
        for (int b = 0; b < 3; b++) {
            double acc = 0.0;
            for (int k = 0; k < 4; k++) acc += dRt[k] / std[k] * w->dR[12 * j + 3 * k + b];
            gr[b] = acc + dsw * w->dsw[j] * vec[b];
        }
    }
}

static int valid(const dpc_se_a_tab_args *a, const dpc_attention_params *att)
{
    return a->nblocks == 1 && a->n_rows == 4 && a->gate && a->gate_index && att && att->n_layers >= 1 &&
           att->hidden >= 1 && att->hidden <= 512 && a->n_channels <= 1024;
}

static size_t work_bytes(const dpc_se_a_tab_args *a, const dpc_attention_params *att)
{
    work w;
    return work_layout(&w, NULL, a->nnei, a->n_channels, att->hidden, att->n_layers) + 64;
}

dpc_status dpc_dpa1_forward(const dpc_se_a_tab_args *a, const dpc_attention_params *att, int n_threads, double *T,
                            dpc_index *beyond_fine, dpc_index *beyond_table)
{
    if (!valid(a, att)) return DPC_ERR_ARGUMENT;
    if (n_threads < 1) n_threads = 1;
    const size_t bytes = work_bytes(a, att);
    int failed = 0;
#pragma omp parallel num_threads(n_threads) reduction(| : failed)
    {
        char *mem = (char *)malloc(bytes);
        if (!mem) failed = 1;
        work w;
        if (mem) work_layout(&w, (char *)(((uintptr_t)mem + 63) & ~(uintptr_t)63), a->nnei, a->n_channels, att->hidden,
                             att->n_layers);
#pragma omp for schedule(dynamic, 4)
        for (dpc_index i = 0; i < a->natoms; i++) {
            if (!mem) continue;
            dpc_index nf = 0, nt = 0;
            center_inputs(a, att, i, &w, &nf, &nt);
            layers_forward(att, a->nnei, a->n_channels, &w);
            center_T(a, &w, T + i * 4 * a->n_channels);
            if (beyond_fine) beyond_fine[i] = nf;
            if (beyond_table) beyond_table[i] = nt;
        }
        free(mem);
    }
    return failed ? DPC_ERR_ALLOC : DPC_OK;
}

dpc_status dpc_dpa1_backward(const dpc_se_a_tab_args *a, const dpc_attention_params *att, int n_threads,
                             const double *dT, double *pair_grad)
{
    if (!valid(a, att)) return DPC_ERR_ARGUMENT;
    if (n_threads < 1) n_threads = 1;
    const size_t bytes = work_bytes(a, att);
    int failed = 0;
#pragma omp parallel num_threads(n_threads) reduction(| : failed)
    {
        char *mem = (char *)malloc(bytes);
        if (!mem) failed = 1;
        work w;
        if (mem) work_layout(&w, (char *)(((uintptr_t)mem + 63) & ~(uintptr_t)63), a->nnei, a->n_channels, att->hidden,
                             att->n_layers);
#pragma omp for schedule(dynamic, 4)
        for (dpc_index i = 0; i < a->natoms; i++) {
            if (!mem) continue;
            dpc_index nf = 0, nt = 0;
            center_inputs(a, att, i, &w, &nf, &nt);
            layers_forward(att, a->nnei, a->n_channels, &w);
            center_backward(a, att, i, &w, dT + i * 4 * a->n_channels, pair_grad + i * a->nnei * 3);
        }
        free(mem);
    }
    return failed ? DPC_ERR_ALLOC : DPC_OK;
}
