/* Many frames in one call: see dpc_frames.h.  The numpy twin is
 * dpcompress.reference.runtime.compute_frames (a loop of the single-frame twin). */
#include "dpc_frames.h"

#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "dpc_buffer.h"
#include "dpc_model_file.h"
#include "dpc_neighbors.h"

/* Scratch of one batch, sized for the largest frame met so far. */
typedef struct {
    dpc_buffer atoms;      /* frac, wrapped [natoms][3]; wrap [natoms][3] int32 */
    dpc_buffer images;     /* image owner [nimage], image lattice [nimage][3] */
    dpc_buffer lists;      /* offsets [natoms + 1], numneigh [natoms], firstneigh [natoms] */
    dpc_buffer index;      /* candidates */
} frame_scratch;

static void scratch_free(frame_scratch *s)
{
    dpc_buffer_free(&s->atoms);
    dpc_buffer_free(&s->images);
    dpc_buffer_free(&s->lists);
    dpc_buffer_free(&s->index);
}

/* Frame f's candidates into s, and fr pointed at them. */
static dpc_status frame_candidates(const dpc_model *model, const dpc_batch *b, int64_t f, double rcut, int nth,
                                   frame_scratch *s, dpc_frame *fr, dpc_error *err)
{
    const int64_t n = b->natoms;
    const double *x = b->x + 3 * n * f;
    const double *cell = b->cell && (!b->periodic || b->periodic[f]) ? b->cell + 9 * f : NULL;
    size_t size = 0;
    dpc_carve(NULL, &size, sizeof(double) * 3 * (size_t)n);
    dpc_carve(NULL, &size, sizeof(double) * 3 * (size_t)n);
    dpc_carve(NULL, &size, sizeof(int32_t) * 3 * (size_t)n);
    char *base = (char *)dpc_buffer_reserve(&s->atoms, size);
    if (!base) return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory for the bins of %lld atoms", (long long)n);
    size_t off = 0;
    double *frac = (double *)dpc_carve(base, &off, sizeof(double) * 3 * (size_t)n);
    double *wrapped = (double *)dpc_carve(base, &off, sizeof(double) * 3 * (size_t)n);
    int32_t *wrap = (int32_t *)dpc_carve(base, &off, sizeof(int32_t) * 3 * (size_t)n);

    const double search = dpc_search_radius(n, x, rcut);
    dpc_bins bins;
    dpc_status st = dpc_cell_list_bins(n, x, cell, search, frac, wrapped, wrap, &bins);
    if (st != DPC_OK) {
        if (bins.far_atom >= 0)
            return dpc_set_error(err, st, "coords of atom %lld lie more than 2^30 cells away from the cell; wrap them first",
                                 (long long)bins.far_atom);
        return dpc_set_error(err, st, "the frame cannot be binned (a singular cell or a non-finite coordinate)");
    }
    if (bins.screened > DPC_MAX_SCREENED_PER_ATOM)
        return dpc_set_error(err, DPC_ERR_ARGUMENT,
                             "the neighbor search would screen about %.3g atoms around each atom (the limit is %.0f)",
                             bins.screened, DPC_MAX_SCREENED_PER_ATOM);
    dpc_cells *cells = NULL;
    st = dpc_cell_candidates(n, n, frac, wrapped, cell, bins.nbins, bins.reach, search, nth, &cells);
    if (st != DPC_OK) return dpc_set_error(err, st, "the cell list failed (status %d)", (int)st);
    const int64_t nimage = dpc_cells_nimage(cells), ncand = dpc_cells_ncandidates(cells);
    int32_t *images = (int32_t *)dpc_buffer_reserve(&s->images, sizeof(int32_t) * 4 * (size_t)(nimage ? nimage : 1));
    int32_t *index = (int32_t *)dpc_buffer_reserve(&s->index, sizeof(int32_t) * (size_t)(ncand ? ncand : 1));
    size = 0;
    dpc_carve(NULL, &size, sizeof(int64_t) * (size_t)(n + 1));
    dpc_carve(NULL, &size, sizeof(int32_t) * (size_t)n);
    dpc_carve(NULL, &size, sizeof(int32_t *) * (size_t)n);
    char *lb = (char *)dpc_buffer_reserve(&s->lists, size);
    if (!images || !index || !lb) {
        dpc_cells_free(cells);
        return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory for %lld candidates", (long long)ncand);
    }
    off = 0;
    int64_t *offsets = (int64_t *)dpc_carve(lb, &off, sizeof(int64_t) * (size_t)(n + 1));
    int32_t *numneigh = (int32_t *)dpc_carve(lb, &off, sizeof(int32_t) * (size_t)n);
    const int32_t **firstneigh = (const int32_t **)dpc_carve(lb, &off, sizeof(int32_t *) * (size_t)n);
    dpc_cells_export(cells, images, images + nimage, offsets, index);
    dpc_cells_free(cells);
    for (int64_t a = 0; a < n; ++a) {
        numneigh[a] = (int32_t)(offsets[a + 1] - offsets[a]);
        firstneigh[a] = index + offsets[a];
    }
    memset(fr, 0, sizeof *fr);
    fr->natoms = n;
    fr->nlocal = n;
    fr->x = x;
    fr->type = b->type + b->type_stride * f;
    fr->cell = cell;
    fr->lattice = cell ? wrap : NULL;
    fr->nimage = nimage;
    fr->image_owner = images;
    fr->image_lattice = images + nimage;
    fr->numneigh = numneigh;
    fr->firstneigh = firstneigh;
    fr->fparam = b->fparam ? b->fparam + dpc_model_dim_fparam(model) * f : NULL;
    fr->aparam = b->aparam ? b->aparam + dpc_model_dim_aparam(model) * n * f : NULL;
    return DPC_OK;
}

/* Frame f into the outputs (its candidates, dpc_compute, its result). */
static dpc_status one_frame(const dpc_model *model, dpc_workspace *ws, const dpc_batch *b, int64_t f, double rcut,
                            int nth, frame_scratch *s, const dpc_batch_outputs *out, dpc_error *err)
{
    const int64_t n = b->natoms;
    dpc_frame fr;
    dpc_status st = frame_candidates(model, b, f, rcut, nth, s, &fr, err);
    if (st != DPC_OK) return st;
    dpc_outputs o;
    o.force = out->force + 3 * n * f;
    o.atom_energy = out->atom_energy ? out->atom_energy + n * f : NULL;
    o.atom_virial = out->atom_virial ? out->atom_virial + 9 * n * f : NULL;
    o.descriptor = out->descriptor ? out->descriptor + dpc_model_dim(model) * n * f : NULL;
    dpc_result r;
    st = dpc_compute(model, ws, &fr, nth, &o, &r, err);
    if (st != DPC_OK) return st;
    out->energy[f] = r.energy;
    memcpy(out->virial + 9 * f, r.virial, sizeof r.virial);
    int64_t *c = out->counts + DPC_NCOUNTS * f;
    c[DPC_COUNT_BEYOND_FINE] = r.beyond_fine;
    c[DPC_COUNT_BEYOND_TABLE] = r.beyond_table;
    c[DPC_COUNT_OVERFLOW] = r.overflow;
    c[DPC_COUNT_OVERFLOW_WORST] = r.overflow_worst;
    c[DPC_COUNT_OVERFLOW_ATOM] = r.overflow_atom;
    c[DPC_COUNT_OVERFLOW_BLOCK] = r.overflow_block;
    c[DPC_COUNT_OVERFLOW_PART] = r.overflow_part;
    return DPC_OK;
}

dpc_status dpc_compute_frames(const dpc_model *model, dpc_workspace *ws, const dpc_batch *b, int n_threads,
                              const dpc_batch_outputs *out, int64_t *failed, dpc_error *err)
{
    memset(err, 0, sizeof *err);
    *failed = -1;
    if (b->nframes < 0 || b->natoms < 1 || (b->type_stride != 0 && b->type_stride != b->natoms))
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "a batch needs frames of at least one atom and a type stride of 0 or natoms");
    const int nth = n_threads < 1 ? 1 : n_threads;
    const double rcut = dpc_model_rcut(model);
    if (nth == 1 || b->natoms > DPC_FRAMES_PARALLEL_ATOMS || b->nframes < 2 * (int64_t)nth) {
        /* frames in turn, each on every thread */
        frame_scratch s;
        memset(&s, 0, sizeof s);
        dpc_status st = DPC_OK;
        for (int64_t f = 0; f < b->nframes && st == DPC_OK; ++f) {
            st = one_frame(model, ws, b, f, rcut, nth, &s, out, err);
            if (st != DPC_OK) *failed = f;
        }
        scratch_free(&s);
        return st;
    }
    /* small frames: one frame per thread at a time (results do not depend on the thread count);
     * thread 0 uses the caller's workspace, the others one of their own for this call */
    int64_t first_bad = b->nframes;
    dpc_error first_err;
    memset(&first_err, 0, sizeof first_err);
    int alloc_failed = 0;
#pragma omp parallel num_threads(nth)
    {
#ifdef _OPENMP
        const int tid = omp_get_thread_num();
#else
        const int tid = 0;
#endif
        dpc_workspace *mine = tid == 0 ? ws : dpc_workspace_new();
        frame_scratch s;
        memset(&s, 0, sizeof s);
        if (!mine) {
#pragma omp atomic write
            alloc_failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t f = 0; f < b->nframes; ++f) {
            if (!mine) continue;
            dpc_error e;
            const dpc_status st = one_frame(model, mine, b, f, rcut, 1, &s, out, &e);
            if (st != DPC_OK) {
#pragma omp critical(dpc_frames_error)
                if (f < first_bad) {
                    first_bad = f;
                    first_err = e;
                }
            }
        }
        scratch_free(&s);
        if (mine && mine != ws) dpc_workspace_free(mine);
    }
    if (alloc_failed) return dpc_set_error(err, DPC_ERR_ALLOC, "out of memory for the per-thread workspaces");
    if (first_bad < b->nframes) {
        *failed = first_bad;
        *err = first_err;
        return (dpc_status)first_err.status;
    }
    return DPC_OK;
}
