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

/* ------------------------------------------------------------------ the g2 (pair-pair) attention of one center
 *
 * A^h_jk = softmax_k((q_j.k_k/sqrt d + c) sw_j sw_k - c) m_j m_k sw_j sw_k (h2_j.h2_k)/sqrt 3 over the J slots.
 * An empty slot (m = sw = 0) has the logit -c exactly in every row and a zero column and row of A, so it
 * only adds exp(-c - top) to each row's denominator: the slots with m or sw nonzero are compacted
 * (index a < nr, slot r[a]) and the J x J work shrinks to nr x nr (nr ~ 2/3 J in water).  Inside a
 * center q, k, v are head-major and contiguous, so the inner loops run over unit strides. */
typedef struct {
    int64_t nr;       /* the real slots (m or sw nonzero) */
    int64_t *r;       /* (J): their slot numbers */
    double *Q;        /* (nh, J, d): q^h_a, rows a < nr */
    double *K, *V;    /* (nh, d, J), (nh, d2, J): k^h_b, v^h_b with b innermost, so the loops over the
                       * real columns b run over unit strides (and the sums keep their order) */
    double *swr, *Ar; /* (J): sw of the real slots; one row of A */
    double *HH, *F;   /* (J, J): h2_a.h2_b and m_a m_b sw_a sw_b / sqrt 3, so A = P HH F */
    double *L1;       /* (nh, J, J): q_a.k_b / sqrt d */
    double *P;        /* (nh, J, J): the softmax over the real columns */
    double *Pe;       /* (nh, J): the softmax weight of one empty column */
    double *flat;     /* (J, d2 nh): sum_b A_ab v_b, column g nh + h (the head map's input order) */
    /* backward only */
    double *dQ, *dK, *dV, *G, *S, *dP, *kq, *dflat, *t, *gln;
} att2;

static size_t att2_carve(const dpc_repformer_layer *Ly, int64_t J, double *base, att2 *s)
{
    const int64_t d2 = Ly->g2_dim, d = Ly->attn2_hidden, nh = Ly->attn2_nhead;
    const int64_t sizes[] = {J, nh * J * d, nh * J * d, nh * J * d2, J, J, J * J, J * J, nh * J * J, nh * J * J, nh * J,
                             J * d2 * nh, nh * J * d, nh * J * d, nh * J * d2, J * J, J * J, J,
                             2 * d * nh + d2 * nh, d2 * nh, d2, d2 + J};
    double *rr;
    double **slots[] = {&rr, &s->Q, &s->K, &s->V, &s->swr, &s->Ar, &s->HH, &s->F, &s->L1, &s->P, &s->Pe, &s->flat,
                        &s->dQ, &s->dK, &s->dV, &s->G, &s->S, &s->dP, &s->kq, &s->dflat, &s->t, &s->gln};
    size_t off = 0;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); ++k) {
        if (base) *slots[k] = base + off;
        off += (size_t)sizes[k];
    }
    if (base) s->r = (int64_t *)rr; /* int64 and double have one size */
    return off;
}

/* q, k (h < nh: query, else key; W_qk column e 2nh + h) and v (column g nh + h) of one g2 row a, head-major
 * (layouts as in att2) */
static void att2_project(const dpc_repformer_layer *Ly, int64_t J, const double *g2j, int64_t a, double *Q, double *K,
                         double *V)
{
    const int64_t d2 = Ly->g2_dim, d = Ly->attn2_hidden, nh = Ly->attn2_nhead, nqk = 2 * d * nh;
    for (int64_t e = 0; e < d; ++e)
        for (int64_t h = 0; h < 2 * nh; ++h) {
            double acc = 0.0;
            for (int64_t i = 0; i < d2; ++i) acc += g2j[i] * Ly->mapqk_w[i * nqk + e * 2 * nh + h];
            if (h < nh) {
                if (Q) Q[(h * J + a) * d + e] = acc;
            } else K[((h - nh) * d + e) * J + a] = acc;
        }
    if (!V) return;
    for (int64_t g = 0; g < d2; ++g)
        for (int64_t h = 0; h < nh; ++h) {
            double acc = 0.0;
            for (int64_t i = 0; i < d2; ++i) acc += g2j[i] * Ly->mapv_w[i * d2 * nh + g * nh + h];
            V[(h * d2 + g) * J + a] = acc;
        }
}

/* the weights P, Pe and o = A v (s->flat) of one center */
static void att2_forward(const dpc_repformer_layer *Ly, int64_t J, const double *G2, const double *H2,
                         const double *M, const double *SW, att2 *s)
{
    const int64_t d2 = Ly->g2_dim, d = Ly->attn2_hidden, nh = Ly->attn2_nhead, nv = d2 * nh;
    const double rd = 1.0 / sqrt((double)d), r3 = 1.0 / sqrt(3.0), sh = Ly->attn2_shift;
    int64_t nr = 0;
    for (int64_t j = 0; j < J; ++j)
        if (M[j] != 0.0 || SW[j] != 0.0) s->r[nr++] = j;
    s->nr = nr;
    const double ne = (double)(J - nr);
    for (int64_t a = 0; a < nr; ++a) {
        att2_project(Ly, J, G2 + s->r[a] * d2, a, s->Q, s->K, s->V);
        s->swr[a] = SW[s->r[a]];
    }
    for (int64_t a = 0; a < nr; ++a) {
        const int64_t ra = s->r[a];
        for (int64_t b = 0; b < nr; ++b) {
            const int64_t rb = s->r[b];
            s->HH[a * J + b] = H2[ra * 3] * H2[rb * 3] + H2[ra * 3 + 1] * H2[rb * 3 + 1] + H2[ra * 3 + 2] * H2[rb * 3 + 2];
            s->F[a * J + b] = M[ra] * M[rb] * SW[ra] * SW[rb] * r3;
        }
    }
    for (int64_t h = 0; h < nh; ++h)
        for (int64_t a = 0; a < nr; ++a) {
            const double *qa = s->Q + (h * J + a) * d, swa = SW[s->r[a]];
            double *L1 = s->L1 + (h * J + a) * J, *P = s->P + (h * J + a) * J;
            double top = nr < J ? -sh : -INFINITY; /* an empty slot's logit is -c */
            for (int64_t b = 0; b < nr; ++b) L1[b] = 0.0;
            for (int64_t e = 0; e < d; ++e) {
                const double qe = qa[e], *ke = s->K + (h * d + e) * J;
                for (int64_t b = 0; b < nr; ++b) L1[b] += qe * ke[b];
            }
            for (int64_t b = 0; b < nr; ++b) {
                L1[b] *= rd;
                /* attn2_has_gate: the logit q.k / sqrt d is gated by h2_a.h2_b (an empty slot's stays -c) */
                P[b] = ((Ly->attn2_has_gate ? L1[b] * s->HH[a * J + b] : L1[b]) + sh) * swa * s->swr[b] - sh;
                top = P[b] > top ? P[b] : top;
            }
            double sum = 0.0;
            for (int64_t b = 0; b < nr; ++b) {
                P[b] = exp(P[b] - top);
                sum += P[b];
            }
            const double pe = nr < J ? exp(-sh - top) : 0.0;
            sum += ne * pe;
            for (int64_t b = 0; b < nr; ++b) P[b] /= sum;
            s->Pe[h * J + a] = pe / sum;
            /* o^h_a = sum_b A_ab v^h_b, stored in the head map's column order */
            for (int64_t b = 0; b < nr; ++b) s->Ar[b] = P[b] * s->HH[a * J + b] * s->F[a * J + b];
            for (int64_t g = 0; g < d2; ++g) {
                const double *vg = s->V + (h * d2 + g) * J;
                double o = 0.0;
                for (int64_t b = 0; b < nr; ++b) o += s->Ar[b] * vg[b];
                s->flat[a * nv + g * nh + h] = o;
            }
        }
}

/* t = o W_o + b_o and the layer norm of t: y, and t, mu, sd for its adjoint */
static void att2_head_ln(const dpc_repformer_layer *Ly, const double *flat, double *t, double *y, double *mu_out,
                         double *sd_out)
{
    const int64_t d2 = Ly->g2_dim, nv = d2 * Ly->attn2_nhead;
    double mu = 0.0, var = 0.0;
    if (flat) affine(flat, nv, Ly->head_map2_w, Ly->head_map2_b, d2, t);
    else memcpy(t, Ly->head_map2_b, sizeof(double) * d2); /* an empty row: o = 0 */
    for (int64_t g = 0; g < d2; ++g) mu += t[g];
    mu /= (double)d2;
    for (int64_t g = 0; g < d2; ++g) var += (t[g] - mu) * (t[g] - mu);
    const double sd = sqrt(var / (double)d2 + Ly->ln_eps);
    if (y)
        for (int64_t g = 0; g < d2; ++g) y[g] = (t[g] - mu) / sd * Ly->ln_w[g] + Ly->ln_b[g];
    *mu_out = mu;
    *sd_out = sd;
}

typedef struct {
    double *w, *lin_in, *hg, *tmp, *q, *L, *o;
    const double *KV; /* (n, (h1 + d1) n1): g1 W_kv of every atom, shared by the threads */
    att2 a2;
} scratch;

static size_t scratch_size(const dpc_repformer_layer *Ly, int64_t J)
{
    const int64_t d1 = Ly->g1_dim, d2 = Ly->g2_dim, ax = Ly->axis_neuron;
    const int64_t h1 = Ly->attn1_hidden, n1 = Ly->attn1_nhead;
    const int64_t big = d1 > d2 ? d1 : d2;
    return (size_t)(J + d1 + d2 + ax * (d1 + d2) + 3 * big + 4 * big + h1 * n1 + J + n1 * d1);
}

static void carve(const dpc_repformer_layer *Ly, int64_t J, double *base, scratch *s)
{
    const int64_t d1 = Ly->g1_dim, d2 = Ly->g2_dim, ax = Ly->axis_neuron;
    const int64_t h1 = Ly->attn1_hidden, n1 = Ly->attn1_nhead;
    const int64_t big = d1 > d2 ? d1 : d2;
    s->w = base;
    s->lin_in = s->w + J;
    s->hg = s->lin_in + d1 + d2 + ax * (d1 + d2); /* lin_in: [g1 (g1_in_linear1)], [conv], grrg, drrd */
    s->tmp = s->hg + 3 * big;
    s->q = s->tmp + 4 * big;
    s->L = s->q + h1 * n1;
    s->o = s->L + J;
}

/* out += t (r NULL) or out += r . t: one update term, weighted by its res_residual vector r_k or not
 * (res_avg and res_incr scale the sum of the terms once, at the end) */
static inline void add_term(double *out, const double *t, const double *r, int64_t d)
{
    if (r)
        for (int64_t g = 0; g < d; ++g) out[g] += r[g] * t[g];
    else
        for (int64_t g = 0; g < d; ++g) out[g] += t[g];
}

/* the res_residual vector r_k (k = 1..K) of an update with rows of width d, or NULL for the other styles */
static inline const double *res_vec(const dpc_repformer_layer *Ly, const double *R, int64_t k, int64_t d)
{
    return Ly->update_style == DPC_RF_RES_RESIDUAL ? R + (k - 1) * d : NULL;
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
    const int style = Ly->update_style;
    /* t0: terms before the conv (the self MLP, or none when g1 goes into linear1); tc: the conv term (0 when
     * it goes into linear1); K = t0 + tc + 2 terms besides g1; off, offc: g1's and conv's widths in linear1 */
    const int64_t t0 = Ly->g1_in_linear1 ? 0 : 1, tc = Ly->conv_in_linear1 ? 0 : 1, K = t0 + tc + 2;
    const int64_t off = Ly->g1_in_linear1 ? d1 : 0, offc = Ly->conv_in_linear1 ? d2 : 0, nin = off + offc + ax * (d1 + d2);
    const double *r2 = res_vec(Ly, Ly->g1_residual, t0 + 1, d1);
    for (int64_t j = 0; j < J; ++j) s->w[j] = m[i * J + j] * sw[i * J + j];
    /* res_incr sums the terms apart from t_0 = g1 (their scale differs) */
    for (int64_t g = 0; g < d1; ++g) out[g] = style == DPC_RF_RES_INCR ? 0.0 : gi[g];
    /* self MLP */
    if (t0) {
        affine(gi, d1, Ly->g1_self_mlp_w, Ly->g1_self_mlp_b, d1, tmp);
        activate_vec(Ly->activation, tmp, d1);
        add_term(out, tmp, res_vec(Ly, Ly->g1_residual, 1, d1), d1);
    }
    /* conv: c1 sum_j (g2_j Wp) . w_j g1[idx_j], or into linear1: c1 sum_j g2_j . w_j (g1[idx_j] Wp) */
    double *cv = s->lin_in + off;
    memset(cv, 0, sizeof(double) * offc);
    for (int64_t j = 0; j < J && offc; ++j) {
        if (s->w[j] == 0.0) continue;
        const double *g2j = G2 + j * d2;
        affine(g1 + rows[j] * d1, d1, Ly->proj_g1g2_w, NULL, d2, tmp);
        for (int64_t g = 0; g < d2; ++g) cv[g] += c1 * g2j[g] * (tmp[g] * s->w[j]);
    }
    for (int64_t j = 0; j < J && tc; ++j) {
        if (s->w[j] == 0.0) continue;
        const double *gj = g1 + rows[j] * d1;
        affine(G2 + j * d2, d2, Ly->proj_g1g2_w, NULL, d1, tmp);
        if (r2)
            for (int64_t g = 0; g < d1; ++g) out[g] += r2[g] * (c1 * tmp[g] * s->w[j] * gj[g]);
        else
            for (int64_t g = 0; g < d1; ++g) out[g] += c1 * tmp[g] * s->w[j] * gj[g];
    }
    /* linear1 on [g1 (g1_in_linear1), conv (conv_in_linear1), grrg, drrd] */
    memcpy(s->lin_in, gi, sizeof(double) * off);
    sym(G2, d2, NULL, J, d2, H2, s->w, c2, ax, s->hg, s->lin_in + off + offc);
    sym(g1, d1, rows, J, d1, H2, s->w, c2, ax, s->hg, s->lin_in + off + offc + ax * d2);
    affine(s->lin_in, nin, Ly->linear1_w, Ly->linear1_b, d1, tmp);
    activate_vec(Ly->activation, tmp, d1);
    add_term(out, tmp, res_vec(Ly, Ly->g1_residual, t0 + tc + 1, d1), d1);
    /* local attention */
    affine(gi, d1, Ly->mapq_w, NULL, h1 * n1, s->q);
    memset(s->o, 0, sizeof(double) * n1 * d1);
    for (int64_t h = 0; h < n1; ++h) {
        for (int64_t j = 0; j < J; ++j) {
            const double *kv = s->KV + rows[j] * (h1 + d1) * n1;
            double dot = 0.0;
            for (int64_t e = 0; e < h1; ++e) dot += s->q[e * n1 + h] * kv[e * n1 + h];
            s->L[j] = (dot / sqrt((double)h1) + Ly->attn1_shift) * sw[i * J + j] - Ly->attn1_shift;
        }
        softmax(s->L, J);
        for (int64_t j = 0; j < J; ++j) {
            const double a = s->L[j] * s->w[j];
            if (a == 0.0) continue;
            const double *kv = s->KV + rows[j] * (h1 + d1) * n1;
            for (int64_t g = 0; g < d1; ++g) s->o[h * d1 + g] += a * kv[(h1 + g) * n1 + h];
        }
    }
    affine(s->o, n1 * d1, Ly->head_map1_w, Ly->head_map1_b, d1, tmp);
    if (style == DPC_RF_RES_AVG) /* 1 / sqrt(K + 1) (K = 4: k1) */
        for (int64_t g = 0; g < d1; ++g) out[g] = (K == 4 ? k1 : 1.0 / sqrt((double)(K + 1))) * (out[g] + tmp[g]);
    else if (style == DPC_RF_RES_INCR) /* 1 / sqrt(K) */
        for (int64_t g = 0; g < d1; ++g) out[g] = gi[g] + 1.0 / sqrt((double)K) * (out[g] + tmp[g]);
    else
        add_term(out, tmp, res_vec(Ly, Ly->g1_residual, K, d1), d1);
}

static void center_g2(const dpc_repformer_layer *Ly, int64_t i, int64_t J, const double *g1, const double *g2,
                      const double *h2, const int64_t *idx, const double *m, const double *sw, scratch *s,
                      double *out)
{
    const int64_t d1 = Ly->g1_dim, d2 = Ly->g2_dim, nv = d2 * Ly->attn2_nhead;
    const double *gi = g1 + i * d1, *G2 = g2 + i * J * d2, *H2 = h2 + i * J * 3;
    const double *M = m + i * J, *SW = sw + i * J;
    const int64_t *rows = idx + i * J;
    double *tmp = s->tmp, *x = s->tmp + (d1 > d2 ? d1 : d2); /* tmp: d2 values, x: d1 */
    att2 *a2 = &s->a2;
    const int style = Ly->update_style;
    const double *r1 = res_vec(Ly, Ly->g2_residual, 1, d2), *r2 = res_vec(Ly, Ly->g2_residual, 2, d2);
    const double *r3 = res_vec(Ly, Ly->g2_residual, 3, d2);
    for (int64_t j = 0; j < J; ++j) {
        double *oj = out + j * d2;
        const double *g2j = G2 + j * d2, *gj = g1 + rows[j] * d1;
        const double wj = M[j] * SW[j];
        for (int64_t g = 0; g < d2; ++g) oj[g] = style == DPC_RF_RES_INCR ? 0.0 : g2j[g];
        affine(g2j, d2, Ly->linear2_w, Ly->linear2_b, d2, tmp);
        activate_vec(Ly->activation, tmp, d2);
        add_term(oj, tmp, r1, d2);
        if (wj == 0.0) continue; /* the g1g1 term is zero */
        for (int64_t e = 0; e < d1; ++e) x[e] = gi[e] * gj[e] * wj;
        affine(x, d1, Ly->proj_g1g1g2_w, NULL, d2, tmp);
        add_term(oj, tmp, r2, d2);
    }
    att2_forward(Ly, J, G2, H2, M, SW, a2);
    double mu, sd;
    for (int64_t j = 0, a = 0; j < J; ++j) {
        const double *fa = a < a2->nr && a2->r[a] == j ? a2->flat + (a++) * nv : NULL;
        att2_head_ln(Ly, fa, a2->t, tmp, &mu, &sd);
        double *oj = out + j * d2;
        if (style == DPC_RF_RES_AVG)
            for (int64_t g = 0; g < d2; ++g) oj[g] = 0.5 * (oj[g] + tmp[g]);
        else if (style == DPC_RF_RES_INCR) /* three terms besides g2 */
            for (int64_t g = 0; g < d2; ++g) oj[g] = G2[j * d2 + g] + (oj[g] + tmp[g]) / sqrt(3.0);
        else
            add_term(oj, tmp, r3, d2);
    }
}

/* k|v = g1 W_kv of every atom, (n, (h1 + d1) n1): a neighbor's k|v does not depend on the center, so
 * it is computed once per atom and not once per slot (J times).  NULL when out of memory. */
static double *kv_table(const dpc_repformer_layer *L, int64_t n, const double *g1, int n_threads)
{
    const int64_t d1 = L->g1_dim, nkv = (L->attn1_hidden + d1) * L->attn1_nhead;
    double *KV = (double *)malloc(sizeof(double) * (size_t)(n * nkv + 1));
    if (!KV) return NULL;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(n_threads > 0 ? n_threads : 1)
#endif
    for (int64_t i = 0; i < n; ++i) affine(g1 + i * d1, d1, L->mapkv_w, NULL, nkv, KV + i * nkv);
    return KV;
}

/* The layer on the rows whose outputs are used (see dpc_repformer_stack_forward_depth): g1' where
 * depth <= g1_depth, g2' where depth <= g2_depth; the other rows copy their inputs.  depth NULL: all. */
static int layer_forward_rows(const dpc_repformer_layer *L, int64_t n, int64_t J, const double *g1, const double *g2,
                              const double *h2, const int64_t *idx, const double *m, const double *sw,
                              const int64_t *depth, int64_t g1_depth, int64_t g2_depth, int n_threads, double *g1_out,
                              double *g2_out)
{
    if (n < 0 || J < 1 || L->g1_dim < 1 || L->g2_dim < 1 || !dpc_activation_valid(L->activation)) return -1;
    att2 probe;
    const size_t per = scratch_size(L, J), per2 = L->update_chnnl_2 ? att2_carve(L, J, NULL, &probe) : 0;
    double *KV = kv_table(L, n, g1, n_threads);
    if (!KV) return -1;
    int failed = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(n_threads > 0 ? n_threads : 1) reduction(| : failed)
#endif
    {
        double *base = (double *)malloc(sizeof(double) * (per + per2));
        if (!base) failed = 1;
        scratch s = {0}; /* carved below when the allocation succeeded */
        if (base) {
            carve(L, J, base, &s);
            if (per2) att2_carve(L, J, base + per, &s.a2);
            s.KV = KV;
        }
    /* dynamic: a center costs ~ nr^2 (its real slots), uneven at surfaces and in clusters; each center is
     * computed by one thread into its own outputs, so the bits do not depend on the schedule */
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 16)
#endif
        for (int64_t i = 0; i < n; ++i) {
            if (!base) continue;
            const int64_t d1 = L->g1_dim, d2 = L->g2_dim;
            if (!depth || depth[i] <= g1_depth) center_g1(L, i, J, g1, g2, h2, idx, m, sw, &s, g1_out + i * d1);
            else memcpy(g1_out + i * d1, g1 + i * d1, sizeof(double) * d1);
            if (!L->update_chnnl_2) continue;
            if (!depth || depth[i] <= g2_depth) center_g2(L, i, J, g1, g2, h2, idx, m, sw, &s, g2_out + i * J * d2);
            else memcpy(g2_out + i * J * d2, g2 + i * J * d2, sizeof(double) * J * d2);
        }
        free(base);
    }
    free(KV);
    return failed ? -1 : 0;
}

int dpc_repformer_layer_forward(const dpc_repformer_layer *L, int64_t n, int64_t J, const double *g1,
                                const double *g2, const double *h2, const int64_t *idx, const double *m,
                                const double *sw, int n_threads, double *g1_out, double *g2_out)
{
    return layer_forward_rows(L, n, J, g1, g2, h2, idx, m, sw, NULL, 0, 0, n_threads, g1_out, g2_out);
}

/* ------------------------------------------------------------------ backward */

/* dx = dy W^T; W row-major (nin, nout); accumulates into dx when acc */
static void affine_back(const double *dy, int64_t nout, const double *W, int64_t nin, double *dx, int acc)
{
    for (int64_t i = 0; i < nin; ++i) {
        const double *row = W + i * nout;
        double s = 0.0;
        for (int64_t o = 0; o < nout; ++o) s += dy[o] * row[o];
        dx[i] = acc ? dx[i] + s : s;
    }
}

/* y = phi(x W + b) and phi'(x W + b) */
static void affine_act(const double *x, int64_t nin, const double *W, const double *b, int64_t nout, int code,
                       double *y, double *dy)
{
    double v, d1, d2;
    affine(x, nin, W, b, nout, y);
    for (int64_t o = 0; o < nout; ++o) {
        dpc_activation(code, y[o], &v, &d1, &d2);
        y[o] = v;
        dy[o] = d1;
    }
}

typedef struct {
    double *w, *dw, *t1, *t2, *t3, *hg, *dhg, *sym_in, *dsym_in;
    double *q, *dkv, *P1, *L1raw, *do1, *dq1, *dP1;
    const double *KV; /* (n, (h1 + d1) n1): g1 W_kv of every atom, shared by the threads */
    att2 a2;
} bscratch;

static size_t bscratch_carve(const dpc_repformer_layer *Ly, int64_t J, double *base, bscratch *s)
{
    const int64_t d1 = Ly->g1_dim, d2 = Ly->g2_dim, ax = Ly->axis_neuron;
    const int64_t h1 = Ly->attn1_hidden, n1 = Ly->attn1_nhead;
    const int64_t big = (d1 > d2 ? d1 : d2) + 1;
    const int64_t nin = d1 + d2 + ax * (d1 + d2); /* linear1's widest input */
    const int64_t sizes[] = {J, J, 4 * big, 4 * big, 4 * big, 3 * big, 3 * big, nin, nin,
                             h1 * n1, J * (h1 + d1) * n1, n1 * J, n1 * J, n1 * d1, h1 * n1, J};
    double **slots[] = {&s->w, &s->dw, &s->t1, &s->t2, &s->t3, &s->hg, &s->dhg, &s->sym_in, &s->dsym_in,
                        &s->q, &s->dkv, &s->P1, &s->L1raw, &s->do1, &s->dq1, &s->dP1};
    size_t off = 0;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); ++k) {
        if (base) *slots[k] = base + off;
        off += (size_t)sizes[k];
    }
    return off;
}

/* gradients of sym(X) (see sym): dX_j (into dX rows, accumulated), dh2_j, dw_j */
static void sym_back(const double *X, int64_t ldx, const int64_t *rows, int64_t J, int64_t nX, const double *h2,
                     const double *w, double c2, int64_t ax, const double *d, double *hg, double *dhg, double *dX,
                     int64_t lddx, double *dh2, double *dw)
{
    memset(hg, 0, sizeof(double) * 3 * nX); /* hg as in sym */
    for (int64_t j = 0; j < J; ++j) {
        if (w[j] == 0.0) continue;
        const double *x = X + (rows ? rows[j] : j) * ldx;
        for (int c = 0; c < 3; ++c)
            for (int64_t g = 0; g < nX; ++g) hg[c * nX + g] += h2[j * 3 + c] * w[j] * x[g];
    }
    for (int64_t k = 0; k < 3 * nX; ++k) hg[k] *= c2;
    memset(dhg, 0, sizeof(double) * 3 * nX);
    for (int c = 0; c < 3; ++c)
        for (int64_t a = 0; a < ax; ++a)
            for (int64_t g = 0; g < nX; ++g) {
                dhg[c * nX + g] += d[a * nX + g] * hg[c * nX + a] / 3.0;
                dhg[c * nX + a] += d[a * nX + g] * hg[c * nX + g] / 3.0;
            }
    for (int64_t k = 0; k < 3 * nX; ++k) dhg[k] *= c2;
    for (int64_t j = 0; j < J; ++j) {
        const double *x = X + (rows ? rows[j] : j) * ldx;
        double *dx = dX + j * lddx;
        double sw_acc = 0.0;
        for (int64_t g = 0; g < nX; ++g) {
            const double dxw = h2[j * 3] * dhg[g] + h2[j * 3 + 1] * dhg[nX + g] + h2[j * 3 + 2] * dhg[2 * nX + g];
            dx[g] += dxw * w[j];
            sw_acc += dxw * x[g];
        }
        dw[j] += sw_acc;
        for (int c = 0; c < 3; ++c) {
            double s = 0.0;
            for (int64_t g = 0; g < nX; ++g) s += dhg[c * nX + g] * x[g] * w[j];
            dh2[j * 3 + c] += s;
        }
    }
}

/* the g1 update's adjoint for center i: dg1_i (own), dgg1 (J, d1: the neighbors' g1), dg2, dh2, dw */
static void center_back_g1(const dpc_repformer_layer *Ly, int64_t i, int64_t J, const double *g1, const double *g2,
                           const double *h2, const int64_t *idx, const double *m, const double *sw,
                           const double *dg1_new, bscratch *s, double *dgi, double *dgg1, double *dG2, double *dH2,
                           double *dSW)
{
    const int64_t d1 = Ly->g1_dim, d2 = Ly->g2_dim, ax = Ly->axis_neuron;
    const int64_t h1 = Ly->attn1_hidden, n1 = Ly->attn1_nhead, nkv = (h1 + d1) * n1;
    const double c1 = 1.0 / (double)J, c2 = 1.0 / sqrt((double)J), k1 = 1.0 / sqrt(5.0), rh = 1.0 / sqrt((double)h1);
    const double *gi = g1 + i * d1, *G2 = g2 + i * J * d2, *H2 = h2 + i * J * 3, *SW = sw + i * J;
    const int64_t *rows = idx + i * J;
    double *dU = s->t3;
    /* dU: the adjoint of the current term, k_t dg1' (res_avg k_t = 1/sqrt 5, res_incr 1/2) or r_t . dg1' */
    const int style = Ly->update_style;
    /* as in center_g1 */
    const int64_t t0 = Ly->g1_in_linear1 ? 0 : 1, tc = Ly->conv_in_linear1 ? 0 : 1, K = t0 + tc + 2;
    const int64_t off = Ly->g1_in_linear1 ? d1 : 0, offc = Ly->conv_in_linear1 ? d2 : 0, nin = off + offc + ax * (d1 + d2);
    const double *dy = dg1_new + i * d1;
    const double sc = style == DPC_RF_RES_AVG ? (K == 4 ? k1 : 1.0 / sqrt((double)(K + 1))) : 1.0 / sqrt((double)K);
    const double *r1 = res_vec(Ly, Ly->g1_residual, 1, d1);
    for (int64_t g = 0; g < d1; ++g) dU[g] = r1 ? r1[g] * dy[g] : sc * dy[g];
    for (int64_t g = 0; g < d1; ++g) dgi[g] += style == DPC_RF_RES_AVG ? dU[g] : dy[g];
    /* self MLP */
    if (t0) {
        affine_act(gi, d1, Ly->g1_self_mlp_w, Ly->g1_self_mlp_b, d1, Ly->activation, s->t1, s->t2);
        for (int64_t g = 0; g < d1; ++g) s->t2[g] *= dU[g];
        affine_back(s->t2, d1, Ly->g1_self_mlp_w, d1, dgi, 1);
    }
    /* conv */
    const double *rt = res_vec(Ly, Ly->g1_residual, t0 + 1, d1);
    if (rt)
        for (int64_t g = 0; g < d1; ++g) dU[g] = rt[g] * dy[g];
    for (int64_t j = 0; j < J && tc; ++j) {
        if (s->w[j] == 0.0) continue;
        const double *gj = g1 + rows[j] * d1;
        double *pg2 = s->t1, *v = s->t2, acc = 0.0;
        affine(G2 + j * d2, d2, Ly->proj_g1g2_w, NULL, d1, pg2);
        for (int64_t g = 0; g < d1; ++g) {
            const double dc = dU[g] * c1;
            v[g] = dc * gj[g] * s->w[j];
            dgg1[j * d1 + g] += dc * pg2[g] * s->w[j];
            acc += dc * pg2[g] * gj[g];
        }
        s->dw[j] += acc;
        affine_back(v, d1, Ly->proj_g1g2_w, d2, dG2 + j * d2, 1);
    }
    /* linear1 on [grrg, drrd] */
    /* the conv's input to linear1 (conv_in_linear1), recomputed */
    double *cv = s->sym_in + off;
    memset(cv, 0, sizeof(double) * offc);
    for (int64_t j = 0; j < J && offc; ++j) {
        if (s->w[j] == 0.0) continue;
        const double *g2j = G2 + j * d2;
        affine(g1 + rows[j] * d1, d1, Ly->proj_g1g2_w, NULL, d2, s->t1);
        for (int64_t g = 0; g < d2; ++g) cv[g] += c1 * g2j[g] * (s->t1[g] * s->w[j]);
    }
    memcpy(s->sym_in, gi, sizeof(double) * off);
    sym(G2, d2, NULL, J, d2, H2, s->w, c2, ax, s->hg, s->sym_in + off + offc);
    sym(g1, d1, rows, J, d1, H2, s->w, c2, ax, s->hg, s->sym_in + off + offc + ax * d2);
    affine_act(s->sym_in, nin, Ly->linear1_w, Ly->linear1_b, d1, Ly->activation, s->t1, s->t2);
    if ((rt = res_vec(Ly, Ly->g1_residual, t0 + tc + 1, d1)))
        for (int64_t g = 0; g < d1; ++g) dU[g] = rt[g] * dy[g];
    for (int64_t g = 0; g < d1; ++g) s->t2[g] *= dU[g];
    affine_back(s->t2, d1, Ly->linear1_w, nin, s->dsym_in, 0);
    for (int64_t g = 0; g < off; ++g) dgi[g] += s->dsym_in[g];
    /* conv in linear1: dconv = c1 dlin_in; dg2_j += dconv . pg_j w_j, d(g1[idx_j] Wp) = dconv . g2_j w_j */
    const double *dcv = s->dsym_in + off;
    for (int64_t j = 0; j < J && offc; ++j) {
        if (s->w[j] == 0.0) continue;
        const double *g2j = G2 + j * d2;
        double *pg = s->t1, *v = s->t2, acc = 0.0;
        affine(g1 + rows[j] * d1, d1, Ly->proj_g1g2_w, NULL, d2, pg);
        for (int64_t g = 0; g < d2; ++g) {
            const double dc = dcv[g] * c1;
            dG2[j * d2 + g] += dc * pg[g] * s->w[j];
            v[g] = dc * g2j[g] * s->w[j];
            acc += dc * g2j[g] * pg[g];
        }
        s->dw[j] += acc;
        affine_back(v, d2, Ly->proj_g1g2_w, d1, dgg1 + j * d1, 1);
    }
    sym_back(G2, d2, NULL, J, d2, H2, s->w, c2, ax, s->dsym_in + off + offc, s->hg, s->dhg, dG2, d2, dH2, s->dw);
    sym_back(g1, d1, rows, J, d1, H2, s->w, c2, ax, s->dsym_in + off + offc + ax * d2, s->hg, s->dhg, dgg1, d1, dH2,
             s->dw);
    /* local attention: recompute q, k|v, the logits and the weights */
    affine(gi, d1, Ly->mapq_w, NULL, h1 * n1, s->q);
    for (int64_t h = 0; h < n1; ++h) {
        double *P = s->P1 + h * J, *Lr = s->L1raw + h * J;
        for (int64_t j = 0; j < J; ++j) {
            const double *kv = s->KV + rows[j] * nkv;
            double dot = 0.0;
            for (int64_t e = 0; e < h1; ++e) dot += s->q[e * n1 + h] * kv[e * n1 + h];
            Lr[j] = dot * rh;
            P[j] = (Lr[j] + Ly->attn1_shift) * SW[j] - Ly->attn1_shift;
        }
        softmax(P, J);
    }
    if ((rt = res_vec(Ly, Ly->g1_residual, K, d1)))
        for (int64_t g = 0; g < d1; ++g) dU[g] = rt[g] * dy[g];
    affine_back(dU, d1, Ly->head_map1_w, n1 * d1, s->do1, 0);
    memset(s->dq1, 0, sizeof(double) * h1 * n1);
    memset(s->dkv, 0, sizeof(double) * J * nkv);
    const double *M = m + i * J;
    for (int64_t h = 0; h < n1; ++h) {
        const double *P = s->P1 + h * J, *Lr = s->L1raw + h * J, *doh = s->do1 + h * d1;
        double *dP = s->dP1, dot = 0.0;
        for (int64_t j = 0; j < J; ++j) {
            const double *kv = s->KV + rows[j] * nkv;
            double da = 0.0;
            for (int64_t g = 0; g < d1; ++g) da += doh[g] * kv[(h1 + g) * n1 + h];
            dP[j] = da * M[j] * SW[j];
            dSW[j] += da * P[j] * M[j];
            dot += P[j] * dP[j];
            const double a = P[j] * M[j] * SW[j];
            double *dkv = s->dkv + j * nkv;
            for (int64_t g = 0; g < d1; ++g) dkv[(h1 + g) * n1 + h] += a * doh[g];
        }
        for (int64_t j = 0; j < J; ++j) {
            const double dL2 = P[j] * (dP[j] - dot);
            const double dL = dL2 * SW[j] * rh;
            dSW[j] += dL2 * (Lr[j] + Ly->attn1_shift);
            const double *kv = s->KV + rows[j] * nkv;
            double *dkv = s->dkv + j * nkv;
            for (int64_t e = 0; e < h1; ++e) {
                s->dq1[e * n1 + h] += dL * kv[e * n1 + h];
                dkv[e * n1 + h] += dL * s->q[e * n1 + h];
            }
        }
    }
    affine_back(s->dq1, h1 * n1, Ly->mapq_w, d1, dgi, 1);
    for (int64_t j = 0; j < J; ++j) /* sw_j = 0: both the value weight a and dL vanish, so dkv_j = 0 */
        if (SW[j] != 0.0) affine_back(s->dkv + j * nkv, nkv, Ly->mapkv_w, d1, dgg1 + j * d1, 1);
}

/* the g2 update's adjoint for center i (update_chnnl_2) */
static void center_back_g2(const dpc_repformer_layer *Ly, int64_t i, int64_t J, const double *g1, const double *g2,
                           const double *h2, const int64_t *idx, const double *m, const double *sw,
                           const double *dg2_new, bscratch *s, double *dgi, double *dgg1, double *dG2, double *dH2,
                           double *dSW)
{
    const int64_t d1 = Ly->g1_dim, d2 = Ly->g2_dim, d = Ly->attn2_hidden, nh = Ly->attn2_nhead;
    const int64_t nqk = 2 * d * nh, nv = d2 * nh;
    const double *gi = g1 + i * d1, *G2 = g2 + i * J * d2, *H2 = h2 + i * J * 3;
    const double *M = m + i * J, *SW = sw + i * J, *DY = dg2_new + i * J * d2;
    const int64_t *rows = idx + i * J;
    const double rd = 1.0 / sqrt((double)d), r3 = 1.0 / sqrt(3.0), sh = Ly->attn2_shift;
    double *dU = s->t3, *x = s->t1, *dz = s->t2;
    att2 *a2 = &s->a2;
    /* the terms' weights: res_avg 1/2 (four terms), res_incr 1/sqrt 3 (g2 passes with 1), res_residual r_t */
    const int style = Ly->update_style;
    const double sc = style == DPC_RF_RES_AVG ? 0.5 : 1.0 / sqrt(3.0);
    const double *q1 = res_vec(Ly, Ly->g2_residual, 1, d2), *q2 = res_vec(Ly, Ly->g2_residual, 2, d2);
    const double *q3 = res_vec(Ly, Ly->g2_residual, 3, d2);
    for (int64_t j = 0; j < J; ++j) {
        const double *g2j = G2 + j * d2, *gj = g1 + rows[j] * d1;
        double *dg2j = dG2 + j * d2;
        for (int64_t g = 0; g < d2; ++g) dU[g] = q1 ? q1[g] * DY[j * d2 + g] : sc * DY[j * d2 + g];
        for (int64_t g = 0; g < d2; ++g) dg2j[g] += style == DPC_RF_RES_AVG ? dU[g] : DY[j * d2 + g];
        affine_act(g2j, d2, Ly->linear2_w, Ly->linear2_b, d2, Ly->activation, x, dz);
        for (int64_t g = 0; g < d2; ++g) dz[g] *= dU[g];
        affine_back(dz, d2, Ly->linear2_w, d2, dg2j, 1);
        if (q2)
            for (int64_t g = 0; g < d2; ++g) dU[g] = q2[g] * DY[j * d2 + g];
        affine_back(dU, d2, Ly->proj_g1g1g2_w, d1, x, 0); /* dx of the g1g1 term */
        double acc = 0.0;
        for (int64_t e = 0; e < d1; ++e) {
            dgi[e] += x[e] * gj[e] * s->w[j];
            dgg1[j * d1 + e] += x[e] * gi[e] * s->w[j];
            acc += x[e] * gi[e] * gj[e];
        }
        s->dw[j] += acc;
    }
    /* the attention, recomputed (compacted real slots, see att2) */
    att2_forward(Ly, J, G2, H2, M, SW, a2);
    const int64_t nr = a2->nr;
    if (nr == 0) return;
    memset(a2->dQ, 0, sizeof(double) * nh * J * d);
    memset(a2->dK, 0, sizeof(double) * nh * J * d);
    memset(a2->dV, 0, sizeof(double) * nh * J * d2);
    memset(a2->G, 0, sizeof(double) * J * J);
    memset(a2->S, 0, sizeof(double) * J * J);
    /* an empty column k takes dL2 = -Pe dot in every real row a, which reaches only dsw_k (its ss_ak has
     * the factor sw_k = 0 elsewhere): dsw_k = sum_h rd qbar_h . k^h_k + c csum_h with
     * qbar_h = sum_a c_ha q^h_a, csum_h = sum_a c_ha, c_ha = -Pe_ha dot_ha sw_a */
    double *qbar = a2->kq, *csum = qbar + nh * d, *kk = csum + nh;
    memset(qbar, 0, sizeof(double) * (nh * d + nh));
    for (int64_t a = 0; a < nr; ++a) {
        const int64_t ra = a2->r[a];
        const double swa = SW[ra];
        double mu, sd, mg = 0.0, mgx = 0.0, *t = a2->t, *gln = a2->gln, *dflat = a2->dflat;
        /* the layer norm's and head map's adjoints for row a */
        att2_head_ln(Ly, a2->flat + a * nv, t, NULL, &mu, &sd);
        for (int64_t g = 0; g < d2; ++g) {
            gln[g] = (q3 ? q3[g] : sc) * DY[ra * d2 + g] * Ly->ln_w[g];
            mg += gln[g];
            mgx += gln[g] * (t[g] - mu) / sd;
        }
        mg /= (double)d2;
        mgx /= (double)d2;
        for (int64_t g = 0; g < d2; ++g) gln[g] = (gln[g] - mg - (t[g] - mu) / sd * mgx) / sd;
        affine_back(gln, d2, Ly->head_map2_w, nv, dflat, 0);
        const double *HH = a2->HH + a * J, *F = a2->F + a * J;
        double *G = a2->G + a * J, *S = a2->S + a * J, *dP = a2->dP;
        double *Mr = a2->gln + d2; /* m_a m_b / sqrt 3 over the real b */
        for (int64_t b = 0; b < nr; ++b) Mr[b] = M[ra] * M[a2->r[b]] * r3;
        for (int64_t h = 0; h < nh; ++h) {
            const double *P = a2->P + (h * J + a) * J, *L1 = a2->L1 + (h * J + a) * J;
            const double *qa = a2->Q + (h * J + a) * d;
            double *dqa = a2->dQ + (h * J + a) * d, *dA = a2->Ar, dot = 0.0;
            /* A = P HH F: dA = do.v, dv += A do, dP = dA HH F; dhh = dA P F, dss = dA P HH m m / sqrt 3 */
            for (int64_t b = 0; b < nr; ++b) dA[b] = 0.0;
            for (int64_t g = 0; g < d2; ++g) {
                const double dog = dflat[g * nh + h], *vg = a2->V + (h * d2 + g) * J;
                double *dvg = a2->dV + (h * d2 + g) * J;
                for (int64_t b = 0; b < nr; ++b) {
                    dA[b] += dog * vg[b];
                    dvg[b] += P[b] * HH[b] * F[b] * dog;
                }
            }
            for (int64_t b = 0; b < nr; ++b) {
                dP[b] = dA[b] * (HH[b] * F[b]);
                dot += P[b] * dP[b];
                G[b] += dA[b] * P[b] * F[b];
                S[b] += dA[b] * HH[b] * P[b] * Mr[b];
            }
            /* the softmax's adjoint; dP becomes dL0 = dL2 sw_a sw_b / sqrt d, the logits' q.k gradient */
            for (int64_t b = 0; b < nr; ++b) {
                const double dL2 = P[b] * (dP[b] - dot);
                if (Ly->attn2_has_gate) { /* L1g = L0 hh: dL0 = dL1 hh, dhh += dL1 L0 (L1 holds L0 = q.k / sqrt d) */
                    const double dL1 = dL2 * swa * a2->swr[b];
                    S[b] += dL2 * (L1[b] * HH[b] + sh);
                    G[b] += dL1 * L1[b];
                    dP[b] = dL1 * HH[b] * rd;
                } else {
                    S[b] += dL2 * (L1[b] + sh);
                    dP[b] = dL2 * swa * a2->swr[b] * rd;
                }
            }
            for (int64_t e = 0; e < d; ++e) {
                const double qe = qa[e], *ke = a2->K + (h * d + e) * J;
                double *dke = a2->dK + (h * d + e) * J, acc = dqa[e];
                for (int64_t b = 0; b < nr; ++b) {
                    acc += dP[b] * ke[b];
                    dke[b] += dP[b] * qe;
                }
                dqa[e] = acc;
            }
            if (nr < J) {
                const double c = -a2->Pe[h * J + a] * dot * swa;
                for (int64_t e = 0; e < d; ++e) qbar[h * d + e] += c * qa[e];
                csum[h] += c;
                a2->Pe[h * J + a] = c; /* kept for the gated empty columns below (Pe is not read again) */
            }
        }
    }
    for (int64_t k = 0, a = 0; k < J; ++k) {
        if (a < nr && a2->r[a] == k) {
            ++a;
            continue;
        }
        att2_project(Ly, 1, G2 + k * d2, 0, NULL, kk, NULL);
        double acc = 0.0;
        if (Ly->attn2_has_gate) /* the gate h2_a.h2_k differs per row: sum_a c_ha (rd q_a.k_k h2_a.h2_k + c) */
            for (int64_t h = 0; h < nh; ++h)
                for (int64_t b = 0; b < nr; ++b) {
                    const int64_t rb = a2->r[b];
                    const double *qb = a2->Q + (h * J + b) * d;
                    const double hk = H2[rb * 3] * H2[k * 3] + H2[rb * 3 + 1] * H2[k * 3 + 1] + H2[rb * 3 + 2] * H2[k * 3 + 2];
                    double dot = 0.0;
                    for (int64_t e = 0; e < d; ++e) dot += qb[e] * kk[h * d + e];
                    acc += a2->Pe[h * J + b] * (dot * rd * hk + sh);
                }
        else
            for (int64_t h = 0; h < nh; ++h) {
                double dot = 0.0;
                for (int64_t e = 0; e < d; ++e) dot += qbar[h * d + e] * kk[h * d + e];
                acc += dot * rd + sh * csum[h];
            }
        dSW[k] += acc;
    }
    /* pair symmetric sums: dsw_a += sum_b (dss_ab + dss_ba) sw_b, dh2_a += sum_b (dhh_ab + dhh_ba) h2_b;
     * then dq, dk, dv back through W_qk, W_v in their column orders */
    double *dqk = a2->kq, *dv = dqk + nqk;
    for (int64_t a = 0; a < nr; ++a) {
        const int64_t ra = a2->r[a];
        double acc = 0.0;
        for (int64_t b = 0; b < nr; ++b) {
            const int64_t rb = a2->r[b];
            acc += (a2->S[a * J + b] + a2->S[b * J + a]) * SW[rb];
            const double dh = a2->G[a * J + b] + a2->G[b * J + a];
            for (int c = 0; c < 3; ++c) dH2[ra * 3 + c] += dh * H2[rb * 3 + c];
        }
        dSW[ra] += acc;
        for (int64_t e = 0; e < d; ++e)
            for (int64_t h = 0; h < nh; ++h) {
                dqk[e * 2 * nh + h] = a2->dQ[(h * J + a) * d + e];
                dqk[e * 2 * nh + nh + h] = a2->dK[(h * d + e) * J + a];
            }
        for (int64_t g = 0; g < d2; ++g)
            for (int64_t h = 0; h < nh; ++h) dv[g * nh + h] = a2->dV[(h * d2 + g) * J + a];
        affine_back(dv, nv, Ly->mapv_w, d2, dG2 + ra * d2, 1);
        affine_back(dqk, nqk, Ly->mapqk_w, d2, dG2 + ra * d2, 1);
    }
}

/* The adjoint of layer_forward_rows: rows past g1_depth (g2_depth) have a zero adjoint of their g1'
 * (g2'), so their g1 (g2) update's adjoint is skipped; pass-throughs are kept. */
static int layer_backward_rows(const dpc_repformer_layer *L, int64_t n, int64_t J, const double *g1, const double *g2,
                               const double *h2, const int64_t *idx, const double *m, const double *sw,
                               const double *dg1_new, const double *dg2_new, const double *dh2_new,
                               const int64_t *depth, int64_t g1_depth, int64_t g2_depth, int n_threads, double *dg1,
                               double *dg2, double *dh2, double *dsw)
{
    if (n < 0 || J < 1 || L->g1_dim < 1 || L->g2_dim < 1 || !dpc_activation_valid(L->activation)) return -1;
    if (L->update_chnnl_2 && !dg2_new) return -1; /* a g2-updating layer's output g2 is always used */
    const int64_t d1 = L->g1_dim, d2 = L->g2_dim;
    bscratch probe;
    const size_t per = bscratch_carve(L, J, NULL, &probe);
    att2 probe2;
    const size_t per2 = L->update_chnnl_2 ? att2_carve(L, J, NULL, &probe2) : 0;
    double *dgg1 = (double *)calloc((size_t)(n * J * d1) + 1, sizeof(double));
    if (!dgg1) return -1;
    double *KV = kv_table(L, n, g1, n_threads);
    if (!KV) {
        free(dgg1);
        return -1;
    }
    memset(dg1, 0, sizeof(double) * n * d1);
    memset(dg2, 0, sizeof(double) * n * J * d2);
    memset(dh2, 0, sizeof(double) * n * J * 3);
    memset(dsw, 0, sizeof(double) * n * J);
    int failed = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(n_threads > 0 ? n_threads : 1) reduction(| : failed)
#endif
    {
        double *base = (double *)malloc(sizeof(double) * (per + per2));
        bscratch s = {0}; /* carved below when the allocation succeeded */
        if (!base) failed = 1;
        else {
            bscratch_carve(L, J, base, &s);
            if (per2) att2_carve(L, J, base + per, &s.a2);
            s.KV = KV;
        }
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 16) /* as in the forward */
#endif
        for (int64_t i = 0; i < n; ++i) {
            if (!base) continue;
            double *DSW = dsw + i * J, *DG2 = dg2 + i * J * d2, *DH2 = dh2 + i * J * 3, *DGG1 = dgg1 + i * J * d1;
            for (int64_t j = 0; j < J; ++j) {
                s.w[j] = m[i * J + j] * sw[i * J + j];
                s.dw[j] = 0.0;
            }
            /* a skipped row's update is the identity (layer_forward_rows copies it): its adjoint passes through */
            if (!depth || depth[i] <= g1_depth)
                center_back_g1(L, i, J, g1, g2, h2, idx, m, sw, dg1_new, &s, dg1 + i * d1, DGG1, DG2, DH2, DSW);
            else
                for (int64_t g = 0; g < d1; ++g) dg1[i * d1 + g] += dg1_new[i * d1 + g];
            if (L->update_chnnl_2 && (!depth || depth[i] <= g2_depth))
                center_back_g2(L, i, J, g1, g2, h2, idx, m, sw, dg2_new, &s, dg1 + i * d1, DGG1, DG2, DH2, DSW);
            else if (dg2_new)
                for (int64_t k = 0; k < J * d2; ++k) DG2[k] += dg2_new[i * J * d2 + k];
            if (dh2_new)
                for (int64_t k = 0; k < J * 3; ++k) DH2[k] += dh2_new[i * J * 3 + k];
            for (int64_t j = 0; j < J; ++j) DSW[j] += s.dw[j] * m[i * J + j];
        }
        free(base);
    }
    /* messages: each slot's g1 came from atom idx; one thread, in slot order, so threads agree bit for bit */
    if (!failed)
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < J; ++j) {
                const double mj = m[i * J + j];
                if (mj == 0.0) continue;
                double *dst = dg1 + idx[i * J + j] * d1;
                const double *src = dgg1 + (i * J + j) * d1;
                for (int64_t g = 0; g < d1; ++g) dst[g] += src[g] * mj;
            }
    free(dgg1);
    free(KV);
    return failed ? -1 : 0;
}

int dpc_repformer_layer_backward(const dpc_repformer_layer *L, int64_t n, int64_t J, const double *g1,
                                 const double *g2, const double *h2, const int64_t *idx, const double *m,
                                 const double *sw, const double *dg1_new, const double *dg2_new,
                                 const double *dh2_new, int n_threads, double *dg1, double *dg2, double *dh2,
                                 double *dsw)
{
    return layer_backward_rows(L, n, J, g1, g2, h2, idx, m, sw, dg1_new, dg2_new, dh2_new, NULL, 0, 0, n_threads, dg1,
                               dg2, dh2, dsw);
}

/* ------------------------------------------------------------------ the stack: g1/g2 embedding + layers */

size_t dpc_repformer_stack_workspace(const dpc_repformer_stack *S, int64_t n, int64_t J)
{
    const int64_t d1 = S->g1_dim, d2 = S->g2_dim, nl = S->n_layers;
    return (size_t)((nl + 1) * n * d1 + (nl + 1) * n * J * d2 + n * d1 + n * J * d2 + n * J * 3);
}

/* pieces of the workspace: g1 of layer l (l = 0..nl), g2 of layer l, phi'(z) of g1 and g2, h2 */
static double *ws_g1(const dpc_repformer_stack *S, double *ws, int64_t n, int64_t J, int64_t l)
{
    (void)J;
    return ws + l * n * S->g1_dim;
}
static double *ws_g2(const dpc_repformer_stack *S, double *ws, int64_t n, int64_t J, int64_t l)
{
    return ws + (S->n_layers + 1) * n * S->g1_dim + l * n * J * S->g2_dim;
}
static double *ws_dphi1(const dpc_repformer_stack *S, double *ws, int64_t n, int64_t J)
{
    return ws_g2(S, ws, n, J, S->n_layers + 1);
}
static double *ws_dphi2(const dpc_repformer_stack *S, double *ws, int64_t n, int64_t J)
{
    return ws_dphi1(S, ws, n, J) + n * S->g1_dim;
}
static double *ws_h2(const dpc_repformer_stack *S, double *ws, int64_t n, int64_t J)
{
    return ws_dphi2(S, ws, n, J) + n * J * S->g2_dim;
}

int dpc_repformer_stack_forward(const dpc_repformer_stack *S, int64_t n, int64_t J, const double *D0,
                                const int64_t *types, const double *P, const int64_t *idx, const double *m,
                                const double *sw, int n_threads, double *ws, double *g1_out)
{
    return dpc_repformer_stack_forward_depth(S, n, J, D0, types, P, idx, m, sw, NULL, n_threads, ws, g1_out);
}

int dpc_repformer_stack_forward_depth(const dpc_repformer_stack *S, int64_t n, int64_t J, const double *D0,
                                      const int64_t *types, const double *P, const int64_t *idx, const double *m,
                                      const double *sw, const int64_t *depth, int n_threads, double *ws,
                                      double *g1_out)
{
    const int64_t d1 = S->g1_dim, d2 = S->g2_dim, n0 = S->repinit_dim, nl = S->n_layers;
    if (n < 0 || J < 1 || nl < 1 || d1 < 1 || d2 < 1 || !dpc_activation_valid(S->activation)) return -1;
    if (!S->g1_shape_w && n0 != d1) return -1;
    double *g1 = ws_g1(S, ws, n, J, 0), *g2 = ws_g2(S, ws, n, J, 0);
    double *dphi1 = ws_dphi1(S, ws, n, J), *dphi2 = ws_dphi2(S, ws, n, J), *h2 = ws_h2(S, ws, n, J);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(n_threads > 0 ? n_threads : 1)
#endif
    for (int64_t i = 0; i < n; ++i) {
        double v, dv, d2v;
        double *z = g1 + i * d1;
        if (S->g1_shape_w) affine(D0 + i * n0, n0, S->g1_shape_w, NULL, d1, z);
        else memcpy(z, D0 + i * n0, sizeof(double) * d1);
        if (S->tebd_transform_w) {
            const double *e = S->type_embedding + types[i] * S->tebd_dim;
            for (int64_t t = 0; t < S->tebd_dim; ++t)
                for (int64_t g = 0; g < d1; ++g) z[g] += e[t] * S->tebd_transform_w[t * d1 + g];
        }
        for (int64_t g = 0; g < d1; ++g) {
            dpc_activation(S->activation, z[g], &v, &dv, &d2v);
            z[g] = v;
            dphi1[i * d1 + g] = dv;
        }
        for (int64_t j = 0; j < J; ++j) {
            const double *p = P + (i * J + j) * 4;
            for (int64_t g = 0; g < d2; ++g) {
                dpc_activation(S->activation, p[0] * S->g2_embd_w[g] + S->g2_embd_b[g], &v, &dv, &d2v);
                g2[(i * J + j) * d2 + g] = v;
                dphi2[(i * J + j) * d2 + g] = dv;
            }
            for (int c = 0; c < 3; ++c) h2[(i * J + j) * 3 + c] = p[1 + c];
        }
    }
    for (int64_t l = 0; l < nl; ++l) {
        const dpc_repformer_layer *L = S->layers + l;
        double *g2_next = ws_g2(S, ws, n, J, l + 1);
        if (L->g1_dim != d1 || L->g2_dim != d2) return -1;
        /* layer l's g1' is read by rows of depth <= nl - 1 - l (l + 1 < nl: as their neighbors'), its g2' by
         * the row itself in layer l + 1 */
        if (layer_forward_rows(L, n, J, ws_g1(S, ws, n, J, l), ws_g2(S, ws, n, J, l), h2, idx, m, sw, depth,
                               nl - 1 - l, nl - 2 - l, n_threads, ws_g1(S, ws, n, J, l + 1), g2_next) != 0)
            return -1;
        if (!L->update_chnnl_2) memcpy(g2_next, ws_g2(S, ws, n, J, l), sizeof(double) * n * J * d2);
    }
    memcpy(g1_out, ws_g1(S, ws, n, J, nl), sizeof(double) * n * d1);
    return 0;
}

int dpc_repformer_stack_backward(const dpc_repformer_stack *S, int64_t n, int64_t J, const double *P,
                                 const int64_t *idx, const double *m, const double *sw, const double *ws,
                                 const double *dg1_out, int n_threads, double *dD0, double *dP, double *dsw)
{
    return dpc_repformer_stack_backward_depth(S, n, J, P, idx, m, sw, NULL, ws, dg1_out, n_threads, dD0, dP, dsw);
}

int dpc_repformer_stack_backward_depth(const dpc_repformer_stack *S, int64_t n, int64_t J, const double *P,
                                       const int64_t *idx, const double *m, const double *sw, const int64_t *depth,
                                       const double *ws, const double *dg1_out, int n_threads, double *dD0,
                                       double *dP, double *dsw)
{
    const int64_t d1 = S->g1_dim, d2 = S->g2_dim, n0 = S->repinit_dim, nl = S->n_layers;
    (void)P;
    double *buf = (double *)calloc((size_t)(2 * n * d1 + 2 * n * J * d2 + 2 * n * J * 3 + n * J) + 1, sizeof(double));
    if (!buf) return -1;
    double *dg1 = buf, *dg1b = dg1 + n * d1, *dg2 = dg1b + n * d1, *dg2b = dg2 + n * J * d2;
    double *dh2 = dg2b + n * J * d2, *dh2b = dh2 + n * J * 3, *dswl = dh2b + n * J * 3;
    double *w = (double *)ws;
    memcpy(dg1, dg1_out, sizeof(double) * n * d1);
    if (depth) /* only the centers' (depth 0) g1 leave the stack */
        for (int64_t i = 0; i < n; ++i)
            if (depth[i] > 0) memset(dg1 + i * d1, 0, sizeof(double) * d1);
    memset(dsw, 0, sizeof(double) * n * J);
    for (int64_t l = nl - 1; l >= 0; --l) {
        if (layer_backward_rows(S->layers + l, n, J, ws_g1(S, w, n, J, l), ws_g2(S, w, n, J, l), ws_h2(S, w, n, J), idx,
                                m, sw, dg1, dg2, dh2, depth, nl - 1 - l, nl - 2 - l, n_threads, dg1b, dg2b, dh2b,
                                dswl) != 0) {
            free(buf);
            return -1;
        }
        double *t;
        t = dg1, dg1 = dg1b, dg1b = t;
        t = dg2, dg2 = dg2b, dg2b = t;
        t = dh2, dh2 = dh2b, dh2b = t;
        for (int64_t k = 0; k < n * J; ++k) dsw[k] += dswl[k];
    }
    const double *dphi1 = ws_dphi1(S, w, n, J), *dphi2 = ws_dphi2(S, w, n, J);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(n_threads > 0 ? n_threads : 1)
#endif
    for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < J; ++j) {
            double s = 0.0;
            for (int64_t g = 0; g < d2; ++g) s += dg2[(i * J + j) * d2 + g] * dphi2[(i * J + j) * d2 + g] * S->g2_embd_w[g];
            dP[(i * J + j) * 4] = s;
            for (int c = 0; c < 3; ++c) dP[(i * J + j) * 4 + 1 + c] = dh2[(i * J + j) * 3 + c];
        }
        double *dz = dg1 + i * d1;
        for (int64_t g = 0; g < d1; ++g) dz[g] *= dphi1[i * d1 + g];
        if (S->g1_shape_w) affine_back(dz, d1, S->g1_shape_w, n0, dD0 + i * n0, 0);
        else memcpy(dD0 + i * n0, dz, sizeof(double) * d1);
    }
    free(buf);
    return 0;
}
