/* Reading a compressed DPA-2 part's repformer arrays (dpc_dpa2_part.h). */
#include "dpc_dpa2_part.h"

#include "dpc_activations.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WIDTH (INT64_C(1) << 16) /* dpcompress/descriptors/fields.py MAX_WIDTH */
#define MAX_SEL (INT64_C(1) << 16)
#define NHEAD 6
#define NLI 8
#define NLR 3

/* "[a, b]" of a shape, or of int64 values (rows of ncol: nested as numpy's tolist()) */
static void fmt_ints(char *buf, size_t n, const int64_t *v, int64_t count, int64_t ncol)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "[");
    for (int64_t i = 0; i < count && k < n; i++) {
        if (ncol > 0 && i % ncol == 0) k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "%s[", i ? ", " : "");
        else if (i) k += (size_t)snprintf(buf + k, k < n ? n - k : 0, ", ");
        k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "%lld", (long long)v[i]);
        if (ncol > 0 && i % ncol == ncol - 1) k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "]");
    }
    if (k < n) snprintf(buf + k, n - k, "]");
}

typedef struct {
    const dpc_file *f;
    int p;
    dpc_error *err;
} ctx;

/* the array rf-name of dtype and shape (dpa2_pack._array) */
static const dpc_array *arr(const ctx *c, const char *rf, int dtype, int ndim, const int64_t *shape)
{
    char name[96], got[64], want[64];
    snprintf(name, sizeof name, "part%d.%s", c->p, rf);
    const dpc_array *a = dpc_file_get(c->f, name);
    if (!a) {
        dpc_set_error(c->err, DPC_ERR_ARGUMENT, "part %d: array '%s' is missing (a compressed DPA-2 needs it)", c->p, name);
        return NULL;
    }
    int same = a->dtype == dtype && a->ndim == ndim;
    for (int k = 0; same && k < ndim; k++) same = a->shape[k] == shape[k];
    if (!same) {
        fmt_ints(got, sizeof got, a->shape, a->ndim, 0);
        fmt_ints(want, sizeof want, shape, ndim, 0);
        dpc_set_error(c->err, DPC_ERR_ARGUMENT, "part %d: array '%s' is %s%s, expected %s%s", c->p, name,
                      dpc_dtype_name(a->dtype), got, dpc_dtype_name(dtype), want);
        return NULL;
    }
    return a;
}

static const int64_t *ints(const ctx *c, const char *rf, int ndim, const int64_t *shape, int64_t lo, int64_t hi)
{
    const dpc_array *a = arr(c, rf, DPC_DT_I64, ndim, shape);
    if (!a) return NULL;
    const int64_t *v = (const int64_t *)a->data;
    for (int64_t k = 0; k < a->count; k++)
        if (v[k] < lo || v[k] > hi) {
            char buf[1024];
            fmt_ints(buf, sizeof buf, v, a->count, ndim == 2 ? shape[1] : 0);
            dpc_set_error(c->err, DPC_ERR_ARGUMENT, "part %d: array 'part%d.%s' holds %s, expected values in [%lld, %lld]",
                          c->p, c->p, rf, buf, (long long)lo, (long long)hi);
            return NULL;
        }
    return v;
}

/* a float64 weight of the given shape, finite */
static const double *weight(const ctx *c, const char *rf, int ndim, int64_t n0, int64_t n1)
{
    int64_t shape[2] = {n0, n1};
    const dpc_array *a = arr(c, rf, DPC_DT_F64, ndim, shape);
    if (!a) return NULL;
    const double *v = (const double *)a->data;
    for (int64_t k = 0; k < a->count; k++)
        if (!isfinite(v[k])) {
            dpc_set_error(c->err, DPC_ERR_ARGUMENT, "part %d: array 'part%d.%s' holds a non-finite value", c->p, c->p, rf);
            return NULL;
        }
    return v;
}

static int known_rf(const char *tail, int64_t nl, int has_shape, int has_tebd, const int64_t *li, int64_t style,
                    int64_t mlp)
{
    static const char *const HEAD[] = {"rf.int", "rf.real", "rf.layer_int", "rf.layer_real", "rf.dstd", "rf.g2_embd.w",
                                       "rf.g2_embd.b", "rf.act", "rf.update_style", "rf.g1_out_mlp", "rf.g1_out_conv",
                                       "rf.attn2_has_gate", NULL};
    static const char *const LAYER[] = {"linear1.w", "linear1.b", "g1_self_mlp.w", "g1_self_mlp.b", "proj_g1g2.w",
                                        "mapq.w", "mapkv.w", "head_map1.w", "head_map1.b", NULL};
    static const char *const LAYER2[] = {"linear2.w", "linear2.b", "proj_g1g1g2.w", "mapqk.w", "mapv.w", "head_map2.w",
                                         "head_map2.b", "ln_w", "ln_b", NULL};
    for (const char *const *e = HEAD; *e; e++)
        if (strcmp(tail, *e) == 0) return 1;
    if ((has_shape && strcmp(tail, "rf.g1_shape.w") == 0) || (has_tebd && strcmp(tail, "rf.tebd_transform.w") == 0))
        return 1;
    int k = -1, used = 0;
    if (sscanf(tail, "rf%d.%n", &k, &used) != 1 || used == 0 || k < 0 || k >= nl) return 0;
    char again[24];
    snprintf(again, sizeof again, "rf%d.", k);
    if (strlen(again) != (size_t)used || strncmp(tail, again, (size_t)used) != 0) return 0;
    for (const char *const *e = LAYER; *e; e++)
        if (strcmp(tail + used, *e) == 0) return mlp || strncmp(*e, "g1_self_mlp.", 12) != 0;
    if (style == DPC_RF_RES_RESIDUAL &&
        (strcmp(tail + used, "g1_residual") == 0 || (li[k * NLI + 3] && strcmp(tail + used, "g2_residual") == 0)))
        return 1;
    if (li[k * NLI + 3])
        for (const char *const *e = LAYER2; *e; e++)
            if (strcmp(tail + used, *e) == 0) return 1;
    return 0;
}

static dpc_status read_rf(const ctx *c, int64_t nt, int64_t tebd_dim, dpc_dpa2_params *D)
{
    dpc_error *err = c->err;
    const int p = c->p;
    char buf[1024];
    int64_t s1[1] = {NHEAD};
    const int64_t *h = ints(c, "rf.int", 1, s1, 0, MAX_WIDTH);
    if (!h) return err->status;
    const int64_t nl = h[0], nsel = h[1], n0 = h[2], g1 = h[3], has_shape = h[4], has_tebd = h[5];
    if (nl < 1 || nl > DPC_DPA2_MAX_LAYERS || nsel < 1 || nsel > MAX_SEL || n0 < 1 || g1 < 1 || has_shape > 1 ||
        has_tebd > 1) {
        fmt_ints(buf, sizeof buf, h, NHEAD, 0);
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: array 'part%d.rf.int' = %s (nlayers, rf_nsel, repinit_dim, "
                             "g1_dim, has_g1_shape, has_tebd_transform): expected 1 <= nlayers <= %d, positive sizes, "
                             "0/1 flags", p, p, buf, DPC_DPA2_MAX_LAYERS);
    }
    if (!has_shape && n0 != g1)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: array 'part%d.rf.int': no g1 shape transform but "
                             "repinit_dim %lld != g1_dim %lld", p, p, (long long)n0, (long long)g1);
    int64_t s2[1] = {2};
    const dpc_array *a = arr(c, "rf.real", DPC_DT_F64, 1, s2);
    if (!a) return err->status;
    const double *r = (const double *)a->data;
    if (!(isfinite(r[0]) && isfinite(r[1]) && 0 <= r[1] && r[1] < r[0]))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: array 'part%d.rf.real' = [%g, %g]: expected rcut > "
                             "rcut_smth >= 0", p, p, r[0], r[1]);
    int64_t sli[2] = {nl, NLI}, slr[2] = {nl, NLR};
    const int64_t *li = ints(c, "rf.layer_int", 2, sli, 0, MAX_WIDTH);
    if (!li) return err->status;
    if (!(a = arr(c, "rf.layer_real", DPC_DT_F64, 2, slr))) return err->status;
    const double *lr = (const double *)a->data;
    for (int64_t k = 0; k < nl * NLR; k++)
        if (!isfinite(lr[k]) || (k % NLR == 2 && !(lr[k] > 0)))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: array 'part%d.rf.layer_real': expected finite shifts "
                                 "and a positive layer-norm eps on every layer", p, p);
    const int64_t d2 = li[1];
    for (int64_t k = 0; k < nl; k++) {
        const int64_t *row = li + k * NLI;
        if (row[0] != g1 || row[1] != d2)
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: array 'part%d.rf.layer_int' row %lld: g1_dim/g2_dim "
                                 "%lld/%lld differ from layer 0's %lld/%lld", p, p, (long long)k, (long long)row[0],
                                 (long long)row[1], (long long)g1, (long long)d2);
        const int64_t ax = row[2], ch2 = row[3], lo = row[0] < row[1] ? row[0] : row[1];
        int64_t mn = row[0];
        for (int j = 1; j < 6; j++)
            if (j != 3 && j != 2 && row[j] < mn) mn = row[j];
        if (ax < mn) mn = ax;
        if (mn < 1 || ax > lo || ch2 != (k < nl - 1) || (ch2 && (row[6] < 1 || row[7] < 1))) {
            fmt_ints(buf, sizeof buf, row, NLI, 0);
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: array 'part%d.rf.layer_int' row %lld = %s (g1_dim, "
                                 "g2_dim, axis_neuron, update_chnnl_2, attn1_hidden, attn1_nhead, attn2_hidden, "
                                 "attn2_nhead): expected positive sizes, axis_neuron <= g1_dim and g2_dim, "
                                 "update_chnnl_2 = %d", p, p, (long long)k, buf, (int)(k < nl - 1));
        }
    }
    /* the update rule (dpa2_pack.UPDATE_STYLES), optional: absent is res_avg */
    int64_t style = DPC_RF_RES_AVG;
    char sname[48];
    snprintf(sname, sizeof sname, "part%d.rf.update_style", p);
    if (dpc_file_get(c->f, sname)) {
        int64_t s11[1] = {1};
        const int64_t *st = ints(c, "rf.update_style", 1, s11, 0, DPC_RF_RES_RESIDUAL);
        if (!st) return err->status;
        style = st[0];
    }
    /* g1_out_mlp, optional: absent is 1 (the self MLP); 0: g1 heads linear1's input */
    int64_t mlp = 1;
    snprintf(sname, sizeof sname, "part%d.rf.g1_out_mlp", p);
    if (dpc_file_get(c->f, sname)) {
        int64_t s11[1] = {1};
        const int64_t *st = ints(c, "rf.g1_out_mlp", 1, s11, 0, 1);
        if (!st) return err->status;
        mlp = st[0];
    }
    /* g1_out_conv, optional: absent is 1; 0: the convolution goes into linear1's input */
    int64_t conv = 1;
    snprintf(sname, sizeof sname, "part%d.rf.g1_out_conv", p);
    if (dpc_file_get(c->f, sname)) {
        int64_t s11[1] = {1};
        const int64_t *st = ints(c, "rf.g1_out_conv", 1, s11, 0, 1);
        if (!st) return err->status;
        conv = st[0];
    }
    /* attn2_has_gate, optional: absent is 0 */
    int64_t gate = 0;
    snprintf(sname, sizeof sname, "part%d.rf.attn2_has_gate", p);
    if (dpc_file_get(c->f, sname)) {
        int64_t s11[1] = {1};
        const int64_t *st = ints(c, "rf.attn2_has_gate", 1, s11, 0, 1);
        if (!st) return err->status;
        gate = st[0];
    }
    D->layers = calloc((size_t)nl, sizeof *D->layers);
    if (!D->layers) return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory reading part %d", p);
    dpc_repformer_stack *S = &D->stack;
    S->n_layers = nl;
    S->repinit_dim = n0;
    S->g1_dim = g1;
    S->g2_dim = d2;
    S->tebd_dim = tebd_dim;
    S->activation = -1;
    S->layers = D->layers;
    D->nsel = nsel;
    D->rcut = r[0];
    D->rcut_smth = r[1];
#define W(dst, rf, ndim, n0_, n1_)                                                  \
    do {                                                                            \
        if (!((dst) = weight(c, rf, ndim, n0_, n1_))) return err->status;           \
    } while (0)
    W(D->dstd, "rf.dstd", 2, nt, 4);
    W(S->g2_embd_w, "rf.g2_embd.w", 2, 1, d2);
    W(S->g2_embd_b, "rf.g2_embd.b", 1, d2, 0);
    S->g1_shape_w = S->tebd_transform_w = NULL;
    if (has_shape) W(S->g1_shape_w, "rf.g1_shape.w", 2, n0, g1);
    if (has_tebd) W(S->tebd_transform_w, "rf.tebd_transform.w", 2, tebd_dim, g1);
    for (int64_t k = 0; k < nl; k++) {
        const int64_t *row = li + k * NLI;
        const int64_t d1 = row[0], ax = row[2], h1 = row[4], n1 = row[5], h2 = row[6], n2 = row[7];
        dpc_repformer_layer *L = D->layers + k;
        L->g1_dim = d1;
        L->g2_dim = d2;
        L->axis_neuron = ax;
        L->update_chnnl_2 = row[3];
        L->attn1_hidden = h1;
        L->attn1_nhead = n1;
        L->attn2_hidden = h2;
        L->attn2_nhead = n2;
        L->attn1_shift = lr[k * NLR];
        L->attn2_shift = lr[k * NLR + 1];
        L->ln_eps = lr[k * NLR + 2];
        L->activation = -1;
        L->update_style = (int)style;
        L->g1_in_linear1 = !mlp;
        L->conv_in_linear1 = !conv;
        L->attn2_has_gate = (int)gate;
        char nm[48];
#define LW(field, suffix, ndim, a0, a1)                               \
    do {                                                              \
        snprintf(nm, sizeof nm, "rf%lld." suffix, (long long)k);      \
        W(L->field, nm, ndim, a0, a1);                                \
    } while (0)
        LW(linear1_w, "linear1.w", 2, d2 * ax + d1 * ax + (mlp ? 0 : d1) + (conv ? 0 : d2), d1);
        LW(linear1_b, "linear1.b", 1, d1, 0);
        if (mlp) {
            LW(g1_self_mlp_w, "g1_self_mlp.w", 2, d1, d1);
            LW(g1_self_mlp_b, "g1_self_mlp.b", 1, d1, 0);
        }
        LW(proj_g1g2_w, "proj_g1g2.w", 2, conv ? d2 : d1, conv ? d1 : d2);
        LW(mapq_w, "mapq.w", 2, d1, h1 * n1);
        LW(mapkv_w, "mapkv.w", 2, d1, (h1 + d1) * n1);
        LW(head_map1_w, "head_map1.w", 2, d1 * n1, d1);
        LW(head_map1_b, "head_map1.b", 1, d1, 0);
        if (row[3]) {
            LW(linear2_w, "linear2.w", 2, d2, d2);
            LW(linear2_b, "linear2.b", 1, d2, 0);
            LW(proj_g1g1g2_w, "proj_g1g1g2.w", 2, d1, d2);
            LW(mapqk_w, "mapqk.w", 2, d2, 2 * h2 * n2);
            LW(mapv_w, "mapv.w", 2, d2, d2 * n2);
            LW(head_map2_w, "head_map2.w", 2, d2 * n2, d2);
            LW(head_map2_b, "head_map2.b", 1, d2, 0);
            LW(ln_w, "ln_w", 1, d2, 0);
            LW(ln_b, "ln_b", 1, d2, 0);
        }
        if (style == DPC_RF_RES_RESIDUAL) { /* one row per update term, dpa2_pack.residual_shapes */
            LW(g1_residual, "g1_residual", 2, 2 + mlp + conv, d1);
            if (row[3]) LW(g2_residual, "g2_residual", 2, 3, d2);
        }
#undef LW
    }
#undef W
    for (int64_t k = 0; k < nt * 4; k++)
        if (!(D->dstd[k] > 0))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: array 'part%d.rf.dstd' holds a value <= 0 (it divides "
                                 "the environment matrix)", p, p);
    char prefix[24];
    const int np = snprintf(prefix, sizeof prefix, "part%d.rf", p);
    for (int64_t k = 0; k < c->f->n_arrays; k++) {
        const char *name = c->f->arrays[k].name;
        if (strncmp(name, prefix, (size_t)np) == 0 && !known_rf(name + np - 2, nl, (int)has_shape, (int)has_tebd, li, style, mlp))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "part %d: array '%s' is not part of this compressed DPA-2 "
                                 "(edited file?)", p, name);
    }
    return DPC_OK;
}

dpc_status dpc_dpa2_read(const dpc_file *f, int p, int64_t nt, int64_t tebd_dim, int64_t concat, const double *avg,
                         int64_t navg, dpc_dpa2_params *D, int64_t *dim, dpc_error *err)
{
    memset(D, 0, sizeof *D);
    if (concat != 1)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'part%d.int': concat %lld, a compressed DPA-2 appends the "
                             "type embedding (1)", p, (long long)concat);
    char name[48];
    snprintf(name, sizeof name, "part%d.gate_pad", p);
    if (dpc_file_get(f, name))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s': not used by a compressed DPA-2 (its type gate is "
                             "smooth)", name);
    for (int64_t k = 0; avg && k < navg; k++)
        if (avg[k] != 0.0)
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "array 'part%d.avg': entry %lld is %g; a compressed DPA-2 needs "
                                 "davg = 0", p, (long long)k, avg[k]);
    ctx c = {f, p, err};
    dpc_status st = read_rf(&c, nt, tebd_dim, D);
    int64_t s1[1] = {1};
    const int64_t *act = st == DPC_OK ? ints(&c, "rf.act", 1, s1, 0, DPC_ACT_COUNT - 1) : NULL;
    if (st == DPC_OK && !act) st = err->status;
    if (st == DPC_OK) { /* the repformers' activation (dpcompress/modelfile/dp_dpa2.py) */
        D->stack.activation = (int)act[0];
        for (int64_t k = 0; k < D->stack.n_layers; k++) D->layers[k].activation = (int)act[0];
    }
    if (st != DPC_OK) {
        dpc_dpa2_release(D);
        return st;
    }
    D->present = 1;
    *dim = D->stack.g1_dim + tebd_dim;
    return DPC_OK;
}

void dpc_dpa2_release(dpc_dpa2_params *D)
{
    free(D->layers);
    D->layers = NULL;
    D->stack.layers = NULL;
    D->present = 0;
}
