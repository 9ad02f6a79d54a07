/* The DPA-2 steps of a frame (part kind 7), between the runtime's neighbor rows and its fitting net.
 *
 * DPA-2 passes messages: a neighbor's g1 enters every repformer layer, so the runtime evaluates a
 * DPA-2 frame as one chunk holding every row (each center, then each sender of dpc_frame.nsender),
 * and the repformer slots name rows, not atoms.  Per frame (dpc_runtime.c calls these in order):
 *
 *   inputs    the repformer slots = the repinit row's first J slots, emptied at r >= rcut':
 *             the row of each slot's atom, P = R/std (the environment matrix, davg 0) and dP/dr,
 *             m (1 on real slots), sw and dsw/dr; the rows' message depth checked (below)
 *   forward   D0 = T^T T< (the tabulated repinit's state, dpc_descriptor_from_T_atom), the
 *             repformer stack (dpc_repformer.h) -> g1 of every row
 *   backward  from dE/dg1: the stack's backward -> dE/dD0, dE/dP, dE/dsw; dE/dT for the repinit's
 *             table kernel; dE/dr of the repformer slots added onto the repinit's pair gradients
 *
 * Depth: the centers have depth 0, a row reached through a repformer slot of a depth-d row has
 * depth d + 1.  A center's energy depends on the g1 of depth-d rows at layer nlayers - d, so every
 * row of depth < nlayers needs each of its repformer neighbors as a row: a neighbor atom without a
 * row there (a ghost that is not a sender) is an error naming it.
 *
 * Numpy twin: dpcompress/evaluators/exact/dpa2.py (descriptor_forward / descriptor_backward on the
 * tabulated descriptor) and dpcompress/reference/repformer_stack.py. */
#ifndef DPC_DPA2_FRAME_H
#define DPC_DPA2_FRAME_H

#include "dpc_model_internal.h"

typedef struct {
    int64_t n, J;     /* rows, repformer slots per row */
    int64_t *idx;     /* [n][J] the row of the slot's atom (the row itself on empty slots) */
    double *P;        /* [n][J][4] pair inputs R/std */
    double *dP;       /* [n][J][4][3] dP/dr */
    double *m, *sw;   /* [n][J] */
    double *dsw;      /* [n][J][3] dsw/dr */
    double *D0;       /* [n][M*A] the repinit's output */
    double *g1;       /* [n][g1] the last layer's g1 (the fitting input's first columns) */
    double *dg1;      /* [n][g1] dE/dg1 (the fitting's backward writes it) */
    double *wdg1;     /* [n][g1] a weighted copy (the atomic virial's passes) */
    double *dD0;      /* [n][M*A] */
    double *dPbar;    /* [n][J][4] */
    double *dswbar;   /* [n][J] */
    double *rf_grad;  /* [n][J][3] dE/dr of the repformer slots (dpc_dpa2_backward) */
    double *H;        /* [n][S][3] pair gradients of a weighted pass (the atomic virial) */
    double *stack_ws; /* dpc_repformer_stack_workspace doubles */
    int64_t *depth;   /* [n] */
    int64_t *row_of;  /* [natoms] the row of an atom, -1 if none */
    int64_t overflow; /* the centers' neighbors within rcut' beyond slot J */
    int64_t overflow_atom, overflow_worst;
} dpc_dpa2_frame;

/* Bytes of the arrays of n rows (base NULL), or carve them from base. */
size_t dpc_dpa2_frame_carve(const dpc_part *P, int64_t n, int64_t natoms, char *base, dpc_dpa2_frame *F);

/* The repformer slots of every row from the repinit's rows (index [n][S] of atoms, vectors [n][S][3]),
 * rows[k] the atom of row k, nlocal_rows the centers (rows 0 .. nlocal_rows-1). */
dpc_status dpc_dpa2_inputs(const dpc_part *P, const int64_t *types, int64_t natoms, const int64_t *rows,
                           int64_t nlocal_rows, const int64_t *index, const double *vectors, int nth,
                           dpc_dpa2_frame *F, dpc_error *err);

/* g1 of every row from the repinit's state T [n][4M]. */
dpc_status dpc_dpa2_forward(const dpc_part *P, const int64_t *row_types, const double *T, int nth, dpc_dpa2_frame *F,
                            dpc_error *err);

/* From dg1 [n][g1]: dT [n][4M] for the repinit's backward kernel, and F->rf_grad. */
dpc_status dpc_dpa2_backward(const dpc_part *P, const double *T, const double *dg1, int nth, dpc_dpa2_frame *F,
                             double *dT, dpc_error *err);

/* pair_grad [n][S][3] (the repinit's, S = P->nnei) += F->rf_grad on the first min(J, S) slots. */
void dpc_dpa2_add_rf_grad(const dpc_part *P, const dpc_dpa2_frame *F, double *pair_grad);


/* The atomic virial's message-passing term (dpc_dpa2_frame.h's twin, evaluate_frame): with G the pair
 * gradients of the energy and H_b those of sum_i x_ib e_i (b = 0, 1, 2, in F->H one pass at a time),
 * C_ks[a][b] = G_ks[a] x_k[b] - H_b,ks[a]; W_l -= C_ks, W_k += C_ks (l the slot's atom, k the row's). */
void dpc_dpa2_virial_term(const dpc_part *P, const dpc_dpa2_frame *F, const int64_t *rows, const double *x,
                          const int64_t *index, const double *G, int b, double *atom_virial);

#endif
