/* DeePMD-kit's pair table and ZBL switching (dpc_pair_table.h; the math: docs/dp-zbl.md). */
#include "dpc_pair_table.h"

#include <math.h>
#include <string.h>

#define DPC_SOFTMIN_FLOOR 1e-20 /* DeePMD-kit's floor on the softmin denominator */

int dpc_zbl_expected_array(const char *name)
{
    return strcmp(name, "zbl.int") == 0 || strcmp(name, "zbl.real") == 0 || strcmp(name, "zbl.coef") == 0 ||
           strcmp(name, "zbl.bias") == 0;
}

dpc_status dpc_zbl_read(const dpc_file *file, int64_t ntypes, double rcut0, int64_t nnei0, int mixed0,
                        int pairs_excluded, dpc_zbl *z, dpc_error *err)
{
    memset(z, 0, sizeof *z);
    if (!dpc_file_get(file, "zbl.int") && !dpc_file_get(file, "zbl.real") && !dpc_file_get(file, "zbl.coef") &&
        !dpc_file_get(file, "zbl.bias"))
        return DPC_OK;
    int64_t s2[1] = {3}, s6[1] = {6};
    const dpc_array *ai = dpc_file_need(file, "zbl.int", DPC_DT_I64, 1, s2, err);
    if (!ai) return err->status;
    const int64_t *I = (const int64_t *)ai->data;
    if (I[0] != ntypes) return dpc_set_error(err, DPC_ERR_ARGUMENT, "zbl.int: %lld types, the model has %lld",
                                             (long long)I[0], (long long)ntypes);
    if (I[1] < 1 || I[1] > (1 << 20))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "zbl.int: %lld spline intervals (1 to %d)", (long long)I[1], 1 << 20);
    if (I[2] != nnei0)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "zbl.int: pair-table sel %lld differs from descriptor part 0's %lld",
                             (long long)I[2], (long long)nnei0);
    const dpc_array *ar = dpc_file_need(file, "zbl.real", DPC_DT_F64, 1, s6, err);
    if (!ar) return err->status;
    const double *R = (const double *)ar->data;
    for (int k = 0; k < 6; k++)
        if (!isfinite(R[k])) return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'zbl.real' holds NaN or infinite values");
    if (!(R[0] >= 0.0 && R[1] > 0.0 && R[2] > 0.0 && R[4] > R[3] && R[5] > 0.0))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "zbl.real: not rmin >= 0, h > 0, rcut > 0, sw_rmax > sw_rmin, "
                             "smin_alpha > 0");
    if (R[2] != rcut0 || !mixed0)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "zbl.real: the pair table's rcut %g is not descriptor part 0's "
                             "(%g, mixed types)", R[2], rcut0);
    if (pairs_excluded) return dpc_set_error(err, DPC_ERR_ARGUMENT, "a DP + ZBL model with excluded pairs");
    int64_t sc[4] = {ntypes, ntypes, I[1], 4}, sb[2] = {2, ntypes};
    const dpc_array *ac = dpc_file_need(file, "zbl.coef", DPC_DT_F64, 4, sc, err);
    if (!ac) return err->status;
    const dpc_array *ab = dpc_file_need(file, "zbl.bias", DPC_DT_F64, 2, sb, err);
    if (!ab) return err->status;
    const double *c = (const double *)ac->data, *bias = (const double *)ab->data;
    for (int64_t k = 0; k < ac->count; k++)
        if (!isfinite(c[k])) return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'zbl.coef' holds NaN or infinite values");
    for (int64_t k = 0; k < ab->count; k++)
        if (!isfinite(bias[k])) return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'zbl.bias' holds NaN or infinite values");
    z->present = 1;
    z->ntypes = ntypes;
    z->nspline = I[1];
    z->rmin = R[0];
    z->hh = R[1];
    z->rcut = R[2];
    z->sw_rmin = R[3];
    z->sw_rmax = R[4];
    z->alpha = R[5];
    z->coef = c;
    z->tab_bias = bias;
    z->bias = bias + ntypes;
    return DPC_OK;
}

/* E(r) / 2 and its r-derivative / 2 of the pair (ti, tj): DeePMD-kit's spline lookup. */
static void half_pair(const dpc_zbl *z, int64_t ti, int64_t tj, double r, double *e, double *de)
{
    if (r >= z->rcut || r >= z->rmin + (double)z->nspline * z->hh) {
        *e = *de = 0.0;
        return;
    }
    const double hi = 1.0 / z->hh, x = (r - z->rmin) * hi, k = trunc(x), u = x - k;
    const double kc = k < 0.0 ? 0.0 : (k > (double)(z->nspline - 1) ? (double)(z->nspline - 1) : k);
    const double *a = z->coef + ((ti * z->ntypes + tj) * z->nspline + (int64_t)kc) * 4;
    *e = 0.5 * (((a[0] * u + a[1]) * u + a[2]) * u + a[3]);
    *de = 0.5 * ((3.0 * a[0] * u * u + 2.0 * a[1] * u + a[2]) * hi);
}

int dpc_zbl_center(const dpc_zbl *z, int64_t ti, const int32_t *type, int64_t nnei, const int64_t *index,
                   const double *vec, double *b, double *w, double *de, double *dw)
{
    double esum = 0.0, num = 0.0, den = 0.0;
    for (int64_t s = 0; s < nnei; s++) {
        de[s] = dw[s] = 0.0;
        if (index[s] < 0) continue;
        const double *v = vec + 3 * s;
        const double r = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        if (r < z->rmin) return 1;
        double e;
        half_pair(z, ti, type[index[s]], r, &e, de + s);
        esum += e;
        const double ex = exp(-r / z->alpha);
        num += r * ex;
        den += ex;
        dw[s] = ex; /* kept for the gradient below */
    }
    *b = esum + z->tab_bias[ti];
    const int floored = den < DPC_SOFTMIN_FLOOR;
    const double sigma = num / (floored ? DPC_SOFTMIN_FLOOR : den);
    const double width = z->sw_rmax - z->sw_rmin, u = (sigma - z->sw_rmin) / width;
    double wv = 0.0, dws = 0.0;
    if (sigma != 0.0) {
        if (sigma < z->sw_rmin)
            wv = 1.0;
        else if (sigma < z->sw_rmax) {
            wv = -6.0 * u * u * u * u * u + 15.0 * u * u * u * u - 10.0 * u * u * u + 1.0;
            dws = -30.0 * u * u * (u - 1.0) * (u - 1.0) / width;
        }
    }
    *w = wv;
    for (int64_t s = 0; s < nnei; s++) {
        if (index[s] < 0) continue;
        const double *v = vec + 3 * s;
        const double r = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]), ex = dw[s];
        /* d sigma / d r_s = (e_s / S) (1 + (sigma - r_s) / alpha); below the floor S is the constant floor */
        const double ds = floored ? ex * (1.0 - r / z->alpha) / DPC_SOFTMIN_FLOOR
                                  : ex / den * (1.0 + (sigma - r) / z->alpha);
        dw[s] = dws * ds;
    }
    return 0;
}

void dpc_zbl_pair_grad(int64_t nnei, const int64_t *index, const double *vec, double w, double bma,
                       const double *de, const double *dw, double *pair_grad)
{
    for (int64_t s = 0; s < nnei; s++) {
        if (index[s] < 0) continue;
        const double *v = vec + 3 * s;
        const double r = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        const double g = (w * de[s] + bma * dw[s]) / r;
        for (int q = 0; q < 3; q++) pair_grad[3 * s + q] += g * v[q];
    }
}
