/* Many frames of the same atoms in one call: the candidate search and dpc_compute of each frame,
 * one after another, without returning to the caller in between.
 *
 * What a Python loop over small frames pays per frame (argument checks, array allocations, the
 * result objects) dominates a frame of a few atoms; here it is paid once per batch.  Frame f is
 * computed exactly as a single-frame call computes it: the cell-list binning (dpc_cell_list_bins)
 * with the screening radius dpc_search_radius(x_f, rcut), the candidates of every atom
 * (dpc_cell_candidates), then dpc_compute with every atom a center.  Results do not depend on the
 * candidates' order (dpc_model.h), so they are the single-frame ones bit for bit.
 *
 * Threads.  Frames of at most DPC_FRAMES_PARALLEL_ATOMS atoms, at least two per thread: one frame
 * per thread at a time, each with its own workspace (a small frame cannot keep a team busy);
 * otherwise each frame on all n_threads.  Either way a frame's result is the same bits.
 *
 * The first frame that fails (the lowest index) is reported: *failed is its index (-1 when all
 * succeeded), err says why, and the outputs of every frame before it are complete.
 * Refused: a frame whose search would screen more than DPC_MAX_SCREENED_PER_ATOM atoms and images
 * around each atom (DPC_ERR_ARGUMENT), an atom beyond DPC_MAX_CELLS_AWAY cells, and everything
 * dpc_compute refuses.
 */
#ifndef DPC_FRAMES_H
#define DPC_FRAMES_H

#include <stdint.h>

#include "dpc_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest frame computed one per thread (dpc_compute's chunk: a workspace per thread stays small). */
#define DPC_FRAMES_PARALLEL_ATOMS DPC_CHUNK

typedef struct {
    int64_t nframes, natoms;          /* natoms >= 1, every frame the same count */
    const double *x;                  /* [nframes][natoms][3], Å */
    const int32_t *type;              /* [natoms] (type_stride 0) or [nframes][natoms] (type_stride natoms) */
    int64_t type_stride;
    const double *cell;               /* [nframes][3][3] reduced cells, or NULL: every frame a cluster */
    const uint8_t *periodic;          /* [nframes] 0: frame f is a cluster despite cell, or NULL: all periodic */
    const double *fparam;             /* [nframes][dpc_model_dim_fparam] raw (dpc_frame.fparam of each frame),
                                         or NULL: the model's default_fparam, or a model without */
    const double *aparam;             /* [nframes][natoms][dpc_model_dim_aparam] raw, or NULL for a model without */
} dpc_batch;

/* Per-frame counters of the result (dpc_result's integers, in this order). */
enum {
    DPC_COUNT_BEYOND_FINE, DPC_COUNT_BEYOND_TABLE, DPC_COUNT_OVERFLOW, DPC_COUNT_OVERFLOW_WORST,
    DPC_COUNT_OVERFLOW_ATOM, DPC_COUNT_OVERFLOW_BLOCK, DPC_COUNT_OVERFLOW_PART, DPC_NCOUNTS
};

typedef struct {
    double *energy;       /* [nframes] */
    double *virial;       /* [nframes][9] */
    double *force;        /* [nframes][natoms][3], added to (the caller zeroes it) */
    double *atom_energy;  /* [nframes][natoms] or NULL, added to */
    double *atom_virial;  /* [nframes][natoms][9] or NULL, added to */
    double *descriptor;   /* [nframes][natoms][dpc_model_dim] or NULL (DP models) */
    int64_t *counts;      /* [nframes][DPC_NCOUNTS] */
} dpc_batch_outputs;

dpc_status dpc_compute_frames(const dpc_model *model, dpc_workspace *ws, const dpc_batch *batch, int n_threads,
                              const dpc_batch_outputs *out, int64_t *failed, dpc_error *err);

#ifdef __cplusplus
}
#endif

#endif
