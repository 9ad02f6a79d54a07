/* Opening a model: the arrays of a .dpc file (docs/model-file.md) checked and wired to the kernels.
 *
 * Every size, index and offset the kernels will read is checked here, once, against the arrays it
 * points into; every value a kernel divides by or indexes with is range-checked; every float is
 * finite.  After a successful open the kernels need no further checks on model data.
 *
 * Beyond that, every quantity the writer derives is derived again here and must agree, so that an
 * edit whose checksums were recomputed cannot change a result silently where the file holds the
 * redundancy to notice it (docs/model-file.md, "Checks"):
 *   DP tables    the grid (lower, upper, xmax, strides, interval counts) from the statistics, the
 *                cutoffs and the header's compression settings, as dpcompress/tables/bounds.py and
 *                grid_counts compute it; the tables tile `coef` exactly; neighbouring polynomials
 *                agree at their common node (value and derivatives: the Hermite construction);
 *   NEP tables   interval counts, offsets and widths from the cutoffs and the header's step; every
 *                node's g, g', g'' against the Chebyshev expansion of c_R / c_A;
 *   statistics   |std| >= DPC_MIN_STD, so normalised inputs stay far from overflow.
 * dpcompress/modelfile/dp.py and nep.py hold the same checks in numpy (the tests hold the two
 * readers to refusing the same files). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpc_activations.h"
#include "dpc_model_internal.h"
#include "dpc_table.h"

/* Smallest |std| accepted.  DeePMD-kit floors its statistics at 1e-2 (a std below that is set to
 * 1e-2 when they are computed), so a real model is eight orders above this; a std of 1e-300
 * makes (s - avg) / std overflow to inf and the energy NaN. */
#define DPC_MIN_STD 1e-10
/* Slack under ceil() in the writer's interval counts (tables/embedding_table.py _COUNT_SLACK). */
#define GRID_SLACK 1e-9
/* Largest interval count of a table or a NEP pair. */
#define MAX_INTERVALS (INT64_C(1) << 40)
/* Two neighbouring Hermite polynomials agree at their node to round-off (about 1e-15 of the
 * sizes involved); 1e-10 leaves five orders of margin and still catches any edit that moves a
 * value or a derivative by more than 1e-10 of the table's own scale. */
#define TABLE_NODE_TOL 1e-10
/* A NEP table node against the Chebyshev expansion (computed here and by numpy in a different
 * order: about 1e-14 apart). */
#define NEP_NODE_TOL 1e-9
#define DPC_PI 3.141592653589793 /* numpy's np.pi */

#define NEED(var, name, dtype, ndim, ...)                                                     \
    do {                                                                                      \
        int64_t shape_[4] = {__VA_ARGS__};                                                    \
        const dpc_array *a_ = dpc_file_need(&m->file, name, dtype, ndim, shape_, err);        \
        if (!a_) return err->status;                                                          \
        var = a_;                                                                             \
    } while (0)

static int all_finite(const double *v, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        if (!isfinite(v[k])) return 0;
    return 1;
}

static dpc_status not_finite(dpc_error *err, const char *name)
{
    return dpc_set_error(err, DPC_ERR_NONFINITE, "array '%s' holds NaN or infinite values", name);
}

static dpc_status read_type_map(dpc_model *m, dpc_error *err)
{
    const dpc_array *a = dpc_file_get(&m->file, "type_map");
    if (!a || a->dtype != DPC_DT_U8 || a->ndim != 1 || a->count < 2)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'type_map' (uint8, names separated by NUL) is missing");
    const char *s = (const char *)a->data;
    if (s[a->count - 1] != 0) return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'type_map' is not NUL-terminated");
    m->names = (const char **)calloc((size_t)m->ntypes, sizeof(char *));
    if (!m->names) return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory");
    int64_t t = 0, k = 0;
    while (k < a->count) {
        if (s[k] == 0 || t >= m->ntypes)
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'type_map' does not hold %lld non-empty names",
                                 (long long)m->ntypes);
        m->names[t++] = s + k;
        k += (int64_t)strlen(s + k) + 1;
    }
    if (t != m->ntypes)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'type_map' holds %lld names for %lld types", (long long)t,
                             (long long)m->ntypes);
    for (k = 0; k < a->count; k++)
        if ((unsigned char)s[k] < 0x20 && s[k] != 0)
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'type_map' holds a control character (byte %lld)",
                                 (long long)k);
    /* an element named twice would make the mapping of a simulation's types ambiguous */
    for (t = 1; t < m->ntypes; t++)
        for (int64_t q = 0; q < t; q++)
            if (strcmp(m->names[t], m->names[q]) == 0)
                return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'type_map' names '%s' twice (types %lld and %lld)",
                                     m->names[t], (long long)q, (long long)t);
    return DPC_OK;
}

/* The number at a header path, or an error naming the key. */
static dpc_status header_number(const dpc_model *m, const char *const *path, const char *key, double *out,
                                dpc_error *err)
{
    dpc_json v;
    if (!dpc_header_get(&m->file, path, &v) || !dpc_json_number(v, out))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "header key '%s' is missing or not a number", key);
    return DPC_OK;
}

/* ------------------------------------------------------------------------------------------- DP */

/* The header's compression settings: the primary quantities of every DP table's grid. */
typedef struct {
    double rmin, stride0, stride1, extrapolate, order;
} dp_grid_spec;

static dpc_status read_grid_spec(const dpc_model *m, dp_grid_spec *g, dpc_error *err)
{
    static const char *const RMIN[] = {"compression", "min_nbor_dist", NULL}, *const S0[] = {"compression", "stride0", NULL},
                             *const S1[] = {"compression", "stride1", NULL},
                             *const EX[] = {"compression", "extrapolate", NULL}, *const OR[] = {"compression", "order", NULL};
    dpc_status st;
    if ((st = header_number(m, RMIN, "compression.min_nbor_dist", &g->rmin, err)) != DPC_OK ||
        (st = header_number(m, S0, "compression.stride0", &g->stride0, err)) != DPC_OK ||
        (st = header_number(m, S1, "compression.stride1", &g->stride1, err)) != DPC_OK ||
        (st = header_number(m, EX, "compression.extrapolate", &g->extrapolate, err)) != DPC_OK ||
        (st = header_number(m, OR, "compression.order", &g->order, err)) != DPC_OK)
        return st;
    if (!(isfinite(g->rmin) && g->rmin > 0.0))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "header key 'compression.min_nbor_dist' is %g (need a positive distance)",
                             g->rmin);
    if (!(isfinite(g->stride0) && g->stride0 > 0.0) || !(isfinite(g->stride1) && g->stride1 > 0.0))
        return dpc_set_error(err, DPC_ERR_ARGUMENT,
                             "header keys 'compression.stride0', 'compression.stride1' are %g, %g (need positive strides)",
                             g->stride0, g->stride1);
    if (!(isfinite(g->extrapolate) && g->extrapolate >= 1.0))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "header key 'compression.extrapolate' is %g (need >= 1)", g->extrapolate);
    if (g->order != 3.0 && g->order != 5.0)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "header key 'compression.order' is %g (3 or 5)", g->order);
    return DPC_OK;
}

/* a * b rounded to double: these grids are compared bit for bit with numbers Python computed, so
 * no product may be fused into an add (-ffp-contract=fast, or a build for an FMA target). */
static double mul(double a, double b)
{
    volatile double r = a * b;
    return r;
}

/* compression.table_strides, written when each table has its own strides (compress with a
 * tolerance): per part a list [s0, s1, s0, s1, ...], two per table in file order, the strides each
 * table's grid is derived from (se_e3: as built, no factor 10).  *out = NULL when the key is absent
 * (every table then takes the header's global strides); else 2 * ntab positive finite numbers. */
static const char TS_KEY[] = "header key 'compression.table_strides'";

static dpc_status read_table_strides(const dpc_model *m, int p, int64_t ntab, double **out, dpc_error *err)
{
    static const char *const TS[] = {"compression", "table_strides", NULL};
    dpc_json v, part;
    *out = NULL;
    if (!dpc_header_get(&m->file, TS, &v)) return DPC_OK;
    if (!dpc_json_item(v, p, &part))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "%s does not list one entry per descriptor part (%lld)", TS_KEY, (long long)m->nparts);
    double *s = (double *)malloc((size_t)(2 * ntab + 1) * sizeof(double));
    if (!s) return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory");
    int ok = dpc_json_numbers(part, s, 2 * ntab);
    for (int64_t k = 0; ok && k < 2 * ntab; k++) ok = isfinite(s[k]) && s[k] > 0.0;
    if (!ok) {
        free(s);
        return dpc_set_error(err, DPC_ERR_ARGUMENT,
                             "%s (part %d) does not hold 2 positive strides for each of the part's %lld tables", TS_KEY, p,
                             (long long)ntab);
    }
    *out = s;
    return DPC_OK;
}

/* A table's grid: tab_real and tab_count of one table. */
typedef struct {
    double lower, upper, xmax, stride0, stride1;
    int64_t n_fine, n_coarse, n_below;
} dp_grid;

/* The grid the writer builds for the requested range [lo, hi] (tables/embedding_table.py:
 * grid_counts, build_embedding_table; `below`: the symmetric se_e3 grid), operation for operation
 * so that every number comes out bit for bit.  0 when the counts are out of range. */
static int writer_grid(double lo, double hi, double s0, double s1, double e, int below, dp_grid *g)
{
    memset(g, 0, sizeof *g); /* what a failure reports */
    double nf = ceil((hi - lo) / s0 - GRID_SLACK);
    if (nf < 1.0) nf = 1.0;
    if (!(nf <= (double)MAX_INTERVALS)) return 0;
    const double upper = lo + mul(nf, s0), top = mul(e, upper);
    double nc = 0.0, nb = 0.0;
    if (!(top <= upper)) {
        nc = ceil((top - upper) / s1 - GRID_SLACK);
        if (nc < 0.0) nc = 0.0;
    }
    if (below && lo < 0.0) {
        nb = ceil((lo - mul(e, lo)) / s1 - GRID_SLACK);
        if (nb < 0.0) nb = 0.0;
    }
    if (!(nc <= (double)MAX_INTERVALS) || !(nb <= (double)MAX_INTERVALS)) return 0;
    g->lower = lo;
    g->upper = upper;
    g->xmax = upper + mul(nc, s1);
    g->stride0 = s0;
    g->stride1 = s1;
    g->n_fine = (int64_t)nf;
    g->n_coarse = (int64_t)nc;
    g->n_below = (int64_t)nb;
    return 1;
}

static int same_grid(const dp_grid *g, const double *r, const int64_t *c)
{
    return g->lower == r[0] && g->upper == r[1] && g->xmax == r[2] && g->stride0 == r[3] && g->stride1 == r[4] &&
           g->n_fine == c[0] && g->n_coarse == c[1] && g->n_below == c[2];
}

/* s_max = sw(r_min) / r_min, the largest radial input (tables/bounds.py; core/env_mat.py smooth_switch). */
static double switch_at(double rmin, double rcut_smth, double rcut)
{
    double u = (rmin - rcut_smth) / (rcut - rcut_smth);
    u = u < 0.0 ? 0.0 : (u > 1.0 ? 1.0 : u);
    return mul(mul(mul(u, u), u), mul(mul(-6.0, u), u) + mul(15.0, u) - 10.0) + 1.0;
}

static double s_max_of(double rmin, double rcut_smth, double rcut)
{
    return switch_at(rmin, rcut_smth, rcut) / rmin;
}

/* DeePMD-kit's se_e3 ("T") half-range of center type t, which the writer never goes below
 * (tables/bounds.py deepmd_se_t_bounds): ceil of the largest (sw / (rmin std))^2 over neighbor
 * slots 1-3 and the four components. */
static double deepmd_t_range(const double *std, int64_t t, int64_t nb, const int64_t *sel_offsets, double sw,
                             double rmin)
{
    double v = -INFINITY;
    for (int64_t slot = 1; slot <= 3 && slot < sel_offsets[nb]; slot++) {
        int64_t b = 0;
        while (sel_offsets[b + 1] <= slot) b++;
        for (int q = 0; q < 4; q++) {
            const double x = sw / mul(rmin, std[(t * nb + b) * 4 + q]);
            v = fmax(v, mul(x, x));
        }
    }
    return ceil(v);
}

/* What a table's range is derived from: per center type c, the (lo, hi) it asks for, and whether
 * it counts (1), does not (0), or cannot be told from the file (-1: the pair is both in the
 * model's pair_exclude_types and the descriptor's exclude_types, and block_mode keeps only the
 * first).  The writer takes min lo and max hi over the centers that count, or over all when none
 * does.  When some cannot be told, the range must be one a subset could give. */
typedef struct {
    double lo, hi;
    int counts;
} center_range;

static int range_matches(const center_range *cr, int64_t n, const double *r, const int64_t *c, double s0, double s1,
                         double e, int below, dp_grid *want)
{
    int unknown = 0, any_in = 0;
    double lo_in = INFINITY, hi_in = -INFINITY, lo_all = INFINITY, hi_all = -INFINITY;
    for (int64_t k = 0; k < n; k++) {
        if (cr[k].counts < 0) unknown = 1;
        if (cr[k].counts > 0) {
            any_in = 1;
            lo_in = fmin(lo_in, cr[k].lo);
            hi_in = fmax(hi_in, cr[k].hi);
        }
        lo_all = fmin(lo_all, cr[k].lo);
        hi_all = fmax(hi_all, cr[k].hi);
    }
    if (!unknown) {
        if (!writer_grid(any_in ? lo_in : lo_all, any_in ? hi_in : hi_all, s0, s1, e, below, want)) return 0;
        return same_grid(want, r, c);
    }
    /* some centers undecided: lo must be one center's and not above the sure ones' minimum, hi
     * likewise; the grid must then be the writer's for that (lo, hi) */
    int lo_ok = 0;
    for (int64_t k = 0; k < n; k++)
        if (cr[k].counts != 0 || !any_in) lo_ok |= cr[k].lo == r[0];
    if (!lo_ok || (any_in && r[0] > lo_in)) {
        writer_grid(any_in ? lo_in : lo_all, any_in ? hi_in : hi_all, s0, s1, e, below, want);
        return 0;
    }
    for (int64_t k = 0; k < n; k++) {
        if ((cr[k].counts == 0 && any_in) || (any_in && cr[k].hi < hi_in)) continue;
        if (writer_grid(r[0], cr[k].hi, s0, s1, e, below, want) && same_grid(want, r, c)) return 1;
    }
    writer_grid(r[0], any_in ? hi_in : hi_all, s0, s1, e, below, want);
    return 0;
}

/* Neighbouring polynomials of a table agree at their common node: value, first and (quintic)
 * second derivative, to TABLE_NODE_TOL of the sizes involved.  The Hermite construction makes
 * them equal up to round-off; an edited coefficient, stride or interval count does not.
 * Returns the first failing interval, or -1; *channel and *what say where. */
static int64_t table_continuity(const double *coef, const dp_grid *g, int ncoef, int64_t M, int64_t *channel,
                                const char **what)
{
    const int64_t rows = g->n_below + g->n_fine + g->n_coarse;
    for (int64_t l = 0; l + 1 < rows; l++) {
        const double w = (l >= g->n_below && l < g->n_below + g->n_fine) ? g->stride0 : g->stride1;
        const double *A = coef + l * ncoef * M, *B = A + ncoef * M;
        for (int64_t m = 0; m < M; m++) {
            const double a0 = A[m], a1 = A[M + m], a2 = A[2 * M + m], a3 = A[3 * M + m];
            const double b0 = B[m], b1 = B[M + m];
            double v, d, dd = 0.0, ddref = 0.0, scale;
            if (ncoef == 6) {
                const double a4 = A[4 * M + m], a5 = A[5 * M + m], b2 = B[2 * M + m];
                v = ((((a5 * w + a4) * w + a3) * w + a2) * w + a1) * w + a0;
                d = (((5.0 * a5 * w + 4.0 * a4) * w + 3.0 * a3) * w + 2.0 * a2) * w + a1;
                dd = ((20.0 * a5 * w + 12.0 * a4) * w + 6.0 * a3) * w + 2.0 * a2;
                ddref = 2.0 * b2;
                scale = fabs(a0) + fabs(a1) * w + fabs(a2) * w * w + fabs(b0) + fabs(b1) * w + fabs(b2) * w * w;
            } else {
                v = ((a3 * w + a2) * w + a1) * w + a0;
                d = (3.0 * a3 * w + 2.0 * a2) * w + a1;
                scale = fabs(a0) + fabs(a1) * w + fabs(b0) + fabs(b1) * w;
            }
            const double tol = TABLE_NODE_TOL * scale;
            const int bad_v = !(fabs(v - b0) <= tol), bad_d = !(fabs(d - b1) * w <= tol),
                      bad_dd = ncoef == 6 && !(fabs(dd - ddref) * w * w <= tol);
            if (bad_v || bad_d || bad_dd) {
                *channel = m;
                *what = bad_v ? "value" : (bad_d ? "first derivative" : "second derivative");
                return l;
            }
        }
    }
    return -1;
}

static dpc_status read_tables(dpc_model *m, dpc_part *P, int p, int64_t ntab, int ncoef, int64_t M,
                              const dp_grid_spec *spec, const double *avg, const double *std,
                              const signed char *mode, const int64_t *table_of, const double **tab_real,
                              const int64_t **tab_count, const int64_t **tab_offset, const double **coef,
                              dpc_error *err)
{
    char name[64], cname[64];
    const dpc_array *a;
    const int64_t nt = m->ntypes, nb = P->nblocks;
    snprintf(name, sizeof name, "part%d.tab_real", p);
    NEED(a, name, DPC_DT_F64, 2, ntab, 5);
    *tab_real = (const double *)a->data;
    if (!all_finite(*tab_real, 5 * ntab)) return not_finite(err, name);
    snprintf(name, sizeof name, "part%d.tab_count", p);
    NEED(a, name, DPC_DT_I64, 2, ntab, 3);
    *tab_count = (const int64_t *)a->data;
    snprintf(name, sizeof name, "part%d.tab_offset", p);
    NEED(a, name, DPC_DT_I64, 1, ntab);
    *tab_offset = (const int64_t *)a->data;
    snprintf(name, sizeof name, "part%d.tab_error", p);
    NEED(a, name, DPC_DT_F64, 1, ntab);
    for (int64_t k = 0; k < ntab; k++)
        if (!(isfinite(((const double *)a->data)[k]) && ((const double *)a->data)[k] >= 0.0))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s': table %lld's error estimate %g is not a finite number >= 0",
                                 name, (long long)k, ((const double *)a->data)[k]);
    snprintf(cname, sizeof cname, "part%d.coef", p);
    NEED(a, cname, DPC_DT_F64, 1, -1);
    *coef = (const double *)a->data;
    const int64_t ncoefs = a->count;
    if (!all_finite(*coef, ncoefs)) return not_finite(err, cname);
    if (spec->order + 1.0 != (double)ncoef)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: %d coefficients per interval, header key 'compression.order' says %g",
                             p, ncoef, spec->order);

    /* sizes: every table's rows, and the tables tile coef in order (the writer concatenates them) */
    snprintf(name, sizeof name, "part%d.tab_count", p);
    int64_t pos = 0;
    const int64_t row = ncoef * M;
    for (int64_t k = 0; k < ntab; k++) {
        const int64_t *c = *tab_count + 3 * k;
        const int64_t nf = c[0], nc = c[1], nbl = c[2];
        if (nf < 1 || nc < 0 || nbl < 0 || nf > MAX_INTERVALS || nc > MAX_INTERVALS || nbl > MAX_INTERVALS ||
            (nbl != 0 && P->kind != DPC_PART_SE_T && P->kind != DPC_PART_SE_T_TEBD))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s': table %lld's interval counts (%lld, %lld, %lld) invalid",
                                 name, (long long)k, (long long)nf, (long long)nc, (long long)nbl);
        const double *r = *tab_real + 5 * k;
        if (!(r[3] > 0.0) || !(r[4] > 0.0))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'part%d.tab_real': table %lld's strides %g, %g must be positive",
                                 p, (long long)k, r[3], r[4]);
        /* the grid's own arithmetic first: a bare message when the row is not even self-consistent */
        if (r[1] != r[0] + mul((double)nf, r[3]) || r[2] != r[1] + mul((double)nc, r[4]))
            return dpc_set_error(err, DPC_ERR_ARGUMENT,
                                 "array 'part%d.tab_real': table %lld's upper/xmax (%.17g, %.17g) disagree with lower "
                                 "%.17g, the strides and the interval counts",
                                 p, (long long)k, r[1], r[2], r[0]);
        const int64_t rows = nf + nc + nbl;
        if ((*tab_offset)[k] < 0 || (*tab_offset)[k] > ncoefs)
            return dpc_set_error(err, DPC_ERR_ARGUMENT,
                                 "array 'part%d.tab_offset': table %lld starts at %lld, outside '%s' (%lld values)", p,
                                 (long long)k, (long long)(*tab_offset)[k], cname, (long long)ncoefs);
        if ((*tab_offset)[k] != pos)
            return dpc_set_error(err, DPC_ERR_ARGUMENT,
                                 "array 'part%d.tab_offset': table %lld starts at %lld; the tables before it end at %lld",
                                 p, (long long)k, (long long)(*tab_offset)[k], (long long)pos);
        if (rows > (ncoefs - pos) / row)  /* compared before multiplying: no overflow */
            return dpc_set_error(err, DPC_ERR_ARGUMENT,
                                 "array '%s': table %lld's %lld intervals x %d coefficients x %lld channels do not fit in '%s' (%lld values)",
                                 name, (long long)k, (long long)rows, ncoef, (long long)M, cname, (long long)ncoefs);
        pos += rows * row;
    }
    if (pos != ncoefs)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s' holds %lld values; its tables use %lld", cname,
                             (long long)ncoefs, (long long)pos);

    /* the grid of every table, re-derived as the writer derives it */
    snprintf(name, sizeof name, "part%d.tab_real", p);
    const int se_t = P->kind == DPC_PART_SE_T || P->kind == DPC_PART_SE_T_TEBD;
    const double s0_all = se_t ? 10.0 * spec->stride0 : spec->stride0, s1_all = se_t ? 10.0 * spec->stride1 : spec->stride1;
    double *strides = NULL;
    dpc_status sst = read_table_strides(m, p, ntab, &strides, err);
    if (sst != DPC_OK) return sst;
    const double smax = s_max_of(spec->rmin, P->rcut_smth, P->rcut);
    int64_t b0 = 0; /* the writer reads the statistics of neighbor slot 0: the first non-empty block */
    while (b0 < nb && P->sel_offsets[b0 + 1] == P->sel_offsets[b0]) b0++;
    const int64_t rows_of = se_t ? nb : nt;
    center_range *cr = (center_range *)calloc((size_t)nt, sizeof(center_range));
    if (!cr) {
        free(strides);
        return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory");
    }
    dpc_status st = DPC_OK;
    for (int64_t k = 0; k < ntab && st == DPC_OK; k++) {
        const double s0 = strides ? strides[2 * k] : s0_all, s1 = strides ? strides[2 * k + 1] : s1_all;
        /* the (row, block) entries of table_of that use table k: one block (se_a, se_r, se_atten)
         * or one block pair (se_e3) per table, as the writer builds them */
        int64_t blk = -1, row_r = -1, users = 0;
        for (int64_t r = 0; r < rows_of; r++)
            for (int64_t b = 0; b < nb; b++)
                if (table_of[r * nb + b] == k) {
                    if (users && (b != blk || se_t)) {
                        st = dpc_set_error(err, DPC_ERR_ARGUMENT,
                                           "array 'part%d.table_of': table %lld serves more than one neighbor block", p,
                                           (long long)k);
                        goto out;
                    }
                    blk = b;
                    row_r = r;
                    users++;
                }
        if (!users) {
            st = dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'part%d.table_of': table %lld is not used", p, (long long)k);
            goto out;
        }
        int64_t n = 0;
        if (!se_t) {
            for (int64_t t = 0; t < nt; t++) {
                if (table_of[t * nb + blk] != k) continue;
                /* (0 - avg) / std and (s_max - avg) / std over the four components (tables/bounds.py) */
                const double *av = avg + (t * nb + b0) * 4, *sd = std + (t * nb + b0) * 4;
                double lo = INFINITY, hi = -INFINITY;
                for (int q = 0; q < 4; q++) {
                    lo = fmin(lo, (0.0 - av[q]) / sd[q]);
                    hi = fmax(hi, (smax - av[q]) / sd[q]);
                }
                cr[n].lo = floor(lo);
                cr[n].hi = ceil(hi);
                /* every center that uses the table, excluded or not (tables/bounds.py): a range
                 * never narrower than DeePMD-kit's */
                cr[n].counts = 1;
                n++;
            }
        } else {
            /* se_e3, table of the block pair (a, b): u = ceil(max_t rho_ta rho_tb) over the centers
             * whose rows of a or b are not zeroed (descriptors/se_e3.py table_bounds) */
            const int64_t pa = row_r, pb = blk;
            double ud = deepmd_t_range(std, pa, nb, P->sel_offsets, switch_at(spec->rmin, P->rcut_smth, P->rcut),
                                       spec->rmin);
            /* se_e3_tebd: one table for every center type, DeePMD-kit's widest range ("T_TEBD") */
            for (int64_t t = 1; t < nt && P->kind == DPC_PART_SE_T_TEBD; t++)
                ud = fmax(ud, deepmd_t_range(std, t, nb, P->sel_offsets, switch_at(spec->rmin, P->rcut_smth, P->rcut),
                                             spec->rmin));
            for (int64_t t = 0; t < nt; t++) {
                double rho[2];
                int silent[2];
                const int64_t xs[2] = {pa, pb};
                for (int j = 0; j < 2; j++) {
                    const double *av = avg + (t * nb + xs[j]) * 4, *sd = std + (t * nb + xs[j]) * 4;
                    const double q1 = av[1] / sd[1], q2 = av[2] / sd[2], q3 = av[3] / sd[3];
                    const double smin = fmin(fmin(fabs(sd[1]), fabs(sd[2])), fabs(sd[3]));
                    rho[j] = smax / smin + sqrt(mul(q1, q1) + mul(q2, q2) + mul(q3, q3));
                    silent[j] = av[1] == 0.0 && av[2] == 0.0 && av[3] == 0.0;
                }
                int off = 0, maybe = 0;
                for (int j = 0; j < 2; j++) {
                    const int md = mode[t * nb + xs[j]];
                    if (silent[j] && md == 1) off = 1;
                    if (silent[j] && md == 2) maybe = 1;
                }
                double u = ceil(mul(rho[0], rho[1]));
                if (u < 1.0) u = 1.0;
                if (u < ud) u = ud; /* never below DeePMD-kit's range for this table */
                cr[n].lo = -u;
                cr[n].hi = u;
                cr[n].counts = off ? 0 : (maybe ? -1 : 1);
                n++;
            }
        }
        const double *r = *tab_real + 5 * k;
        const int64_t *c = *tab_count + 3 * k;
        dp_grid want;
        memset(&want, 0, sizeof want);
        int ok;
        if (se_t) {
            /* the symmetric range (-u, u): lo and hi move together */
            int unknown = 0, any_in = 0;
            double u_in = -INFINITY, u_all = -INFINITY;
            for (int64_t q = 0; q < n; q++) {
                unknown |= cr[q].counts < 0;
                if (cr[q].counts > 0) any_in = 1, u_in = fmax(u_in, cr[q].hi);
                u_all = fmax(u_all, cr[q].hi);
            }
            const double u_sure = any_in ? u_in : u_all;
            ok = writer_grid(-u_sure, u_sure, s0, s1, spec->extrapolate, 1, &want) && same_grid(&want, r, c);
            for (int64_t q = 0; q < n && !ok && unknown; q++) {
                dp_grid g;
                if (cr[q].counts != 0 && cr[q].hi >= (any_in ? u_in : -INFINITY) &&
                    writer_grid(-cr[q].hi, cr[q].hi, s0, s1, spec->extrapolate, 1, &g) && same_grid(&g, r, c))
                    ok = 1;
            }
        } else {
            ok = range_matches(cr, n, r, c, s0, s1, spec->extrapolate, 0, &want);
        }
        if (!ok) {
            st = dpc_set_error(err, DPC_ERR_ARGUMENT,
                               "array '%s' (table %lld): grid lower %.17g, upper %.17g, xmax %.17g, strides %.17g, %.17g, "
                               "counts (%lld, %lld, %lld); the statistics, cutoffs and header compression settings give "
                               "lower %.17g, upper %.17g, xmax %.17g, strides %.17g, %.17g, counts (%lld, %lld, %lld)",
                               name, (long long)k, r[0], r[1], r[2], r[3], r[4], (long long)c[0], (long long)c[1],
                               (long long)c[2], want.lower, want.upper, want.xmax, want.stride0, want.stride1,
                               (long long)want.n_fine, (long long)want.n_coarse, (long long)want.n_below);
            goto out;
        }
        /* the polynomials against each other */
        dp_grid g = {r[0], r[1], r[2], r[3], r[4], c[0], c[1], c[2]};
        int64_t channel = 0;
        const char *what = "";
        const int64_t l = table_continuity(*coef + (*tab_offset)[k], &g, ncoef, M, &channel, &what);
        if (l >= 0) {
            st = dpc_set_error(err, DPC_ERR_ARGUMENT,
                               "array '%s' (table %lld): intervals %lld and %lld disagree at their common node (channel "
                               "%lld, %s): edited coefficients, strides or interval counts",
                               cname, (long long)k, (long long)l, (long long)(l + 1), (long long)channel, what);
            goto out;
        }
    }
out:
    free(cr);
    free(strides);
    return st;
}

/* se_e3_tebd's gate arrays (descriptors/se_e3_tebd.py pack): the type-pair table tt, gate_of (the
 * neighbor type per (center, neighbor) type pair, -1 for exclude_types: the kernel skips the row), the centre's type
 * embedding (checked with or without concat_output_tebd) and, optionally, gate_pad, whose presence
 * selects the unswitched gate (DeePMD-kit's smooth false). */
static dpc_status read_se_t_tebd_gate(dpc_model *m, dpc_part *P, int p, dpc_error *err)
{
    const int64_t nt = m->ntypes;
    const dpc_array *a;
    char name[64];
    snprintf(name, sizeof name, "part%d.gate", p);
    NEED(a, name, DPC_DT_F64, 2, P->n_gate_rows, P->M);
    if (!all_finite((const double *)a->data, a->count)) return not_finite(err, name);
    P->t.gate = (const double *)a->data;
    P->t.n_gate_types = nt + 1;
    snprintf(name, sizeof name, "part%d.gate_of", p);
    NEED(a, name, DPC_DT_I64, 2, nt, nt);
    P->gate_of = (const int64_t *)a->data;
    for (int64_t k = 0; k < a->count; k++)
        if (P->gate_of[k] != -1 && P->gate_of[k] != k % nt)
            return dpc_set_error(err, DPC_ERR_ARGUMENT,
                                 "array '%s': entry %lld is %lld (se_e3_tebd: the neighbor type %lld, or -1 for an excluded pair)",
                                 name, (long long)k, (long long)P->gate_of[k], (long long)(k % nt));
    snprintf(name, sizeof name, "part%d.gate_pad", p);
    P->t.gate_unswitched = 0;
    if (dpc_file_get(&m->file, name)) {
        NEED(a, name, DPC_DT_I64, 1, nt);
        const int64_t *pad = (const int64_t *)a->data;
        for (int64_t k = 0; k < nt; k++)
            if (pad[k] < 0 || pad[k] >= P->n_gate_rows)
                return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: padding gate row %lld out of range", p,
                                     (long long)pad[k]);
        P->t.gate_unswitched = 1;
    }
    snprintf(name, sizeof name, "part%d.type_embedding", p);
    NEED(a, name, DPC_DT_F64, 2, nt, P->tebd_dim);
    if (!all_finite((const double *)a->data, a->count)) return not_finite(err, name);
    P->type_embedding = P->concat ? (const double *)a->data : NULL;
    return DPC_OK;
}

/* The attention layers of a DPA-1 part (kind 6; docs/model-file.md); the Python reader checks the same. */
static dpc_status read_attention(dpc_model *m, dpc_part *P, int p, const double *avg, dpc_error *err)
{
    char name[64];
    const dpc_array *a;
    const int64_t nt = m->ntypes, M = P->M;
    dpc_attention_params *att = &P->att;
    snprintf(name, sizeof name, "part%d.gate_pad", p);
    if (dpc_file_get(&m->file, name))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s': not used by DPA-1 with attention layers (att_int[4] "
                             "says whether the gate is switched)", name);
    for (int64_t k = 0; k < nt * 4; k++)
        if (avg[k] != 0.0)
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'part%d.avg': entry %lld is %g; DPA-1 with attention "
                                 "layers needs davg = 0", p, (long long)k, avg[k]);
    snprintf(name, sizeof name, "part%d.att_int", p);
    NEED(a, name, DPC_DT_I64, 1, 5);
    const int64_t *ai = (const int64_t *)a->data;
    if (ai[0] < 1 || ai[0] > 64 || ai[1] < 1 || ai[1] > 512 || (ai[2] & ~INT64_C(1)) || (ai[3] & ~INT64_C(1)) ||
        (ai[4] & ~INT64_C(1)))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s': layers %lld (1..64), hidden %lld (1..512), flags "
                             "%lld %lld %lld (0 or 1)", name, (long long)ai[0], (long long)ai[1], (long long)ai[2],
                             (long long)ai[3], (long long)ai[4]);
    const int64_t L = ai[0], d = ai[1];
    if (M > 1024) return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: %lld channels (at most 1024 with attention)", p,
                                       (long long)M);
    att->n_layers = L;
    att->hidden = d;
    att->normalize = (int)ai[2];
    att->dotr = (int)ai[3];
    att->smooth = (int)ai[4];
    snprintf(name, sizeof name, "part%d.att_real", p);
    NEED(a, name, DPC_DT_F64, 1, L + 1);
    const double *ar = (const double *)a->data;
    for (int64_t k = 0; k <= L; k++)
        if (!isfinite(ar[k]) || !(ar[k] > 0.0))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s': entry %lld is %g (alpha, then each layer's "
                                 "layer-norm eps: finite and > 0)", name, (long long)k, ar[k]);
    att->alpha = ar[0];
    att->ln_eps = ar + 1;
#define ATT_ARRAY(field, suffix, ndim, ...)                                      \
    do {                                                                         \
        snprintf(name, sizeof name, "part%d." suffix, p);                        \
        NEED(a, name, DPC_DT_F64, ndim, __VA_ARGS__);                            \
        if (!all_finite((const double *)a->data, a->count)) return not_finite(err, name); \
        att->field = (const double *)a->data;                                    \
    } while (0)
    ATT_ARRAY(w_in, "att_w_in", 3, L, M, 3 * d);
    ATT_ARRAY(b_in, "att_b_in", 2, L, 3 * d);
    ATT_ARRAY(w_out, "att_w_out", 3, L, d, M);
    ATT_ARRAY(b_out, "att_b_out", 2, L, M);
    ATT_ARRAY(ln, "att_ln", 3, L, 2, M);
#undef ATT_ARRAY
    return DPC_OK;
}

static dpc_status read_part(dpc_model *m, int p, const dp_grid_spec *spec, dpc_error *err)
{
    dpc_part *P = m->parts + p;
    const int64_t nt = m->ntypes;
    char name[64];
    const dpc_array *a;
    snprintf(name, sizeof name, "part%d.int", p);
    NEED(a, name, DPC_DT_I64, 1, DPC_PI_SIZE);
    const int64_t *I = (const int64_t *)a->data;
    P->kind = (int)I[DPC_PI_KIND];
    P->nblocks = I[DPC_PI_NBLOCKS];
    P->nnei = I[DPC_PI_NNEI];
    const int64_t ntab = I[DPC_PI_NTABLES];
    const int64_t ncoef = I[DPC_PI_NCOEF];
    P->M = I[DPC_PI_M];
    P->A = I[DPC_PI_A];
    P->mixed = (int)I[DPC_PI_MIXED];
    P->concat = (int)I[DPC_PI_CONCAT];
    P->tebd_dim = I[DPC_PI_TEBD];
    P->dim_out = I[DPC_PI_DIM];
    P->n_gate_rows = I[DPC_PI_NGATE];
    /* int fields are range-checked as the int64 the file holds, before any narrowing */
    if (I[DPC_PI_KIND] < DPC_PART_SE_A || I[DPC_PI_KIND] > DPC_PART_DPA2)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: unknown descriptor kind %lld", p, (long long)I[DPC_PI_KIND]);
    const int gated = P->kind == DPC_PART_SE_ATTEN || P->kind == DPC_PART_DPA1 || P->kind == DPC_PART_DPA2,
              tebd = P->kind == DPC_PART_SE_T_TEBD;
    if (I[DPC_PI_MIXED] != (gated || tebd) || P->nblocks != (gated || tebd ? 1 : nt))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: %lld neighbor blocks (mixed %lld) for %lld types", p,
                             (long long)P->nblocks, (long long)I[DPC_PI_MIXED], (long long)nt);
    if (ncoef != 4 && ncoef != 6)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: %lld coefficients per interval (4 or 6)", p, (long long)ncoef);
    if (P->M < 1 || P->M > (1 << 20) || ntab < 1 || ntab > nt * nt)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: %lld channels or %lld tables out of range", p,
                             (long long)P->M, (long long)ntab);
    const int angular = P->kind == DPC_PART_SE_A || gated;
    /* fields a kind does not use are written as 0: nothing in part{p}.int goes unchecked */
    if ((!gated && !tebd && (I[DPC_PI_CONCAT] != 0 || P->tebd_dim != 0 || P->n_gate_rows != 0)) || (!angular && P->A != 0))
        return dpc_set_error(err, DPC_ERR_ARGUMENT,
                             "array '%s': fields this descriptor kind does not use are not 0 (axis_neuron %lld, concat %lld, "
                             "tebd_dim %lld, gate rows %lld)",
                             name, (long long)P->A, (long long)I[DPC_PI_CONCAT], (long long)P->tebd_dim,
                             (long long)P->n_gate_rows);
    if (angular && (P->A < 1 || P->A > P->M || P->A > DPC_MAX_AXIS_NEURON))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: axis_neuron %lld outside [1, min(M=%lld, %d)]", p,
                             (long long)P->A, (long long)P->M, DPC_MAX_AXIS_NEURON);
    if ((gated || tebd) && (I[DPC_PI_CONCAT] < 0 || I[DPC_PI_CONCAT] > 1 || P->tebd_dim < 1 || P->tebd_dim > (1 << 20)))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: tebd_dim %lld", p, (long long)P->tebd_dim);
    if (tebd && P->n_gate_rows != (nt + 1) * (nt + 1))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: %lld gate rows, se_e3_tebd has (ntypes + 1)^2 = %lld", p,
                             (long long)P->n_gate_rows, (long long)((nt + 1) * (nt + 1)));
    int64_t dim = angular ? P->M * P->A + (gated && P->concat ? P->tebd_dim : 0)
                          : P->M + (tebd && P->concat ? P->tebd_dim : 0);
    if (P->kind == DPC_PART_DPA2) { /* the repformers' g1 and the type embedding (dpc_dpa2_part.h) */
        snprintf(name, sizeof name, "part%d.avg", p);
        const dpc_array *av = dpc_file_get(&m->file, name);
        const int f64 = av && av->dtype == DPC_DT_F64;
        dpc_status st = dpc_dpa2_read(&m->file, p, nt, P->tebd_dim, I[DPC_PI_CONCAT], f64 ? (const double *)av->data : NULL,
                                      f64 ? av->count : 0, &P->dpa2, &dim, err);
        if (st != DPC_OK) return st;
    }
    if (P->dim_out != dim)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: output width %lld, its sizes give %lld", p,
                             (long long)P->dim_out, (long long)dim);
    P->state_dim = angular ? 4 * P->M : P->M;

    snprintf(name, sizeof name, "part%d.real", p);
    NEED(a, name, DPC_DT_F64, 1, 3);
    const double *R = (const double *)a->data;
    P->rcut = R[0];
    P->rcut_smth = R[1];
    P->protection = R[2];
    if (!(P->rcut > 0.0 && P->rcut < 1e6) || !(P->rcut_smth >= 0.0 && P->rcut_smth < P->rcut) ||
        !(P->protection >= 0.0 && P->protection < 1e6))
        return dpc_set_error(err, DPC_ERR_ARGUMENT,
                             "part %d: rcut %g, rcut_smth %g, protection %g (need 0 <= rcut_smth < rcut, protection >= 0)",
                             p, P->rcut, P->rcut_smth, P->protection);

    snprintf(name, sizeof name, "part%d.sel_offsets", p);
    NEED(a, name, DPC_DT_I64, 1, P->nblocks + 1);
    P->sel_offsets = (const int64_t *)a->data;
    if (P->sel_offsets[0] != 0 || P->sel_offsets[P->nblocks] != P->nnei || P->nnei < 1 || P->nnei > (1 << 20))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: sel offsets do not start at 0 and end at nnei %lld", p,
                             (long long)P->nnei);
    for (int64_t b = 0; b < P->nblocks; b++)
        if (P->sel_offsets[b + 1] < P->sel_offsets[b])
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: sel offsets decrease at block %lld", p, (long long)b);

    const double *avg, *std;
    snprintf(name, sizeof name, "part%d.avg", p);
    NEED(a, name, DPC_DT_F64, 3, nt, P->nblocks, 4);
    avg = (const double *)a->data;
    if (!all_finite(avg, a->count)) return not_finite(err, name);
    snprintf(name, sizeof name, "part%d.std", p);
    NEED(a, name, DPC_DT_F64, 3, nt, P->nblocks, 4);
    std = (const double *)a->data;
    for (int64_t k = 0; k < a->count; k++)
        if (!isfinite(std[k]) || !(fabs(std[k]) >= DPC_MIN_STD))
            return dpc_set_error(err, DPC_ERR_ARGUMENT,
                                 "array '%s': std entry %lld is %g (zero, not finite or below %g in magnitude: the "
                                 "normalised inputs would overflow)",
                                 name, (long long)k, std[k], DPC_MIN_STD);
    if (tebd)
        for (int64_t k = 0; k < nt * 4; k++)
            if (k % 4 != 0 && avg[k] != 0.0) /* padding rows would carry -avg/std (descriptors/se_e3_tebd.py) */
                return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'part%d.avg': entry %lld is %g; se_e3_tebd needs a zero angular avg",
                                     p, (long long)k, avg[k]);
    snprintf(name, sizeof name, "part%d.block_mode", p);
    NEED(a, name, DPC_DT_I8, 2, nt, P->nblocks);
    const signed char *mode = (const signed char *)a->data;
    for (int64_t k = 0; k < a->count; k++)
        if (mode[k] < 0 || mode[k] > 2) return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: block mode %d", p, mode[k]);
    const int64_t tab_rows = (P->kind == DPC_PART_SE_T || tebd) ? P->nblocks : nt;
    snprintf(name, sizeof name, "part%d.table_of", p);
    NEED(a, name, DPC_DT_I64, 2, tab_rows, P->nblocks);
    const int64_t *table_of = (const int64_t *)a->data;
    for (int64_t r = 0; r < tab_rows; r++)
        for (int64_t b = 0; b < P->nblocks; b++) {
            const int64_t k = table_of[r * P->nblocks + b];
            const int64_t sel_b = P->sel_offsets[b + 1] - P->sel_offsets[b];
            const int64_t sel_r = (P->kind == DPC_PART_SE_T || tebd) ? P->sel_offsets[r + 1] - P->sel_offsets[r] : 1;
            const int needed = sel_b > 0 && sel_r > 0 && ((P->kind != DPC_PART_SE_T && !tebd) || r <= b);
            if (k < -1 || k >= ntab || (needed && k < 0) || (!needed && k != -1))
                return dpc_set_error(err, DPC_ERR_ARGUMENT,
                                     "array '%s': table index %lld of (%lld, %lld) invalid (the pair %s a table)", name,
                                     (long long)k, (long long)r, (long long)b, needed ? "needs" : "has no neighbors, so no");
        }
    const double *tab_real = NULL, *coef = NULL;
    const int64_t *tab_count = NULL, *tab_offset = NULL;
    dpc_status st = read_tables(m, P, p, ntab, (int)ncoef, P->M, spec, avg, std, mode, table_of, &tab_real, &tab_count,
                                &tab_offset, &coef, err);
    if (st != DPC_OK) return st;

    /* dpc_se_a_tab_args and dpc_se_t_tab_args share these fields by name. */
#define FILL_TABLE_ARGS(x)                                   \
    do {                                                     \
        memset((x), 0, sizeof *(x));                         \
        (x)->nnei = P->nnei;                                 \
        (x)->ntypes = nt;                                    \
        (x)->nblocks = P->nblocks;                           \
        (x)->ntables = ntab;                                 \
        (x)->n_channels = P->M;                              \
        (x)->ncoef = (int)ncoef;                             \
        (x)->rcut = P->rcut;                                 \
        (x)->rcut_smth = P->rcut_smth;                       \
        (x)->protection = P->protection;                     \
        (x)->sel_offsets = P->sel_offsets;                   \
        (x)->avg = avg;                                      \
        (x)->std = std;                                      \
        (x)->block_mode = mode;                              \
        (x)->table_of = table_of;                            \
        (x)->tab_real = tab_real;                            \
        (x)->tab_count = tab_count;                          \
        (x)->tab_offset = tab_offset;                        \
        (x)->coef = coef;                                    \
    } while (0)

    if (P->kind == DPC_PART_SE_T) {
        FILL_TABLE_ARGS(&P->t);
        return DPC_OK;
    }
    if (tebd) {
        FILL_TABLE_ARGS(&P->t);
        return read_se_t_tebd_gate(m, P, p, err);
    }
    dpc_se_a_tab_args *s = &P->a;
    FILL_TABLE_ARGS(s);
#undef FILL_TABLE_ARGS
    s->n_rows = P->kind == DPC_PART_SE_R ? 1 : 4;
    if (gated) {
        if (P->n_gate_rows < 1 || P->n_gate_rows > (INT64_C(1) << 30))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: %lld gate rows", p, (long long)P->n_gate_rows);
        snprintf(name, sizeof name, "part%d.gate", p);
        NEED(a, name, DPC_DT_F64, 2, P->n_gate_rows, P->M);
        s->gate = (const double *)a->data;
        if (!all_finite(s->gate, a->count)) return not_finite(err, name);
        s->n_gate_rows = P->n_gate_rows;
        snprintf(name, sizeof name, "part%d.gate_of", p);
        NEED(a, name, DPC_DT_I64, 2, nt, nt);
        P->gate_of = (const int64_t *)a->data;
        for (int64_t k = 0; k < a->count; k++)
            if (P->gate_of[k] < -1 || P->gate_of[k] >= P->n_gate_rows)
                return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: gate row %lld out of range", p,
                                     (long long)P->gate_of[k]);
        /* optional: the unswitched gate (se_atten v1), with the padding slots' row per center type */
        snprintf(name, sizeof name, "part%d.gate_pad", p);
        if (dpc_file_get(&m->file, name)) {
            NEED(a, name, DPC_DT_I64, 1, nt);
            s->gate_pad = (const int64_t *)a->data;
            for (int64_t k = 0; k < nt; k++)
                if (s->gate_pad[k] < 0 || s->gate_pad[k] >= P->n_gate_rows)
                    return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: padding gate row %lld out of range", p,
                                         (long long)s->gate_pad[k]);
        }
        /* written with or without concat_output_tebd (the Python model keeps it): checked either way */
        snprintf(name, sizeof name, "part%d.type_embedding", p);
        NEED(a, name, DPC_DT_F64, 2, nt, P->tebd_dim);
        if (!all_finite((const double *)a->data, a->count)) return not_finite(err, name);
        P->type_embedding = P->concat ? (const double *)a->data : NULL;
    }
    if (P->kind == DPC_PART_DPA1) return read_attention(m, P, p, avg, err);
    if (P->kind == DPC_PART_DPA2) P->dpa2.stack.type_embedding = P->type_embedding;
    return DPC_OK;
}

/* fit.layer columns */
enum { FL_NIN, FL_NOUT, FL_ACT, FL_RES, FL_W, FL_B, FL_IDT, FL_SIZE };

static dpc_status read_fitting(dpc_model *m, dpc_error *err)
{
    const int64_t nt = m->ntypes;
    const dpc_array *a;
    NEED(a, "fit.layer", DPC_DT_I64, 2, -1, FL_SIZE);
    const int64_t *L = (const int64_t *)a->data;
    const int64_t nl = a->shape[0];
    NEED(a, "fit.net_start", DPC_DT_I64, 1, -1);
    const int64_t *start = (const int64_t *)a->data;
    const int64_t nnets = a->count - 1;
    if (nnets < 1 || nnets > nt || start[0] != 0 || start[nnets] != nl)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "fit.net_start: %lld nets for %lld layers", (long long)nnets,
                             (long long)nl);
    NEED(a, "fit.net_of_type", DPC_DT_I64, 1, nt);
    const int64_t *net_of = (const int64_t *)a->data;
    NEED(a, "fit.params", DPC_DT_F64, 1, -1);
    const double *params = (const double *)a->data;
    const int64_t nparams = a->count;
    if (!all_finite(params, nparams)) return not_finite(err, "fit.params");
    NEED(a, "fit.bias", DPC_DT_F64, 1, nt);
    m->fit_bias = (const double *)a->data;
    if (!all_finite(m->fit_bias, nt)) return not_finite(err, "fit.bias");
    m->nfit_params = 0; /* optional: frame/atomic parameters appended to D (absent in older files) */
    if (dpc_file_get(&m->file, "fit.nparam")) {
        NEED(a, "fit.nparam", DPC_DT_I64, 1, 1);
        m->nfit_params = ((const int64_t *)a->data)[0];
        if (m->nfit_params < 1 || m->nfit_params > 4096)
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "fit.nparam: %lld parameters (expected 1..4096)",
                                 (long long)m->nfit_params);
        if (!dpc_file_get(&m->file, "fit.nfparam"))
            return dpc_set_error(err, DPC_ERR_ARGUMENT,
                                 "array 'fit.nparam' without 'fit.nfparam', 'fit.param_avg', 'fit.param_inv_std': a file "
                                 "of an earlier development format (parameter statistics in the header); compress the "
                                 "model again");
        NEED(a, "fit.nfparam", DPC_DT_I64, 1, 1);
        m->nfparam = ((const int64_t *)a->data)[0];
        if (m->nfparam < 0 || m->nfparam > m->nfit_params)
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "fit.nfparam: %lld frame parameters of fit.nparam = %lld",
                                 (long long)m->nfparam, (long long)m->nfit_params);
        NEED(a, "fit.param_avg", DPC_DT_F64, 1, m->nfit_params);
        m->param_avg = (const double *)a->data;
        if (!all_finite(m->param_avg, m->nfit_params)) return not_finite(err, "fit.param_avg");
        NEED(a, "fit.param_inv_std", DPC_DT_F64, 1, m->nfit_params);
        m->param_inv_std = (const double *)a->data;
        if (!all_finite(m->param_inv_std, m->nfit_params)) return not_finite(err, "fit.param_inv_std");
        if (dpc_file_get(&m->file, "fit.default_fparam")) {
            if (m->nfparam == 0)
                return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'fit.default_fparam' in a model without frame parameters");
            NEED(a, "fit.default_fparam", DPC_DT_F64, 1, m->nfparam);
            m->default_fparam = (const double *)a->data;
            if (!all_finite(m->default_fparam, m->nfparam)) return not_finite(err, "fit.default_fparam");
        }
    } else {
        static const char *const PARAM_ARRAYS[] = {"fit.nfparam", "fit.param_avg", "fit.param_inv_std", "fit.default_fparam", NULL};
        for (const char *const *e = PARAM_ARRAYS; *e; e++)
            if (dpc_file_get(&m->file, *e))
                return dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s' without 'fit.nparam' (edited file?)", *e);
    }
    for (int64_t n = 0; n < nnets; n++) {
        if (start[n + 1] <= start[n])
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "fit.net_start: net %lld has no layers", (long long)n);
        int64_t prev = m->dim + m->nfit_params;
        for (int64_t k = start[n]; k < start[n + 1]; k++) {
            const int64_t *row = L + k * FL_SIZE;
            const int64_t nin = row[FL_NIN], nout = row[FL_NOUT];
            if (nin != prev || nout < 1 || nout > INT_MAX)
                return dpc_set_error(err, DPC_ERR_ARGUMENT, "fitting net %lld layer %lld maps %lld -> %lld after width %lld",
                                     (long long)n, (long long)(k - start[n]), (long long)nin, (long long)nout,
                                     (long long)prev);
            if (row[FL_ACT] < 0 || row[FL_ACT] > INT_MAX || !dpc_activation_valid((int)row[FL_ACT]))
                return dpc_set_error(err, DPC_ERR_ARGUMENT, "fitting net %lld layer %lld: unknown activation code %lld",
                                     (long long)n, (long long)(k - start[n]), (long long)row[FL_ACT]);
            const int64_t res = row[FL_RES];
            if (res < DPC_FIT_RESIDUAL_NONE || res > DPC_FIT_RESIDUAL_DOUBLE ||
                (res == DPC_FIT_RESIDUAL_IDENTITY && nout != nin) || (res == DPC_FIT_RESIDUAL_DOUBLE && nout != 2 * nin))
                return dpc_set_error(err, DPC_ERR_ARGUMENT, "fitting net %lld layer %lld: residual %lld does not fit %lld -> %lld",
                                     (long long)n, (long long)(k - start[n]), (long long)res, (long long)nin,
                                     (long long)nout);
            const int64_t lens[3] = {nin * nout, nout, nout};
            for (int q = 0; q < 3; q++) {
                const int64_t off = row[FL_W + q];
                if ((q == 0 && off < 0) || off < -1 || (off >= 0 && (off > nparams || lens[q] > nparams - off)))
                    return dpc_set_error(err, DPC_ERR_ARGUMENT, "fitting net %lld layer %lld: parameter offset %lld outside fit.params",
                                         (long long)n, (long long)(k - start[n]), (long long)off);
            }
            prev = nout;
        }
        if (prev != 1)
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "fitting net %lld ends with %lld outputs, expected 1", (long long)n,
                                 (long long)prev);
    }
    for (int64_t t = 0; t < nt; t++)
        if (net_of[t] < 0 || net_of[t] >= nnets)
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "fit.net_of_type: type %lld uses net %lld of %lld", (long long)t,
                                 (long long)net_of[t], (long long)nnets);
    /* one run of layer descriptors per type (types sharing a net share its arrays) */
    int64_t total = 0;
    for (int64_t t = 0; t < nt; t++) total += start[net_of[t] + 1] - start[net_of[t]];
    m->layers = (dpc_fit_layer *)calloc((size_t)total, sizeof(dpc_fit_layer));
    m->net_start = (int64_t *)calloc((size_t)nt + 1, sizeof(int64_t));
    if (!m->layers || !m->net_start) return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory");
    int64_t pos = 0;
    for (int64_t t = 0; t < nt; t++) {
        m->net_start[t] = pos;
        for (int64_t k = start[net_of[t]]; k < start[net_of[t] + 1]; k++) {
            const int64_t *row = L + k * FL_SIZE;
            dpc_fit_layer *y = m->layers + pos++;
            y->n_in = row[FL_NIN];
            y->n_out = row[FL_NOUT];
            y->w = params + row[FL_W];
            y->b = row[FL_B] >= 0 ? params + row[FL_B] : NULL;
            y->idt = row[FL_IDT] >= 0 ? params + row[FL_IDT] : NULL;
            y->activation = (int)row[FL_ACT];
            y->residual = (int)row[FL_RES];
        }
    }
    m->net_start[nt] = pos;
    return DPC_OK;
}

static dpc_status read_dp(dpc_model *m, const int64_t *I, dpc_error *err)
{
    const int64_t nt = m->ntypes;
    m->nparts = I[2];
    m->dim = I[3];
    if (m->nparts < 1 || m->nparts > DPC_MAX_PARTS)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "%lld descriptor parts (1 to %d)", (long long)m->nparts, DPC_MAX_PARTS);
    if (m->dim < 1 || m->dim > INT_MAX) return dpc_set_error(err, DPC_ERR_ARGUMENT, "descriptor width %lld", (long long)m->dim);
    const dpc_array *a;
    NEED(a, "model.out_bias", DPC_DT_F64, 1, nt);
    m->out_bias = (const double *)a->data;
    if (!all_finite(m->out_bias, nt)) return not_finite(err, "model.out_bias");
    NEED(a, "model.fit_mask", DPC_DT_F64, 1, nt);
    m->fit_mask = (const double *)a->data;
    NEED(a, "model.keep_mask", DPC_DT_F64, 1, nt);
    m->keep_mask = (const double *)a->data;
    for (int64_t t = 0; t < nt; t++)
        if ((m->fit_mask[t] != 0.0 && m->fit_mask[t] != 1.0) || (m->keep_mask[t] != 0.0 && m->keep_mask[t] != 1.0))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "model.fit_mask/keep_mask of type %lld are not 0 or 1", (long long)t);
    NEED(a, "model.pair_exclude", DPC_DT_I8, 2, nt, nt);
    const int8_t *pe = (const int8_t *)a->data;
    int any = 0;
    for (int64_t k = 0; k < nt * nt; k++) {
        if (pe[k] != 0 && pe[k] != 1) return dpc_set_error(err, DPC_ERR_ARGUMENT, "model.pair_exclude holds %d", pe[k]);
        any |= pe[k];
    }
    m->pair_exclude = any ? pe : NULL;
    dp_grid_spec spec;
    dpc_status st0 = read_grid_spec(m, &spec, err);
    if (st0 != DPC_OK) return st0;
    int64_t dim = 0;
    m->rcut = 0.0;
    for (int p = 0; p < m->nparts; p++) {
        dpc_status st = read_part(m, p, &spec, err);
        if (st != DPC_OK) return st;
        dim += m->parts[p].dim_out;
        if (m->parts[p].rcut > m->rcut) m->rcut = m->parts[p].rcut;
    }
    {   /* compression.table_strides: no entry beyond the parts */
        static const char *const TS[] = {"compression", "table_strides", NULL};
        dpc_json v, extra;
        if (dpc_header_get(&m->file, TS, &v) && dpc_json_item(v, m->nparts, &extra))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "%s does not list one entry per descriptor part (%lld)", TS_KEY,
                                 (long long)m->nparts);
    }
    if (dim != m->dim)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "descriptor width %lld, its parts give %lld", (long long)m->dim,
                             (long long)dim);
    if (!m->dgemm) return dpc_set_error(err, DPC_ERR_ARGUMENT, "a DP model needs a dgemm (BLAS) for its fitting net");
    st0 = dpc_zbl_read(&m->file, nt, m->parts[0].rcut, m->parts[0].nnei, m->parts[0].mixed, m->pair_exclude != NULL,
                       &m->zbl, err); /* DP + ZBL (docs/dp-zbl.md) */
    if (st0 != DPC_OK) return st0;
    return read_fitting(m, err);
}

/* ------------------------------------------------------------------------------------------- NEP */

/* nep.int columns */
enum { NI_T, NI_NR, NI_NA, NI_BR, NI_BA, NI_LNEED, NI_NUML, NI_NN, NI_DIM, NI_NMONO, NI_ZBL, NI_TAB, NI_SIZE };

#define NEP_F64(field, name, ndim, ...)                           \
    do {                                                          \
        NEED(a, name, DPC_DT_F64, ndim, __VA_ARGS__);             \
        n->field = (const double *)a->data;                       \
        if (!all_finite(n->field, a->count)) return not_finite(err, name); \
    } while (0)

/* g_n, g_n', g_n'' at r of the NEP radial functions of one pair (c: [nb+1][nchp]):
 * g_n = f_c(r) sum_k c_kn (T_k(x) + 1) / 2, x = 2 (r/rc - 1)^2 - 1, as nep/tables.py
 * radial_function_derivatives, by the three-term recurrence of T_k and of its derivatives (an
 * independent evaluation: numpy's runs Clenshaw's). */
static void nep_node(double r, double rc, int64_t nb, int64_t nch, int64_t nchp, const double *c, double *g,
                     double *gp, double *gpp)
{
    const double u = r / rc - 1.0, x = 2.0 * u * u - 1.0, dx = 4.0 * u / rc, ddx = 4.0 / (rc * rc);
    const double a = DPC_PI * r / rc, k1 = DPC_PI / rc;
    const double fc = 0.5 * cos(a) + 0.5, fcp = -0.5 * k1 * sin(a), fcpp = -0.5 * k1 * k1 * cos(a);
    for (int64_t n = 0; n < nch; n++) g[n] = gp[n] = gpp[n] = 0.0;
    double t0 = 1.0, d0 = 0.0, e0 = 0.0, t1 = x, d1 = 1.0, e1 = 0.0; /* T, T', T'' */
    for (int64_t k = 0; k <= nb; k++) {
        double t, d, e;
        if (k == 0) t = t0, d = d0, e = e0;
        else if (k == 1) t = t1, d = d1, e = e1;
        else {
            t = 2.0 * x * t1 - t0;
            d = 2.0 * t1 + 2.0 * x * d1 - d0;
            e = 4.0 * d1 + 2.0 * x * e1 - e0;
            t0 = t1, d0 = d1, e0 = e1, t1 = t, d1 = d, e1 = e;
        }
        /* P = sum c (T+1)/2, P1 = dP/dx, P2 = d2P/dx2, then the chain rule with f_c */
        for (int64_t n = 0; n < nch; n++) {
            const double ck = c[k * nchp + n];
            g[n] += ck * 0.5 * (t + 1.0);
            gp[n] += ck * 0.5 * d;
            gpp[n] += ck * 0.5 * e;
        }
    }
    for (int64_t n = 0; n < nch; n++) {
        const double P = g[n], P1 = gp[n], P2 = gpp[n];
        g[n] = fc * P;
        gp[n] = fcp * P + fc * P1 * dx;
        gpp[n] = fcpp * P + 2.0 * fcp * P1 * dx + fc * (P2 * dx * dx + P1 * ddx);
    }
}

#define NEP_MAXCH 32

/* The tables of a tabulated NEP model, against its Chebyshev coefficients (docs/model-file.md):
 * per pair and part the interval count of nep/tables.py build_tables from the header's step, the
 * offsets (pairs in order, channels padded), w and 1/w, then at both ends of every interval the
 * polynomial's value, first and second derivative against the expansion's. */
static dpc_status read_nep_tables(dpc_model *m, const dpc_nep_model *n, int64_t ncoef, dpc_error *err)
{
    static const char *const STEP[] = {"step", NULL};
    double step;
    dpc_status st = header_number(m, STEP, "step", &step, err);
    if (st != DPC_OK) return st;
    if (!(isfinite(step) && step > 0.0))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "header key 'step' is %g (need a positive interval width)", step);
    const int64_t T = n->ntypes, TT = T * T;
    for (const char *const *e = (const char *const[]){"nep.error_g", "nep.error_gp", NULL}; *e; e++) {
        const dpc_array *a;
        NEED(a, *e, DPC_DT_F64, 3, 2, T, T);
        for (int64_t k = 0; k < a->count; k++)
            if (!(isfinite(((const double *)a->data)[k]) && ((const double *)a->data)[k] >= 0.0))
                return dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s': error estimate %g is not a finite number >= 0", *e,
                                     ((const double *)a->data)[k]);
    }
    int64_t pos = 0;
    for (int64_t q = 0; q < 2 * TT; q++) {
        const int part = q >= TT;
        const double rc = part ? n->rc_A[q - TT] : n->rc_R[q - part * TT];
        const int64_t nch = (part ? n->n_max_A : n->n_max_R) + 1, nchp = (nch + 3) / 4 * 4;
        const int64_t nb = part ? n->basis_A : n->basis_R;
        const double *cpair = (part ? n->c_A : n->c_R) + (q - part * TT) * (nb + 1) * nchp;
        double want = ceil(rc / step - 1e-9); /* build_tables: max(16, ceil(rc / step - 1e-9)) */
        if (want < 16.0) want = 16.0;
        if (!(want <= (double)MAX_INTERVALS))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "header key 'step' %g gives %g intervals for a %g Å cutoff", step, want,
                                 rc);
        const int64_t M = n->tab_M[q];
        if ((double)M != want)
            return dpc_set_error(err, DPC_ERR_ARGUMENT,
                                 "array 'nep.tab_M': table %lld has %lld intervals; its cutoff %.17g and the header's step "
                                 "%.17g give %lld",
                                 (long long)q, (long long)M, rc, step, (long long)want);
        if (n->tab_off[q] != pos)
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'nep.tab_off': table %lld starts at %lld; the tables before it end at %lld",
                                 (long long)q, (long long)n->tab_off[q], (long long)pos);
        if (M > (ncoef - pos) / (6 * nchp))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'nep.tab_coef' (%lld values) is too short for table %lld",
                                 (long long)ncoef, (long long)q);
        const double w = rc / (double)M;
        if (n->tab_grid[2 * q] != w || n->tab_grid[2 * q + 1] != (double)M / rc)
            return dpc_set_error(err, DPC_ERR_ARGUMENT,
                                 "array 'nep.tab_grid': table %lld has (w, 1/w) = (%.17g, %.17g); its cutoff and interval "
                                 "count give (%.17g, %.17g)",
                                 (long long)q, n->tab_grid[2 * q], n->tab_grid[2 * q + 1], w, (double)M / rc);
        const double *coef = n->tab_coef + pos;
        pos += M * 6 * nchp;
        /* pass 1: the size of every channel (what the tolerance is relative to) */
        double scale[NEP_MAXCH], g[NEP_MAXCH], gp[NEP_MAXCH], gpp[NEP_MAXCH];
        double g1[NEP_MAXCH], gp1[NEP_MAXCH], gpp1[NEP_MAXCH];
        if (nch > NEP_MAXCH) return dpc_set_error(err, DPC_ERR_ARGUMENT, "nep.int: %lld channels", (long long)nch);
        for (int64_t c = 0; c < nch; c++) {
            scale[c] = 0.0;
            for (int64_t k = 0; k <= nb; k++) scale[c] += fabs(cpair[k * nchp + c]);
        }
        for (int64_t l = 0; l <= M; l++) {
            nep_node(l == M ? rc : (double)l * w, rc, nb, nch, nchp, cpair, g, gp, gpp);
            for (int64_t c = 0; c < nch; c++) scale[c] = fmax(scale[c], fabs(g[c]) + fabs(gp[c]) * w + fabs(gpp[c]) * w * w);
        }
        /* pass 2: both ends of every interval */
        nep_node(0.0, rc, nb, nch, nchp, cpair, g, gp, gpp);
        for (int64_t l = 0; l < M; l++) {
            nep_node(l + 1 == M ? rc : (double)(l + 1) * w, rc, nb, nch, nchp, cpair, g1, gp1, gpp1);
            const double *A = coef + l * 6 * nchp;
            for (int64_t c = 0; c < nchp; c++) {
                const double a0 = A[c], a1 = A[nchp + c], a2 = A[2 * nchp + c], a3 = A[3 * nchp + c],
                             a4 = A[4 * nchp + c], a5 = A[5 * nchp + c];
                if (c >= nch) {
                    if (a0 != 0.0 || a1 != 0.0 || a2 != 0.0 || a3 != 0.0 || a4 != 0.0 || a5 != 0.0)
                        return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'nep.tab_coef': table %lld, padding channel %lld is not zero",
                                             (long long)q, (long long)c);
                    continue;
                }
                const double v = ((((a5 * w + a4) * w + a3) * w + a2) * w + a1) * w + a0;
                const double d = (((5.0 * a5 * w + 4.0 * a4) * w + 3.0 * a3) * w + 2.0 * a2) * w + a1;
                const double dd = ((20.0 * a5 * w + 12.0 * a4) * w + 6.0 * a3) * w + 2.0 * a2;
                const double tol = NEP_NODE_TOL * scale[c];
                const double res[6] = {a0 - g[c], (a1 - gp[c]) * w, (2.0 * a2 - gpp[c]) * w * w,
                                       v - g1[c], (d - gp1[c]) * w, (dd - gpp1[c]) * w * w};
                for (int k = 0; k < 6; k++)
                    if (!(fabs(res[k]) <= tol))
                        return dpc_set_error(err, DPC_ERR_ARGUMENT,
                                             "array 'nep.tab_coef': table %lld (%s, pair %lld), interval %lld, channel %lld: "
                                             "the %s at r = %.6g Å is off by %.3g of the channel's scale from the "
                                             "expansion in '%s' (edited or inconsistent tables)",
                                             (long long)q, part ? "angular" : "radial", (long long)(q - part * TT), (long long)l,
                                             (long long)c, k % 3 == 0 ? "value" : (k % 3 == 1 ? "first derivative" : "second derivative"),
                                             k < 3 ? (double)l * w : (double)(l + 1) * w, fabs(res[k]) / (scale[c] > 0 ? scale[c] : 1.0),
                                             part ? "nep.c_A" : "nep.c_R");
            }
            memcpy(g, g1, sizeof g);
            memcpy(gp, gp1, sizeof gp);
            memcpy(gpp, gpp1, sizeof gpp);
        }
    }
    if (pos != ncoef)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'nep.tab_coef' holds %lld values; its tables use %lld",
                             (long long)ncoef, (long long)pos);
    return DPC_OK;
}

static dpc_status read_nep(dpc_model *m, const int64_t *model_int, dpc_error *err)
{
    dpc_nep_model *n = &m->nep;
    const dpc_array *a;
    NEED(a, "nep.int", DPC_DT_I64, 1, NI_SIZE);
    const int64_t *I = (const int64_t *)a->data;
    const int64_t T = I[NI_T];
    if (T != m->ntypes) return dpc_set_error(err, DPC_ERR_ARGUMENT, "nep.int: %lld types, the model %lld", (long long)T, (long long)m->ntypes);
    n->ntypes = T;
    n->n_max_R = I[NI_NR];
    n->n_max_A = I[NI_NA];
    n->basis_R = I[NI_BR];
    n->basis_A = I[NI_BA];
    n->l_need = I[NI_LNEED];
    n->num_L = I[NI_NUML];
    n->n_neuron = I[NI_NN];
    n->dim = I[NI_DIM];
    n->nmono = I[NI_NMONO];
    n->zbl_kind = I[NI_ZBL];
    n->tabulated = I[NI_TAB];
    if (n->n_max_R < 0 || n->n_max_A < 0 || n->basis_R < 0 || n->basis_A < 0 || dpc_nep_check(n) != DPC_OK ||
        n->num_L < 0 || n->num_L > 64 || n->n_neuron < 1 || n->n_neuron > 100000 || n->nmono < 0 || n->nmono > 100000 ||
        n->zbl_kind < 0 || n->zbl_kind > 2 || n->tabulated < 0 || n->tabulated > 1 ||
        n->dim != n->n_max_R + 1 + (n->n_max_A + 1) * n->num_L)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "nep.int: sizes outside the kernel's limits or inconsistent");
    if (model_int[2] != 0 || model_int[3] != 0)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'model.int' of a NEP model has descriptor parts or a width (not 0)");
    const int64_t TT = T * T, nR1p = (n->n_max_R + 4) / 4 * 4, nA1p = (n->n_max_A + 4) / 4 * 4;
    const int64_t D = n->dim, NN = n->n_neuron;
    NEED(a, "nep.b1", DPC_DT_F64, 1, 1);
    n->b1 = *(const double *)a->data;
    if (!isfinite(n->b1)) return not_finite(err, "nep.b1");
    NEP_F64(rc_R, "nep.rc_R", 1, TT);
    NEP_F64(rc_A, "nep.rc_A", 1, TT);
    NEP_F64(c_R, "nep.c_R", 3, TT, n->basis_R + 1, nR1p);
    NEP_F64(c_A, "nep.c_A", 3, TT, n->basis_A + 1, nA1p);
    NEP_F64(w0, "nep.w0", 3, T, NN, D);
    NEP_F64(b0, "nep.b0", 2, T, NN);
    NEP_F64(w1, "nep.w1", 2, T, NN);
    NEP_F64(b1_type, "nep.b1_type", 1, T);
    NEP_F64(q_scaler, "nep.q_scaler", 1, D);
    NEP_F64(mono, "nep.mono", 2, n->nmono, 5);
    NEP_F64(zcoef, "nep.zcoef", 3, 8, 9, 9);
    NEP_F64(zbl_inner, "nep.zbl_inner", 1, TT);
    NEP_F64(zbl_outer, "nep.zbl_outer", 1, TT);
    NEP_F64(zbl_params, "nep.zbl_params", 2, TT, 8);
    NEP_F64(atomic_z, "nep.atomic_z", 1, T);
    NEED(a, "nep.block_start", DPC_DT_I64, 1, n->num_L + 1);
    n->block_start = (const int64_t *)a->data;
    if (n->block_start[0] != 0 || n->block_start[n->num_L] != n->nmono)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "nep.block_start does not span the monomials");
    for (int64_t b = 0; b < n->num_L; b++)
        if (n->block_start[b + 1] < n->block_start[b])
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "nep.block_start decreases");
    const int64_t ns = (n->l_need + 1) * (n->l_need + 1) - 1;
    for (int64_t k = 0; k < n->nmono; k++)
        for (int z = 1; z < 5; z++) {
            const double v = n->mono[5 * k + z];
            if (!(v < 0.0 || (v == floor(v) && v < (double)ns)))
                return dpc_set_error(err, DPC_ERR_ARGUMENT, "nep.mono: index %g out of range", v);
        }
    m->rcut = 0.0;
    for (int64_t p = 0; p < TT; p++) {
        if (!(n->rc_R[p] > 0.0 && n->rc_R[p] < 1e3) || !(n->rc_A[p] > 0.0 && n->rc_A[p] < 1e3))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "nep.rc_R/rc_A: cutoff of pair %lld not in (0, 1000) Å", (long long)p);
        if (n->rc_R[p] > m->rcut) m->rcut = n->rc_R[p];
        if (n->rc_A[p] > m->rcut) m->rcut = n->rc_A[p];
        if (n->zbl_kind && !(n->zbl_outer[p] >= n->zbl_inner[p] && n->zbl_inner[p] >= 0.0))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "nep.zbl_inner/outer of pair %lld invalid", (long long)p);
    }
    NEED(a, "nep.tab_M", DPC_DT_I64, 1, 2 * TT);
    n->tab_M = (const int64_t *)a->data;
    NEED(a, "nep.tab_off", DPC_DT_I64, 1, 2 * TT);
    n->tab_off = (const int64_t *)a->data;
    NEP_F64(tab_grid, "nep.tab_grid", 2, 2 * TT, 2);
    NEP_F64(tab_coef, "nep.tab_coef", 1, -1);
    const int64_t ncoef = a->count;
    /* channel padding is zero (packing.py _pad_channels): the kernel's loops run over it */
    for (int part = 0; part < 2; part++) {
        const double *c = part ? n->c_A : n->c_R;
        const int64_t nb1 = (part ? n->basis_A : n->basis_R) + 1, nch = (part ? n->n_max_A : n->n_max_R) + 1,
                      nchp = part ? nA1p : nR1p;
        for (int64_t k = 0; k < TT * nb1; k++)
            for (int64_t q = nch; q < nchp; q++)
                if (c[k * nchp + q] != 0.0)
                    return dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s': padding channel %lld is not zero",
                                         part ? "nep.c_A" : "nep.c_R", (long long)q);
    }
    if (!n->tabulated) {
        /* the placeholders pack_model writes: nothing here may differ from them unnoticed */
        for (int64_t q = 0; q < 2 * TT; q++)
            if (n->tab_M[q] != 1 || n->tab_off[q] != 0 || n->tab_grid[2 * q] != 1.0 || n->tab_grid[2 * q + 1] != 1.0)
                return dpc_set_error(err, DPC_ERR_ARGUMENT,
                                     "arrays 'nep.tab_M', 'nep.tab_off', 'nep.tab_grid' of a model without tables are "
                                     "not the writer's placeholders (entry %lld)",
                                     (long long)q);
        if (ncoef != 1 || n->tab_coef[0] != 0.0)
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'nep.tab_coef' of a model without tables is not [0]");
        if (dpc_file_get(&m->file, "nep.error_g") || dpc_file_get(&m->file, "nep.error_gp"))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "arrays 'nep.error_g', 'nep.error_gp' in a model without tables");
        return DPC_OK;
    }
    return read_nep_tables(m, n, ncoef, err);
}

/* ------------------------------------------------------------------------------------------- file */

/* 1 when the file of an opened model may hold an array called name: the writer writes exactly
 * these (modelfile/dp.py, nep.py), and every one of them is checked above, so an extra array
 * would be bytes nobody checks. */
static int expected_array(const dpc_model *m, const char *name)
{
    static const char *const COMMON[] = {"type_map", "model.int", NULL};
    static const char *const DP[] = {"model.out_bias", "model.fit_mask", "model.keep_mask", "model.pair_exclude",
                                     "fit.layer", "fit.net_start", "fit.net_of_type", "fit.params", "fit.bias",
                                     "fit.nparam", "fit.nfparam", "fit.param_avg", "fit.param_inv_std",
                                     "fit.default_fparam", NULL};
    static const char *const PART[] = {"int", "real", "sel_offsets", "avg", "std", "block_mode", "table_of", "tab_real",
                                       "tab_count", "tab_offset", "coef", "tab_error", NULL};
    static const char *const GATED[] = {"gate", "gate_of", "type_embedding", "gate_pad", NULL};
    static const char *const TEBD[] = {"gate", "gate_of", "type_embedding", "gate_pad", NULL};
    static const char *const NEP[] = {"nep.int", "nep.b1", "nep.rc_R", "nep.rc_A", "nep.c_R", "nep.c_A", "nep.w0",
                                      "nep.b0", "nep.w1", "nep.b1_type", "nep.q_scaler", "nep.mono", "nep.zcoef",
                                      "nep.zbl_inner", "nep.zbl_outer", "nep.zbl_params", "nep.atomic_z",
                                      "nep.block_start", "nep.tab_M", "nep.tab_off", "nep.tab_grid", "nep.tab_coef",
                                      "nep.error_g", "nep.error_gp", NULL};
    for (const char *const *e = COMMON; *e; e++)
        if (strcmp(name, *e) == 0) return 1;
    if (m->kind == DPC_MODEL_NEP) {
        for (const char *const *e = NEP; *e; e++)
            if (strcmp(name, *e) == 0) return 1;
        return 0;
    }
    for (const char *const *e = DP; *e; e++)
        if (strcmp(name, *e) == 0) return 1;
    if (m->zbl.present && dpc_zbl_expected_array(name)) return 1;
    int p = -1, used = 0;
    if (sscanf(name, "part%d.%n", &p, &used) != 1 || used == 0 || p < 0 || p >= m->nparts) return 0;
    char again[24];
    snprintf(again, sizeof again, "part%d.", p); /* no "part01.": one spelling per part */
    if (strncmp(name, again, (size_t)used) != 0 || strlen(again) != (size_t)used) return 0;
    for (const char *const *e = PART; *e; e++)
        if (strcmp(name + used, *e) == 0) return 1;
    if (m->parts[p].kind == DPC_PART_DPA2 && strncmp(name + used, "rf", 2) == 0) return 1; /* checked by dpc_dpa2_read */
    if (m->parts[p].kind == DPC_PART_SE_ATTEN || m->parts[p].kind == DPC_PART_DPA1 || m->parts[p].kind == DPC_PART_DPA2)
        for (const char *const *e = GATED; *e; e++)
            if (strcmp(name + used, *e) == 0) return 1;
    if (m->parts[p].kind == DPC_PART_SE_T_TEBD)
        for (const char *const *e = TEBD; *e; e++)
            if (strcmp(name + used, *e) == 0) return 1;
    static const char *const ATTENTION[] = {"att_int", "att_real", "att_w_in", "att_b_in", "att_w_out", "att_b_out",
                                            "att_ln", NULL};
    if (m->parts[p].kind == DPC_PART_DPA1)
        for (const char *const *e = ATTENTION; *e; e++)
            if (strcmp(name + used, *e) == 0) return 1;
    return 0;
}

/* The header agrees with the arrays on what the file is (the Python reader checks the same). */
static dpc_status check_header_kind(const dpc_model *m, dpc_error *err)
{
    static const char *const FORMAT[] = {"format", NULL}, *const KIND[] = {"kind", NULL};
    dpc_json v;
    if (!dpc_header_get(&m->file, FORMAT, &v) || !dpc_json_string_is(v, "dpcompress.model"))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "header key 'format' is not \"dpcompress.model\"");
    const char *kind = m->kind == DPC_MODEL_DP_ENERGY ? "dp_energy" : "nep";
    if (!dpc_header_get(&m->file, KIND, &v) || !dpc_json_string_is(v, kind))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "header key 'kind' is not \"%s\", the kind of array 'model.int'", kind);
    return DPC_OK;
}

/* ------------------------------------------------------------------------------------------- API */

dpc_status dpc_model_open(const void *data, size_t nbytes, dpc_dgemm_t dgemm, dpc_model **out, dpc_error *err)
{
    dpc_error local;
    if (!err) err = &local;
    memset(err, 0, sizeof *err);
    *out = NULL;
    dpc_model *m = (dpc_model *)calloc(1, sizeof(dpc_model));
    if (!m) return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory");
    m->dgemm = dgemm;
    dpc_status st = dpc_file_parse(data, nbytes, &m->file, err);
    if (st != DPC_OK) {
        free(m);
        return st;
    }
    const dpc_array *a = dpc_file_get(&m->file, "model.int");
    if (!a || a->dtype != DPC_DT_I64 || a->ndim != 1 || a->count != 4) {
        st = dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'model.int' (int64, 4 values) is missing");
    } else {
        const int64_t *I = (const int64_t *)a->data;
        m->kind = I[0] == DPC_MODEL_DP_ENERGY || I[0] == DPC_MODEL_NEP ? (int)I[0] : 0;
        m->ntypes = I[1];
        if (m->ntypes < 1 || m->ntypes > 4096)
            st = dpc_set_error(err, DPC_ERR_ARGUMENT, "%lld atom types (1 to 4096)", (long long)m->ntypes);
        else if (m->kind == 0 && I[0] == 3) /* dpcompress.modelfile.dp_tensor: read in Python, not computed here */
            st = dpc_set_error(err, DPC_ERR_ARGUMENT, "a dipole/polarizability model (kind 3): the runtime computes "
                               "energy models; evaluate it with dpcompress.DeepDipole / DeepPolar in Python");
        else if (m->kind == 0)
            st = dpc_set_error(err, DPC_ERR_ARGUMENT, "model kind %lld is not known to this dpcompress", (long long)I[0]);
        else if ((st = check_header_kind(m, err)) != DPC_OK || (st = read_type_map(m, err)) != DPC_OK) {
        } else
            st = m->kind == DPC_MODEL_DP_ENERGY ? read_dp(m, I, err) : read_nep(m, I, err);
        for (int64_t k = 0; st == DPC_OK && k < m->file.n_arrays; k++)
            if (!expected_array(m, m->file.arrays[k].name))
                st = dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s' is not part of a %s model (edited file?)",
                                   m->file.arrays[k].name, m->kind == DPC_MODEL_NEP ? "NEP" : "DP");
        for (int p = 0; st == DPC_OK && m->kind == DPC_MODEL_DP_ENERGY && p < m->nparts; p++)
            if (m->parts[p].kind == DPC_PART_DPA2 && (m->nparts != 1 || m->zbl.present)) /* dpc_dpa2_frame.h */
                st = dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: a compressed DPA-2 (kind 7) must be the model's only "
                                   "descriptor, without ZBL (the runtime evaluates it alone)", p);
    }
    if (st != DPC_OK) {
        dpc_model_close(m);
        return st;
    }
    *out = m;
    return DPC_OK;
}

void dpc_model_close(dpc_model *m)
{
    if (!m) return;
    for (int p = 0; p < DPC_MAX_PARTS; p++)
        if (m->parts[p].kind == DPC_PART_DPA2) dpc_dpa2_release(&m->parts[p].dpa2);
    free(m->names);
    free(m->layers);
    free(m->net_start);
    dpc_file_release(&m->file);
    free(m);
}

int dpc_model_kind(const dpc_model *m) { return m->kind; }
int64_t dpc_model_ntypes(const dpc_model *m) { return m->ntypes; }
int64_t dpc_model_dim(const dpc_model *m) { return m->kind == DPC_MODEL_DP_ENERGY ? m->dim : 0; }
int64_t dpc_model_dim_fparam(const dpc_model *m) { return m->kind == DPC_MODEL_NEP ? 0 : m->nfparam; }
int64_t dpc_model_dim_aparam(const dpc_model *m) { return m->kind == DPC_MODEL_NEP ? 0 : m->nfit_params - m->nfparam; }
int dpc_model_has_default_fparam(const dpc_model *m) { return m->kind != DPC_MODEL_NEP && m->default_fparam != NULL; }
double dpc_model_rcut(const dpc_model *m) { return m->rcut; }

double dpc_model_ghost_width(const dpc_model *m)
{
    double w = m->rcut;
    for (int p = 0; m->kind == DPC_MODEL_DP_ENERGY && p < m->nparts; p++) {
        const dpc_part *P = m->parts + p;
        if (P->kind != DPC_PART_DPA2) continue;
        const double need = P->rcut + (double)P->dpa2.stack.n_layers * P->dpa2.rcut;
        w = need > w ? need : w;
    }
    return w;
}

int dpc_model_passes_messages(const dpc_model *m)
{
    for (int p = 0; m->kind == DPC_MODEL_DP_ENERGY && p < m->nparts; p++)
        if (m->parts[p].kind == DPC_PART_DPA2) return 1;
    return 0;
}

const char *dpc_model_type_name(const dpc_model *m, int64_t t)
{
    return (t >= 0 && t < m->ntypes) ? m->names[t] : NULL;
}

const char *dpc_model_header(const dpc_model *m, size_t *nbytes)
{
    if (nbytes) *nbytes = m->file.header_nbytes;
    return m->file.header;
}
