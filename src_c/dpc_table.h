/* The embedding tables of dpcompress: layout, lookup and polynomial formulas.
 *
 * This header is the single source of truth shared by the C kernels and the
 * CUDA kernels (it is plain C99 with a host/device qualifier macro).  The numpy
 * twin of every function here lives in dpcompress/core/table_math.py.
 *
 * Grid
 * ----
 * A table tabulates the M channels g_m(x) of one embedding net on up to three
 * segments (n_below = 0 for se_e2_a/se_e2_r/se_atten; the symmetric se_e3 grid has all three):
 *
 *     coarse below  x_l = lower - (n_below - l) * stride1,        l = 0 .. n_below
 *     fine          x_l = lower + (l - n_below) * stride0,        l = n_below .. n_below + n_fine
 *     coarse above  x_l = upper + (l - n_below - n_fine) * stride1,  up to l = nspline
 *
 * with xmin = lower - n_below * stride1, upper = lower + n_fine * stride0 and
 * xmax = upper + n_coarse * stride1, each computed exactly so from integer
 * interval counts (never a float arange).  Interval l spans [x_l, x_{l+1}); its
 * width is stride0 in the fine segment and stride1 in the coarse ones.
 * nspline = n_below + n_fine + n_coarse intervals in all.
 *
 * Layout
 * ------
 * coef[(l * ncoef + k) * M + m] = a_k of channel m on interval l
 * (ncoef = order + 1 = 6 for quintic, 4 for cubic Hermite): coefficient-major
 * inside a row, so a loop over channels m reads unit-stride memory.
 * The polynomial is in the local offset t = x - x_l:
 *
 *     P_{l,m}(t) = sum_k a_k t^k.
 *
 * Outside the table (x < xmin or x >= xmax) the value continues linearly with
 * the slope at the end node (C1): P(t_end) + delta * P'(t_end), delta = x - end;
 * the derivative reported there is P'(t_end), so forces stay exactly -dE/dx.
 *
 * Packed tables
 * -------------
 * A descriptor's tables travel to the kernels as flat arrays, row `tab` per table
 * (dpcompress/descriptors/base.py pack_tables):
 *
 *     tab_real  [ntables][5]  lower, upper, xmax, stride0, stride1
 *     tab_count [ntables][3]  n_fine, n_coarse, n_below
 *     tab_offset[ntables]     start of the table's rows in coef
 *
 * dpc_table_unpack turns one row into a dpc_table_info.
 *
 * Uniform grids
 * -------------
 * NEP tabulates its radial functions on M equal intervals of width w from 0
 * (dpcompress/nep/tables.py), with the same coefficient layout; dpc_uniform_locate
 * is its lookup.  It has no linear continuation: NEP asks only for r < r_c = M w,
 * and the clamp keeps the rounding at either end on the end intervals.
 *
 * Coefficients (Hermite interpolation of y, y', y'' at both ends, h = y1 - y0,
 * w = interval width):
 *
 *   quintic  a0 = y0, a1 = y0', a2 = y0''/2,
 *            a3 = [ 20h - (8y1' + 12y0')w - (3y0'' - y1'')w^2 ] / (2w^3)
 *            a4 = [-30h + (14y1' + 16y0')w + (3y0'' - 2y1'')w^2 ] / (2w^4)
 *            a5 = [ 12h -  6(y1' + y0')w   + (y1'' - y0'')w^2 ]   / (2w^5)
 *   cubic    c0 = y0, c1 = y0', c2 = [3h - (y1' + 2y0')w]/w^2, c3 = [(y1' + y0')w - 2h]/w^3
 */
#ifndef DPC_TABLE_H
#define DPC_TABLE_H

#include "dpc_common.h"

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define DPC_HD __host__ __device__ __forceinline__
#else
#define DPC_HD static inline
#endif

#define DPC_MAX_NCOEF 6

typedef struct {
    double lower;      /* start of the fine region */
    double upper;      /* lower + n_fine * stride0: end of the fine region */
    double xmax;       /* upper + n_coarse * stride1: last node */
    double stride0;    /* fine interval width */
    double stride1;    /* coarse interval width */
    dpc_index n_fine;  /* fine intervals (>= 1) */
    dpc_index n_coarse;/* coarse intervals above (>= 0) */
    dpc_index n_below; /* coarse intervals below lower (>= 0); first node xmin = lower - n_below * stride1 */
    int ncoef;         /* 6 (quintic) or 4 (cubic) */
    int n_channels;    /* M */
} dpc_table_info;

/* The packed arrays are 64-bit and per table; ncoef and M are per descriptor. */
DPC_HD void dpc_table_unpack(const double *tab_real, const dpc_index *tab_count, dpc_index tab, int ncoef,
                             int n_channels, dpc_table_info *out)
{
    const double *r = tab_real + 5 * tab;
    const dpc_index *c = tab_count + 3 * tab;
    out->lower = r[0];
    out->upper = r[1];
    out->xmax = r[2];
    out->stride0 = r[3];
    out->stride1 = r[4];
    out->n_fine = c[0];
    out->n_coarse = c[1];
    out->n_below = c[2];
    out->ncoef = ncoef;
    out->n_channels = n_channels;
}

/* Where x falls: interval l, local offset t, and delta = distance past the
 * table's ends (negative below xmin, positive above xmax, 0 inside). */
DPC_HD dpc_index dpc_table_locate(const dpc_table_info *ti, double x, double *t, double *delta)
{
    dpc_index l;
    const dpc_index nb = ti->n_below;
    if (x < ti->lower) {
        const double xmin = ti->lower - (double)nb * ti->stride1;
        if (nb == 0 || x < xmin) {
            *t = 0.0;
            *delta = x - xmin;
            return 0;
        }
        l = (dpc_index)((x - xmin) / ti->stride1);
        if (l > nb - 1) l = nb - 1; /* rounding just below lower */
        *t = x - (ti->lower - (double)(nb - l) * ti->stride1);
        *delta = 0.0;
        return l;
    }
    if (x < ti->upper) {
        l = (dpc_index)((x - ti->lower) / ti->stride0);
        if (l > ti->n_fine - 1) l = ti->n_fine - 1; /* rounding just below upper */
        *t = x - (ti->lower + (double)l * ti->stride0);
        *delta = 0.0;
        return nb + l;
    }
    if (x < ti->xmax) {
        l = (dpc_index)((x - ti->upper) / ti->stride1);
        if (l > ti->n_coarse - 1) l = ti->n_coarse - 1;
        *t = x - (ti->upper + (double)l * ti->stride1);
        *delta = 0.0;
        return nb + ti->n_fine + l;
    }
    /* beyond the last node: end of the last interval */
    *delta = x - ti->xmax;
    if (ti->n_coarse > 0) {
        *t = ti->xmax - (ti->upper + (double)(ti->n_coarse - 1) * ti->stride1);
        return nb + ti->n_fine + ti->n_coarse - 1;
    }
    *t = ti->upper - (ti->lower + (double)(ti->n_fine - 1) * ti->stride0);
    return nb + ti->n_fine - 1;
}

/* Interval l and offset t of x on a uniform grid of M intervals of width w from 0.
 * inv_w = 1 / w is passed in, not computed: a multiply instead of a divide per pair,
 * and the stored value is what the pinned NEP outputs were computed with. */
DPC_HD dpc_index dpc_uniform_locate(double x, double w, double inv_w, dpc_index M, double *t)
{
    dpc_index l = (dpc_index)(x * inv_w);
    if (l > M - 1) l = M - 1;
    if (l < 0) l = 0;
    *t = x - (double)l * w;
    return l;
}

/* Value and derivative of one channel's polynomial; c points at a_0 of the
 * channel and successive coefficients are M apart. */
DPC_HD void dpc_poly_eval(const double *c, dpc_index M, int ncoef, double t, double *value, double *deriv)
{
    double v, d;
    if (ncoef == 6) {
        const double a0 = c[0], a1 = c[M], a2 = c[2 * M], a3 = c[3 * M], a4 = c[4 * M], a5 = c[5 * M];
        v = a0 + t * (a1 + t * (a2 + t * (a3 + t * (a4 + t * a5))));
        d = a1 + t * (2.0 * a2 + t * (3.0 * a3 + t * (4.0 * a4 + t * 5.0 * a5)));
    } else {
        const double a0 = c[0], a1 = c[M], a2 = c[2 * M], a3 = c[3 * M];
        v = a0 + t * (a1 + t * (a2 + t * a3));
        d = a1 + t * (2.0 * a2 + t * 3.0 * a3);
    }
    *value = v;
    *deriv = d;
}

/* Value only (the forward pass inside the table needs no derivative). */
DPC_HD double dpc_poly_value(const double *c, dpc_index M, int ncoef, double t)
{
    if (ncoef == 6)
        return c[0] + t * (c[M] + t * (c[2 * M] + t * (c[3 * M] + t * (c[4 * M] + t * c[5 * M]))));
    return c[0] + t * (c[M] + t * (c[2 * M] + t * c[3 * M]));
}

/* Quintic Hermite coefficients a[0..5] from (y, y', y'') at both ends of an interval of width w. */
DPC_HD void dpc_quintic_coefficients(double y0, double d0, double s0, double y1, double d1, double s1, double w, double *a)
{
    const double h = y1 - y0, w2 = w * w, w3 = w2 * w;
    a[0] = y0;
    a[1] = d0;
    a[2] = 0.5 * s0;
    a[3] = (20.0 * h - (8.0 * d1 + 12.0 * d0) * w - (3.0 * s0 - s1) * w2) / (2.0 * w3);
    a[4] = (-30.0 * h + (14.0 * d1 + 16.0 * d0) * w + (3.0 * s0 - 2.0 * s1) * w2) / (2.0 * w3 * w);
    a[5] = (12.0 * h - 6.0 * (d1 + d0) * w + (s1 - s0) * w2) / (2.0 * w3 * w2);
}

/* Cubic Hermite coefficients a[0..3] from (y, y') at both ends of an interval of width w. */
DPC_HD void dpc_cubic_coefficients(double y0, double d0, double y1, double d1, double w, double *a)
{
    const double h = y1 - y0, w2 = w * w;
    a[0] = y0;
    a[1] = d0;
    a[2] = (3.0 * h - (d1 + 2.0 * d0) * w) / w2;
    a[3] = ((d1 + d0) * w - 2.0 * h) / (w2 * w);
}

#endif
