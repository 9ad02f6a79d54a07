/* NEP kernel: see dpc_nep.h for the buffers and dpcompress/nep/reference.py for the math.
 *
 * Per centre atom i (nep_atom), all in thread-private scratch:
 *   pass 1   one sweep over the neighbours: r, r_ij / r, g_n^R and g_n^R' (q_n += g_n^R), and for the
 *            angular neighbours (r < r_c^A) g_n^A, g_n^A', Y_k and its gradient, s_{k,n} += g_n^A Y_k;
 *   blocks   angular descriptors from the s sums (monomials, vectorised over n);
 *   network  U_i and F = dU_i/dq;
 *   dU/ds    derivatives of the blocks (same monomials);
 *   pass 2   partial forces f_ij = dU_i/dr_ij from the stored g', Y, grad Y (no function is evaluated twice).
 * Channel arrays (g, s, dU/ds) are padded to a multiple of 4 with zeros so that the n loops vectorise
 * without remainders.
 *
 * Threads: centre atoms are shared out dynamically; every per-atom result depends on that atom only.
 * The scatter f_ij -> forces and per-atom virials runs in the same parallel region: each thread owns a
 * contiguous range of target atoms and walks all pairs in (i, slot) order, adding only the terms of
 * its own atoms.  So every force/virial component is summed in exactly the order of a serial
 * scatter, whatever the thread count (bit-identical results), and the scatter is parallel too.
 */
#include "dpc_nep.h"
#include "dpc_table.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define NEP_MAXN 17   /* n_max + 1 and basis_size + 1 */
#define NEP_MAXNP 20  /* NEP_MAXN padded to a multiple of 4 */
#define NEP_NS 80     /* s components for l = 1..8 */
#define NEP_PI 3.141592653589793
#define NEP_PAD4(x) (((x) + 3) & ~(int64_t)3)

static const double ZBL_UNIVERSAL[8] = {0.18175, 3.1998, 0.50986, 0.94229, 0.28022, 0.4029, 0.02817, 0.20162};

/* Analytic g_n(r), g_n'(r), n = 0..nchp-1 (padding channels have zero coefficients):
 * c is [nb+1][nchp] of one pair. */
static inline void nep_g_analytic(double r, double rc, int nb, int64_t nchp, const double *c, double *g, double *gp)
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
    for (int64_t n = 0; n < nchp; ++n) { g[n] = 0.0; gp[n] = 0.0; }
    for (int k = 0; k <= nb; ++k) {
        const double *ck = c + k * nchp;
        const double fk = f[k], fpk = fp[k];
#pragma omp simd
        for (int64_t n = 0; n < nchp; ++n) {
            g[n] += ck[n] * fk;
            gp[n] += ck[n] * fpk;
        }
    }
}

/* Tabulated g_n, g_n': the quintic polynomials of dpc_table.h on NEP's uniform grid = (w, 1/w). */
static inline void nep_g_table(double r, const double *grid, int64_t M, int64_t nchp, const double *coef, double *g,
                               double *gp)
{
    double t;
    const int64_t l = dpc_uniform_locate(r, grid[0], grid[1], M, &t);
    const double *c = coef + l * 6 * nchp;
#pragma omp simd
    for (int64_t n = 0; n < nchp; ++n) dpc_poly_eval(c + n, nchp, 6, t, g + n, gp + n);
}

/* g_n and g_n' (nchp channels) of pair p (t_centre * T + t_neighbour); part 0 = radial, 1 = angular. */
static inline void nep_g(const dpc_nep_model *m, int part, int64_t p, int64_t nchp, double r, double *g, double *gp)
{
    const int64_t q = part * m->ntypes * m->ntypes + p; /* table index */
    if (m->tabulated)
        nep_g_table(r, m->tab_grid + 2 * q, m->tab_M[q], nchp, m->tab_coef + m->tab_off[q], g, gp);
    else if (part == 0)
        nep_g_analytic(r, m->rc_R[p], (int)m->basis_R, nchp, m->c_R + p * (m->basis_R + 1) * nchp, g, gp);
    else
        nep_g_analytic(r, m->rc_A[p], (int)m->basis_A, nchp, m->c_A + p * (m->basis_A + 1) * nchp, g, gp);
}

/* Y_k(u) for l = 1..lneed at offsets l*l-1, and its gradient wrt the free components of u:
 * Gx[k], Gy[k], Gz[k] (three arrays, so that pass 2 reads them with unit stride). */
static inline void nep_harmonics(const double *zc, int lneed, const double *u, double *Y, double *Gx, double *Gy,
                                 double *Gz)
{
    double zp[9], wr[9], wi[9];
    zp[0] = 1.0; wr[0] = 1.0; wi[0] = 0.0;
    for (int p = 1; p <= lneed; ++p) {
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
                Gx[b] = 0.0; Gy[b] = 0.0; Gz[b] = dzf;
                continue;
            }
            const int kr = b + 2 * mm - 1, ki = b + 2 * mm;
            Y[kr] = zf * wr[mm];
            Y[ki] = zf * wi[mm];
            Gx[kr] = zf * mm * wr[mm - 1];
            Gy[kr] = -zf * mm * wi[mm - 1];
            Gz[kr] = dzf * wr[mm];
            Gx[ki] = zf * mm * wi[mm - 1];
            Gy[ki] = zf * mm * wr[mm - 1];
            Gz[ki] = dzf * wi[mm];
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

/* Thread-private scratch of nep_atom (zero-initialised once: padding lanes stay 0). */
typedef struct {
    int64_t nR1p, nA1p, nsp;
    double *geo;         /* [nnei][4]: r_ij / r, r */
    double *gpR;         /* [nnei][nR1p] g_n^R'(r), 0 outside r_c^R */
    double *gA, *gpA;    /* [nnei][nA1p] angular neighbours (compact, in slot order) */
    double *Y, *G;       /* [nnei][nsp] and [nnei][3][nsp] */
    int64_t *aslot;      /* [nnei] slot of each angular neighbour */
    double *s, *dUds;    /* [ns][nA1p] (n fastest: the monomial loops vectorise over n) */
    double *dUdsT;       /* [nA1][nsp] (k fastest: pass 2 contracts over k) */
    double *q, *F, *h;   /* [D], [D], [N_neu] */
} nep_scratch;

/* One centre atom: descriptor, energy, partial forces f_ij (into pf).  Checks its own inputs (type,
 * neighbour count, neighbour indices and types) before using them. */
DPC_HOT static int nep_atom(const dpc_nep_model *m, int64_t natoms, int64_t ti, int64_t nnei, const int64_t *types,
                            const int64_t *index_row, const double *vectors_row, int64_t cnt, nep_scratch *w,
                            double *energy, double *pf_row, double *desc, double *wrow)
{
    const int64_t T = m->ntypes;
    if (ti < 0 || ti >= T || cnt < 0 || cnt > nnei) return DPC_ERR_INDEX;
    for (int64_t a = 0; a < cnt; ++a) {
        const int64_t j = index_row[a];
        if (j < 0 || j >= natoms || types[j] < 0 || types[j] >= T) return DPC_ERR_INDEX;
    }
    const int nR1 = (int)m->n_max_R + 1, nA1 = (int)m->n_max_A + 1;
    const int64_t nR1p = w->nR1p, nA1p = w->nA1p, nsp = w->nsp;
    const int ns = (int)((m->l_need + 1) * (m->l_need + 1) - 1);
    const int64_t D = m->dim, NN = m->n_neuron, nblk = m->num_L;
    double *q = w->q, *s = w->s;
    double U = 0.0;
    double qR[NEP_MAXNP] = {0.0};
    double g[NEP_MAXNP] = {0.0};
    int64_t na = 0; /* angular neighbours */
    memset(s, 0, sizeof(double) * ns * nA1p);

    /* pass 1a: geometry (a short loop without branches, so the sqrt and division pipeline) */
    const double *vi = vectors_row;
    int bad_r = 0; /* r = 0 or NaN */
    for (int64_t a = 0; a < cnt; ++a) {
        const double *v = vi + 3 * a;
        const double r = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        const double rinv = 1.0 / r;
        double *geo = w->geo + 4 * a;
        geo[0] = v[0] * rinv; geo[1] = v[1] * rinv; geo[2] = v[2] * rinv; geo[3] = r;
        bad_r |= !(r > 0.0);
    }
    if (bad_r) return DPC_ERR_NONFINITE;
    /* pass 1b: radial sums q_n, angular s sums; keep g', Y, grad Y for pass 2 */
    for (int64_t a = 0; a < cnt; ++a) {
        const double *geo = w->geo + 4 * a;
        const double r = geo[3];
        const int64_t p = ti * T + types[index_row[a]];
        double *gpR = w->gpR + a * nR1p;
        if (r < m->rc_R[p]) {
            nep_g(m, 0, p, nR1p, r, g, gpR);
#pragma omp simd
            for (int64_t n = 0; n < nR1p; ++n) qR[n] += g[n];
        } else {
            for (int64_t n = 0; n < nR1p; ++n) gpR[n] = 0.0;
        }
        if (r < m->rc_A[p]) {
            double *gA = w->gA + na * nA1p, *Y = w->Y + na * nsp, *G = w->G + na * 3 * nsp;
            w->aslot[na++] = a;
            nep_g(m, 1, p, nA1p, r, gA, w->gpA + (na - 1) * nA1p);
            nep_harmonics(m->zcoef, (int)m->l_need, geo, Y, G, G + nsp, G + 2 * nsp);
            for (int k = 0; k < ns; ++k) {
                double *sk = s + k * nA1p;
                const double yk = Y[k];
#pragma omp simd
                for (int64_t n = 0; n < nA1p; ++n) sk[n] += gA[n] * yk;
            }
        }
    }
    for (int n = 0; n < nR1; ++n) q[n] = qR[n];

    /* angular blocks: q[nR1 + b * nA1 + n] = sum_mono c * prod s[idx][n] */
    for (int64_t b = 0; b < nblk; ++b) {
        double val[NEP_MAXNP] = {0.0};
        for (int64_t mo = m->block_start[b]; mo < m->block_start[b + 1]; ++mo) {
            const double *row = m->mono + 5 * mo;
            double prod[NEP_MAXNP];
            for (int64_t n = 0; n < nA1p; ++n) prod[n] = row[0];
            for (int z = 1; z < 5; ++z) {
                if (row[z] < 0) continue;
                const double *sz = s + (int64_t)row[z] * nA1p;
#pragma omp simd
                for (int64_t n = 0; n < nA1p; ++n) prod[n] *= sz[n];
            }
#pragma omp simd
            for (int64_t n = 0; n < nA1p; ++n) val[n] += prod[n];
        }
        for (int n = 0; n < nA1; ++n) q[nR1 + b * nA1 + n] = val[n];
    }

    /* network */
    double *x = w->F; /* scaled descriptor, reused below for dU/dq */
    for (int64_t d = 0; d < D; ++d) x[d] = q[d] * m->q_scaler[d];
    if (desc) memcpy(desc, x, sizeof(double) * D);
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

    /* dU/ds[k][n] = sum_b F_b[n] dq_b[n]/ds[k][n] */
    double *dUds = w->dUds;
    memset(dUds, 0, sizeof(double) * ns * nA1p);
    for (int64_t b = 0; b < nblk; ++b) {
        double Fb[NEP_MAXNP] = {0.0};
        for (int n = 0; n < nA1; ++n) Fb[n] = F[nR1 + b * nA1 + n];
        for (int64_t mo = m->block_start[b]; mo < m->block_start[b + 1]; ++mo) {
            const double *row = m->mono + 5 * mo;
            for (int z = 1; z < 5; ++z) {
                if (row[z] < 0) continue;
                double prod[NEP_MAXNP];
#pragma omp simd
                for (int64_t n = 0; n < nA1p; ++n) prod[n] = row[0] * Fb[n];
                for (int z2 = 1; z2 < 5; ++z2) {
                    if (z2 == z || row[z2] < 0) continue;
                    const double *sz = s + (int64_t)row[z2] * nA1p;
#pragma omp simd
                    for (int64_t n = 0; n < nA1p; ++n) prod[n] *= sz[n];
                }
                double *dz = dUds + (int64_t)row[z] * nA1p;
#pragma omp simd
                for (int64_t n = 0; n < nA1p; ++n) dz[n] += prod[n];
            }
        }
    }
    double *dT = w->dUdsT;
    for (int n = 0; n < nA1; ++n)
        for (int k = 0; k < ns; ++k) dT[n * nsp + k] = dUds[k * nA1p + n];

    /* pass 2: partial forces */
    int64_t ka = 0;
    for (int64_t a = 0; a < cnt; ++a) {
        const double *u = w->geo + 4 * a;
        const double r = u[3], rinv = 1.0 / r;
        const double *gpR = w->gpR + a * nR1p;
        double f[3] = {0.0, 0.0, 0.0};
        double radial = 0.0;
        for (int n = 0; n < nR1; ++n) radial += F[n] * gpR[n];
        if (ka < na && w->aslot[ka] == a) {
            const double *gA = w->gA + ka * nA1p, *gpA = w->gpA + ka * nA1p;
            const double *Y = w->Y + ka * nsp, *Gx = w->G + ka * 3 * nsp, *Gy = Gx + nsp, *Gz = Gy + nsp;
            ++ka;
            double Sg[NEP_NS], Sgp[NEP_NS];
            for (int k = 0; k < ns; ++k) { Sg[k] = 0.0; Sgp[k] = 0.0; }
            for (int n = 0; n < nA1; ++n) {
                const double *dn = dT + n * nsp;
                const double gn = gA[n], gpn = gpA[n];
#pragma omp simd
                for (int k = 0; k < ns; ++k) {
                    Sg[k] += dn[k] * gn;
                    Sgp[k] += dn[k] * gpn;
                }
            }
            double bx = 0.0, by = 0.0, bz = 0.0;
            for (int k = 0; k < ns; ++k) {
                radial += Sgp[k] * Y[k];
                bx += Sg[k] * Gx[k];
                by += Sg[k] * Gy[k];
                bz += Sg[k] * Gz[k];
            }
            const double bu = bx * u[0] + by * u[1] + bz * u[2];
            f[0] = (bx - bu * u[0]) * rinv;
            f[1] = (by - bu * u[1]) * rinv;
            f[2] = (bz - bu * u[2]) * rinv;
            if (m->zbl_kind) {
                const int64_t tj = types[index_row[a]], p = ti * T + tj;
                if (r < m->zbl_outer[p]) {
                    double phi, dphi;
                    nep_zbl(m, ti, tj, r, &phi, &dphi);
                    U += 0.5 * phi;
                    radial += 0.5 * dphi;
                }
            }
        }
        double *out = pf_row + a * 3;
        out[0] = f[0] + radial * u[0];
        out[1] = f[1] + radial * u[1];
        out[2] = f[2] + radial * u[2];
        if (wrow) { /* this center's share of the virial, -sum_j r_ij (x) f_ij, while both are at hand */
            const double *v = vi + 3 * a;
            for (int x = 0; x < 3; ++x)
                for (int y = 0; y < 3; ++y) wrow[3 * x + y] -= v[x] * out[y];
        }
    }
    *energy = U;
    return DPC_OK;
}

/* Forces and per-atom virials of the atoms [lo, hi) from the pair forces of rows [0, nrows) (row r
 * belongs to center centers[r], or r itself without centers), in (row, slot) order, added to the
 * outputs; atom_virial may be NULL. */
static void nep_scatter(int64_t lo, int64_t hi, int64_t nrows, const int64_t *centers, int64_t nnei,
                        const int64_t *index, const double *vectors, const int64_t *counts, const double *pair_force,
                        double *force, double *atom_virial)
{
    for (int64_t r = 0; r < nrows; ++r) {
        const int64_t i = centers ? centers[r] : r;
        const int own_i = i >= lo && i < hi;
        for (int64_t a = 0; a < counts[r]; ++a) {
            const int64_t j = index[r * nnei + a];
            const int own_j = j >= lo && j < hi;
            if (!own_i && !own_j) continue;
            const double *f = pair_force + (r * nnei + a) * 3;
            if (own_i) {
                force[3 * i] += f[0]; force[3 * i + 1] += f[1]; force[3 * i + 2] += f[2];
            }
            if (own_j) {
                const double *v = vectors + (r * nnei + a) * 3;
                force[3 * j] -= f[0]; force[3 * j + 1] -= f[1]; force[3 * j + 2] -= f[2];
                if (atom_virial) {
                    double *wj = atom_virial + 9 * j;
                    for (int x = 0; x < 3; ++x)
                        for (int y = 0; y < 3; ++y) wj[3 * x + y] -= v[x] * f[y];
                }
            }
        }
    }
}

/* Scratch of nep_atom carved from buf (zeroed when carved: padding lanes stay 0). */
static int nep_scratch_take(const dpc_nep_model *m, int64_t nnei, dpc_buffer *buf, nep_scratch *w)
{
    const int64_t nR1p = NEP_PAD4(m->n_max_R + 1), nA1p = NEP_PAD4(m->n_max_A + 1);
    const int64_t ns = (m->l_need + 1) * (m->l_need + 1) - 1, nsp = NEP_PAD4(ns);
    const int64_t per = nnei > 0 ? nnei : 1;
    const size_t len = (size_t)(per * (4 + nR1p + 2 * nA1p + 4 * nsp) + 2 * ns * nA1p + (m->n_max_A + 1) * nsp +
                                2 * m->dim + m->n_neuron);
    size_t total = 0;
    dpc_carve(NULL, &total, sizeof(double) * len);
    dpc_carve(NULL, &total, sizeof(int64_t) * (size_t)per);
    char *base = (char *)dpc_buffer_reserve(buf, total);
    if (!base) return 0;
    size_t off = 0;
    double *d = (double *)dpc_carve(base, &off, sizeof(double) * len);
    memset(d, 0, sizeof(double) * len);
    w->aslot = (int64_t *)dpc_carve(base, &off, sizeof(int64_t) * (size_t)per);
    w->nR1p = nR1p; w->nA1p = nA1p; w->nsp = nsp;
    w->geo = d;
    w->gpR = w->geo + per * 4;
    w->gA = w->gpR + per * nR1p;
    w->gpA = w->gA + per * nA1p;
    w->Y = w->gpA + per * nA1p;
    w->G = w->Y + per * nsp;
    w->s = w->G + per * 3 * nsp;
    w->dUds = w->s + ns * nA1p;
    w->dUdsT = w->dUds + ns * nA1p;
    w->q = w->dUdsT + (m->n_max_A + 1) * nsp;
    w->F = w->q + m->dim;
    w->h = w->F + m->dim;
    return 1;
}

int dpc_nep_check(const dpc_nep_model *m)
{
    if (m->n_max_R + 1 > NEP_MAXN || m->n_max_A + 1 > NEP_MAXN || m->basis_R + 1 > NEP_MAXN ||
        m->basis_A + 1 > NEP_MAXN || m->l_need < 1 || m->l_need > 8)
        return DPC_ERR_ARGUMENT;
    return DPC_OK;
}

int dpc_nep_rows(const dpc_nep_model *m, int64_t nrows, const int64_t *centers, int64_t natoms, const int64_t *types,
                 int64_t nnei, const int64_t *index, const double *vectors, const int64_t *counts, int n_threads,
                 dpc_buffer *thread_scratch, double *energy, double *pair_force, double *descriptor,
                 double *virial_rows)
{
    int status = dpc_nep_check(m);
    if (status != DPC_OK) return status;
    if (n_threads < 1) n_threads = 1;
#pragma omp parallel num_threads(n_threads)
    {
        dpc_buffer own = {NULL, 0};
        nep_scratch w;
        int local = nep_scratch_take(m, nnei, dpc_thread_buffer(thread_scratch, &own), &w) ? DPC_OK : DPC_ERR_ALLOC;
        if (local != DPC_OK) {
#pragma omp critical
            status = DPC_ERR_ALLOC;
        }
        /* dynamic: a thread that the OS pauses holds up little */
#pragma omp for schedule(dynamic, 16)
        for (int64_t r = 0; r < nrows; ++r) {
            if (local != DPC_OK) continue;
            const int64_t i = centers ? centers[r] : r;
            if (virial_rows) memset(virial_rows + 9 * r, 0, 9 * sizeof(double));
            local = nep_atom(m, natoms, types[i], nnei, types, index + r * nnei, vectors + r * nnei * 3, counts[r], &w,
                             energy + r, pair_force + r * nnei * 3, descriptor ? descriptor + r * m->dim : NULL,
                             virial_rows ? virial_rows + 9 * r : NULL);
            if (local != DPC_OK) {
#pragma omp critical
                if (status == DPC_OK || local < status) status = local;
            }
        }
        dpc_buffer_free(&own);
    }
    return status;
}

void dpc_nep_scatter_rows(int64_t nrows, const int64_t *centers, int64_t natoms, int64_t nnei, const int64_t *index,
                          const double *vectors, const int64_t *counts, const double *pair_force, int n_threads,
                          double *force, double *atom_virial)
{
    if (n_threads < 1) n_threads = 1;
    /* thread t owns the atoms [lo, hi) and walks every pair in (row, slot) order: each component is
     * summed in the order of a serial scatter whatever the thread count */
#pragma omp parallel num_threads(n_threads)
    {
#ifdef _OPENMP
        const int64_t nth = omp_get_num_threads(), tid = omp_get_thread_num();
#else
        const int64_t nth = 1, tid = 0;
#endif
        nep_scatter(natoms * tid / nth, natoms * (tid + 1) / nth, nrows, centers, nnei, index, vectors, counts,
                    pair_force, force, atom_virial);
    }
}

int dpc_nep_compute(const dpc_nep_model *m, int64_t natoms, int64_t nnei, const int64_t *types,
                    const int64_t *index, const double *vectors, const int64_t *counts, int n_threads,
                    double *atom_energy, double *force, double *atom_virial, double *pair_force,
                    double *descriptor)
{
    const int status = dpc_nep_rows(m, natoms, NULL, natoms, types, nnei, index, vectors, counts, n_threads, NULL,
                                    atom_energy, pair_force, descriptor, NULL);
    if (status != DPC_OK) return status;
    memset(force, 0, sizeof(double) * 3 * (size_t)natoms);
    memset(atom_virial, 0, sizeof(double) * 9 * (size_t)natoms);
    dpc_nep_scatter_rows(natoms, NULL, natoms, nnei, index, vectors, counts, pair_force, n_threads, force, atom_virial);
    return DPC_OK;
}
