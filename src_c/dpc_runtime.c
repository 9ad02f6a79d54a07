/* One frame of a model: dpc_compute (API and conventions in dpc_model.h).
 *
 * The centers are taken in chunks of DPC_CHUNK; per chunk, for a DP energy model:
 *
 *   rows       every center's candidates gathered, ordered and cut into each part's neighbor
 *              rows (dpc_rows.c), OpenMP over centers
 *   forward    each part's fused table kernel -> its state (T, or D for se_e3)
 *   fitting    atoms by type in chunks of at most DPC_FIT_CHUNK rows (dpc_fitting.c); each chunk's
 *              rows of D are made from the parts' states when the chunk starts and its dE/dD turned
 *              back into dE/dstate when it ends, so D is never stored for the whole frame
 *   energies   e_i = keep_t (fit_t (F_t(D_i) + b_t) + beta_t)
 *   backward   each part's fused kernel -> dE/dr_ij per slot
 *   scatter    F_i += g, F_j -= g, W_j -= g (x) r in (center, slot) order, part 0 into the outputs
 *              and every further part into its own accumulator, added at the end in part order
 *
 * and for NEP: rows (one block, every neighbor within the largest cutoff), the NEP kernel per
 * center, its deterministic parallel scatter.  Every per-center result depends on that center
 * only and every sum runs in a fixed order: results do not depend on the thread count. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpc_dpa2_frame.h"
#include "dpc_model_internal.h"
#include "dpc_rows.h"

#ifdef _OPENMP
#include <omp.h>
#endif

dpc_workspace *dpc_workspace_new(void) { return (dpc_workspace *)calloc(1, sizeof(dpc_workspace)); }

void dpc_workspace_free(dpc_workspace *ws)
{
    if (!ws) return;
    dpc_buffer_free(&ws->chunk);
    dpc_buffer_free(&ws->frame);
    dpc_buffer_free(&ws->centers);
    dpc_buffer_free(&ws->fit_shared);
    dpc_buffer_free(&ws->dpa2);
    for (int k = 0; k < ws->n_thread_buffers; k++) {
        dpc_buffer_free(ws->threads + k);
        dpc_buffer_free(ws->fit_threads + k);
    }
    free(ws->threads);
    free(ws->fit_threads);
    free(ws);
}

size_t dpc_workspace_bytes(const dpc_workspace *ws)
{
    size_t n = ws->chunk.cap + ws->frame.cap + ws->centers.cap + ws->fit_shared.cap + ws->dpa2.cap;
    for (int k = 0; k < ws->n_thread_buffers; k++) n += ws->threads[k].cap + ws->fit_threads[k].cap;
    return n;
}

static int reserve_threads(dpc_workspace *ws, int n)
{
    if (n <= ws->n_thread_buffers) return 1;
    dpc_buffer *a = (dpc_buffer *)realloc(ws->threads, sizeof(dpc_buffer) * (size_t)n);
    if (!a) return 0;
    ws->threads = a;
    dpc_buffer *b = (dpc_buffer *)realloc(ws->fit_threads, sizeof(dpc_buffer) * (size_t)n);
    if (!b) return 0;
    ws->fit_threads = b;
    for (int k = ws->n_thread_buffers; k < n; k++) {
        ws->threads[k].data = ws->fit_threads[k].data = NULL;
        ws->threads[k].cap = ws->fit_threads[k].cap = 0;
    }
    ws->n_thread_buffers = n;
    return 1;
}

/* ------------------------------------------------------------------------------ frame checks */

static dpc_status check_frame(const dpc_model *m, const dpc_frame *f, const dpc_outputs *out, dpc_error *err)
{
    if (f->natoms < 0 || f->nlocal < 0 || f->nlocal > f->natoms || f->nimage < 0)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "frame sizes: natoms %lld, nlocal %lld, nimage %lld",
                             (long long)f->natoms, (long long)f->nlocal, (long long)f->nimage);
    if (f->natoms + f->nimage > INT32_MAX)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "%lld atoms and images exceed the 32-bit neighbor indices",
                             (long long)(f->natoms + f->nimage));
    if (f->natoms > 0 && (!f->x || !f->type || !out || !out->force))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "frame without coordinates, types or a force array");
    if (out && out->descriptor && m->kind != DPC_MODEL_DP_ENERGY)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "a NEP model has no descriptor output");
    if (f->nlocal > 0 && (!f->numneigh || !f->firstneigh))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "frame without candidate neighbors");
    if (f->nimage > 0 && (!f->cell || !f->image_owner || !f->image_lattice))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "periodic images need a cell, their owners and their lattice shifts");
    if (f->cell)
        for (int k = 0; k < 9; k++)
            if (!isfinite(f->cell[k])) return dpc_set_error(err, DPC_ERR_NONFINITE, "the cell is not finite");
    for (int64_t a = 0; a < f->natoms; a++) {
        if (f->type[a] < -1 || f->type[a] >= m->ntypes)
            return dpc_set_error(err, DPC_ERR_INDEX, "atom %lld has type %d; the model has types 0..%lld (or -1: skipped)",
                                 (long long)a, f->type[a], (long long)(m->ntypes - 1));
        if (!isfinite(f->x[3 * a]) || !isfinite(f->x[3 * a + 1]) || !isfinite(f->x[3 * a + 2]))
            return dpc_set_error(err, DPC_ERR_NONFINITE, "atom %lld has a non-finite coordinate", (long long)a);
    }
    for (int64_t g = 0; g < f->nimage; g++)
        if (f->image_owner[g] < 0 || f->image_owner[g] >= f->natoms)
            return dpc_set_error(err, DPC_ERR_INDEX, "image %lld names atom %d of %lld", (long long)g, f->image_owner[g],
                                 (long long)f->natoms);
    if (f->nsender != 0 && (f->nsender < f->nlocal || f->nsender > f->natoms))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "frame senders: nsender %lld, nlocal %lld, natoms %lld (need 0 or "
                             "nlocal <= nsender <= natoms)", (long long)f->nsender, (long long)f->nlocal, (long long)f->natoms);
    const int64_t nrows = f->nsender > f->nlocal && dpc_model_passes_messages(m) ? f->nsender : f->nlocal;
    if (nrows > f->nlocal && (!f->numneigh || !f->firstneigh))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "frame senders without candidate neighbors");
    for (int64_t i = 0; i < nrows; i++)
        if (f->numneigh[i] < 0 || (f->numneigh[i] > 0 && !f->firstneigh[i]))
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "center %lld: %d candidates", (long long)i, f->numneigh[i]);
    return DPC_OK;
}

static dpc_status report_issue(const dpc_row_issue *is, dpc_error *err)
{
    if (is->bad_index)
        return dpc_set_error(err, DPC_ERR_INDEX, "center %lld has candidate neighbor %lld, outside the frame's atoms and images",
                             (long long)is->bad_center, (long long)is->bad_value);
    err->atom_i = is->key[0];
    err->atom_j = is->key[1];
    for (int c = 0; c < 3; c++) err->shift[c] = is->key[2 + c];
    err->d2 = is->d2;
    return dpc_set_error(err, DPC_ERR_COINCIDENT, "atoms %lld and %lld (lattice shift %lld %lld %lld) coincide: distance %.3g A < %g A",
                         (long long)is->key[0], (long long)is->key[1], (long long)is->key[2], (long long)is->key[3],
                         (long long)is->key[4], sqrt(is->d2), DPC_COINCIDE);
}

/* The worst (center, block) sel overflow of one part: largest count, then first in order. */
typedef struct {
    int64_t total, worst, atom, block;
} overflow_stat;

static void overflow_merge(overflow_stat *into, const overflow_stat *from)
{
    into->total += from->total;
    if (from->worst > into->worst ||
        (from->worst == into->worst && from->worst > 0 &&
         (from->atom < into->atom || (from->atom == into->atom && from->block < into->block)))) {
        into->worst = from->worst;
        into->atom = from->atom;
        into->block = from->block;
    }
}

/* ------------------------------------------------------------------------------ DP energy */

typedef struct {
    const dpc_model *m;
    dpc_part_arrays pa[DPC_MAX_PARTS];
    const int64_t *types; /* [chunk] */
    const int64_t *centers;    /* [chunk] atom index of each row */
    const double *fparam;      /* the frame's raw [nfparam] (or the model's default), NULL without */
    const double *aparam;      /* the frame's raw [nlocal][nfit_params - nfparam], NULL without */
    const double *zscale;      /* [chunk] DP + ZBL: 1 - w of each row (dE/dD is scaled by it), NULL without */
    dpc_dpa2_frame *dpa2;      /* DPA-2: its g1 is D's first columns, dE/dg1 goes to dpa2->dg1 */
} fit_ctx;

/* Rows of D from the parts' states. */
/* The descriptor D of chunk row k (m->dim values) from the parts' states. */
static void descriptor_row(const fit_ctx *c, int64_t k, double *xr)
{
    const dpc_model *m = c->m;
    int64_t col = 0;
    for (int p = 0; p < m->nparts; p++) {
        const dpc_part *P = m->parts + p;
        const double *st = c->pa[p].state + k * P->state_dim;
        if (P->kind == DPC_PART_DPA2) { /* [g1, E_t] */
            const int64_t d1 = P->dpa2.stack.g1_dim;
            memcpy(xr + col, c->dpa2->g1 + k * d1, sizeof(double) * d1);
            memcpy(xr + col + d1, P->type_embedding + c->types[k] * P->tebd_dim, sizeof(double) * P->tebd_dim);
            col += d1 + P->tebd_dim;
        } else if (P->kind == DPC_PART_SE_A || P->kind == DPC_PART_SE_ATTEN || P->kind == DPC_PART_DPA1) {
            dpc_descriptor_from_T_atom(P->M, P->A, st, xr + col);
            col += P->M * P->A;
            if (P->concat) {
                memcpy(xr + col, P->type_embedding + c->types[k] * P->tebd_dim, sizeof(double) * P->tebd_dim);
                col += P->tebd_dim;
            }
        } else if (P->kind == DPC_PART_SE_R) {
            for (int64_t q = 0; q < P->M; q++) xr[col + q] = st[q] * DPC_SE_R_RESCALE;
            col += P->M;
        } else {
            memcpy(xr + col, st, sizeof(double) * P->M);
            col += P->M;
            if (P->kind == DPC_PART_SE_T_TEBD && P->concat) { /* se_e3_tebd: [D, E_t] */
                memcpy(xr + col, P->type_embedding + c->types[k] * P->tebd_dim, sizeof(double) * P->tebd_dim);
                col += P->tebd_dim;
            }
        }
    }
}

/* Rows of the fitting input: D, then the atom's parameters. */
static void fill_rows(void *vctx, const dpc_index *rows, dpc_index n, double *x)
{
    const fit_ctx *c = (const fit_ctx *)vctx;
    const dpc_model *m = c->m;
    for (dpc_index r = 0; r < n; r++) {
        const int64_t k = rows[r];
        double *xr = x + r * (m->dim + m->nfit_params);
        if (m->nfit_params) { /* the fitting input's last columns: the parameters, normalised (DeePMD-kit's order) */
            const int64_t nf = m->nfparam, na = m->nfit_params - nf;
            const double *avg = m->param_avg, *inv = m->param_inv_std, *ai = na ? c->aparam + c->centers[k] * na : NULL;
            double *p = xr + m->dim;
            for (int64_t q = 0; q < nf; q++) p[q] = (c->fparam[q] - avg[q]) * inv[q];
            for (int64_t q = 0; q < na; q++) p[nf + q] = (ai[q] - avg[nf + q]) * inv[nf + q];
        }
        descriptor_row(c, k, xr);
    }
}

/* dE/dD rows (masked by the atom exclusions) back to each part's dE/dstate. */
static void take_rows(void *vctx, const dpc_index *rows, dpc_index n, double *dx)
{
    const fit_ctx *c = (const fit_ctx *)vctx;
    const dpc_model *m = c->m;
    for (dpc_index r = 0; r < n; r++) {
        const int64_t k = rows[r], t = c->types[k];
        double *dr = dx + r * (m->dim + m->nfit_params); /* the parameters' columns are not taken */
        const double mask = m->fit_mask[t] * m->keep_mask[t] * (c->zscale ? c->zscale[k] : 1.0);
        for (int64_t q = 0; q < m->dim; q++) dr[q] = dr[q] * mask;
        int64_t col = 0;
        for (int p = 0; p < m->nparts; p++) {
            const dpc_part *P = m->parts + p;
            const double *st = c->pa[p].state + k * P->state_dim;
            double *ds = c->pa[p].dstate + k * P->state_dim;
            if (P->kind == DPC_PART_DPA2) {
                const int64_t d1 = P->dpa2.stack.g1_dim;
                memcpy(c->dpa2->dg1 + k * d1, dr + col, sizeof(double) * d1);
                col += d1 + P->tebd_dim;
            } else if (P->kind == DPC_PART_SE_A || P->kind == DPC_PART_SE_ATTEN || P->kind == DPC_PART_DPA1) {
                dpc_descriptor_gradient_to_T_atom(P->M, P->A, st, dr + col, ds);
                col += P->M * P->A + (P->concat ? P->tebd_dim : 0);
            } else if (P->kind == DPC_PART_SE_R) {
                for (int64_t q = 0; q < P->M; q++) ds[q] = dr[col + q] * DPC_SE_R_RESCALE;
                col += P->M;
            } else {
                memcpy(ds, dr + col, sizeof(double) * P->M);
                col += P->M + (P->kind == DPC_PART_SE_T_TEBD && P->concat ? P->tebd_dim : 0);
            }
        }
    }
}

/* Carve the per-chunk arrays (base NULL: only count the bytes). */
static size_t carve_dp_chunk(const dpc_model *m, int64_t n, char *base, int64_t **types, double **energy,
                             dpc_part_arrays *pa)
{
    size_t off = 0;
    *types = (int64_t *)dpc_carve(base, &off, sizeof(int64_t) * n);
    *energy = (double *)dpc_carve(base, &off, sizeof(double) * n);
    for (int p = 0; p < m->nparts; p++) {
        const dpc_part *P = m->parts + p;
        dpc_part_arrays *a = pa + p;
        a->index = (int64_t *)dpc_carve(base, &off, sizeof(int64_t) * n * P->nnei);
        a->vectors = (double *)dpc_carve(base, &off, sizeof(double) * n * P->nnei * 3);
        a->counts = (int64_t *)dpc_carve(base, &off, sizeof(int64_t) * n * P->nblocks);
        a->overflow = (int64_t *)dpc_carve(base, &off, sizeof(int64_t) * n * P->nblocks);
        a->gate_index = (P->kind == DPC_PART_SE_ATTEN || P->kind == DPC_PART_SE_T_TEBD || P->kind == DPC_PART_DPA1 ||
                         P->kind == DPC_PART_DPA2)
                            ? (int64_t *)dpc_carve(base, &off, sizeof(int64_t) * n * P->nnei) : NULL;
        a->state = (double *)dpc_carve(base, &off, sizeof(double) * n * P->state_dim);
        a->dstate = (double *)dpc_carve(base, &off, sizeof(double) * n * P->state_dim);
        a->pair_grad = (double *)dpc_carve(base, &off, sizeof(double) * n * P->nnei * 3);
        a->beyond = (int64_t *)dpc_carve(base, &off, sizeof(int64_t) * 2 * n);
    }
    return off;
}

/* One descriptor part's tabulated kernel over the chunk's n centers: forward (descriptor state and
 * the beyond-table counts) or backward (pair gradients from the descriptor gradient). */
static dpc_status run_part(const dpc_part *P, dpc_part_arrays *a, int64_t n, const int64_t *ctypes,
                           dpc_buffer *threads, int nth, int backward)
{
    if (P->kind == DPC_PART_SE_T || P->kind == DPC_PART_SE_T_TEBD) {
        dpc_se_t_tab_args t = P->t;
        t.neighbor_type = a->gate_index; /* se_e3_tebd: each slot's neighbor type (NULL for se_e3) */
        t.natoms = n;
        t.center_types = ctypes;
        t.vectors = a->vectors;
        t.counts = a->counts;
        t.thread_scratch = threads;
        return backward ? dpc_se_t_tab_backward(&t, nth, a->dstate, a->pair_grad)
                        : dpc_se_t_tab_forward(&t, nth, a->state, a->beyond, a->beyond + n);
    }
    dpc_se_a_tab_args s = P->a;
    s.natoms = n;
    s.center_types = ctypes;
    s.vectors = a->vectors;
    s.counts = a->counts;
    s.gate_index = a->gate_index;
    if (P->kind == DPC_PART_DPA1)
        return backward ? dpc_dpa1_backward(&s, &P->att, threads, nth, a->dstate, a->pair_grad)
                        : dpc_dpa1_forward(&s, &P->att, threads, nth, a->state, a->beyond, a->beyond + n);
    return backward ? dpc_se_a_tab_backward(&s, nth, a->dstate, a->pair_grad)
                    : dpc_se_a_tab_forward(&s, nth, a->state, a->beyond, a->beyond + n);
}

static dpc_status compute_dp(const dpc_model *m, dpc_workspace *ws, const dpc_frame *f, const int64_t *centers,
                             int64_t ncenters, int64_t nlocal_rows, int nth, const dpc_outputs *out, dpc_result *res,
                             dpc_error *err)
{
    /* DPA-2 passes messages: one chunk holds every row (centers, then senders); it is the only part */
    const int dpa2 = m->parts[0].kind == DPC_PART_DPA2;
    const int64_t cap = dpa2 ? ncenters : ncenters < DPC_CHUNK ? ncenters : DPC_CHUNK;
    int64_t *ctypes;
    double *efit, *zs = NULL, *zw = NULL, *zb = NULL, *zde = NULL, *zdw = NULL;
    fit_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.m = m;
    char *base = (char *)dpc_buffer_reserve(&ws->chunk, carve_dp_chunk(m, cap, NULL, &ctypes, &efit, ctx.pa));
    if (!base) return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory for the chunk buffers");
    carve_dp_chunk(m, cap, base, &ctypes, &efit, ctx.pa);
    ctx.types = ctypes;
    dpc_dpa2_frame F;
    if (dpa2) {
        char *fb = (char *)dpc_buffer_reserve(&ws->dpa2, dpc_dpa2_frame_carve(m->parts, cap, f->natoms, NULL, &F));
        if (!fb) return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory for the DPA-2 arrays");
        dpc_dpa2_frame_carve(m->parts, cap, f->natoms, fb, &F);
        ctx.dpa2 = &F;
    }
    {
        const int64_t nf = m->nfparam, na = m->nfit_params - m->nfparam;
        ctx.fparam = nf ? (f->fparam ? f->fparam : m->default_fparam) : NULL;
        ctx.aparam = na ? f->aparam : NULL;
        if (nf && !ctx.fparam)
            return dpc_set_error(err, DPC_ERR_ARGUMENT,
                                 "the model takes %lld frame parameters (numb_fparam) and stores no default_fparam; "
                                 "this caller passes none", (long long)nf);
        if (na && !ctx.aparam && ncenters > 0)
            return dpc_set_error(err, DPC_ERR_ARGUMENT,
                                 "the model takes %lld atomic parameters per atom (numb_aparam); this caller passes none",
                                 (long long)na);
        if (!nf && f->fparam)
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "frame parameters given, but the model takes none (numb_fparam = 0)");
        if (!na && f->aparam)
            return dpc_set_error(err, DPC_ERR_ARGUMENT, "atomic parameters given, but the model takes none (numb_aparam = 0)");
    }
    /* accumulators of parts 1.. (per atom, the whole frame) */
    {
        const int want_av = out->atom_virial != NULL;
        size_t size = 0;
        for (int p = 1; p < m->nparts; p++) {
            dpc_carve(NULL, &size, sizeof(double) * 3 * f->natoms);
            if (want_av) dpc_carve(NULL, &size, sizeof(double) * 9 * f->natoms);
        }
        if (m->zbl.present) dpc_carve(NULL, &size, sizeof(double) * cap * (3 + 2 * m->parts[0].nnei));
        char *fb = size ? (char *)dpc_buffer_reserve(&ws->frame, size) : NULL;
        if (size && !fb) return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory for the part accumulators");
        size_t off = 0;
        for (int p = 1; p < m->nparts; p++) {
            ctx.pa[p].force = (double *)dpc_carve(fb, &off, sizeof(double) * 3 * f->natoms);
            memset(ctx.pa[p].force, 0, sizeof(double) * 3 * f->natoms);
            ctx.pa[p].atom_virial = want_av ? (double *)dpc_carve(fb, &off, sizeof(double) * 9 * f->natoms) : NULL;
            if (want_av) memset(ctx.pa[p].atom_virial, 0, sizeof(double) * 9 * f->natoms);
        }
        if (m->zbl.present) { /* DP + ZBL per chunk row: 1 - w, w, b (then b - a), d(E/2)/dr and dw/dr per slot */
            zs = (double *)dpc_carve(fb, &off, sizeof(double) * cap * (3 + 2 * m->parts[0].nnei));
            zw = zs + cap;
            zb = zw + cap;
            zde = zb + cap;
            zdw = zde + cap * m->parts[0].nnei;
            ctx.zscale = zs;
        }
        ctx.pa[0].force = out->force;
        ctx.pa[0].atom_virial = out->atom_virial;
    }
    dpc_row_spec spec[DPC_MAX_PARTS];
    for (int p = 0; p < m->nparts; p++) {
        const dpc_part *P = m->parts + p;
        spec[p].rcut2 = P->rcut * P->rcut;
        spec[p].nblocks = P->nblocks;
        spec[p].nnei = P->nnei;
        spec[p].sel_offsets = P->sel_offsets;
        spec[p].mixed = P->mixed;
        spec[p].pair_exclude = m->pair_exclude;
        spec[p].ntypes = m->ntypes;
    }
    overflow_stat ovf[DPC_MAX_PARTS];
    for (int p = 0; p < m->nparts; p++) ovf[p] = (overflow_stat){0, 0, -1, -1};
    const double rcut2 = m->rcut * m->rcut, coincide2 = DPC_COINCIDE * DPC_COINCIDE;

    for (int64_t c0 = 0; c0 < ncenters; c0 += cap) {
        const int64_t n = ncenters - c0 < cap ? ncenters - c0 : cap;
        const int64_t nfit = dpa2 ? nlocal_rows : n; /* rows with an energy (a sender has none) */
        const int64_t *cc = centers + c0;
        for (int64_t k = 0; k < n; k++) ctypes[k] = f->type[cc[k]];

        /* rows */
        dpc_row_issue issue;
        memset(&issue, 0, sizeof issue);
        int alloc_failed = 0;
#pragma omp parallel num_threads(nth)
        {
            dpc_row_issue mine;
            memset(&mine, 0, sizeof mine);
            overflow_stat my_ovf[DPC_MAX_PARTS];
            for (int p = 0; p < m->nparts; p++) my_ovf[p] = (overflow_stat){0, 0, -1, -1};
            dpc_buffer *buf = dpc_thread_buffer(ws->threads, NULL);
            dpc_sorted_neighbors sn;
#pragma omp for schedule(dynamic, 16)
            for (int64_t k = 0; k < n; k++) {
                const int64_t i = cc[k];
                const dpc_status st = dpc_gather_neighbors(f, i, rcut2, coincide2, buf, &sn, &mine);
                if (st == DPC_ERR_ALLOC) {
#pragma omp atomic write
                    alloc_failed = 1;
                }
                if (st != DPC_OK) continue;
                for (int p = 0; p < m->nparts; p++) {
                    const dpc_part *P = m->parts + p;
                    dpc_part_arrays *a = ctx.pa + p;
                    int64_t *idx = a->index + k * P->nnei;
                    int64_t *ov = a->overflow + k * P->nblocks;
                    dpc_fill_row(&sn, spec + p, f->type, f->type[i], idx, a->vectors + k * P->nnei * 3,
                                 a->counts + k * P->nblocks, ov);
                    for (int64_t b = 0; b < P->nblocks && k < nfit; b++) {
                        if (!ov[b]) continue;
                        const overflow_stat one = {ov[b], ov[b], i, b};
                        overflow_merge(my_ovf + p, &one);
                    }
                    if (a->gate_index) { /* se_e3_tebd: gate_of gives the neighbor's type, or -1 (excluded) */
                        int64_t *gi = a->gate_index + k * P->nnei;
                        const int64_t *row = P->gate_of + (int64_t)f->type[i] * m->ntypes;
                        for (int64_t s = 0; s < P->nnei; s++) gi[s] = idx[s] < 0 ? -1 : row[f->type[idx[s]]];
                    }
                }
            }
#pragma omp critical(dpc_runtime_rows)
            {
                dpc_row_issue_merge(&issue, &mine);
                for (int p = 0; p < m->nparts; p++) overflow_merge(ovf + p, my_ovf + p);
            }
        }
        if (alloc_failed) return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory for the neighbor rows");
        if (issue.bad_index || issue.coincident) return report_issue(&issue, err);
        if (m->zbl.present) { /* DP + ZBL: the table, the weight and their slot derivatives on part 0's rows */
            const int64_t W = m->parts[0].nnei;
            int below = 0;
#pragma omp parallel for num_threads(nth) schedule(dynamic, 16) reduction(| : below)
            for (int64_t k = 0; k < n; k++) {
                below |= dpc_zbl_center(&m->zbl, ctypes[k], f->type, W, ctx.pa[0].index + k * W,
                                        ctx.pa[0].vectors + k * W * 3, zb + k, zw + k, zde + k * W, zdw + k * W);
                zs[k] = 1.0 - zw[k];
            }
            if (below)
                return dpc_set_error(err, DPC_ERR_ARGUMENT, "a pair distance is below the pair table's first point "
                                     "%g Å (DeePMD-kit refuses it: 'coord go beyond table lower boundary')", m->zbl.rmin);
        }

        /* forward */
        for (int p = 0; p < m->nparts; p++) {
            const dpc_part *P = m->parts + p;
            dpc_part_arrays *a = ctx.pa + p;
            const dpc_status st = run_part(P, a, n, ctypes, ws->threads, nth, 0);
            if (st != DPC_OK) return dpc_set_error(err, st, "part %d: the forward kernel failed (status %d)", p, (int)st);
            for (int64_t k = 0; k < nfit; k++) {
                res->beyond_fine += a->beyond[k];
                res->beyond_table += a->beyond[n + k];
            }
            if (P->kind == DPC_PART_DPA2) {
                dpc_status sd = dpc_dpa2_inputs(P, ctypes, f->natoms, cc, nlocal_rows, a->index, a->vectors, nth, &F, err);
                if (sd == DPC_OK) sd = dpc_dpa2_forward(P, ctypes, a->state, nth, &F, err);
                if (sd != DPC_OK) return sd;
                const overflow_stat one = {F.overflow, F.overflow_worst, F.overflow_atom, 1}; /* block 1: the repformer's */
                overflow_merge(ovf + p, &one);
                memset(F.dg1, 0, sizeof(double) * n * P->dpa2.stack.g1_dim); /* senders' rows stay 0 */
            }
        }

        if (out->descriptor)
            for (int64_t k = 0; k < nfit; k++) descriptor_row(&ctx, k, out->descriptor + cc[k] * m->dim);

        /* fitting, energies */
        {
            dpc_fitting_args fa;
            memset(&fa, 0, sizeof fa);
            fa.natoms = nfit;
            fa.dim = m->dim + m->nfit_params;
            ctx.centers = cc;
            fa.ntypes = m->ntypes;
            fa.atom_types = ctypes;
            fa.net_start = m->net_start;
            fa.layers = m->layers;
            fa.bias = m->fit_bias;
            fa.dgemm = m->dgemm;
            fa.fill = fill_rows;
            fa.take = take_rows;
            fa.ctx = &ctx;
            fa.thread_scratch = ws->fit_threads;
            fa.shared_scratch = &ws->fit_shared;
            const dpc_status st = dpc_fitting_forward_backward(&fa, nth, efit, NULL);
            if (st != DPC_OK) return dpc_set_error(err, st, "the fitting net failed (status %d)", (int)st);
        }
        for (int64_t k = 0; k < nfit; k++) {
            const int64_t t = ctypes[k];
            double e = m->keep_mask[t] * (m->fit_mask[t] * efit[k] + m->out_bias[t]);
            if (m->zbl.present) { /* E = (1 - w) a + w b + bias; keep b - a for the weight's gradient */
                const double a = e;
                e = (1.0 - zw[k]) * a + zw[k] * zb[k] + m->zbl.bias[t];
                zb[k] -= a;
            }
            if (out->atom_energy) out->atom_energy[cc[k]] += e;
            res->energy += e;
        }

        /* backward, scatter */
        for (int p = 0; p < m->nparts; p++) {
            const dpc_part *P = m->parts + p;
            dpc_part_arrays *a = ctx.pa + p;
            if (P->kind == DPC_PART_DPA2) {
                const dpc_status sd = dpc_dpa2_backward(P, a->state, F.dg1, nth, &F, a->dstate, err);
                if (sd != DPC_OK) return sd;
            }
            const dpc_status st = run_part(P, a, n, ctypes, ws->threads, nth, 1);
            if (st != DPC_OK) return dpc_set_error(err, st, "part %d: the backward kernel failed (status %d)", p, (int)st);
            if (P->kind == DPC_PART_DPA2) {
                dpc_dpa2_add_rf_grad(P, &F, a->pair_grad);
                if (out->atom_virial) { /* three weighted passes: the per-atom split of messages (dpc_dpa2_frame.h) */
                    const int64_t d1 = P->dpa2.stack.g1_dim;
                    dpc_part_arrays h = *a;
                    h.pair_grad = F.H;
                    for (int b = 0; b < 3; b++) {
                        for (int64_t k = 0; k < n; k++)
                            for (int64_t q = 0; q < d1; q++) F.wdg1[k * d1 + q] = F.dg1[k * d1 + q] * f->x[3 * cc[k] + b];
                        dpc_status sd = dpc_dpa2_backward(P, a->state, F.wdg1, nth, &F, h.dstate, err);
                        if (sd != DPC_OK) return sd;
                        sd = run_part(P, &h, n, ctypes, ws->threads, nth, 1);
                        if (sd != DPC_OK) return dpc_set_error(err, sd, "part %d: the backward kernel failed (status %d)", p, (int)sd);
                        dpc_dpa2_add_rf_grad(P, &F, F.H);
                        dpc_dpa2_virial_term(P, &F, cc, f->x, a->index, a->pair_grad, b, out->atom_virial);
                    }
                }
            }
            if (p == 0 && m->zbl.present)
                for (int64_t k = 0; k < n; k++)
                    dpc_zbl_pair_grad(P->nnei, a->index + k * P->nnei, a->vectors + k * P->nnei * 3, zw[k], zb[k],
                                      zde + k * P->nnei, zdw + k * P->nnei, a->pair_grad + k * P->nnei * 3);
            dpc_scatter_rows(n, cc, P->nnei, a->index, a->vectors, a->pair_grad, a->force, a->atom_virial, res->virial);
        }
    }
    for (int p = 1; p < m->nparts; p++) {
        const dpc_part_arrays *a = ctx.pa + p;
        for (int64_t q = 0; q < 3 * f->natoms; q++) out->force[q] += a->force[q];
        if (out->atom_virial)
            for (int64_t q = 0; q < 9 * f->natoms; q++) out->atom_virial[q] += a->atom_virial[q];
    }
    for (int p = 0; p < m->nparts; p++) {
        res->overflow += ovf[p].total;
        if (ovf[p].worst > res->overflow_worst) {
            res->overflow_worst = ovf[p].worst;
            res->overflow_atom = ovf[p].atom;
            res->overflow_block = ovf[p].block;
            res->overflow_part = p;
        }
    }
    return DPC_OK;
}

/* ------------------------------------------------------------------------------ NEP */

static size_t carve_nep_chunk(int64_t n, int64_t width, char *base, int64_t **index, double **vectors,
                              int64_t **counts, double **pair_force, double **energy, int64_t **found,
                              double **virial_rows)
{
    size_t off = 0;
    *virial_rows = (double *)dpc_carve(base, &off, sizeof(double) * 9 * n);
    *index = (int64_t *)dpc_carve(base, &off, sizeof(int64_t) * n * width);
    *vectors = (double *)dpc_carve(base, &off, sizeof(double) * n * width * 3);
    *counts = (int64_t *)dpc_carve(base, &off, sizeof(int64_t) * n);
    *pair_force = (double *)dpc_carve(base, &off, sizeof(double) * n * width * 3);
    *energy = (double *)dpc_carve(base, &off, sizeof(double) * n);
    *found = (int64_t *)dpc_carve(base, &off, sizeof(int64_t) * n);
    return off;
}

static dpc_status compute_nep(const dpc_model *m, dpc_workspace *ws, const dpc_frame *f, const int64_t *centers,
                              int64_t ncenters, const int64_t *types64, int nth, const dpc_outputs *out,
                              dpc_result *res, dpc_error *err)
{
    const int64_t cap = ncenters < DPC_CHUNK ? ncenters : DPC_CHUNK;
    const double rcut2 = m->rcut * m->rcut, coincide2 = DPC_COINCIDE * DPC_COINCIDE;
    if (ws->nep_width < 1) ws->nep_width = 64;
    int64_t *index, *counts, *found;
    double *vectors, *pf, *energy, *wrows;
    for (int64_t c0 = 0; c0 < ncenters; c0 += cap) {
        const int64_t n = ncenters - c0 < cap ? ncenters - c0 : cap;
        const int64_t *cc = centers + c0;
        for (;;) { /* rows; once more with a wider row when a center has more neighbors than fit */
            const int64_t W = ws->nep_width;
            char *base = (char *)dpc_buffer_reserve(&ws->chunk, carve_nep_chunk(cap, W, NULL, &index, &vectors, &counts, &pf, &energy, &found, &wrows));
            if (!base) return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory for the chunk buffers");
            carve_nep_chunk(cap, W, base, &index, &vectors, &counts, &pf, &energy, &found, &wrows);
            const dpc_row_spec spec = {rcut2, 1, W, NULL, 1, NULL, m->ntypes};
            dpc_row_issue issue;
            memset(&issue, 0, sizeof issue);
            int alloc_failed = 0;
#pragma omp parallel num_threads(nth)
            {
                dpc_row_issue mine;
                memset(&mine, 0, sizeof mine);
                dpc_buffer *buf = dpc_thread_buffer(ws->threads, NULL);
                dpc_sorted_neighbors sn;
#pragma omp for schedule(dynamic, 16)
                for (int64_t k = 0; k < n; k++) {
                    const dpc_status st = dpc_gather_neighbors(f, cc[k], rcut2, coincide2, buf, &sn, &mine);
                    if (st == DPC_ERR_ALLOC) {
#pragma omp atomic write
                        alloc_failed = 1;
                    }
                    found[k] = 0;
                    if (st != DPC_OK) continue;
                    found[k] = dpc_fill_row(&sn, &spec, f->type, f->type[cc[k]], index + k * W, vectors + k * W * 3,
                                            counts + k, NULL);
                }
#pragma omp critical(dpc_runtime_nep_rows)
                dpc_row_issue_merge(&issue, &mine);
            }
            if (alloc_failed) return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory for the neighbor rows");
            if (issue.bad_index || issue.coincident) return report_issue(&issue, err);
            int64_t need = 0;
            for (int64_t k = 0; k < n; k++)
                if (found[k] > need) need = found[k];
            if (need <= W) break;
            ws->nep_width = need + need / 4 + 8;
        }
        const int64_t W = ws->nep_width;
        const int st = dpc_nep_rows(&m->nep, n, cc, f->natoms, types64, W, index, vectors, counts, nth, ws->threads,
                                    energy, pf, NULL, wrows);
        if (st != DPC_OK)
            return dpc_set_error(err, (dpc_status)st, "the NEP kernel failed (status %d): %s", st,
                                 st == DPC_ERR_NONFINITE ? "a pair at zero distance" : "bad sizes or indices");
        for (int64_t k = 0; k < n; k++) {
            if (out->atom_energy) out->atom_energy[cc[k]] += energy[k];
            res->energy += energy[k];
        }
        dpc_nep_scatter_rows(n, cc, f->natoms, W, index, vectors, counts, pf, nth, out->force, out->atom_virial);
        for (int64_t k = 0; k < n; k++)
            for (int q = 0; q < 9; q++) res->virial[q] += wrows[9 * k + q];
    }
    return DPC_OK;
}

/* ------------------------------------------------------------------------------ API */

dpc_status dpc_compute(const dpc_model *m, dpc_workspace *ws, const dpc_frame *f, int n_threads,
                       const dpc_outputs *out, dpc_result *res, dpc_error *err)
{
    dpc_error local;
    if (!err) err = &local;
    memset(err, 0, sizeof *err);
    memset(res, 0, sizeof *res);
    res->overflow_atom = res->overflow_block = res->overflow_part = -1;
    if (!m || !ws || !f) return dpc_set_error(err, DPC_ERR_ARGUMENT, "model, workspace and frame are required");
    const int nth = n_threads < 1 ? 1 : n_threads;
    dpc_status st = check_frame(m, f, out, err);
    if (st != DPC_OK) return st;
    if (!reserve_threads(ws, nth)) return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory for the thread buffers");
    /* centers (atoms the model handles) and, for NEP, 64-bit types of every atom */
    /* rows: the centers, then (a model passing messages) the senders */
    const int64_t nrows = f->nsender > f->nlocal && dpc_model_passes_messages(m) ? f->nsender : f->nlocal;
    int64_t ncenters = 0, nlocal_rows = 0;
    for (int64_t i = 0; i < nrows; i++) {
        ncenters += f->type[i] >= 0;
        nlocal_rows += i < f->nlocal && f->type[i] >= 0;
    }
    const int nep = m->kind == DPC_MODEL_NEP;
    size_t size = 0;
    dpc_carve(NULL, &size, sizeof(int64_t) * (ncenters ? ncenters : 1));
    if (nep) dpc_carve(NULL, &size, sizeof(int64_t) * (f->natoms ? f->natoms : 1));
    char *base = (char *)dpc_buffer_reserve(&ws->centers, size);
    if (!base) return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory for the list of centers");
    size_t off = 0;
    int64_t *centers = (int64_t *)dpc_carve(base, &off, sizeof(int64_t) * (ncenters ? ncenters : 1));
    int64_t *types64 = nep ? (int64_t *)dpc_carve(base, &off, sizeof(int64_t) * (f->natoms ? f->natoms : 1)) : NULL;
    for (int64_t i = 0, k = 0; i < nrows; i++)
        if (f->type[i] >= 0) centers[k++] = i;
    if (nep)
        for (int64_t a = 0; a < f->natoms; a++) types64[a] = f->type[a];
    int64_t most = 0;
    for (int64_t k = 0; k < ncenters; k++)
        if (f->numneigh[centers[k]] > most) most = f->numneigh[centers[k]];
    for (int t = 0; t < nth; t++)
        if (!dpc_gather_reserve(ws->threads + t, most))
            return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory for the neighbor candidates");
    if (nlocal_rows == 0)
        st = DPC_OK;
    else if (nep)
        st = compute_nep(m, ws, f, centers, ncenters, types64, nth, out, res, err);
    else
        st = compute_dp(m, ws, f, centers, ncenters, nlocal_rows, nth, out, res, err);
    return st;
}
