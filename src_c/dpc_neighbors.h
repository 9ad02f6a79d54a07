/* Per-type neighbor lists in DeePMD-kit's nlist layout.
 *
 * dpc_cell_list_neighbors finds every (i, j, image) with |r_ij| < rcut with a
 * cell list and, per centre atom i, orders the candidates of every block and
 * truncates them to the block's sel.
 *
 * Blocks
 * ------
 * Type-separated (mixed == 0): block b holds the neighbors j with
 * atom_types[j] == b, so nblocks == ntypes.  Mixed (mixed != 0): one block
 * (nblocks == 1) holding every neighbor whatever its type.
 *
 * Slot layout
 * -----------
 * nnei = sel_offsets[nblocks]; block b owns the slots
 * [sel_offsets[b], sel_offsets[b+1]) of an atom's row, sel_offsets[0] == 0.
 * Inside a block the kept neighbors fill the first slots, ordered by the key
 *
 *     (d2, j, D_x, D_y, D_z),   d2 = (D_x*D_x + D_y*D_y) + D_z*D_z,
 *
 * ascending (nearest first; equal distances broken by neighbor index, then by
 * the image's vector), and the rest of the block is padding.  Only the first
 * sel[b] candidates are kept; the others are counted in overflow.  The order
 * is total on distinct pairs, so the output does not depend on the order of
 * the candidates nor on the thread count.
 *
 * Buffers (all C-contiguous, row-major)
 * -------------------------------------
 * atom_types       [natoms]        int64, in [0, nblocks) unless mixed
 * sel_offsets      [nblocks + 1]   int64, non-decreasing, sel_offsets[0] == 0
 * index            [ncenter, nnei]  int64 out, neighbor atom j; -1 on padding
 * vectors          [ncenter, nnei, 3] float64 out, r_ij; 0.0 on padding
 * counts           [ncenter, nblocks] int64 out, kept neighbors per block
 * overflow         [ncenter, nblocks] int64 out, candidates dropped per block
 *
 * Pointers to zero-length buffers may be NULL.
 */
#ifndef DPC_NEIGHBORS_H
#define DPC_NEIGHBORS_H

#include "dpc_common.h"

/* The whole neighbor list of one frame with a cell list.
 *
 * Binning.  frac[a] are coordinates of atom a in [0, 1] (periodic: the
 * fractional coordinates of the wrapped position, r_a = (frac_a + n_a) . cell
 * with wrap[a] = n_a; cluster: (r - lo) / h per axis); bin k of axis c holds
 * frac in [k, k + 1) / nbins[c] (frac == 1 goes to the last bin).  A pair
 * within rcut has |delta frac_c| <= rcut / h_c, h_c the plane spacing (the
 * box length for a cluster), so searching reach[c] >= floor(rcut' nbins[c] /
 * h_c) + 1 bins either side (rcut' a hair above rcut, for the rounding of
 * frac) finds it.  Periodic: unwrapped bin u = b + q nbins is bin b of image
 * q, i.e. shift S = q + n_i - n_j of the original positions; every (j, S)
 * is visited at most once.  Cluster: bins outside the box are skipped, S = 0.
 *
 * Screening.  wrapped[a] = frac_a . cell (periodic) or the coords (cluster):
 * a candidate whose wrapped-space vector (w_j + q . cell) - w_i is at least
 * search (>= rcut, with room for the rounding between the two spaces) long
 * is dropped before its exact vector is formed.
 *
 * Vectors.  r_ij = (r_j - r_i) + ((S0 a0 + S1 a1) + S2 a2) from the
 * caller's coords, in that order, d2 as above; kept when d2 < rcut * rcut,
 * except j == i with S == 0.  Pass a zero cell for a cluster.
 *
 * Coincidence.  A kept pair with d2 < coincide^2 makes the call return
 * DPC_ERR_COINCIDENT with the lexicographically smallest such (i, j, S0,
 * S1, S2) in bad_pair[5] and its d2 in *bad_d2 (outputs then complete).
 *
 * Centers.  Only atoms 0 .. ncenter-1 get a row (the others, ghosts of a
 * domain decomposition, are neighbors only); index, vectors, counts and
 * overflow have ncenter rows.
 *
 * coords, frac, wrapped [natoms, 3]; wrap [natoms, 3] (zeros for a cluster);
 * nbins, reach [3]; other buffers as above.  n_threads < 1 is treated as 1.  Returns
 * DPC_OK, DPC_ERR_ARGUMENT, DPC_ERR_INDEX (a type out of range),
 * DPC_ERR_NONFINITE, DPC_ERR_ALLOC or DPC_ERR_COINCIDENT.
 */
dpc_status dpc_cell_list_neighbors(
    dpc_index natoms,
    dpc_index ncenter,
    const double *coords,
    const double *cell,
    int periodic,
    const double *frac,
    const double *wrapped,
    const dpc_index *wrap,
    const dpc_index *nbins,
    const dpc_index *reach,
    double rcut,
    double search,
    double coincide,
    const dpc_index *atom_types,
    dpc_index nblocks,
    const dpc_index *sel_offsets,
    int mixed,
    int n_threads,
    dpc_index *index,
    double *vectors,
    dpc_index *counts,
    dpc_index *overflow,
    dpc_index *bad_pair,
    double *bad_d2);

#endif
