/* DPA-1 attention layers on tabulated G_s: see dpc_attention.h. n x n per center; the n x n x d products
 * run as register-blocked axpys over unit-stride rows of length n (k, v, O, dq, dk, dv channel-major, see
 * axpy_rows), each output summed in the plain loop's order: the same bits as the row-by-row loops. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpc_attention.h"
#include "dpc_buffer.h"
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
    /* channel-major copies, so that the n x n x d products run over unit-stride rows of length n */
    double *kT, *vT;                 /* [L][d][N] normalised k, v */
    double *Aw;                      /* [L][N][N] A = A0 (w_j w_k) (C), the weights of O = A v */
    double *T2;                      /* [N][N] a transposed n x n temporary */
    double *OT, *dqT, *dkT, *dvT;    /* [d][N] */
    double *WinT, *WoutT;            /* [L][3d][M], [L][M][d] transposed weights (filled per call) */
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
    C_(kT, L * d * N); C_(vT, L * d * N); C_(Aw, L * N * N); C_(T2, N * N + 3 * N);
    C_(OT, d * N); C_(dqT, d * N); C_(dkT, d * N); C_(dvT, d * N);
    C_(WinT, L * 3 * d * M); C_(WoutT, L * M * d);
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

/* y[i] += a_c X[c][i] for c = 0 .. nc-1 in this order, i < len (X[c] = X + c ldx, a_c = a[c astride]).
 * Four sources per pass keep y[i] in a register (a quarter of the loads and stores of one axpy per c); the
 * additions stay in order, so every y[i] has the round-off of the plain loop. */
static inline void axpy_rows(double *restrict y, const double *restrict X, dpc_index ldx, const double *restrict a,
                             dpc_index astride, dpc_index nc, dpc_index len)
{
    dpc_index c = 0;
    for (; c + 4 <= nc; c += 4) {
        const double a0 = a[c * astride], a1 = a[(c + 1) * astride], a2 = a[(c + 2) * astride],
                     a3 = a[(c + 3) * astride];
        const double *x0 = X + c * ldx, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
        for (dpc_index i = 0; i < len; i++) {
            double t = y[i];
            t += a0 * x0[i];
            t += a1 * x1[i];
            t += a2 * x2[i];
            t += a3 * x3[i];
            y[i] = t;
        }
    }
    for (; c < nc; c++) {
        const double ac = a[c * astride], *xc = X + c * ldx;
        for (dpc_index i = 0; i < len; i++) y[i] += ac * xc[i];
    }
}

/* The transposed weights W_in^T [l][3d][M] and W_out^T [l][M][d], once per thread and call. */
static void weights_transposed(const dpc_attention_params *att, dpc_index M, work *w)
{
    const dpc_index d = att->hidden, d3 = 3 * d;
    for (dpc_index l = 0; l < att->n_layers; l++) {
        const double *Win = att->w_in + l * M * d3, *Wout = att->w_out + l * d * M;
        double *wi = w->WinT + l * d3 * M, *wo = w->WoutT + l * M * d;
        for (dpc_index m = 0; m < M; m++)
            for (dpc_index c = 0; c < d3; c++) wi[c * M + m] = Win[m * d3 + c];
        for (dpc_index c = 0; c < d; c++)
            for (dpc_index m = 0; m < M; m++) wo[m * d + c] = Wout[c * M + m];
    }
}

/* B [c][a] = A [a][c] for an r x c block (row strides as given). */
static void transpose(const double *A, dpc_index rows, dpc_index cols, dpc_index lda, double *B, dpc_index ldb)
{
    for (dpc_index r = 0; r < rows; r++)
        for (dpc_index c = 0; c < cols; c++) B[c * ldb + r] = A[r * lda + c];
}

/* All layers forward over the n real rows (w->X in place), caches kept per layer.
 * Every n x n x d product is written as axpys over unit-stride rows of length n (channel-major k, v, O), with
 * each output element summed in the same order as the plain triple loop: the same round-off. */
static void layers_forward(const dpc_attention_params *att, dpc_index N, dpc_index M, work *w)
{
    const dpc_index n = w->n, d = att->hidden, d3 = 3 * d, npad = N - n;
    const double *sw = w->sw;
    if (att->dotr) { /* C_jk = rhat_j . rhat_k, rows over the channel-major directions */
        double *rT = w->T2; /* [3][n], free until the first layer's O */
        transpose(w->rhat, n, 3, 3, rT, n);
        for (dpc_index j = 0; j < n; j++) {
            const double *a = w->rhat + 3 * j;
            double *Cj = w->C + j * n;
            for (dpc_index k = 0; k < n; k++) Cj[k] = a[0] * rT[k] + a[1] * rT[n + k] + a[2] * rT[2 * n + k];
        }
    }
    const int pad_logit = att->smooth && npad > 0; /* the N - n padding slots' constant logit -c */
    for (dpc_index l = 0; l < att->n_layers; l++) {
        const double *Win = att->w_in + l * M * d3, *bin = att->b_in + l * d3;
        const double *bout = att->b_out + l * M;
        const double *gamma = att->ln + l * 2 * M, *beta = gamma + M;
        double *qkv = w->qkv + l * N * d3, *norms = w->norms + l * N * 3;
        double *Lam = w->Lam + l * N * N, *A0 = w->A0 + l * N * N, *zb = w->zb + l * N * M, *sig = w->sigma + l * N;
        double *kT = w->kT + l * d * N, *vT = w->vT + l * d * N, *Aw = w->Aw + l * N * N;
        for (dpc_index j = 0; j < n; j++) {
            double *out = qkv + j * d3;
            const double *x = w->X + j * M;
            for (dpc_index c = 0; c < d3; c++) out[c] = bin[c];
            axpy_rows(out, Win, d3, x, 1, M, d3);
            for (int part = 0; part < 3; part++) {
                double *v = out + part * d, s = 0.0;
                for (dpc_index c = 0; c < d; c++) s += v[c] * v[c];
                const double nrm = sqrt(s);
                norms[3 * j + part] = nrm;
                if (att->normalize)
                    for (dpc_index c = 0; c < d; c++) v[c] /= nrm;
            }
            for (dpc_index c = 0; c < d; c++) {
                kT[c * n + j] = out[d + c];
                vT[c * n + j] = out[2 * d + c];
            }
        }
        for (dpc_index j = 0; j < n; j++) {
            const double *q = qkv + j * d3;
            double *lam = Lam + j * n, *a0 = A0 + j * n;
            for (dpc_index k = 0; k < n; k++) lam[k] = 0.0;
            double aq[512]; /* Lam_jk = sum_c (alpha q_jc) k_kc */
            for (dpc_index c = 0; c < d; c++) aq[c] = att->alpha * q[c];
            axpy_rows(lam, kT, n, aq, 1, d, n);
            if (att->smooth) {
                const double swj = sw[j];
                for (dpc_index k = 0; k < n; k++) a0[k] = (lam[k] + DPC_ATTENTION_SHIFT) * swj * sw[k] - DPC_ATTENTION_SHIFT;
            } else {
                for (dpc_index k = 0; k < n; k++) a0[k] = lam[k];
            }
            double mx = pad_logit ? -DPC_ATTENTION_SHIFT : -INFINITY;
#pragma omp simd reduction(max : mx)
            for (dpc_index k = 0; k < n; k++) mx = a0[k] > mx ? a0[k] : mx;
            double sum = 0.0;
            for (dpc_index k = 0; k < n; k++) {
                const double e = exp(a0[k] - mx);
                a0[k] = e;
                sum += e;
            }
            if (pad_logit) sum += (double)npad * exp(-DPC_ATTENTION_SHIFT - mx);
            w->rowsum[l * N + j] = sum;
            double *aw = Aw + j * n;
            for (dpc_index k = 0; k < n; k++) a0[k] /= sum;
            if (att->smooth) {
                const double swj = sw[j];
                for (dpc_index k = 0; k < n; k++) aw[k] = a0[k] * (swj * sw[k]);
            } else {
                for (dpc_index k = 0; k < n; k++) aw[k] = a0[k];
            }
            if (att->dotr)
                for (dpc_index k = 0; k < n; k++) aw[k] *= w->C[j * n + k];
        }
        /* O = A v as O^T [c][j] += A^T [k][j] v_kc over k in order */
        double *AT = w->T2, *OT = w->OT;
        transpose(Aw, n, n, n, AT, n);
        for (dpc_index q = 0; q < d * n; q++) OT[q] = 0.0;
        for (dpc_index c = 0; c < d; c++) axpy_rows(OT + c * n, AT, n, qkv + 2 * d + c, d3, n, n);
        /* Z = X + O W_out + b_out, LayerNorm */
        for (dpc_index j = 0; j < n; j++) {
            double *x = w->X + j * M, *z = zb + j * M;
            for (dpc_index m = 0; m < M; m++) z[m] = bout[m];
            axpy_rows(z, att->w_out + l * d * M, M, OT + j, n, d, M);
            double mean = 0.0;
            for (dpc_index m = 0; m < M; m++) {
                z[m] = x[m] + z[m];
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
        const double *WinT = w->WinT + l * d3 * M, *WoutT = w->WoutT + l * M * d;
        const double *gamma = att->ln + l * 2 * M;
        const double *qkv = w->qkv + l * N * d3, *norms = w->norms + l * N * 3;
        const double *Lam = w->Lam + l * N * N, *A0 = w->A0 + l * N * N, *zb = w->zb + l * N * M, *sig = w->sigma + l * N;
        const double *kT = w->kT + l * d * N, *vT = w->vT + l * d * N, *Aw = w->Aw + l * N * N;
        /* LayerNorm and out_proj: dO_jc = sum_m dZ_jm W_out[c][m] (m in order, vectorised over c) */
        for (dpc_index j = 0; j < n; j++) {
            double gm[1024], mg = 0.0, mgz = 0.0;
            const double *z = zb + j * M;
            double *dZ = w->dZ + j * M, *dO = w->dO + j * d;
            for (dpc_index m = 0; m < M; m++) {
                gm[m] = w->dX[j * M + m] * gamma[m];
                mg += gm[m];
                mgz += gm[m] * z[m];
            }
            mg /= (double)M;
            mgz /= (double)M;
            for (dpc_index m = 0; m < M; m++) dZ[m] = (gm[m] - mg - z[m] * mgz) / sig[j];
            for (dpc_index c = 0; c < d; c++) dO[c] = 0.0;
            axpy_rows(dO, WoutT, d, dZ, 1, M, d);
        }
        /* dA = dO v^T (rows of length n); dv^T [c][k] = sum_j A_jk dO_jc (j in order) */
        double *dvT = w->dvT, *dqT = w->dqT, *dkT = w->dkT;
        for (dpc_index q = 0; q < d * n; q++) dvT[q] = dqT[q] = dkT[q] = 0.0;
        for (dpc_index j = 0; j < n; j++) {
            double *da = w->dA + j * n;
            for (dpc_index k = 0; k < n; k++) da[k] = 0.0;
            axpy_rows(da, vT, n, w->dO + j * d, 1, d, n);
        }
        for (dpc_index c = 0; c < d; c++) axpy_rows(dvT + c * n, Aw, n, w->dO + c, d, n, n);
        /* back through dotr, the smooth products and the softmax; dLam into dA */
        for (dpc_index j = 0; j < n; j++) {
            const double swj = att->smooth ? w->sw[j] : 1.0;
            const double *a0 = A0 + j * n, *lam = Lam + j * n, *C = w->C + j * n;
            double *da = w->dA + j * n, *dC = w->dC + j * n, *dswa = w->dswa;
            double rs = 0.0, dswj = 0.0;
            for (dpc_index k = 0; k < n; k++) {
                const double pi = att->smooth ? swj * w->sw[k] : 1.0;
                double dA1 = da[k];
                if (att->dotr) {
                    dC[k] += dA1 * a0[k] * pi;
                    dA1 *= C[k];
                }
                if (att->smooth) { /* dA1 * A0 is the A1 = A0 pi product's share of d(pi) */
                    const double dpi = dA1 * a0[k];
                    dswj += dpi * w->sw[k];
                    dswa[k] += dpi * swj;
                }
                const double dA0 = dA1 * pi;
                da[k] = dA0;
                rs += dA0 * a0[k];
            }
            for (dpc_index k = 0; k < n; k++) {
                const double dLp = a0[k] * (da[k] - rs);
                if (att->smooth) {
                    const double dpi = dLp * (lam[k] + DPC_ATTENTION_SHIFT);
                    dswj += dpi * w->sw[k];
                    dswa[k] += dpi * swj;
                    da[k] = dLp * swj * w->sw[k];
                } else {
                    da[k] = dLp;
                }
            }
            dswa[j] += dswj;
        }
        /* dq^T [c][j] = sum_k (alpha dLam_jk) k_kc (k in order), dk^T [c][k] = sum_j (alpha dLam_jk) q_jc (j in order) */
        double *S = w->dA, *ST = w->T2; /* S = alpha dLam */
        for (dpc_index q = 0; q < n * n; q++) S[q] *= att->alpha;
        transpose(S, n, n, n, ST, n);
        for (dpc_index c = 0; c < d; c++) {
            axpy_rows(dqT + c * n, ST, n, kT + c * n, 1, n, n);
            axpy_rows(dkT + c * n, S, n, qkv + c, d3, n, n);
        }
        for (dpc_index j = 0; j < n; j++) {
            double *dp = w->dP + j * d3;
            for (dpc_index c = 0; c < d; c++) {
                dp[c] = dqT[c * n + j];
                dp[d + c] = dkT[c * n + j];
                dp[2 * d + c] = dvT[c * n + j];
            }
            if (att->normalize)
                for (int part = 0; part < 3; part++)
                    unit_backward(qkv + j * d3 + part * d, norms[3 * j + part], dp + part * d, d);
            /* dX = dZ + dP W_in^T (c in order, vectorised over m) */
            double *dX = w->dX + j * M;
            const double *dZ = w->dZ + j * M;
            for (dpc_index m = 0; m < M; m++) dX[m] = dZ[m];
            axpy_rows(dX, WinT, M, dp, 1, d3, M);
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

/* This thread's work arrays, carved out of its scratch buffer (kept between calls by the runtime's
 * workspace, so a step allocates nothing once the buffers have grown); 0 when out of memory. */
static int thread_work(const dpc_se_a_tab_args *a, const dpc_attention_params *att, dpc_buffer *thread_scratch,
                       dpc_buffer *own, work *w)
{
    const size_t bytes = work_layout(w, NULL, a->nnei, a->n_channels, att->hidden, att->n_layers) + 64;
    char *mem = (char *)dpc_buffer_reserve(dpc_thread_buffer(thread_scratch, own), bytes);
    if (!mem) return 0;
    work_layout(w, (char *)(((uintptr_t)mem + 63) & ~(uintptr_t)63), a->nnei, a->n_channels, att->hidden,
                att->n_layers);
    return 1;
}

dpc_status dpc_dpa1_forward(const dpc_se_a_tab_args *a, const dpc_attention_params *att, dpc_buffer *thread_scratch,
                            int n_threads, double *T, dpc_index *beyond_fine, dpc_index *beyond_table)
{
    if (!valid(a, att)) return DPC_ERR_ARGUMENT;
    if (n_threads < 1) n_threads = 1;
    int failed = 0;
#pragma omp parallel num_threads(n_threads) reduction(| : failed)
    {
        dpc_buffer own = {NULL, 0};
        work w;
        const int ok = thread_work(a, att, thread_scratch, &own, &w);
        if (!ok) failed = 1;
#pragma omp for schedule(dynamic, 4)
        for (dpc_index i = 0; i < a->natoms; i++) {
            if (!ok) continue;
            dpc_index nf = 0, nt = 0;
            center_inputs(a, att, i, &w, &nf, &nt);
            layers_forward(att, a->nnei, a->n_channels, &w);
            center_T(a, &w, T + i * 4 * a->n_channels);
            if (beyond_fine) beyond_fine[i] = nf;
            if (beyond_table) beyond_table[i] = nt;
        }
        dpc_buffer_free(&own);
    }
    return failed ? DPC_ERR_ALLOC : DPC_OK;
}

dpc_status dpc_dpa1_backward(const dpc_se_a_tab_args *a, const dpc_attention_params *att, dpc_buffer *thread_scratch,
                             int n_threads, const double *dT, double *pair_grad)
{
    if (!valid(a, att)) return DPC_ERR_ARGUMENT;
    if (n_threads < 1) n_threads = 1;
    int failed = 0;
#pragma omp parallel num_threads(n_threads) reduction(| : failed)
    {
        dpc_buffer own = {NULL, 0};
        work w;
        const int ok = thread_work(a, att, thread_scratch, &own, &w);
        if (!ok) failed = 1;
        if (ok) weights_transposed(att, a->n_channels, &w);
#pragma omp for schedule(dynamic, 4)
        for (dpc_index i = 0; i < a->natoms; i++) {
            if (!ok) continue;
            dpc_index nf = 0, nt = 0;
            center_inputs(a, att, i, &w, &nf, &nt);
            layers_forward(att, a->nnei, a->n_channels, &w);
            center_backward(a, att, i, &w, dT + i * 4 * a->n_channels, pair_grad + i * a->nnei * 3);
        }
        dpc_buffer_free(&own);
    }
    return failed ? DPC_ERR_ALLOC : DPC_OK;
}
