/* The repformer arrays of a compressed DPA-2 part (kind 7; docs/model-file.md): the checks of
 * dpcompress/descriptors/dpa2_pack.py (check_arrays) with the same messages, filling the
 * dpc_repformer_stack the frame path runs (dpc_dpa2_frame.h). */
#ifndef DPC_DPA2_PART_H
#define DPC_DPA2_PART_H

#include <stdint.h>

#include "dpc_model_file.h"
#include "dpc_repformer.h"

#define DPC_PART_DPA2 7
#define DPC_DPA2_MAX_LAYERS 64

typedef struct {
    int present;
    int64_t nsel;              /* repformer neighbor slots */
    double rcut, rcut_smth;    /* repformer cutoffs */
    const double *dstd;        /* (ntypes, 4); davg is 0 */
    dpc_repformer_layer *layers; /* owned, [stack.n_layers] */
    dpc_repformer_stack stack; /* activation: array rf.act (a dpc_activations.h code) */
} dpc_dpa2_params;

/* Check part p's concat flag, gate_pad (absent), avg (all 0; may be NULL when not yet readable) and every
 * "part{p}.rf..." array; fill *D (D->layers allocated) and *dim = g1 + tebd_dim.  Messages as the Python reader's. */
dpc_status dpc_dpa2_read(const dpc_file *f, int p, int64_t nt, int64_t tebd_dim, int64_t concat, const double *avg,
                         int64_t navg, dpc_dpa2_params *D, int64_t *dim, dpc_error *err);

void dpc_dpa2_release(dpc_dpa2_params *D);

#endif
