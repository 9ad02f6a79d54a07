/* One DPA-2 repformer layer, forward (see dpc_repformer.h; twin: evaluators/exact/repformer_layer.py). */
#include "dpc_repformer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpc_activations.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* y = x W (+ b); W row-major (nin, nout) */
static void affine(const double *x, int64_t nin, const double *W, const double *b, int64_t nout, double *y)
{
    for (int64_t o = 0; o < nout; ++o) y[o] = b ? b[o] : 0.0;
    for (int64_t i = 0; i < nin; ++i) {
        const double xi = x[i];
        const double *row = W + i * nout;
        for (int64_t o = 0; o < nout; ++o) y[o] += xi * row[o];
    }
}

static void activate_vec(int code, double *y, int64_t k)
{
    double v, d1, d2;
    for (int64_t i = 0; i < k; ++i) {
        dpc_activation(code, y[i], &v, &d1, &d2);
        y[i] = v;
    }
}

/* softmax over k entries in place (every entry valid: the smooth form) */
static void softmax(double *L, int64_t k)
{
    double top = L[0], s = 0.0;
    for (int64_t i = 1; i < k; ++i) top = L[i] > top ? L[i] : top;
    for (int64_t i = 0; i < k; ++i) {
        L[i] = exp(L[i] - top);
        s += L[i];
    }
    for (int64_t i = 0; i < k; ++i) L[i] /= s;
}

/* sym(X): hg (3 x nX) = c2 sum_j h2_j (x) w_j X_j; out (ax x nX) = hg[:, :ax]^T hg / 3 */
static void sym(const double *X, int64_t ldx, const int64_t *rows, int64_t J, int64_t nX, const double *h2,
                const double *w, double c2, int64_t ax, double *hg, double *out)
{
    memset(hg, 0, sizeof(double) * 3 * nX);
    for (int64_t j = 0; j < J; ++j) {
        if (w[j] == 0.0) continue; /* empty or switched-off slot: no term */
        const double *x = X + (rows ? rows[j] : j) * ldx;
        for (int c = 0; c < 3; ++c) {
            const double hc = h2[j * 3 + c] * w[j];
            for (int64_t g = 0; g < nX; ++g) hg[c * nX + g] += hc * x[g];
        }
    }
    for (int64_t i = 0; i < 3 * nX; ++i) hg[i] *= c2;
    for (int64_t a = 0; a < ax; ++a)
        for (int64_t g = 0; g < nX; ++g)
            out[a * nX + g] = (hg[a] * hg[g] + hg[nX + a] * hg[nX + g] + hg[2 * nX + a] * hg[2 * nX + g]) / 3.0;
}

typedef struct {
    double *w, *lin_in, *hg, *tmp, *q, *kv, *L, *o, *qk, *v, *A, *flat;
} scratch;

static size_t scratch_size(const dpc_repformer_layer *Ly, int64_t J)
{
    const int64_t d1 = Ly->g1_dim, d2 = Ly->g2_dim, ax = Ly->axis_neuron;
    const int64_t h1 = Ly->attn1_hidden, n1 = Ly->attn1_nhead, h2 = Ly->attn2_hidden, n2 = Ly->attn2_nhead;
    const int64_t big = d1 > d2 ? d1 : d2;
    size_t s = (size_t)(J + ax * (d1 + d2) + 3 * big + 4 * big + h1 * n1 + J * (h1 + d1) * n1 + J + n1 * d1);
    if (Ly->update_chnnl_2) s += (size_t)(J * 2 * h2 * n2 + J * d2 * n2 + n2 * J * J + d2 * n2);
    return s;
}

static void carve(const dpc_repformer_layer *Ly, int64_t J, double *base, scratch *s)
{
    const int64_t d1 = Ly->g1_dim, d2 = Ly->g2_dim, ax = Ly->axis_neuron;
    const int64_t h1 = Ly->attn1_hidden, n1 = Ly->attn1_nhead, h2 = Ly->attn2_hidden, n2 = Ly->attn2_nhead;
    const int64_t big = d1 > d2 ? d1 : d2;
    s->w = base;
    s->lin_in = s->w + J;
    s->hg = s->lin_in + ax * (d1 + d2);
    s->tmp = s->hg + 3 * big;
    s->q = s->tmp + 4 * big;
    s->kv = s->q + h1 * n1;
    s->L = s->kv + J * (h1 + d1) * n1;
    s->o = s->L + J;
    s->qk = s->o + n1 * d1;
    s->v = s->qk + (Ly->update_chnnl_2 ? J * 2 * h2 * n2 : 0);
    s->A = s->v + (Ly->update_chnnl_2 ? J * d2 * n2 : 0);
    s->flat = s->A + (Ly->update_chnnl_2 ? n2 * J * J : 0);
}

static void center_g1(const dpc_repformer_layer *Ly, int64_t i, int64_t J, const double *g1, const double *g2,
                      const double *h2, const int64_t *idx, const double *m, const double *sw, scratch *s,
                      double *out)
{
    const int64_t d1 = Ly->g1_dim, d2 = Ly->g2_dim, ax = Ly->axis_neuron;
    const int64_t h1 = Ly->attn1_hidden, n1 = Ly->attn1_nhead;
    const double c1 = 1.0 / (double)J, c2 = 1.0 / sqrt((double)J), k1 = 1.0 / sqrt(5.0);
    const double *gi = g1 + i * d1, *G2 = g2 + i * J * d2, *H2 = h2 + i * J * 3;
    const int64_t *rows = idx + i * J;
    double *tmp = s->tmp;
    for (int64_t j = 0; j < J; ++j) s->w[j] = m[i * J + j] * sw[i * J + j];
    for (int64_t g = 0; g < d1; ++g) out[g] = gi[g];
    /* self MLP */
    affine(gi, d1, Ly->g1_self_mlp_w, Ly->g1_self_mlp_b, d1, tmp);
    activate_vec(Ly->activation, tmp, d1);
    for (int64_t g = 0; g < d1; ++g) out[g] += tmp[g];
    /* conv: c1 sum_j (g2_j Wp) . w_j g1[idx_j] */
    for (int64_t j = 0; j < J; ++j) {
        if (s->w[j] == 0.0) continue;
        const double *gj = g1 + rows[j] * d1;
        affine(G2 + j * d2, d2, Ly->proj_g1g2_w, NULL, d1, tmp);
        for (int64_t g = 0; g < d1; ++g) out[g] += c1 * tmp[g] * s->w[j] * gj[g];
    }
    /* linear1 on [grrg, drrd] */
    sym(G2, d2, NULL, J, d2, H2, s->w, c2, ax, s->hg, s->lin_in);
    sym(g1, d1, rows, J, d1, H2, s->w, c2, ax, s->hg, s->lin_in + ax * d2);
    affine(s->lin_in, ax * (d1 + d2), Ly->linear1_w, Ly->linear1_b, d1, tmp);
    activate_vec(Ly->activation, tmp, d1);
    for (int64_t g = 0; g < d1; ++g) out[g] += tmp[g];
    /* local attention */
    affine(gi, d1, Ly->mapq_w, NULL, h1 * n1, s->q);
    for (int64_t j = 0; j < J; ++j) affine(g1 + rows[j] * d1, d1, Ly->mapkv_w, NULL, (h1 + d1) * n1, s->kv + j * (h1 + d1) * n1);
    memset(s->o, 0, sizeof(double) * n1 * d1);
    for (int64_t h = 0; h < n1; ++h) {
        for (int64_t j = 0; j < J; ++j) {
            const double *kv = s->kv + j * (h1 + d1) * n1;
            double dot = 0.0;
            for (int64_t e = 0; e < h1; ++e) dot += s->q[e * n1 + h] * kv[e * n1 + h];
            s->L[j] = (dot / sqrt((double)h1) + Ly->attn1_shift) * sw[i * J + j] - Ly->attn1_shift;
        }
        softmax(s->L, J);
        for (int64_t j = 0; j < J; ++j) {
            const double a = s->L[j] * s->w[j];
            if (a == 0.0) continue;
            const double *kv = s->kv + j * (h1 + d1) * n1;
            for (int64_t g = 0; g < d1; ++g) s->o[h * d1 + g] += a * kv[(h1 + g) * n1 + h];
        }
    }
    affine(s->o, n1 * d1, Ly->head_map1_w, Ly->head_map1_b, d1, tmp);
    for (int64_t g = 0; g < d1; ++g) out[g] = k1 * (out[g] + tmp[g]);
}

static void center_g2(const dpc_repformer_layer *Ly, int64_t i, int64_t J, const double *g1, const double *g2,
                      const double *h2, const int64_t *idx, const double *m, const double *sw, scratch *s,
                      double *out)
{
    const int64_t d1 = Ly->g1_dim, d2 = Ly->g2_dim, d = Ly->attn2_hidden, nh = Ly->attn2_nhead;
    const double *gi = g1 + i * d1, *G2 = g2 + i * J * d2, *H2 = h2 + i * J * 3;
    const double *M = m + i * J, *SW = sw + i * J;
    const int64_t *rows = idx + i * J;
    double *tmp = s->tmp, *x = s->tmp + (d1 > d2 ? d1 : d2); /* tmp: d2 values, x: d1 */
    const double rd = 1.0 / sqrt((double)d), r3 = 1.0 / sqrt(3.0);
    for (int64_t j = 0; j < J; ++j) {
        double *oj = out + j * d2;
        const double *g2j = G2 + j * d2, *gj = g1 + rows[j] * d1;
        const double wj = M[j] * SW[j];
        for (int64_t g = 0; g < d2; ++g) oj[g] = g2j[g];
        affine(g2j, d2, Ly->linear2_w, Ly->linear2_b, d2, tmp);
        activate_vec(Ly->activation, tmp, d2);
        for (int64_t g = 0; g < d2; ++g) oj[g] += tmp[g];
        for (int64_t e = 0; e < d1; ++e) x[e] = gi[e] * gj[e] * wj;
        affine(x, d1, Ly->proj_g1g1g2_w, NULL, d2, tmp);
        for (int64_t g = 0; g < d2; ++g) oj[g] += tmp[g];
        affine(g2j, d2, Ly->mapqk_w, NULL, 2 * d * nh, s->qk + j * 2 * d * nh);
        affine(g2j, d2, Ly->mapv_w, NULL, d2 * nh, s->v + j * d2 * nh);
    }
    /* A^h_jk = softmax_k((q_j.k_k/sqrt d + c) sw_j sw_k - c) m_j m_k sw_j sw_k (h2_j.h2_k)/sqrt 3 */
    for (int64_t h = 0; h < nh; ++h)
        for (int64_t j = 0; j < J; ++j) {
            double *Ar = s->A + (h * J + j) * J;
            const double *q = s->qk + j * 2 * d * nh;
            for (int64_t k = 0; k < J; ++k) {
                const double *kk = s->qk + k * 2 * d * nh;
                double dot = 0.0;
                for (int64_t e = 0; e < d; ++e) dot += q[e * 2 * nh + h] * kk[e * 2 * nh + nh + h];
                Ar[k] = (dot * rd + Ly->attn2_shift) * SW[j] * SW[k] - Ly->attn2_shift;
            }
            softmax(Ar, J);
            for (int64_t k = 0; k < J; ++k) {
                const double hh = H2[j * 3] * H2[k * 3] + H2[j * 3 + 1] * H2[k * 3 + 1] + H2[j * 3 + 2] * H2[k * 3 + 2];
                Ar[k] *= M[j] * M[k] * SW[j] * SW[k] * hh * r3;
            }
        }
    for (int64_t j = 0; j < J; ++j) {
        /* flat[g nh + h] = sum_k A^h_jk v_k[g nh + h] */
        memset(s->flat, 0, sizeof(double) * d2 * nh);
        for (int64_t h = 0; h < nh; ++h) {
            const double *Ar = s->A + (h * J + j) * J;
            for (int64_t k = 0; k < J; ++k) {
                if (Ar[k] == 0.0) continue;
                const double *vk = s->v + k * d2 * nh;
                for (int64_t g = 0; g < d2; ++g) s->flat[g * nh + h] += Ar[k] * vk[g * nh + h];
            }
        }
        affine(s->flat, d2 * nh, Ly->head_map2_w, Ly->head_map2_b, d2, tmp);
        double mu = 0.0, var = 0.0;
        for (int64_t g = 0; g < d2; ++g) mu += tmp[g];
        mu /= (double)d2;
        for (int64_t g = 0; g < d2; ++g) var += (tmp[g] - mu) * (tmp[g] - mu);
        const double sd = sqrt(var / (double)d2 + Ly->ln_eps);
        double *oj = out + j * d2;
        for (int64_t g = 0; g < d2; ++g) oj[g] = 0.5 * (oj[g] + (tmp[g] - mu) / sd * Ly->ln_w[g] + Ly->ln_b[g]);
    }
}

int dpc_repformer_layer_forward(const dpc_repformer_layer *L, int64_t n, int64_t J, const double *g1,
                                const double *g2, const double *h2, const int64_t *idx, const double *m,
                                const double *sw, int n_threads, double *g1_out, double *g2_out)
{
    if (n < 0 || J < 1 || L->g1_dim < 1 || L->g2_dim < 1 || !dpc_activation_valid(L->activation)) return -1;
    const size_t per = scratch_size(L, J);
    int failed = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(n_threads > 0 ? n_threads : 1) reduction(| : failed)
#endif
    {
        double *base = (double *)malloc(sizeof(double) * per);
        if (!base) failed = 1;
        scratch s = {0}; /* carved below when the allocation succeeded */
        if (base) carve(L, J, base, &s);
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t i = 0; i < n; ++i) {
            if (!base) continue;
            center_g1(L, i, J, g1, g2, h2, idx, m, sw, &s, g1_out + i * L->g1_dim);
            if (L->update_chnnl_2) center_g2(L, i, J, g1, g2, h2, idx, m, sw, &s, g2_out + i * J * L->g2_dim);
        }
        free(base);
    }
    return failed ? -1 : 0;
}
