/* Per-type neighbor selection: candidate pairs -> DeePMD-kit's nlist layout.
 *
 * The candidate pairs (every (i, j, image) with |r_ij| < rcut, found by a cell
 * list outside this kernel) are grouped by centre atom i, and for each i the
 * candidates of every block are ordered and truncated to the block's sel.
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
 * the input pairs nor on the thread count.
 *
 * Buffers (all C-contiguous, row-major)
 * -------------------------------------
 * pair_i, pair_j   [npairs]        int64, centre and neighbor atom, in [0, natoms)
 * pair_d           [npairs, 3]     float64, r_ij = r_j + shift - r_i (finite)
 * atom_types       [natoms]        int64, in [0, nblocks) unless mixed
 * sel_offsets      [nblocks + 1]   int64, non-decreasing, sel_offsets[0] == 0
 * index            [natoms, nnei]  int64 out, neighbor atom j; -1 on padding
 * vectors          [natoms, nnei, 3] float64 out, r_ij; 0.0 on padding
 * counts           [natoms, nblocks] int64 out, kept neighbors per block
 * overflow         [natoms, nblocks] int64 out, candidates dropped per block
 *
 * Pointers to zero-length buffers may be NULL.
 */
#ifndef DPC_NEIGHBORS_H
#define DPC_NEIGHBORS_H

#include "dpc_common.h"

/* Fill index/vectors/counts/overflow from the candidate pairs.
 *
 * n_threads < 1 is treated as 1.  Returns DPC_OK, DPC_ERR_ARGUMENT (negative
 * sizes, bad sel_offsets), DPC_ERR_INDEX (an i, j or type out of range),
 * DPC_ERR_NONFINITE (a NaN/inf in pair_d) or DPC_ERR_ALLOC.  On error the
 * outputs are unspecified.
 */
dpc_status dpc_select_neighbors(
    dpc_index npairs,
    const dpc_index *pair_i,
    const dpc_index *pair_j,
    const double *pair_d,
    dpc_index natoms,
    const dpc_index *atom_types,
    dpc_index nblocks,
    const dpc_index *sel_offsets,
    int mixed,
    int n_threads,
    dpc_index *index,
    double *vectors,
    dpc_index *counts,
    dpc_index *overflow);

#endif
