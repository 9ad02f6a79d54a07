/* Per-type neighbor selection; the layout and ordering are documented in
 * dpc_neighbors.h, and dpcompress/reference/neighbors.py is its numpy twin
 * (the two must agree bit for bit).
 */
#include "dpc_neighbors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One candidate neighbor of the atom being processed.  Compact (24 bytes) so
 * that sorting moves little memory; the vector is read back through p only to
 * break distance-and-index ties and to write the output. */
typedef struct {
    double d2;
    dpc_index j;
    dpc_index p; /* pair index into pair_d */
} dpc_candidate;

/* Strict "a before b" in the (d2, j, dx, dy, dz) order. */
static int candidate_less(const dpc_candidate *a, const dpc_candidate *b, const double *pair_d)
{
    if (a->d2 != b->d2) return a->d2 < b->d2;
    if (a->j != b->j) return a->j < b->j;
    const double *da = pair_d + 3 * a->p;
    const double *db = pair_d + 3 * b->p;
    if (da[0] != db[0]) return da[0] < db[0];
    if (da[1] != db[1]) return da[1] < db[1];
    return da[2] < db[2];
}

/* Stable sort of c[0..n) using tmp[0..n) as scratch.  Hand-written rather
 * than qsort: qsort is not stable, may allocate, and pays an indirect call per
 * comparison.  Stability keeps full-key ties (which only duplicate input
 * pairs can produce) in input order, as numpy's lexsort does. */
static void sort_candidates(dpc_candidate *c, dpc_candidate *tmp, dpc_index n, const double *pair_d)
{
    const dpc_index run = 16;
    dpc_index lo, width;
    dpc_candidate *src = c, *dst = tmp;

    for (lo = 0; lo < n; lo += run) {
        dpc_index hi = lo + run < n ? lo + run : n;
        for (dpc_index k = lo + 1; k < hi; ++k) {
            dpc_candidate key = c[k];
            dpc_index m = k;
            while (m > lo && candidate_less(&key, &c[m - 1], pair_d)) {
                c[m] = c[m - 1];
                --m;
            }
            c[m] = key;
        }
    }
    for (width = run; width < n; width *= 2) {
        for (lo = 0; lo < n; lo += 2 * width) {
            dpc_index mid = lo + width < n ? lo + width : n;
            dpc_index hi = lo + 2 * width < n ? lo + 2 * width : n;
            dpc_index l = lo, r = mid, o = lo;
            while (l < mid && r < hi) {
                /* take from the right run only when strictly smaller: stable */
                if (candidate_less(&src[r], &src[l], pair_d)) dst[o++] = src[r++];
                else dst[o++] = src[l++];
            }
            while (l < mid) dst[o++] = src[l++];
            while (r < hi) dst[o++] = src[r++];
        }
        dpc_candidate *t = src;
        src = dst;
        dst = t;
    }
    if (src != c) memcpy(c, src, (size_t)n * sizeof(dpc_candidate));
}

/* Squared length with a fixed evaluation order.  Separate statements so that
 * no compiler fuses a multiply-add (GCC does not in ISO C mode, clang's default
 * only fuses inside one expression): numpy computes the same three products
 * and two sums, and the twin must see identical d2 bits. */
static double squared_norm(double x, double y, double z)
{
    double xx = x * x;
    double yy = y * y;
    double zz = z * z;
    double s = xx + yy;
    return s + zz;
}

/* Per-thread scratch of select_atom. */
typedef struct {
    dpc_candidate *buf;   /* [maxcnt] candidates of one atom, grouped by block */
    dpc_candidate *tmp;   /* [maxcnt] merge-sort scratch */
    dpc_index *bstart;    /* [nblocks + 1] start of each block in buf */
    dpc_index *bfill;     /* [nblocks] next free position of each block */
} dpc_scratch;

/* Neighbors of atom a: bucket its candidates by block (stable), sort each
 * block, keep the first sel[b]. */
static void select_atom(
    dpc_index a,
    const dpc_index *start,
    const dpc_index *order,
    const dpc_index *pair_j,
    const double *pair_d,
    const dpc_index *atom_types,
    dpc_index nblocks,
    const dpc_index *sel_offsets,
    int mixed,
    dpc_scratch *scratch,
    dpc_index *index,
    double *vectors,
    dpc_index *counts,
    dpc_index *overflow)
{
    const dpc_index nnei = sel_offsets[nblocks];
    dpc_index *idx_row = index + a * nnei;
    double *vec_row = vectors + a * nnei * 3;
    dpc_index *cnt_row = counts + a * nblocks;
    dpc_index *ovf_row = overflow + a * nblocks;
    const dpc_index first = start[a];
    const dpc_index n = start[a + 1] - first;
    dpc_candidate *buf = scratch->buf;
    dpc_index *bstart = scratch->bstart;
    dpc_index *bfill = scratch->bfill;
    dpc_index k, s, b;

    for (s = 0; s < nnei; ++s) {
        idx_row[s] = -1;
        vec_row[3 * s] = 0.0;
        vec_row[3 * s + 1] = 0.0;
        vec_row[3 * s + 2] = 0.0;
    }

    for (b = 0; b <= nblocks; ++b) bstart[b] = 0;
    if (mixed) {
        bstart[1] = n;
    } else {
        for (k = 0; k < n; ++k) bstart[atom_types[pair_j[order[first + k]]] + 1] += 1;
        for (b = 0; b < nblocks; ++b) bstart[b + 1] += bstart[b];
    }
    for (b = 0; b < nblocks; ++b) bfill[b] = bstart[b];
    for (k = 0; k < n; ++k) {
        const dpc_index p = order[first + k];
        const dpc_index j = pair_j[p];
        const double *d = pair_d + 3 * p;
        dpc_candidate *c = &buf[bfill[mixed ? 0 : atom_types[j]]++];
        c->d2 = squared_norm(d[0], d[1], d[2]);
        c->j = j;
        c->p = p;
    }

    for (b = 0; b < nblocks; ++b) {
        const dpc_index nb = bstart[b + 1] - bstart[b];
        const dpc_index sel = sel_offsets[b + 1] - sel_offsets[b];
        const dpc_index kept = nb < sel ? nb : sel;
        dpc_candidate *c = buf + bstart[b];
        sort_candidates(c, scratch->tmp, nb, pair_d);
        for (dpc_index r = 0; r < kept; ++r) {
            const dpc_index slot = sel_offsets[b] + r;
            const double *d = pair_d + 3 * c[r].p;
            idx_row[slot] = c[r].j;
            vec_row[3 * slot] = d[0];
            vec_row[3 * slot + 1] = d[1];
            vec_row[3 * slot + 2] = d[2];
        }
        cnt_row[b] = kept;
        ovf_row[b] = nb - kept;
    }
}

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
    dpc_index *overflow)
{
    dpc_index *start = NULL, *fill = NULL, *order = NULL;
    dpc_index a, p, b, maxcnt = 0;
    dpc_status status = DPC_OK;
    int alloc_failed = 0;
    const int nt = n_threads < 1 ? 1 : n_threads;

    if (npairs < 0 || natoms < 0 || nblocks < 1 || (mixed && nblocks != 1)) return DPC_ERR_ARGUMENT;
    if (sel_offsets[0] != 0) return DPC_ERR_ARGUMENT;
    for (b = 0; b < nblocks; ++b)
        if (sel_offsets[b + 1] < sel_offsets[b]) return DPC_ERR_ARGUMENT;
    if (natoms == 0) return npairs == 0 ? DPC_OK : DPC_ERR_INDEX;

    if (!mixed)
        for (a = 0; a < natoms; ++a)
            if (atom_types[a] < 0 || atom_types[a] >= nblocks) return DPC_ERR_INDEX;

    /* Counting sort of the pairs by centre atom: O(npairs + natoms), and it
     * keeps the input order inside each atom's range. */
    start = (dpc_index *)calloc((size_t)natoms + 1, sizeof(dpc_index));
    fill = (dpc_index *)malloc((size_t)natoms * sizeof(dpc_index));
    order = (dpc_index *)malloc((size_t)(npairs > 0 ? npairs : 1) * sizeof(dpc_index));
    if (start == NULL || fill == NULL || order == NULL) {
        status = DPC_ERR_ALLOC;
        goto done;
    }
    for (p = 0; p < npairs; ++p) {
        const dpc_index i = pair_i[p], j = pair_j[p];
        if (i < 0 || i >= natoms || j < 0 || j >= natoms) {
            status = DPC_ERR_INDEX;
            goto done;
        }
        if (!isfinite(pair_d[3 * p]) || !isfinite(pair_d[3 * p + 1]) || !isfinite(pair_d[3 * p + 2])) {
            status = DPC_ERR_NONFINITE;
            goto done;
        }
        start[i + 1] += 1;
    }
    for (a = 0; a < natoms; ++a) {
        if (start[a + 1] > maxcnt) maxcnt = start[a + 1];
        start[a + 1] += start[a];
        fill[a] = start[a];
    }
    for (p = 0; p < npairs; ++p) order[fill[pair_i[p]]++] = p;

#pragma omp parallel num_threads(nt)
    {
        /* Scratch per thread, sized for the busiest atom: no allocation
         * inside the loop. */
        dpc_scratch scratch = {NULL, NULL, NULL, NULL};
        const size_t cand_bytes = (size_t)maxcnt * sizeof(dpc_candidate);
        char *mem = (char *)malloc(2 * cand_bytes + (size_t)(2 * nblocks + 1) * sizeof(dpc_index));
        int ok = mem != NULL;
        if (ok) {
            /* dpc_index and dpc_candidate are both 8-byte aligned */
            scratch.buf = (dpc_candidate *)mem;
            scratch.tmp = (dpc_candidate *)(mem + cand_bytes);
            scratch.bstart = (dpc_index *)(mem + 2 * cand_bytes);
            scratch.bfill = scratch.bstart + nblocks + 1;
        } else {
#pragma omp atomic write
            alloc_failed = 1;
        }
        /* Every thread must reach the worksharing loop, even one whose
         * allocation failed; it then just skips its atoms. */
#pragma omp for schedule(dynamic, 64)
        for (a = 0; a < natoms; ++a) {
            if (!ok) continue;
            select_atom(a, start, order, pair_j, pair_d, atom_types, nblocks, sel_offsets, mixed,
                        &scratch, index, vectors, counts, overflow);
        }
        free(mem);
    }
    (void)nt; /* unused when built without OpenMP */
    if (alloc_failed) status = DPC_ERR_ALLOC;

done:
    free(start);
    free(fill);
    free(order);
    return status;
}
