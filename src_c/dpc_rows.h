/* Neighbor rows from candidates: the one place where a center's neighbors are found, ordered,
 * cut at sel and excluded, for the model runtime (dpc_runtime.c) and the Python neighbor list
 * (dpcompress.neighbors.build_neighbor_list, the exact evaluator and the training-set scan).
 *
 * Numpy twin: dpcompress/reference/neighbors.py.
 *
 * Gather (dpc_gather_neighbors), for center i of a dpc_frame: every candidate j (index & mask),
 * its target atom t (j itself, or the owner of an image), the pair vector
 *
 *     r_ij = (x_t - x_i) + ((S_0 a_0 + S_1 a_1) + S_2 a_2),   S = q_j + n_i - n_t,
 *
 * component by component in that order (no cell: S = 0 and a zero cell), d^2 = (x^2 + y^2) + z^2,
 * kept when d^2 < rcut^2 and not (t == i and S == 0); a kept pair closer than `coincide` is
 * reported.  The kept candidates are sorted by the key (d^2, tag_t, r_x, r_y, r_z) ascending with a
 * stable merge sort: a total order on distinct (atom, shift) pairs.
 *
 * Row (dpc_fill_row), for one descriptor part: the sorted candidates with d^2 < rcut_p^2 go to
 * block b (the neighbor's type, or 0 for a mixed-type part) while the block has room (sel_b),
 * the rest are counted in overflow; then, when the model excludes (center type, neighbor type)
 * pairs, those neighbors are removed from their block and the others move up (DeePMD-kit cuts at
 * sel first and excludes after).  Padding slots hold index -1 and a zero vector.  A part without
 * sel (NEP) has one block of any size: all neighbors within rcut_p, up to the row width.
 */
#ifndef DPC_ROWS_H
#define DPC_ROWS_H

#include "dpc_buffer.h"
#include "dpc_model.h"

/* Two atoms closer than this (Å) make every descriptor singular. */
#define DPC_COINCIDE 1e-8

typedef struct {
    double d2;
    int64_t tag;
    int64_t p; /* position in the gather order: its vector and target */
} dpc_candidate;

typedef struct {
    int64_t n;
    dpc_candidate *c;   /* [n] sorted */
    dpc_candidate *tmp;
    double *vec;        /* [cap][3] by p */
    int64_t *target;    /* [cap] by p */
} dpc_sorted_neighbors;

/* What a gather found wrong: the smallest coincident (i, t, S) and its d^2, or a bad candidate. */
typedef struct {
    int coincident;
    int64_t key[5];
    double d2;
    int bad_index;
    int64_t bad_center, bad_value;
} dpc_row_issue;

typedef struct {
    double rcut2;
    int64_t nblocks;             /* 1 when mixed or unlimited */
    int64_t nnei;                /* row width */
    const int64_t *sel_offsets;  /* [nblocks + 1]; NULL: one block without sel (width nnei) */
    int mixed;
    const int8_t *pair_exclude;  /* [ntypes][ntypes] 1 = removed, or NULL */
    int64_t ntypes;
} dpc_row_spec;

/* Room in buf for a center of up to `most` candidates.  Reserving every thread's buffer for the
 * frame's largest candidate list up front makes the workspace size independent of which thread
 * happens to take which center.  Returns 0 when out of memory. */
int dpc_gather_reserve(dpc_buffer *buf, int64_t most);

/* Largest cutoff squared and coincidence: see above.  buf holds the scratch (grown as needed).
 * Returns DPC_OK, DPC_ERR_ALLOC, or DPC_ERR_INDEX (a candidate outside [0, natoms + nimage):
 * issue->bad_*).  A coincident pair is recorded in issue (if smaller than the one there) and the
 * call still succeeds. */
dpc_status dpc_gather_neighbors(const dpc_frame *f, int64_t i, double rcut2, double coincide2, dpc_buffer *buf,
                                dpc_sorted_neighbors *out, dpc_row_issue *issue);

/* Fill one row of a part; returns the number of neighbors within rcut_p (for an unlimited part:
 * more than nnei means the row was too narrow and was cut). counts/overflow: [nblocks]. */
int64_t dpc_fill_row(const dpc_sorted_neighbors *s, const dpc_row_spec *spec, const int32_t *types,
                     int32_t center_type, int64_t *index, double *vectors, int64_t *counts, int64_t *overflow);

/* Rows of one part for every center of a frame (the DeePMD-layout neighbor list of the Python side):
 * index [nlocal][nnei], vectors [nlocal][nnei][3], counts, overflow [nlocal][nblocks]; no pair
 * exclusions.  Status DPC_OK, DPC_ERR_ALLOC, DPC_ERR_INDEX or DPC_ERR_COINCIDENT (issue says
 * which; the rows are complete in the last case). */
dpc_status dpc_neighbor_rows(const dpc_frame *f, double rcut, int64_t nblocks, const int64_t *sel_offsets, int mixed,
                             int n_threads, int64_t *index, double *vectors, int64_t *counts, int64_t *overflow,
                             dpc_row_issue *issue);

/* Merge a thread's issue into another (smallest coincident key wins; first bad index kept). */
void dpc_row_issue_merge(dpc_row_issue *into, const dpc_row_issue *from);

#endif
