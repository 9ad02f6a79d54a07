/* Per-type neighbor lists with a cell list; the layout and ordering are
 * documented in dpc_neighbors.h, and dpcompress/reference/neighbors.py holds
 * the twin (an exhaustive search; the two agree bit for bit).
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
                /* take from the right run only when strictly smaller: stable.
                 * Index arithmetic instead of a branch: the outcome is a coin
                 * flip that a branch predictor would miss half the time. */
                const int right = candidate_less(&src[r], &src[l], pair_d);
                dst[o++] = src[right ? r : l];
                r += right;
                l += 1 - right;
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

/* Sort every block of buf (bstart gives the blocks), keep the first sel[b]
 * and write the row of atom a; the vectors are read through c->p from vecs. */
static void emit_blocks(
    dpc_index a,
    dpc_candidate *buf,
    dpc_candidate *tmp,
    const dpc_index *bstart,
    const double *vecs,
    dpc_index nblocks,
    const dpc_index *sel_offsets,
    dpc_index *index,
    double *vectors,
    dpc_index *counts,
    dpc_index *overflow)
{
    const dpc_index nnei = sel_offsets[nblocks];
    dpc_index *idx_row = index + a * nnei;
    double *vec_row = vectors + a * nnei * 3;
    dpc_index s, b;

    for (s = 0; s < nnei; ++s) {
        idx_row[s] = -1;
        vec_row[3 * s] = 0.0;
        vec_row[3 * s + 1] = 0.0;
        vec_row[3 * s + 2] = 0.0;
    }
    for (b = 0; b < nblocks; ++b) {
        const dpc_index nb = bstart[b + 1] - bstart[b];
        const dpc_index sel = sel_offsets[b + 1] - sel_offsets[b];
        const dpc_index kept = nb < sel ? nb : sel;
        dpc_candidate *c = buf + bstart[b];
        sort_candidates(c, tmp, nb, vecs);
        for (dpc_index r = 0; r < kept; ++r) {
            const dpc_index slot = sel_offsets[b] + r;
            const double *d = vecs + 3 * c[r].p;
            idx_row[slot] = c[r].j;
            vec_row[3 * slot] = d[0];
            vec_row[3 * slot + 1] = d[1];
            vec_row[3 * slot + 2] = d[2];
        }
        counts[a * nblocks + b] = kept;
        overflow[a * nblocks + b] = nb - kept;
    }
}

/* Bucket n candidates (neighbor js[k], vector index ps[k]) by block, stably;
 * fills bstart[0..nblocks] and buf.  d2 is recomputed from vecs. */
static void bucket_candidates(
    dpc_index n,
    const dpc_index *js,
    const dpc_index *ps,
    const double *vecs,
    const dpc_index *atom_types,
    dpc_index nblocks,
    int mixed,
    dpc_candidate *buf,
    dpc_index *bstart,
    dpc_index *bfill)
{
    dpc_index k, b;
    for (b = 0; b <= nblocks; ++b) bstart[b] = 0;
    if (mixed) {
        bstart[1] = n;
    } else {
        for (k = 0; k < n; ++k) bstart[atom_types[js[k]] + 1] += 1;
        for (b = 0; b < nblocks; ++b) bstart[b + 1] += bstart[b];
    }
    for (b = 0; b < nblocks; ++b) bfill[b] = bstart[b];
    for (k = 0; k < n; ++k) {
        const dpc_index p = ps[k];
        const double *d = vecs + 3 * p;
        dpc_candidate *c = &buf[bfill[mixed ? 0 : atom_types[js[k]]]++];
        c->d2 = squared_norm(d[0], d[1], d[2]);
        c->j = js[k];
        c->p = p;
    }
}

/* ------------------------------------------------------------------------
 * Cell list: candidates found, cut and selected in one pass per centre atom.
 * ------------------------------------------------------------------------ */

/* Growable per-thread candidate store of one centre atom. */
typedef struct {
    dpc_index cap;
    dpc_index *js;        /* [cap] neighbor atom */
    dpc_index *ps;        /* [cap] 0, 1, 2, ...: vector index of each candidate */
    double *vecs;         /* [cap, 3] r_ij */
    dpc_candidate *buf;   /* [cap] */
    dpc_candidate *tmp;   /* [cap] */
    dpc_index *bstart;    /* [nblocks + 1] */
    dpc_index *bfill;     /* [nblocks] */
} dpc_cell_scratch;

static void cell_scratch_free(dpc_cell_scratch *s)
{
    free(s->js);
    free(s->ps);
    free(s->vecs);
    free(s->buf);
    free(s->tmp);
    s->js = s->ps = NULL;
    s->vecs = NULL;
    s->buf = s->tmp = NULL;
    s->cap = 0;
}

/* Make room for cap candidates (contents of js/vecs kept); 0 on failure. */
static int cell_scratch_reserve(dpc_cell_scratch *s, dpc_index cap)
{
    dpc_index k;
    if (cap <= s->cap) return 1;
    if (cap < 2 * s->cap) cap = 2 * s->cap;
    {
        dpc_index *js = (dpc_index *)realloc(s->js, (size_t)cap * sizeof(dpc_index));
        if (js == NULL) return 0;
        s->js = js;
    }
    {
        double *v = (double *)realloc(s->vecs, (size_t)cap * 3 * sizeof(double));
        if (v == NULL) return 0;
        s->vecs = v;
    }
    free(s->ps);
    free(s->buf);
    free(s->tmp);
    s->ps = (dpc_index *)malloc((size_t)cap * sizeof(dpc_index));
    s->buf = (dpc_candidate *)malloc((size_t)cap * sizeof(dpc_candidate));
    s->tmp = (dpc_candidate *)malloc((size_t)cap * sizeof(dpc_candidate));
    if (s->ps == NULL || s->buf == NULL || s->tmp == NULL) return 0;
    for (k = 0; k < cap; ++k) s->ps[k] = k;
    s->cap = cap;
    return 1;
}

/* (i, j, S) of a coincident pair, ordered lexicographically so that the one
 * reported does not depend on the thread count. */
static int pair_key_less(const dpc_index *a, const dpc_index *b)
{
    for (int k = 0; k < 5; ++k)
        if (a[k] != b[k]) return a[k] < b[k];
    return 0;
}

static dpc_index floor_div(dpc_index u, dpc_index n)
{
    dpc_index q = u / n;
    return (u % n != 0 && u < 0) ? q - 1 : q;
}

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
    double *bad_d2)
{
    const int nt = n_threads < 1 ? 1 : n_threads;
    const double rcut2 = rcut * rcut;
    const double coincide2 = coincide * coincide;
    const double search2 = search * search;
    dpc_index *bin_of = NULL, *bin_start = NULL, *bin_atoms = NULL, *fill = NULL;
    double *bin_xyz = NULL;
    dpc_index a, b, k, ncells;
    dpc_status status = DPC_OK;
    int alloc_failed = 0, found_bad = 0;

    if (natoms < 1 || ncenter < 0 || ncenter > natoms || nblocks < 1 || (mixed && nblocks != 1) || sel_offsets[0] != 0)
        return DPC_ERR_ARGUMENT;
    for (b = 0; b < nblocks; ++b)
        if (sel_offsets[b + 1] < sel_offsets[b]) return DPC_ERR_ARGUMENT;
    for (k = 0; k < 3; ++k)
        if (nbins[k] < 1 || reach[k] < 0) return DPC_ERR_ARGUMENT;
    if (nbins[0] > INT64_MAX / nbins[1] || nbins[0] * nbins[1] > INT64_MAX / nbins[2]) return DPC_ERR_ARGUMENT;
    ncells = nbins[0] * nbins[1] * nbins[2];
    if (!mixed)
        for (a = 0; a < natoms; ++a)
            if (atom_types[a] < 0 || atom_types[a] >= nblocks) return DPC_ERR_INDEX;
    if (!(search >= rcut)) return DPC_ERR_ARGUMENT;
    for (a = 0; a < 3 * natoms; ++a)
        if (!isfinite(coords[a]) || !isfinite(frac[a]) || !isfinite(wrapped[a])) return DPC_ERR_NONFINITE;

    /* Atoms binned by their fractional coordinates; counting sort keeps the
     * atoms of a bin in index order. */
    bin_of = (dpc_index *)malloc((size_t)natoms * sizeof(dpc_index));
    bin_start = (dpc_index *)calloc((size_t)ncells + 1, sizeof(dpc_index));
    bin_atoms = (dpc_index *)malloc((size_t)natoms * sizeof(dpc_index));
    fill = (dpc_index *)malloc((size_t)ncells * sizeof(dpc_index));
    bin_xyz = (double *)malloc((size_t)natoms * 3 * sizeof(double));
    if (bin_of == NULL || bin_start == NULL || bin_atoms == NULL || fill == NULL || bin_xyz == NULL) {
        status = DPC_ERR_ALLOC;
        goto done;
    }
    for (a = 0; a < natoms; ++a) {
        dpc_index c = 0;
        for (k = 0; k < 3; ++k) {
            double x = frac[3 * a + k] * (double)nbins[k];
            /* frac may round to exactly 1 (or a hair outside [0, 1] for a
             * cluster): clamping moves the atom to the nearest bin, which the
             * search reach covers (see the header). */
            dpc_index q = x <= 0.0 ? 0 : (x >= (double)nbins[k] ? nbins[k] - 1 : (dpc_index)x);
            c = c * nbins[k] + q;
        }
        bin_of[a] = c;
        bin_start[c + 1] += 1;
    }
    for (b = 0; b < ncells; ++b) {
        bin_start[b + 1] += bin_start[b];
        fill[b] = bin_start[b];
    }
    for (a = 0; a < natoms; ++a) bin_atoms[fill[bin_of[a]]++] = a;
    for (b = 0; b < natoms; ++b) {
        const dpc_index j = bin_atoms[b];
        bin_xyz[3 * b] = wrapped[3 * j];
        bin_xyz[3 * b + 1] = wrapped[3 * j + 1];
        bin_xyz[3 * b + 2] = wrapped[3 * j + 2];
    }

    for (k = 0; k < 5; ++k) bad_pair[k] = -1;
    *bad_d2 = 0.0;

#pragma omp parallel num_threads(nt)
    {
        dpc_cell_scratch s = {0, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
        dpc_index my_bad[5] = {-1, -1, -1, -1, -1};
        double my_bad_d2 = 0.0;
        int my_found = 0;
        int ok = 1;
        s.bstart = (dpc_index *)malloc((size_t)(2 * nblocks + 1) * sizeof(dpc_index));
        if (s.bstart == NULL || !cell_scratch_reserve(&s, 256)) ok = 0;
        else s.bfill = s.bstart + nblocks + 1;

#pragma omp for schedule(dynamic, 32)
        for (a = 0; a < ncenter; ++a) {
            dpc_index bi[3], n = 0, d0, d1, d2;
            const double *ri = coords + 3 * a;
            const double *wi = wrapped + 3 * a;
            if (!ok) continue;
            {
                dpc_index c = bin_of[a];
                bi[2] = c % nbins[2];
                c /= nbins[2];
                bi[1] = c % nbins[1];
                bi[0] = c / nbins[1];
            }
            for (d0 = -reach[0]; d0 <= reach[0] && ok; ++d0) {
                const dpc_index u0 = bi[0] + d0;
                const dpc_index q0 = floor_div(u0, nbins[0]);
                if (!periodic && q0 != 0) continue;
                for (d1 = -reach[1]; d1 <= reach[1] && ok; ++d1) {
                    const dpc_index u1 = bi[1] + d1;
                    const dpc_index q1 = floor_div(u1, nbins[1]);
                    if (!periodic && q1 != 0) continue;
                    for (d2 = -reach[2]; d2 <= reach[2] && ok; ++d2) {
                        const dpc_index u2 = bi[2] + d2;
                        const dpc_index q2 = floor_div(u2, nbins[2]);
                        dpc_index cell_id, m;
                        if (!periodic && q2 != 0) continue;
                        cell_id = ((u0 - q0 * nbins[0]) * nbins[1] + (u1 - q1 * nbins[1])) * nbins[2]
                                  + (u2 - q2 * nbins[2]);
                        /* Screen on the wrapped positions (cheap, bin-ordered);
                         * the exact vector is formed only for the few that pass. */
                        const double qx = ((double)q0 * cell[0] + (double)q1 * cell[3]) + (double)q2 * cell[6];
                        const double qy = ((double)q0 * cell[1] + (double)q1 * cell[4]) + (double)q2 * cell[7];
                        const double qz = ((double)q0 * cell[2] + (double)q1 * cell[5]) + (double)q2 * cell[8];
                        const double ox = qx - wi[0], oy = qy - wi[1], oz = qz - wi[2];
                        for (m = bin_start[cell_id]; m < bin_start[cell_id + 1]; ++m) {
                            const double sx = bin_xyz[3 * m] + ox;
                            const double sy = bin_xyz[3 * m + 1] + oy;
                            const double sz = bin_xyz[3 * m + 2] + oz;
                            if (sx * sx + sy * sy + sz * sz >= search2) continue;
                            const dpc_index j = bin_atoms[m];
                            const double *rj = coords + 3 * j;
                            /* Shift of the original positions: image q of the
                             * wrapped ones, S = q + n_i - n_j. */
                            const double S0 = periodic ? (double)(q0 + wrap[3 * a] - wrap[3 * j]) : 0.0;
                            const double S1 = periodic ? (double)(q1 + wrap[3 * a + 1] - wrap[3 * j + 1]) : 0.0;
                            const double S2 = periodic ? (double)(q2 + wrap[3 * a + 2] - wrap[3 * j + 2]) : 0.0;
                            double v[3], dd;
                            if (j == a && S0 == 0.0 && S1 == 0.0 && S2 == 0.0) continue;
                            /* Fixed evaluation order, the brute-force oracle's:
                             * r_ij = (r_j - r_i) + ((S0 a0 + S1 a1) + S2 a2). */
                            for (int c = 0; c < 3; ++c) {
                                double t0 = S0 * cell[c];
                                double t1 = S1 * cell[3 + c];
                                double t2 = S2 * cell[6 + c];
                                double sh = t0 + t1;
                                double dx = rj[c] - ri[c];
                                sh = sh + t2;
                                v[c] = dx + sh;
                            }
                            dd = squared_norm(v[0], v[1], v[2]);
                            if (!(dd < rcut2)) continue;
                            if (dd < coincide2) {
                                const dpc_index key[5] = {a, j, (dpc_index)S0, (dpc_index)S1, (dpc_index)S2};
                                if (!my_found || pair_key_less(key, my_bad)) {
                                    for (int c = 0; c < 5; ++c) my_bad[c] = key[c];
                                    my_bad_d2 = dd;
                                    my_found = 1;
                                }
                            }
                            if (n == s.cap && !cell_scratch_reserve(&s, 2 * s.cap)) {
                                ok = 0;
                                break;
                            }
                            s.js[n] = j;
                            s.vecs[3 * n] = v[0];
                            s.vecs[3 * n + 1] = v[1];
                            s.vecs[3 * n + 2] = v[2];
                            ++n;
                        }
                    }
                }
            }
            if (!ok) continue;
            bucket_candidates(n, s.js, s.ps, s.vecs, atom_types, nblocks, mixed, s.buf, s.bstart, s.bfill);
            emit_blocks(a, s.buf, s.tmp, s.bstart, s.vecs, nblocks, sel_offsets, index, vectors, counts,
                        overflow);
        }
        if (!ok) {
#pragma omp atomic write
            alloc_failed = 1;
        }
        if (my_found) {
#pragma omp critical(dpc_cell_list_bad)
            {
                if (!found_bad || pair_key_less(my_bad, bad_pair)) {
                    for (int c = 0; c < 5; ++c) bad_pair[c] = my_bad[c];
                    *bad_d2 = my_bad_d2;
                    found_bad = 1;
                }
            }
        }
        cell_scratch_free(&s);
        free(s.bstart);
    }
    (void)nt;
    if (alloc_failed) status = DPC_ERR_ALLOC;
    else if (found_bad) status = DPC_ERR_COINCIDENT;

done:
    free(bin_of);
    free(bin_start);
    free(bin_atoms);
    free(fill);
    free(bin_xyz);
    return status;
}
