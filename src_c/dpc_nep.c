/* NEP kernel: see dpc_nep.h for the buffers and dpcompress/nep/reference.py for the math. */
#include "dpc_nep.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define NEP_MAXN 17   /* n_max + 1 and basis_size + 1 */
#define NEP_NS 80     /* s components for l = 1..8 */
#define NEP_PI 3.141592653589793

static const double ZBL_UNIVERSAL[8] = {0.18175, 3.1998, 0.50986, 0.94229, 0.28022, 0.4029, 0.02817, 0.20162};

/* Analytic g_n(r), g_n'(r), n = 0..nmax, of one pair: c is [nb+1][nmax+1]. */
static inline void nep_g_analytic(double r, double rc, int nb, int nch, const double *c, double *g, double *gp)
{
    const double rcinv = 1.0 / rc;
    const double fc = 0.5 * cos(NEP_PI * r * rcinv) + 0.5;
    const double fcp = -0.5 * NEP_PI * sin(NEP_PI * r * rcinv) * rcinv;
    const double u = r * rcinv - 1.0, x = 2.0 * u * u - 1.0, dxdr = 4.0 * u * rcinv;
    double f[NEP_MAXN], fp[NEP_MAXN];
    double t0 = 1.0, t1 = x, u0 = 1.0, u1 = 2.0 * x;
    f[0] = fc;
    fp[0] = fcp;
    if (nb >= 1) {
        f[1] = 0.5 * (x + 1.0) * fc;
        fp[1] = 0.5 * dxdr * fc + 0.5 * (x + 1.0) * fcp;
    }
    for (int k = 2; k <= nb; ++k) {
        const double t2 = 2.0 * x * t1 - t0;
        const double dT = k * u1;
        const double u2 = 2.0 * x * u1 - u0;
        t0 = t1; t1 = t2; u0 = u1; u1 = u2;
        f[k] = 0.5 * (t2 + 1.0) * fc;
        fp[k] = 0.5 * dT * dxdr * fc + 0.5 * (t2 + 1.0) * fcp;
    }
    for (int n = 0; n < nch; ++n) { g[n] = 0.0; gp[n] = 0.0; }
    for (int k = 0; k <= nb; ++k) {
        const double *ck = c + (int64_t)k * nch;
        const double fk = f[k], fpk = fp[k];
#pragma omp simd
        for (int n = 0; n < nch; ++n) {
            g[n] += ck[n] * fk;
            gp[n] += ck[n] * fpk;
        }
    }
}

/* Tabulated g_n, g_n': quintic Hermite polynomial of interval l. */
static inline void nep_g_table(double r, double rc, int64_t M, int nch, const double *coef, double *g, double *gp)
{
    const double w = rc / (double)M;
    int64_t l = (int64_t)(r / w);
    if (l > M - 1) l = M - 1;
    if (l < 0) l = 0;
    const double t = r - (double)l * w;
    const double *c = coef + l * 6 * nch;
#pragma omp simd
    for (int n = 0; n < nch; ++n) {
        const double a0 = c[n], a1 = c[nch + n], a2 = c[2 * nch + n], a3 = c[3 * nch + n], a4 = c[4 * nch + n],
                     a5 = c[5 * nch + n];
        g[n] = a0 + t * (a1 + t * (a2 + t * (a3 + t * (a4 + t * a5))));
        gp[n] = a1 + t * (2.0 * a2 + t * (3.0 * a3 + t * (4.0 * a4 + t * 5.0 * a5)));
    }
}

static inline void nep_g(const dpc_nep_model *m, int part, int64_t p, double r, double *g, double *gp)
{
    const int64_t T2 = m->ntypes * m->ntypes;
    if (part == 0) {
        const int nch = (int)m->n_max_R + 1;
        if (m->tabulated)
            nep_g_table(r, m->rc_R[p], m->tab_M[p], nch, m->tab_coef + m->tab_off[p], g, gp);
        else
            nep_g_analytic(r, m->rc_R[p], (int)m->basis_R, nch, m->c_R + p * (m->basis_R + 1) * nch, g, gp);
    } else {
        const int nch = (int)m->n_max_A + 1;
        if (m->tabulated)
            nep_g_table(r, m->rc_A[p], m->tab_M[T2 + p], nch, m->tab_coef + m->tab_off[T2 + p], g, gp);
        else
            nep_g_analytic(r, m->rc_A[p], (int)m->basis_A, nch, m->c_A + p * (m->basis_A + 1) * nch, g, gp);
    }
}

/* Y_k(u) for l = 1..lneed at offsets l*l-1, and (if G) the gradient wrt the free components of u. */
static void nep_harmonics(const double *zc, int lneed, const double *u, double *Y, double *G)
{
    double zp[9], wr[9], wi[9];
    zp[0] = 1.0; wr[0] = 1.0; wi[0] = 0.0;
    for (int p = 1; p <= 8; ++p) {
        zp[p] = zp[p - 1] * u[2];
        wr[p] = wr[p - 1] * u[0] - wi[p - 1] * u[1];
        wi[p] = wr[p - 1] * u[1] + wi[p - 1] * u[0];
    }
    for (int l = 1; l <= lneed; ++l) {
        const int b = l * l - 1;
        for (int mm = 0; mm <= l; ++mm) {
            const double *zrow = zc + ((l - 1) * 9 + mm) * 9;
            double zf = 0.0, dzf = 0.0;
            for (int p = 0; p <= l; ++p) zf += zrow[p] * zp[p];
            for (int p = 1; p <= l; ++p) dzf += zrow[p] * p * zp[p - 1];
            if (mm == 0) {
                Y[b] = zf;
                if (G) { G[3 * b] = 0.0; G[3 * b + 1] = 0.0; G[3 * b + 2] = dzf; }
                continue;
            }
            const int kr = b + 2 * mm - 1, ki = b + 2 * mm;
            Y[kr] = zf * wr[mm];
            Y[ki] = zf * wi[mm];
            if (G) {
                G[3 * kr] = zf * mm * wr[mm - 1];
                G[3 * kr + 1] = -zf * mm * wi[mm - 1];
                G[3 * kr + 2] = dzf * wr[mm];
                G[3 * ki] = zf * mm * wi[mm - 1];
                G[3 * ki + 1] = zf * mm * wr[mm - 1];
                G[3 * ki + 2] = dzf * wi[mm];
            }
        }
    }
}

static inline void nep_zbl(const dpc_nep_model *m, int64_t ti, int64_t tj, double r, double *phi, double *dphi)
{
    const int64_t p = ti * m->ntypes + tj;
    const double zi = m->atomic_z[ti], zj = m->atomic_z[tj];
    const double a_inv = (pow(zi, 0.23) + pow(zj, 0.23)) * 2.134563;
    const double zizj = 14.399645 * zi * zj;
    const double *para = m->zbl_kind == 2 ? m->zbl_params + 8 * p : ZBL_UNIVERSAL;
    const double x = r * a_inv;
    double s = 0.0, ds = 0.0;
    for (int q = 0; q < 4; ++q) {
        const double t = para[2 * q] * exp(-para[2 * q + 1] * x);
        s += t;
        ds -= para[2 * q + 1] * t;
    }
    const double f = zizj * s / r;
    const double fp = zizj * ds * a_inv / r - f / r;
    const double r1 = m->zbl_inner[p], r2 = m->zbl_outer[p];
    double fc = 1.0, fcp = 0.0;
    if (r >= r1) {
        const double pf = NEP_PI / (r2 - r1);
        fc = 0.5 * cos(pf * (r - r1)) + 0.5;
        fcp = -0.5 * pf * sin(pf * (r - r1));
    }
    *phi = f * fc;
    *dphi = fp * fc + f * fcp;
}

typedef struct {
    double *gR, *gpR, *gA, *gpA; /* [nnei][nch] */
    double *s, *dUds;            /* [nA1][NEP_NS] */
    double *q, *F, *h;           /* [D], [D], [N_neu] */
} nep_scratch;

/* One centre atom: descriptor, energy, partial forces f_ij (into pf). */
DPC_HOT static int nep_atom(const dpc_nep_model *m, int64_t i, int64_t nnei, const int64_t *types,
                            const int64_t *index, const double *vectors, int64_t cnt, nep_scratch *w,
                            double *energy, double *pf, double *desc)
{
    const int64_t T = m->ntypes, ti = types[i];
    const int nR1 = (int)m->n_max_R + 1, nA1 = (int)m->n_max_A + 1;
    const int ns = (int)((m->l_need + 1) * (m->l_need + 1) - 1);
    const int64_t D = m->dim, NN = m->n_neuron, nblk = m->num_L;
    double *q = w->q, *s = w->s;
    double Y[NEP_NS], G[3 * NEP_NS];
    double U = 0.0;
    memset(q, 0, sizeof(double) * D);
    memset(s, 0, sizeof(double) * nA1 * NEP_NS);
    /* pass 1: radial sums, angular s sums */
    for (int64_t a = 0; a < cnt; ++a) {
        const int64_t j = index[i * nnei + a];
        const double *v = vectors + (i * nnei + a) * 3;
        const double r = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        if (!(r > 0.0)) return DPC_ERR_NONFINITE;
        const int64_t p = ti * T + types[j];
        double *gR = w->gR + a * nR1, *gpR = w->gpR + a * nR1;
        double *gA = w->gA + a * nA1, *gpA = w->gpA + a * nA1;
        if (r < m->rc_R[p]) {
            nep_g(m, 0, p, r, gR, gpR);
            for (int n = 0; n < nR1; ++n) q[n] += gR[n];
        }
        if (r < m->rc_A[p]) {
            const double u[3] = {v[0] / r, v[1] / r, v[2] / r};
            nep_g(m, 1, p, r, gA, gpA);
            nep_harmonics(m->zcoef, (int)m->l_need, u, Y, NULL);
            for (int n = 0; n < nA1; ++n) {
                double *sn = s + n * NEP_NS;
                const double gn = gA[n];
#pragma omp simd
                for (int k = 0; k < ns; ++k) sn[k] += gn * Y[k];
            }
        }
    }
    /* angular blocks: q[nR1 + b * nA1 + n] = sum_mono c * prod s */
    for (int64_t b = 0; b < nblk; ++b) {
        for (int n = 0; n < nA1; ++n) {
            const double *sn = s + n * NEP_NS;
            double val = 0.0;
            for (int64_t mo = m->block_start[b]; mo < m->block_start[b + 1]; ++mo) {
                const double *row = m->mono + 5 * mo;
                double prod = row[0];
                for (int z = 1; z < 5; ++z)
                    if (row[z] >= 0) prod *= sn[(int)row[z]];
                val += prod;
            }
            q[nR1 + b * nA1 + n] = val;
        }
    }
    /* network */
    double *x = w->F; /* scaled descriptor, reused below for dU/dq */
    for (int64_t d = 0; d < D; ++d) x[d] = q[d] * m->q_scaler[d];
    if (desc) memcpy(desc + i * D, x, sizeof(double) * D);
    const double *w0 = m->w0 + ti * NN * D, *b0 = m->b0 + ti * NN, *w1 = m->w1 + ti * NN;
    for (int64_t mu = 0; mu < NN; ++mu) {
        const double *row = w0 + mu * D;
        double z = 0.0;
#pragma omp simd reduction(+ : z)
        for (int64_t d = 0; d < D; ++d) z += row[d] * x[d];
        const double hh = tanh(z - b0[mu]);
        U += w1[mu] * hh;
        w->h[mu] = w1[mu] * (1.0 - hh * hh);
    }
    U -= m->b1_type[ti] + m->b1;
    double *F = w->F;
    for (int64_t d = 0; d < D; ++d) F[d] = 0.0;
    for (int64_t mu = 0; mu < NN; ++mu) {
        const double *row = w0 + mu * D;
        const double hm = w->h[mu];
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) F[d] += hm * row[d];
    }
    for (int64_t d = 0; d < D; ++d) F[d] *= m->q_scaler[d];
    /* dU/ds */
    double *dUds = w->dUds;
    memset(dUds, 0, sizeof(double) * nA1 * NEP_NS);
    for (int64_t b = 0; b < nblk; ++b) {
        for (int n = 0; n < nA1; ++n) {
            const double Fb = F[nR1 + b * nA1 + n];
            const double *sn = s + n * NEP_NS;
            double *dn = dUds + n * NEP_NS;
            for (int64_t mo = m->block_start[b]; mo < m->block_start[b + 1]; ++mo) {
                const double *row = m->mono + 5 * mo;
                for (int z = 1; z < 5; ++z) {
                    if (row[z] < 0) continue;
                    double prod = row[0] * Fb;
                    for (int z2 = 1; z2 < 5; ++z2)
                        if (z2 != z && row[z2] >= 0) prod *= sn[(int)row[z2]];
                    dn[(int)row[z]] += prod;
                }
            }
        }
    }
    /* pass 2: partial forces */
    for (int64_t a = 0; a < cnt; ++a) {
        const int64_t j = index[i * nnei + a];
        const double *v = vectors + (i * nnei + a) * 3;
        const double r = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        const double rinv = 1.0 / r;
        const double u[3] = {v[0] * rinv, v[1] * rinv, v[2] * rinv};
        const int64_t tj = types[j], p = ti * T + tj;
        double f[3] = {0.0, 0.0, 0.0};
        double radial = 0.0;
        if (r < m->rc_R[p]) {
            const double *gpR = w->gpR + a * nR1;
            for (int n = 0; n < nR1; ++n) radial += F[n] * gpR[n];
        }
        if (r < m->rc_A[p]) {
            const double *gA = w->gA + a * nA1, *gpA = w->gpA + a * nA1;
            double Sg[NEP_NS], Sgp[NEP_NS];
            for (int k = 0; k < ns; ++k) { Sg[k] = 0.0; Sgp[k] = 0.0; }
            for (int n = 0; n < nA1; ++n) {
                const double *dn = dUds + n * NEP_NS;
                const double gn = gA[n], gpn = gpA[n];
#pragma omp simd
                for (int k = 0; k < ns; ++k) {
                    Sg[k] += dn[k] * gn;
                    Sgp[k] += dn[k] * gpn;
                }
            }
            nep_harmonics(m->zcoef, (int)m->l_need, u, Y, G);
            double bx = 0.0, by = 0.0, bz = 0.0;
            for (int k = 0; k < ns; ++k) {
                radial += Sgp[k] * Y[k];
                bx += Sg[k] * G[3 * k];
                by += Sg[k] * G[3 * k + 1];
                bz += Sg[k] * G[3 * k + 2];
            }
            const double bu = bx * u[0] + by * u[1] + bz * u[2];
            f[0] = (bx - bu * u[0]) * rinv;
            f[1] = (by - bu * u[1]) * rinv;
            f[2] = (bz - bu * u[2]) * rinv;
            if (m->zbl_kind && r < m->zbl_outer[p]) {
                double phi, dphi;
                nep_zbl(m, ti, tj, r, &phi, &dphi);
                U += 0.5 * phi;
                radial += 0.5 * dphi;
            }
        }
        double *out = pf + (i * nnei + a) * 3;
        out[0] = f[0] + radial * u[0];
        out[1] = f[1] + radial * u[1];
        out[2] = f[2] + radial * u[2];
    }
    *energy = U;
    return DPC_OK;
}

int dpc_nep_compute(const dpc_nep_model *m, int64_t natoms, int64_t nnei, const int64_t *types,
                    const int64_t *index, const double *vectors, const int64_t *counts, int n_threads,
                    double *atom_energy, double *force, double *atom_virial, double *pair_force,
                    double *descriptor)
{
    if (m->n_max_R + 1 > NEP_MAXN || m->n_max_A + 1 > NEP_MAXN || m->basis_R + 1 > NEP_MAXN ||
        m->basis_A + 1 > NEP_MAXN || m->l_need < 1 || m->l_need > 8)
        return DPC_ERR_ARGUMENT;
    for (int64_t i = 0; i < natoms; ++i) {
        if (types[i] < 0 || types[i] >= m->ntypes || counts[i] < 0 || counts[i] > nnei) return DPC_ERR_INDEX;
        for (int64_t a = 0; a < counts[i]; ++a) {
            const int64_t j = index[i * nnei + a];
            if (j < 0 || j >= natoms) return DPC_ERR_INDEX;
        }
    }
    int status = DPC_OK;
    const int64_t nR1 = m->n_max_R + 1, nA1 = m->n_max_A + 1;
    if (n_threads < 1) n_threads = 1;
#pragma omp parallel num_threads(n_threads)
    {
        nep_scratch w;
        const size_t per = (size_t)(nnei > 0 ? nnei : 1);
        double *buf = (double *)malloc(sizeof(double) * (per * 2 * (nR1 + nA1) + 2 * nA1 * NEP_NS + 2 * m->dim + m->n_neuron));
        int local = buf ? DPC_OK : DPC_ERR_ALLOC;
        if (buf) {
            w.gR = buf;
            w.gpR = w.gR + per * nR1;
            w.gA = w.gpR + per * nR1;
            w.gpA = w.gA + per * nA1;
            w.s = w.gpA + per * nA1;
            w.dUds = w.s + nA1 * NEP_NS;
            w.q = w.dUds + nA1 * NEP_NS;
            w.F = w.q + m->dim;
            w.h = w.F + m->dim;
        }
#pragma omp for schedule(dynamic, 16)
        for (int64_t i = 0; i < natoms; ++i) {
            if (local != DPC_OK) continue;
            int st = nep_atom(m, i, nnei, types, index, vectors, counts[i], &w, atom_energy + i, pair_force, descriptor);
            if (st != DPC_OK) local = st;
        }
        free(buf);
        if (local != DPC_OK) {
#pragma omp critical
            status = local;
        }
    }
    if (status != DPC_OK) return status;
    memset(force, 0, sizeof(double) * 3 * natoms);
    memset(atom_virial, 0, sizeof(double) * 9 * natoms);
    for (int64_t i = 0; i < natoms; ++i) {
        for (int64_t a = 0; a < counts[i]; ++a) {
            const int64_t j = index[i * nnei + a];
            const double *f = pair_force + (i * nnei + a) * 3;
            const double *v = vectors + (i * nnei + a) * 3;
            double *wj = atom_virial + 9 * j;
            force[3 * i] += f[0]; force[3 * i + 1] += f[1]; force[3 * i + 2] += f[2];
            force[3 * j] -= f[0]; force[3 * j + 1] -= f[1]; force[3 * j + 2] -= f[2];
            for (int x = 0; x < 3; ++x)
                for (int y = 0; y < 3; ++y) wj[3 * x + y] -= v[x] * f[y];
        }
    }
    return DPC_OK;
}
