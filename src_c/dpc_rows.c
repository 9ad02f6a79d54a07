/* Neighbor rows from candidates: see dpc_rows.h. */
#include "dpc_rows.h"

#include <string.h>

/* Strict "a before b" in the (d2, tag, r_x, r_y, r_z) order. */
static int candidate_less(const dpc_candidate *a, const dpc_candidate *b, const double *vec)
{
    if (a->d2 != b->d2) return a->d2 < b->d2;
    if (a->tag != b->tag) return a->tag < b->tag;
    const double *da = vec + 3 * a->p;
    const double *db = vec + 3 * b->p;
    if (da[0] != db[0]) return da[0] < db[0];
    if (da[1] != db[1]) return da[1] < db[1];
    return da[2] < db[2];
}

/* Stable sort of c[0..n) with tmp[0..n) as scratch: insertion sort of runs of 16, then merges.
 * Hand-written rather than qsort: qsort is not stable, may allocate, and pays an indirect call
 * per comparison. */
static void sort_candidates(dpc_candidate *c, dpc_candidate *tmp, int64_t n, const double *vec)
{
    const int64_t run = 16;
    dpc_candidate *src = c, *dst = tmp;
    for (int64_t lo = 0; lo < n; lo += run) {
        const int64_t hi = lo + run < n ? lo + run : n;
        for (int64_t k = lo + 1; k < hi; ++k) {
            dpc_candidate key = c[k];
            int64_t m = k;
            while (m > lo && candidate_less(&key, &c[m - 1], vec)) {
                c[m] = c[m - 1];
                --m;
            }
            c[m] = key;
        }
    }
    for (int64_t width = run; width < n; width *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * width) {
            const int64_t mid = lo + width < n ? lo + width : n;
            const int64_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            int64_t l = lo, r = mid, o = lo;
            while (l < mid && r < hi) {
                /* take from the right run only when strictly smaller: stable.  Index arithmetic
                 * instead of a branch: the outcome is a coin flip a predictor would miss. */
                const int right = candidate_less(&src[r], &src[l], vec);
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

/* Squared length in a fixed order, as separate statements so that no compiler fuses a
 * multiply-add: the twin computes the same three products and two sums. */
static double squared_norm(double x, double y, double z)
{
    double xx = x * x;
    double yy = y * y;
    double zz = z * z;
    double s = xx + yy;
    return s + zz;
}

static int key_less(const int64_t *a, const int64_t *b)
{
    for (int k = 0; k < 5; ++k)
        if (a[k] != b[k]) return a[k] < b[k];
    return 0;
}

void dpc_row_issue_merge(dpc_row_issue *into, const dpc_row_issue *from)
{
    if (from->coincident && (!into->coincident || key_less(from->key, into->key))) {
        into->coincident = 1;
        memcpy(into->key, from->key, sizeof into->key);
        into->d2 = from->d2;
    }
    if (from->bad_index && (!into->bad_index || from->bad_center < into->bad_center)) {
        into->bad_index = 1;
        into->bad_center = from->bad_center;
        into->bad_value = from->bad_value;
    }
}

/* Room for cap candidates, carved from one buffer. */
static int reserve(dpc_buffer *buf, int64_t cap, dpc_sorted_neighbors *s)
{
    size_t size = 0;
    dpc_carve(NULL, &size, (size_t)cap * sizeof(dpc_candidate));
    dpc_carve(NULL, &size, (size_t)cap * sizeof(dpc_candidate));
    dpc_carve(NULL, &size, (size_t)cap * 3 * sizeof(double));
    dpc_carve(NULL, &size, (size_t)cap * sizeof(int64_t));
    char *base = (char *)dpc_buffer_reserve(buf, size);
    if (!base) return 0;
    size_t off = 0;
    s->c = (dpc_candidate *)dpc_carve(base, &off, (size_t)cap * sizeof(dpc_candidate));
    s->tmp = (dpc_candidate *)dpc_carve(base, &off, (size_t)cap * sizeof(dpc_candidate));
    s->vec = (double *)dpc_carve(base, &off, (size_t)cap * 3 * sizeof(double));
    s->target = (int64_t *)dpc_carve(base, &off, (size_t)cap * sizeof(int64_t));
    return 1;
}

int dpc_gather_reserve(dpc_buffer *buf, int64_t most)
{
    dpc_sorted_neighbors unused;
    return reserve(buf, most > 0 ? most : 1, &unused);
}

dpc_status dpc_gather_neighbors(const dpc_frame *f, int64_t i, double rcut2, double coincide2, dpc_buffer *buf,
                                dpc_sorted_neighbors *out, dpc_row_issue *issue)
{
    const int64_t ncand = f->numneigh[i];
    const int32_t *cand = f->firstneigh[i];
    const int64_t nall = f->natoms + f->nimage;
    if (!reserve(buf, ncand > 0 ? ncand : 1, out)) return DPC_ERR_ALLOC;
    static const double zero_cell[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    const double *cell = f->cell ? f->cell : zero_cell;
    const double *ri = f->x + 3 * i;
    const int32_t *ni = f->lattice && f->cell ? f->lattice + 3 * i : NULL;
    const int32_t *type = f->type;
    const int64_t natoms = f->natoms;
    const int32_t mask = f->neighmask;
    int64_t n = 0;
    for (int64_t k = 0; k < ncand; ++k) {
        const int64_t j = mask ? (int64_t)(cand[k] & mask) : (int64_t)cand[k];
        if (j < 0 || j >= nall) {
            if (!issue->bad_index || i < issue->bad_center) {
                issue->bad_index = 1;
                issue->bad_center = i;
                issue->bad_value = j;
            }
            return DPC_ERR_INDEX;
        }
        /* integer lattice shift S = q_j + n_i - n_t, converted once */
        int64_t t = j, s0 = 0, s1 = 0, s2 = 0;
        if (j >= natoms) {
            const int32_t *q = f->image_lattice + 3 * (j - natoms);
            t = f->image_owner[j - natoms];
            s0 = q[0];
            s1 = q[1];
            s2 = q[2];
        }
        if (type[t] < 0) continue;
        if (ni) {
            const int32_t *nt = f->lattice + 3 * t;
            s0 += (int64_t)ni[0] - nt[0];
            s1 += (int64_t)ni[1] - nt[1];
            s2 += (int64_t)ni[2] - nt[2];
        }
        if (t == i && s0 == 0 && s1 == 0 && s2 == 0) continue;
        const double S0 = (double)s0, S1 = (double)s1, S2 = (double)s2;
        const double *rj = f->x + 3 * t;
        double v[3];
        for (int c = 0; c < 3; ++c) {
            double t0 = S0 * cell[c];
            double t1 = S1 * cell[3 + c];
            double t2 = S2 * cell[6 + c];
            double sh = t0 + t1;
            double dx = rj[c] - ri[c];
            sh = sh + t2;
            v[c] = dx + sh;
        }
        const double dd = squared_norm(v[0], v[1], v[2]);
        if (!(dd < rcut2)) continue;
        if (dd < coincide2) {
            const int64_t key[5] = {i, t, (int64_t)S0, (int64_t)S1, (int64_t)S2};
            if (!issue->coincident || key_less(key, issue->key)) {
                issue->coincident = 1;
                memcpy(issue->key, key, sizeof key);
                issue->d2 = dd;
            }
        }
        out->vec[3 * n] = v[0];
        out->vec[3 * n + 1] = v[1];
        out->vec[3 * n + 2] = v[2];
        out->target[n] = t;
        out->c[n].d2 = dd;
        out->c[n].tag = f->tag ? f->tag[t] : t;
        out->c[n].p = n;
        ++n;
    }
    sort_candidates(out->c, out->tmp, n, out->vec);
    out->n = n;
    return DPC_OK;
}

int64_t dpc_fill_row(const dpc_sorted_neighbors *s, const dpc_row_spec *spec, const int32_t *types,
                     int32_t center_type, int64_t *index, double *vectors, int64_t *counts, int64_t *overflow)
{
    const int64_t nnei = spec->nnei;
    for (int64_t q = 0; q < nnei; ++q) {
        index[q] = -1;
        vectors[3 * q] = 0.0;
        vectors[3 * q + 1] = 0.0;
        vectors[3 * q + 2] = 0.0;
    }
    if (!spec->sel_offsets) { /* one block, no sel: everything within rcut up to the width */
        int64_t found = 0;
        for (int64_t k = 0; k < s->n; ++k) {
            const dpc_candidate *c = s->c + k;
            if (!(c->d2 < spec->rcut2)) continue;
            if (found < nnei) {
                const double *v = s->vec + 3 * c->p;
                index[found] = s->target[c->p];
                vectors[3 * found] = v[0];
                vectors[3 * found + 1] = v[1];
                vectors[3 * found + 2] = v[2];
            }
            ++found;
        }
        counts[0] = found < nnei ? found : nnei;
        if (overflow) overflow[0] = 0;
        return found;
    }
    const int64_t nb = spec->nblocks;
    const int64_t *off = spec->sel_offsets;
    int64_t found = 0;
    for (int64_t b = 0; b < nb; ++b) {
        counts[b] = 0;
        if (overflow) overflow[b] = 0;
    }
    for (int64_t k = 0; k < s->n; ++k) {
        const dpc_candidate *c = s->c + k;
        if (!(c->d2 < spec->rcut2)) continue;
        const int64_t t = s->target[c->p];
        const int64_t b = spec->mixed ? 0 : types[t];
        ++found;
        if (counts[b] < off[b + 1] - off[b]) {
            const int64_t slot = off[b] + counts[b]++;
            const double *v = s->vec + 3 * c->p;
            index[slot] = t;
            vectors[3 * slot] = v[0];
            vectors[3 * slot + 1] = v[1];
            vectors[3 * slot + 2] = v[2];
        } else if (overflow) {
            ++overflow[b];
        }
    }
    if (spec->pair_exclude) {
        const int8_t *excl = spec->pair_exclude + (int64_t)center_type * spec->ntypes;
        for (int64_t b = 0; b < nb; ++b) {
            int64_t kept = 0;
            for (int64_t r = 0; r < counts[b]; ++r) {
                const int64_t from = off[b] + r;
                if (excl[types[index[from]]]) continue;
                const int64_t to = off[b] + kept++;
                if (to != from) {
                    index[to] = index[from];
                    memcpy(vectors + 3 * to, vectors + 3 * from, 3 * sizeof(double));
                }
            }
            for (int64_t r = kept; r < counts[b]; ++r) {
                const int64_t q = off[b] + r;
                index[q] = -1;
                vectors[3 * q] = 0.0;
                vectors[3 * q + 1] = 0.0;
                vectors[3 * q + 2] = 0.0;
            }
            counts[b] = kept;
        }
    }
    return found;
}

dpc_status dpc_neighbor_rows(const dpc_frame *f, double rcut, int64_t nblocks, const int64_t *sel_offsets, int mixed,
                             int n_threads, int64_t *index, double *vectors, int64_t *counts, int64_t *overflow,
                             dpc_row_issue *issue)
{
    const int nt = n_threads < 1 ? 1 : n_threads;
    const int64_t nnei = sel_offsets[nblocks];
    const dpc_row_spec spec = {rcut * rcut, nblocks, nnei, sel_offsets, mixed, NULL, 0};
    int failed = 0;
    memset(issue, 0, sizeof *issue);
#pragma omp parallel num_threads(nt)
    {
        dpc_buffer buf = {NULL, 0};
        dpc_row_issue mine;
        memset(&mine, 0, sizeof mine);
        dpc_sorted_neighbors sn;
#pragma omp for schedule(dynamic, 32)
        for (int64_t i = 0; i < f->nlocal; ++i) {
            const dpc_status st = dpc_gather_neighbors(f, i, spec.rcut2, DPC_COINCIDE * DPC_COINCIDE, &buf, &sn, &mine);
            if (st == DPC_ERR_ALLOC) {
#pragma omp atomic write
                failed = 1;
            }
            if (st != DPC_OK) {
                sn.n = 0;
            }
            dpc_fill_row(&sn, &spec, f->type, f->type[i], index + i * nnei, vectors + i * nnei * 3,
                         counts + i * nblocks, overflow + i * nblocks);
        }
#pragma omp critical(dpc_neighbor_rows_issue)
        dpc_row_issue_merge(issue, &mine);
        dpc_buffer_free(&buf);
    }
    if (failed) return DPC_ERR_ALLOC;
    if (issue->bad_index) return DPC_ERR_INDEX;
    if (issue->coincident) return DPC_ERR_COINCIDENT;
    return DPC_OK;
}
