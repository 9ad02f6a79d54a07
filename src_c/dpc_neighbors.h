/* Candidate neighbors of a frame with a cell list: what the Python front ends hand the model
 * runtime (dpc_model.h) in place of LAMMPS's neighbor list.
 *
 * Binning.  frac[a] are coordinates of atom a in [0, 1] (periodic: the fractional coordinates of
 * the wrapped position, r_a = (frac_a + n_a) . cell; cluster: (r - lo) / h per axis); bin k of
 * axis c holds frac in [k, k + 1) / nbins[c] (frac == 1 goes to the last bin).  A pair within
 * rcut has |delta frac_c| <= rcut / h_c, h_c the plane spacing (the box length for a cluster), so
 * searching reach[c] >= floor(rcut' nbins[c] / h_c) + 1 bins either side (rcut' a hair above rcut,
 * for the rounding of frac) finds it.
 *
 * Images.  Periodic: the bins are extended by reach[c] on both sides; extended bin u holds the
 * atoms of bin u mod nbins moved by q = floor(u / nbins) cells.  Every atom of every extended bin
 * outside the base grid is one image (owner, q), numbered bin by bin (u0, u1, u2 ascending, the
 * atoms of a bin in index order).  Image g is candidate index natoms + g.
 *
 * Candidates of center a: every atom or image j of the bins within reach of a's bin whose
 * wrapped-space vector (w_j + q . cell) - w_a is shorter than `search` (>= rcut, with room for the
 * rounding between the wrapped and the caller's coordinates), except a itself; the runtime forms
 * the exact vectors from the caller's coordinates and applies the exact cut.  Order: bins by
 * (d0, d1, d2) offset ascending, atoms in index order — fixed, thread-count independent.
 *
 * Centers: atoms 0 .. ncenter-1.  Memory: the candidates are stored once (4 bytes each); the
 * export copies them block by block into the caller's arrays and frees each block as it goes.
 */
#ifndef DPC_NEIGHBORS_H
#define DPC_NEIGHBORS_H

#include "dpc_common.h"

typedef struct dpc_cells dpc_cells;

/* Limits of the search, shared with the Python layer (dpcompress.neighbors.candidates). */
#define DPC_MAX_BINS_PER_ATOM 2          /* more bins only cost memory and empty-bin visits */
#define DPC_MAX_CELLS_AWAY 1073741824.0  /* 2^30: the lattice shifts are int32 */
#define DPC_MAX_SCREENED_PER_ATOM 262144.0 /* 2^18 atoms and images screened around one atom */

/* The bins of one frame (dpc_cell_list_bins). */
typedef struct {
    dpc_index nbins[3], reach[3];
    double screened;    /* atoms and images screened around one atom, on average */
    dpc_index far_atom; /* DPC_ERR_ARGUMENT: the atom more than DPC_MAX_CELLS_AWAY cells away, else -1 */
} dpc_bins;

/* Binning of a frame, the rule above.  Periodic (cell = the reduced cell, rows = vectors):
 * f = x A^-1 (A^-1 by the adjugate), n = floor(f), frac = f - n, wrap = n, wrapped = frac . A, and
 * h_c = |det A| / |a_(c+1) x a_(c+2)|.  Cluster (cell NULL): lo = min x, h = max(max x - lo, search),
 * frac = (x - lo) / h, wrapped = x, wrap untouched (may be NULL).  Then nbins[c] =
 * max(1, floor(min(h_c / search, 2^20))), the largest count (first of equals) halved while the
 * grid exceeds max(27, DPC_MAX_BINS_PER_ATOM natoms) bins, reach[c] = floor(search nbins[c] / h_c) + 1
 * and screened = natoms prod_c v_c / nbins[c], v_c = 2 reach[c] + 1 (a cluster: min(v_c, nbins[c])).
 * Status DPC_ERR_ARGUMENT (far_atom set: an atom beyond DPC_MAX_CELLS_AWAY cells; or no atoms, or a
 * singular cell), DPC_ERR_NONFINITE.  The numpy twin: dpcompress.reference.neighbors.cell_list_bins. */
dpc_status dpc_cell_list_bins(dpc_index natoms, const double *x, const double *cell, double search, double *frac,
                              double *wrapped, int32_t *wrap, dpc_bins *bins);

/* The screening radius: a hair above rcut for the rounding of the wrapped positions,
 * rcut + 1e-6 max(rcut, 1) + 1e-12 max |x|. */
double dpc_search_radius(dpc_index natoms, const double *x, double rcut);

/* Build the candidates: frac/wrapped [natoms][3], cell [3][3] (periodic) or NULL (cluster);
 * nbins, reach [3].  *out is NULL on failure.  Status DPC_OK, DPC_ERR_ARGUMENT (sizes, bins, or
 * more than 2^31 - 1 atoms and images), DPC_ERR_NONFINITE, DPC_ERR_ALLOC. */
dpc_status dpc_cell_candidates(dpc_index natoms, dpc_index ncenter, const double *frac, const double *wrapped,
                               const double *cell, const dpc_index *nbins, const dpc_index *reach, double search,
                               int n_threads, dpc_cells **out);

/* Sizes of the result. */
dpc_index dpc_cells_nimage(const dpc_cells *c);
dpc_index dpc_cells_ncandidates(const dpc_cells *c);

/* Copy the result out and free its candidate blocks: image_owner [nimage], image_lattice
 * [nimage][3], offsets [ncenter + 1] (int64, CSR), index [ncandidates]. */
void dpc_cells_export(dpc_cells *c, int32_t *image_owner, int32_t *image_lattice, int64_t *offsets, int32_t *index);

void dpc_cells_free(dpc_cells *c);

#endif
