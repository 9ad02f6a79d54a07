/* Opening a model: the arrays of a .dpc file (docs/model-file.md) checked and wired to the kernels.
 *
 * Every size, index and offset the kernels will read is checked here, once, against the arrays it
 * points into; every value a kernel divides by or indexes with is range-checked; every float is
 * finite.  After a successful open the kernels need no further checks on model data. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpc_activations.h"
#include "dpc_model_internal.h"
#include "dpc_table.h"

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
    return DPC_OK;
}

/* ------------------------------------------------------------------------------------------- DP */

static dpc_status read_tables(dpc_model *m, dpc_part *P, int p, int64_t ntab, int ncoef, int64_t M,
                              const double **tab_real, const int64_t **tab_count, const int64_t **tab_offset,
                              const double **coef, dpc_error *err)
{
    char name[64];
    const dpc_array *a;
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
    snprintf(name, sizeof name, "part%d.coef", p);
    NEED(a, name, DPC_DT_F64, 1, -1);
    *coef = (const double *)a->data;
    const int64_t ncoefs = a->count;
    if (!all_finite(*coef, ncoefs)) return not_finite(err, name);
    for (int64_t k = 0; k < ntab; k++) {
        const double *r = *tab_real + 5 * k;
        const int64_t *c = *tab_count + 3 * k;
        const int64_t nf = c[0], nc = c[1], nb = c[2];
        if (nf < 1 || nc < 0 || nb < 0 || nf > (INT64_C(1) << 40) || nc > (INT64_C(1) << 40) || nb > (INT64_C(1) << 40))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d table %lld: interval counts (%lld, %lld, %lld) invalid", p,
                                 (long long)k, (long long)nf, (long long)nc, (long long)nb);
        if (!(r[3] > 0.0) || !(r[4] > 0.0))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d table %lld: strides %g, %g must be positive", p,
                                 (long long)k, r[3], r[4]);
        if (r[1] != r[0] + (double)nf * r[3] || r[2] != r[1] + (double)nc * r[4])
            return dpc_set_error(err, DPC_ERR_ARGUMENT,
                                 "part %d table %lld: upper/xmax (%.17g, %.17g) disagree with lower %.17g, the strides "
                                 "and the interval counts",
                                 p, (long long)k, r[1], r[2], r[0]);
        const int64_t size = (nf + nc + nb) * ncoef * M;
        const int64_t off = (*tab_offset)[k];
        if (off < 0 || off > ncoefs || size > ncoefs - off)
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d table %lld: coefficients [%lld, +%lld) outside '%s' (%lld)",
                                 p, (long long)k, (long long)off, (long long)size, name, (long long)ncoefs);
    }
    (void)P;
    return DPC_OK;
}

static dpc_status read_part(dpc_model *m, int p, dpc_error *err)
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
    if (P->kind < DPC_PART_SE_A || P->kind > DPC_PART_SE_ATTEN)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: unknown descriptor kind %d", p, P->kind);
    const int gated = P->kind == DPC_PART_SE_ATTEN;
    if (P->mixed != gated || P->nblocks != (gated ? 1 : nt))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: %lld neighbor blocks (mixed %d) for %lld types", p,
                             (long long)P->nblocks, P->mixed, (long long)nt);
    if (ncoef != 4 && ncoef != 6)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: %lld coefficients per interval (4 or 6)", p, (long long)ncoef);
    if (P->M < 1 || P->M > (1 << 20) || ntab < 1 || ntab > nt * nt)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: %lld channels or %lld tables out of range", p,
                             (long long)P->M, (long long)ntab);
    const int angular = P->kind == DPC_PART_SE_A || gated;
    if (angular && (P->A < 1 || P->A > P->M || P->A > DPC_MAX_AXIS_NEURON))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: axis_neuron %lld outside [1, min(M=%lld, %d)]", p,
                             (long long)P->A, (long long)P->M, DPC_MAX_AXIS_NEURON);
    if (gated && P->concat && (P->tebd_dim < 1 || P->tebd_dim > (1 << 20)))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: tebd_dim %lld", p, (long long)P->tebd_dim);
    const int64_t dim = angular ? P->M * P->A + (gated && P->concat ? P->tebd_dim : 0) : P->M;
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
        if (!isfinite(std[k]) || !(fabs(std[k]) > 1e-150))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: std entry %lld is %g (zero, tiny or not finite)", p,
                                 (long long)k, std[k]);
    snprintf(name, sizeof name, "part%d.block_mode", p);
    NEED(a, name, DPC_DT_I8, 2, nt, P->nblocks);
    const signed char *mode = (const signed char *)a->data;
    for (int64_t k = 0; k < a->count; k++)
        if (mode[k] < 0 || mode[k] > 2) return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: block mode %d", p, mode[k]);
    const int64_t tab_rows = P->kind == DPC_PART_SE_T ? P->nblocks : nt;
    snprintf(name, sizeof name, "part%d.table_of", p);
    NEED(a, name, DPC_DT_I64, 2, tab_rows, P->nblocks);
    const int64_t *table_of = (const int64_t *)a->data;
    for (int64_t r = 0; r < tab_rows; r++)
        for (int64_t b = 0; b < P->nblocks; b++) {
            const int64_t k = table_of[r * P->nblocks + b];
            const int64_t sel_b = P->sel_offsets[b + 1] - P->sel_offsets[b];
            const int64_t sel_r = P->kind == DPC_PART_SE_T ? P->sel_offsets[r + 1] - P->sel_offsets[r] : 1;
            const int needed = sel_b > 0 && sel_r > 0 && (P->kind != DPC_PART_SE_T || r <= b);
            if (k < -1 || k >= ntab || (needed && k < 0))
                return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: table index %lld of (%lld, %lld) invalid", p,
                                     (long long)k, (long long)r, (long long)b);
        }
    const double *tab_real = NULL, *coef = NULL;
    const int64_t *tab_count = NULL, *tab_offset = NULL;
    dpc_status st = read_tables(m, P, p, ntab, (int)ncoef, P->M, &tab_real, &tab_count, &tab_offset, &coef, err);
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
        if (P->concat) {
            snprintf(name, sizeof name, "part%d.type_embedding", p);
            NEED(a, name, DPC_DT_F64, 2, nt, P->tebd_dim);
            P->type_embedding = (const double *)a->data;
            if (!all_finite(P->type_embedding, a->count)) return not_finite(err, name);
        }
    }
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
    for (int64_t n = 0; n < nnets; n++) {
        if (start[n + 1] <= start[n])
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "fit.net_start: net %lld has no layers", (long long)n);
        int64_t prev = m->dim;
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
    int64_t dim = 0;
    m->rcut = 0.0;
    for (int p = 0; p < m->nparts; p++) {
        dpc_status st = read_part(m, p, err);
        if (st != DPC_OK) return st;
        dim += m->parts[p].dim_out;
        if (m->parts[p].rcut > m->rcut) m->rcut = m->parts[p].rcut;
    }
    if (dim != m->dim)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "descriptor width %lld, its parts give %lld", (long long)m->dim,
                             (long long)dim);
    if (!m->dgemm) return dpc_set_error(err, DPC_ERR_ARGUMENT, "a DP model needs a dgemm (BLAS) for its fitting net");
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

static dpc_status read_nep(dpc_model *m, dpc_error *err)
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
    if (n->tabulated)
        for (int64_t q = 0; q < 2 * TT; q++) {
            const int64_t nch = q < TT ? nR1p : nA1p, Mq = n->tab_M[q], off = n->tab_off[q];
            if (Mq < 1 || Mq > (INT64_C(1) << 32) || off < 0 || off > ncoef || Mq * 6 * nch > ncoef - off)
                return dpc_set_error(err, DPC_ERR_ARGUMENT, "nep table %lld: %lld intervals at %lld outside nep.tab_coef",
                                     (long long)q, (long long)Mq, (long long)off);
            if (!(n->tab_grid[2 * q] > 0.0) || !(n->tab_grid[2 * q + 1] > 0.0))
                return dpc_set_error(err, DPC_ERR_ARGUMENT, "nep table %lld: interval width not positive", (long long)q);
        }
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
        m->kind = (int)I[0];
        m->ntypes = I[1];
        if (m->ntypes < 1 || m->ntypes > 4096)
            st = dpc_set_error(err, DPC_ERR_ARGUMENT, "%lld atom types (1 to 4096)", (long long)m->ntypes);
        else if ((st = read_type_map(m, err)) != DPC_OK) {
        } else if (m->kind == DPC_MODEL_DP_ENERGY)
            st = read_dp(m, I, err);
        else if (m->kind == DPC_MODEL_NEP)
            st = read_nep(m, err);
        else
            st = dpc_set_error(err, DPC_ERR_ARGUMENT, "model kind %d is not known to this dpcompress", m->kind);
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
    free(m->names);
    free(m->layers);
    free(m->net_start);
    dpc_file_release(&m->file);
    free(m);
}

int dpc_model_kind(const dpc_model *m) { return m->kind; }
int64_t dpc_model_ntypes(const dpc_model *m) { return m->ntypes; }
double dpc_model_rcut(const dpc_model *m) { return m->rcut; }

const char *dpc_model_type_name(const dpc_model *m, int64_t t)
{
    return (t >= 0 && t < m->ntypes) ? m->names[t] : NULL;
}

const char *dpc_model_header(const dpc_model *m, size_t *nbytes)
{
    if (nbytes) *nbytes = m->file.header_nbytes;
    return m->file.header;
}
