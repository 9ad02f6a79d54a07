/* Candidate neighbors with a cell list: see dpc_neighbors.h.  The numpy twin of the whole neighbor
 * search (candidates, then dpc_rows.c) is dpcompress/reference/neighbors.py, an exhaustive search. */
#include "dpc_neighbors.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Centers per block of candidates (one growable array each). */
#define CELLS_BLOCK 64
/* Largest extended bin grid and image count accepted. */
#define CELLS_MAX_EXT (INT64_C(1) << 28)

struct dpc_cells {
    dpc_index natoms, ncenter, nimage, ncand, nblock;
    int32_t *owner;      /* [nimage] */
    int32_t *lattice;    /* [nimage][3] */
    int32_t *count;      /* [ncenter] */
    int32_t **block;     /* [nblock] candidate indices of CELLS_BLOCK centers */
};

static dpc_index floor_div(dpc_index u, dpc_index n)
{
    dpc_index q = u / n;
    return (u % n != 0 && u < 0) ? q - 1 : q;
}

void dpc_cells_free(dpc_cells *c)
{
    if (!c) return;
    if (c->block)
        for (dpc_index b = 0; b < c->nblock; b++) free(c->block[b]);
    free(c->block);
    free(c->owner);
    free(c->lattice);
    free(c->count);
    free(c);
}

dpc_index dpc_cells_nimage(const dpc_cells *c) { return c->nimage; }
dpc_index dpc_cells_ncandidates(const dpc_cells *c) { return c->ncand; }

void dpc_cells_export(dpc_cells *c, int32_t *image_owner, int32_t *image_lattice, int64_t *offsets, int32_t *index)
{
    if (c->nimage) {
        memcpy(image_owner, c->owner, sizeof(int32_t) * (size_t)c->nimage);
        memcpy(image_lattice, c->lattice, sizeof(int32_t) * 3 * (size_t)c->nimage);
    }
    offsets[0] = 0;
    for (dpc_index a = 0; a < c->ncenter; a++) offsets[a + 1] = offsets[a] + c->count[a];
    for (dpc_index b = 0; b < c->nblock; b++) {
        const dpc_index first = b * CELLS_BLOCK;
        const dpc_index n = offsets[(first + CELLS_BLOCK < c->ncenter ? first + CELLS_BLOCK : c->ncenter)] - offsets[first];
        if (n) memcpy(index + offsets[first], c->block[b], sizeof(int32_t) * (size_t)n);
        free(c->block[b]);
        c->block[b] = NULL;
    }
}

dpc_status dpc_cell_candidates(dpc_index natoms, dpc_index ncenter, const double *frac, const double *wrapped,
                               const double *cell, const dpc_index *nbins, const dpc_index *reach, double search,
                               int n_threads, dpc_cells **out)
{
    *out = NULL;
    const int periodic = cell != NULL;
    const int nt = n_threads < 1 ? 1 : n_threads;
    if (natoms < 0 || ncenter < 0 || ncenter > natoms || natoms > INT32_MAX || !(search > 0.0)) return DPC_ERR_ARGUMENT;
    for (int k = 0; k < 3; ++k)
        if (nbins[k] < 1 || reach[k] < 0 || nbins[k] > CELLS_MAX_EXT || reach[k] > CELLS_MAX_EXT) return DPC_ERR_ARGUMENT;
    dpc_index ext[3], next = 1, ncells = 1;
    for (int k = 0; k < 3; ++k) {
        ext[k] = periodic ? nbins[k] + 2 * reach[k] : nbins[k];
        if (next > CELLS_MAX_EXT / ext[k]) return DPC_ERR_ARGUMENT;
        next *= ext[k];
        ncells *= nbins[k];
    }
    for (dpc_index a = 0; a < 3 * natoms; ++a)
        if (!isfinite(frac[a]) || !isfinite(wrapped[a])) return DPC_ERR_NONFINITE;

    dpc_status status = DPC_OK;
    dpc_cells *c = (dpc_cells *)calloc(1, sizeof(dpc_cells));
    dpc_index *bin_of = (dpc_index *)malloc(sizeof(dpc_index) * (size_t)(natoms ? natoms : 1));
    dpc_index *bin_start = (dpc_index *)calloc((size_t)ncells + 1, sizeof(dpc_index));
    dpc_index *bin_atoms = (dpc_index *)malloc(sizeof(dpc_index) * (size_t)(natoms ? natoms : 1));
    double *bin_xyz = (double *)malloc(sizeof(double) * 3 * (size_t)(natoms ? natoms : 1));
    dpc_index *image_base = periodic ? (dpc_index *)malloc(sizeof(dpc_index) * (size_t)next) : NULL;
    if (!c || !bin_of || !bin_start || !bin_atoms || !bin_xyz || (periodic && !image_base)) {
        status = DPC_ERR_ALLOC;
        goto done;
    }
    c->natoms = natoms;
    c->ncenter = ncenter;
    /* atoms binned by their fractional coordinates; counting sort keeps a bin's atoms in index order */
    for (dpc_index a = 0; a < natoms; ++a) {
        dpc_index id = 0;
        for (int k = 0; k < 3; ++k) {
            const double x = frac[3 * a + k] * (double)nbins[k];
            /* frac may round to exactly 1 (or a hair outside [0, 1] for a cluster): the nearest
             * bin, which the search reach covers */
            const dpc_index q = x <= 0.0 ? 0 : (x >= (double)nbins[k] ? nbins[k] - 1 : (dpc_index)x);
            id = id * nbins[k] + q;
        }
        bin_of[a] = id;
        bin_start[id + 1] += 1;
    }
    for (dpc_index b = 0; b < ncells; ++b) bin_start[b + 1] += bin_start[b];
    {
        dpc_index *fill = (dpc_index *)malloc(sizeof(dpc_index) * (size_t)ncells);
        if (!fill) {
            status = DPC_ERR_ALLOC;
            goto done;
        }
        memcpy(fill, bin_start, sizeof(dpc_index) * (size_t)ncells);
        for (dpc_index a = 0; a < natoms; ++a) bin_atoms[fill[bin_of[a]]++] = a;
        free(fill);
    }
    for (dpc_index m = 0; m < natoms; ++m) memcpy(bin_xyz + 3 * m, wrapped + 3 * bin_atoms[m], 3 * sizeof(double));

    /* images: every atom of every extended bin outside the base grid */
    if (periodic) {
        dpc_index nimage = 0;
        for (dpc_index u0 = 0; u0 < ext[0]; ++u0)
            for (dpc_index u1 = 0; u1 < ext[1]; ++u1)
                for (dpc_index u2 = 0; u2 < ext[2]; ++u2) {
                    const dpc_index v[3] = {u0 - reach[0], u1 - reach[1], u2 - reach[2]};
                    const dpc_index e = (u0 * ext[1] + u1) * ext[2] + u2;
                    if (v[0] >= 0 && v[0] < nbins[0] && v[1] >= 0 && v[1] < nbins[1] && v[2] >= 0 && v[2] < nbins[2]) {
                        image_base[e] = -1;
                        continue;
                    }
                    const dpc_index b = ((v[0] - floor_div(v[0], nbins[0]) * nbins[0]) * nbins[1] +
                                         (v[1] - floor_div(v[1], nbins[1]) * nbins[1])) * nbins[2] +
                                        (v[2] - floor_div(v[2], nbins[2]) * nbins[2]);
                    image_base[e] = nimage;
                    nimage += bin_start[b + 1] - bin_start[b];
                }
        if (nimage > INT32_MAX - natoms) {
            status = DPC_ERR_ARGUMENT;
            goto done;
        }
        c->nimage = nimage;
        c->owner = (int32_t *)malloc(sizeof(int32_t) * (size_t)(nimage ? nimage : 1));
        c->lattice = (int32_t *)malloc(sizeof(int32_t) * 3 * (size_t)(nimage ? nimage : 1));
        if (!c->owner || !c->lattice) {
            status = DPC_ERR_ALLOC;
            goto done;
        }
        for (dpc_index u0 = 0; u0 < ext[0]; ++u0)
            for (dpc_index u1 = 0; u1 < ext[1]; ++u1)
                for (dpc_index u2 = 0; u2 < ext[2]; ++u2) {
                    const dpc_index e = (u0 * ext[1] + u1) * ext[2] + u2;
                    if (image_base[e] < 0) continue;
                    const dpc_index v[3] = {u0 - reach[0], u1 - reach[1], u2 - reach[2]};
                    dpc_index q[3], w[3];
                    for (int k = 0; k < 3; ++k) {
                        q[k] = floor_div(v[k], nbins[k]);
                        w[k] = v[k] - q[k] * nbins[k];
                    }
                    const dpc_index b = (w[0] * nbins[1] + w[1]) * nbins[2] + w[2];
                    for (dpc_index m = bin_start[b]; m < bin_start[b + 1]; ++m) {
                        const dpc_index g = image_base[e] + (m - bin_start[b]);
                        c->owner[g] = (int32_t)bin_atoms[m];
                        for (int k = 0; k < 3; ++k) c->lattice[3 * g + k] = (int32_t)q[k];
                    }
                }
    }

    c->nblock = (ncenter + CELLS_BLOCK - 1) / CELLS_BLOCK;
    c->count = (int32_t *)calloc((size_t)(ncenter ? ncenter : 1), sizeof(int32_t));
    c->block = (int32_t **)calloc((size_t)(c->nblock ? c->nblock : 1), sizeof(int32_t *));
    if (!c->count || !c->block) {
        status = DPC_ERR_ALLOC;
        goto done;
    }
    {
        const double search2 = search * search;
        int failed = 0;
        int64_t total = 0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) reduction(+ : total)
        for (dpc_index blk = 0; blk < c->nblock; ++blk) {
            dpc_index cap = 1024, n = 0;
            int32_t *buf = (int32_t *)malloc(sizeof(int32_t) * (size_t)cap);
            if (!buf) {
#pragma omp atomic write
                failed = 1;
                continue;
            }
            const dpc_index last = (blk + 1) * CELLS_BLOCK < ncenter ? (blk + 1) * CELLS_BLOCK : ncenter;
            for (dpc_index a = blk * CELLS_BLOCK; a < last && buf; ++a) {
                const dpc_index start_n = n;
                dpc_index bi[3];
                {
                    dpc_index id = bin_of[a];
                    bi[2] = id % nbins[2];
                    id /= nbins[2];
                    bi[1] = id % nbins[1];
                    bi[0] = id / nbins[1];
                }
                const double *wi = wrapped + 3 * a;
                for (dpc_index d0 = -reach[0]; d0 <= reach[0] && buf; ++d0) {
                    const dpc_index u0 = bi[0] + d0, q0 = floor_div(u0, nbins[0]);
                    if (!periodic && q0 != 0) continue;
                    for (dpc_index d1 = -reach[1]; d1 <= reach[1] && buf; ++d1) {
                        const dpc_index u1 = bi[1] + d1, q1 = floor_div(u1, nbins[1]);
                        if (!periodic && q1 != 0) continue;
                        for (dpc_index d2 = -reach[2]; d2 <= reach[2] && buf; ++d2) {
                            const dpc_index u2 = bi[2] + d2, q2 = floor_div(u2, nbins[2]);
                            if (!periodic && q2 != 0) continue;
                            const dpc_index b = ((u0 - q0 * nbins[0]) * nbins[1] + (u1 - q1 * nbins[1])) * nbins[2] +
                                                (u2 - q2 * nbins[2]);
                            const int image = q0 != 0 || q1 != 0 || q2 != 0;
                            dpc_index base_id = 0;
                            double ox = -wi[0], oy = -wi[1], oz = -wi[2];
                            if (image) {
                                base_id = natoms + image_base[((u0 + reach[0]) * ext[1] + (u1 + reach[1])) * ext[2] +
                                                              (u2 + reach[2])] - bin_start[b];
                                ox += ((double)q0 * cell[0] + (double)q1 * cell[3]) + (double)q2 * cell[6];
                                oy += ((double)q0 * cell[1] + (double)q1 * cell[4]) + (double)q2 * cell[7];
                                oz += ((double)q0 * cell[2] + (double)q1 * cell[5]) + (double)q2 * cell[8];
                            }
                            for (dpc_index m = bin_start[b]; m < bin_start[b + 1]; ++m) {
                                const double sx = bin_xyz[3 * m] + ox, sy = bin_xyz[3 * m + 1] + oy,
                                             sz = bin_xyz[3 * m + 2] + oz;
                                if (sx * sx + sy * sy + sz * sz >= search2) continue;
                                const dpc_index j = image ? base_id + m : bin_atoms[m];
                                if (j == a) continue;
                                if (n == cap) {
                                    int32_t *grown = (int32_t *)realloc(buf, sizeof(int32_t) * (size_t)(2 * cap));
                                    if (!grown) {
                                        free(buf);
                                        buf = NULL;
                                        break;
                                    }
                                    buf = grown;
                                    cap *= 2;
                                }
                                buf[n++] = (int32_t)j;
                            }
                        }
                    }
                }
                if (buf) c->count[a] = (int32_t)(n - start_n);
            }
            if (!buf) {
#pragma omp atomic write
                failed = 1;
                continue;
            }
            c->block[blk] = buf;
            total += n;
        }
        if (failed) status = DPC_ERR_ALLOC;
        c->ncand = total;
    }
done:
    free(bin_of);
    free(bin_start);
    free(bin_atoms);
    free(bin_xyz);
    free(image_base);
    if (status != DPC_OK) {
        dpc_cells_free(c);
        return status;
    }
    *out = c;
    return DPC_OK;
}

double dpc_search_radius(dpc_index natoms, const double *x, double rcut)
{
    double big = 0.0;
    for (dpc_index q = 0; q < 3 * natoms; ++q) big = fabs(x[q]) > big ? fabs(x[q]) : big;
    return rcut + 1e-6 * (rcut > 1.0 ? rcut : 1.0) + 1e-12 * big;
}

/* |u x v| */
static double cross_norm(const double *u, const double *v)
{
    const double c0 = u[1] * v[2] - u[2] * v[1], c1 = u[2] * v[0] - u[0] * v[2], c2 = u[0] * v[1] - u[1] * v[0];
    return sqrt(c0 * c0 + c1 * c1 + c2 * c2);
}

dpc_status dpc_cell_list_bins(dpc_index natoms, const double *x, const double *cell, double search, double *frac,
                              double *wrapped, int32_t *wrap, dpc_bins *bins)
{
    bins->far_atom = -1;
    bins->screened = 0.0;
    if (natoms < 1 || !(search > 0.0)) return DPC_ERR_ARGUMENT;
    for (dpc_index q = 0; q < 3 * natoms; ++q)
        if (!isfinite(x[q])) return DPC_ERR_NONFINITE;
    double h[3];
    if (cell) {
        const double *A = cell;
        /* adjugate: inv[k][c] = cof[c][k] / det */
        const double cof[9] = {A[4] * A[8] - A[5] * A[7], A[5] * A[6] - A[3] * A[8], A[3] * A[7] - A[4] * A[6],
                               A[2] * A[7] - A[1] * A[8], A[0] * A[8] - A[2] * A[6], A[1] * A[6] - A[0] * A[7],
                               A[1] * A[5] - A[2] * A[4], A[2] * A[3] - A[0] * A[5], A[0] * A[4] - A[1] * A[3]};
        const double det = A[0] * cof[0] + A[1] * cof[1] + A[2] * cof[2];
        if (!(fabs(det) > 0.0) || !isfinite(det)) return DPC_ERR_ARGUMENT;
        double inv[9];
        for (int k = 0; k < 3; ++k)
            for (int c = 0; c < 3; ++c) inv[3 * k + c] = cof[3 * c + k] / det;
        for (int c = 0; c < 3; ++c) h[c] = fabs(det) / cross_norm(A + 3 * ((c + 1) % 3), A + 3 * ((c + 2) % 3));
        double worst = -1.0;
        for (dpc_index a = 0; a < natoms; ++a) {
            const double *r = x + 3 * a;
            for (int c = 0; c < 3; ++c) {
                const double f = (r[0] * inv[c] + r[1] * inv[3 + c]) + r[2] * inv[6 + c];
                if (fabs(f) > worst) {
                    worst = fabs(f);
                    if (worst > DPC_MAX_CELLS_AWAY && bins->far_atom < 0) bins->far_atom = a;
                }
                frac[3 * a + c] = f;
            }
        }
        if (bins->far_atom >= 0) return DPC_ERR_ARGUMENT;
        for (dpc_index a = 0; a < natoms; ++a) {
            double *f = frac + 3 * a;
            for (int c = 0; c < 3; ++c) {
                const double n = floor(f[c]);
                f[c] -= n;
                if (wrap) wrap[3 * a + c] = (int32_t)n;
            }
            for (int c = 0; c < 3; ++c) wrapped[3 * a + c] = (f[0] * A[c] + f[1] * A[3 + c]) + f[2] * A[6 + c];
        }
    } else {
        double lo[3], hi[3];
        for (int c = 0; c < 3; ++c) lo[c] = hi[c] = x[c];
        for (dpc_index a = 1; a < natoms; ++a)
            for (int c = 0; c < 3; ++c) {
                const double v = x[3 * a + c];
                lo[c] = v < lo[c] ? v : lo[c];
                hi[c] = v > hi[c] ? v : hi[c];
            }
        for (int c = 0; c < 3; ++c) h[c] = hi[c] - lo[c] > search ? hi[c] - lo[c] : search;
        for (dpc_index a = 0; a < natoms; ++a)
            for (int c = 0; c < 3; ++c) {
                frac[3 * a + c] = (x[3 * a + c] - lo[c]) / h[c];
                wrapped[3 * a + c] = x[3 * a + c];
            }
    }
    dpc_index *nb = bins->nbins, *rc = bins->reach;
    for (int c = 0; c < 3; ++c) {
        const double q = h[c] / search < 1048576.0 ? h[c] / search : 1048576.0;
        nb[c] = (dpc_index)q < 1 ? 1 : (dpc_index)q;
    }
    const double most = 27.0 > (double)DPC_MAX_BINS_PER_ATOM * (double)natoms ? 27.0
                                                                             : (double)DPC_MAX_BINS_PER_ATOM * (double)natoms;
    while ((double)nb[0] * (double)nb[1] * (double)nb[2] > most) {
        int c = 0;
        for (int k = 1; k < 3; ++k)
            if (nb[k] > nb[c]) c = k;
        nb[c] = nb[c] / 2 < 1 ? 1 : nb[c] / 2;
    }
    double m = (double)natoms;
    for (int c = 0; c < 3; ++c) {
        rc[c] = (dpc_index)floor(search * (double)nb[c] / h[c]) + 1;
        dpc_index visited = 2 * rc[c] + 1;
        if (!cell && visited > nb[c]) visited = nb[c];
        m *= (double)visited / (double)nb[c];
    }
    bins->screened = m;
    return DPC_OK;
}
