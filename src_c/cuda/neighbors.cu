/* Neighbor lists and the deterministic force/virial gather on the GPU.
 *
 * The list is DeePMD-kit's per-type, nearest-first layout, identical to the CPU
 * one (src_c/dpc_neighbors.c + src_c/dpc_rows.c, dpcompress/neighbors/): same pair
 * vectors bit for bit (r_ij = (r_j - r_i) + ((S0 a0 + S1 a1) + S2 a2), rounded
 * step by step, no FMA), same strict cut d2 < rcut^2, same order inside a block
 * ((d2, j, x, y, z) ascending), same sel truncation (the nearest kept), same
 * counts and overflow.
 *
 * Cell list
 * ---------
 * Periodic: bins of the wrapped fractional coordinates, nb_k = floor(h_k / r_s)
 * per axis (h_k = distance between the lattice planes of axis k, r_s = rcut
 * plus a 1e-6 skin) and a stencil of +-reach_k bins, reach_k = ceil(r_s nb_k / h_k);
 * bins are visited with their periodic image shift, so cells smaller than 2 rcut
 * (an atom next to its own images) are handled like any other.
 * Open (no cell): a spatial hash of integer cells of width >= r_s, 27 cells
 * visited; an atom of a colliding cell is skipped by comparing its cell.
 * Atoms are sorted by bin with a stable sort (dpcompress/gpu/neighbor_list.py),
 * cell_start[b] .. cell_start[b + 1] are the atoms of bin b.
 *
 * Kernels and their C twins
 * -------------------------
 * dpc_cell_candidates_bin_*  the binning step of dpc_cell_candidates (dpc_neighbors.c);
 * dpc_neighbor_rows          dpc_neighbor_rows (dpc_rows.c), with the stencil scan of
 *                            dpc_cell_candidates folded in: no candidate list is stored;
 * dpc_scatter_pair_gradients dpc_scatter_pair_gradients (dpc_se_a_tab.c), as a gather.
 *
 * Thread mapping
 * --------------
 * dpc_cell_candidates_bin_*: one thread per atom.
 * dpc_neighbor_rows: one warp per center atom (grid-stride).  The 32 lanes take 32
 *   candidates of a stencil bin at a time; the ones inside rcut are appended,
 *   in scan order (ballot + popc), to the warp's scratch buffer of `cap`
 *   entries in global memory.  When it would overflow, the warp prunes it to
 *   the sel_b nearest of every block (a streaming top-k; cap >= nnei + 32 keeps
 *   room), so any neighbor count works.  Finally every lane ranks its entries
 *   inside their block (comparisons with all entries: broadcast reads) and
 *   writes entry -> slot sel_offset[b] + rank when rank < sel_b.
 * dpc_scatter_pair_gradients: one warp per atom j, lanes over j's real slots.
 *   Forces and per-atom virials are GATHERED, never scattered with atomics:
 *      F_j = sum_{j's slots s -> i} ( g[j,s] - g[i, rev(s)] ),
 *      W_j = -sum_{i lists j} g[i,r] (x) r_ij[i,r]          (DeePMD-kit's per-atom virial)
 *   where rev(s) is found by binary search of key (d2, j, -r_ji) in i's block
 *   (r_ij = -r_ji exactly).  When j's block b overflowed, atoms i of type b
 *   that list j although j dropped them are found by re-scanning j's stencil
 *   (rare: only atoms with overflow pay for it).  Each lane sums its items in a
 *   fixed order, then a fixed butterfly reduction: bitwise reproducible.
 */
#include "dpc_cuda.cuh"

/* Cell-list geometry, assembled from the kernel arguments. */
struct dpc_grid {
    int periodic;
    long long nb[3];    /* periodic: bins per axis; open: nb[0] = hash size */
    long long reach[3]; /* periodic: stencil half-width per axis */
    const double *cell; /* [9] rows = cell vectors; zeros for open systems */
    const long long *bin_of;     /* [natoms] bin (periodic) or hash bucket (open) */
    const long long *home;       /* [natoms, 3] periodic: wrap count n_i (r_i = w_i + n_i . cell); open: integer cell */
    const long long *cell_atoms; /* [natoms] atoms sorted by bin */
    const long long *cell_start; /* [nbins + 1] */
};

#define DPC_GRID_PARAMS                                                                                               \
    int periodic, const double *__restrict__ cell, long long nb0, long long nb1, long long nb2, long long reach0,     \
        long long reach1, long long reach2, const long long *__restrict__ bin_of, const long long *__restrict__ home, \
        const long long *__restrict__ cell_atoms, const long long *__restrict__ cell_start

#define DPC_GRID_INIT(g)                                                                                              \
    dpc_grid g;                                                                                                       \
    g.periodic = periodic;                                                                                            \
    g.nb[0] = nb0;                                                                                                    \
    g.nb[1] = nb1;                                                                                                    \
    g.nb[2] = nb2;                                                                                                    \
    g.reach[0] = reach0;                                                                                              \
    g.reach[1] = reach1;                                                                                              \
    g.reach[2] = reach2;                                                                                              \
    g.cell = cell;                                                                                                    \
    g.bin_of = bin_of;                                                                                                \
    g.home = home;                                                                                                    \
    g.cell_atoms = cell_atoms;                                                                                        \
    g.cell_start = cell_start

static __device__ __forceinline__ long long dpc_floor_div(long long a, long long b)
{
    long long q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q -= 1;
    return q;
}

static __device__ __forceinline__ unsigned long long dpc_mix(unsigned long long x)
{
    /* splitmix64 finaliser */
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static __device__ __forceinline__ long long dpc_hash_cell(long long c0, long long c1, long long c2, long long size)
{
    const unsigned long long h =
        dpc_mix((unsigned long long)c0 + dpc_mix((unsigned long long)c1 + dpc_mix((unsigned long long)c2)));
    return (long long)(h % (unsigned long long)size);
}

/* Visit every stencil bin of atom i: visit(start, end, sw, filter) with the
 * bin's atoms cell_atoms[start..end), its image shift sw (periodic) and, for
 * open systems, the integer cell the atoms must sit in (filter). */
template <class F>
static __device__ __forceinline__ void dpc_for_each_bin(const dpc_grid &g, long long i, F &visit)
{
    if (g.periodic) {
        const long long id = g.bin_of[i];
        const long long b2 = id % g.nb[2], b1 = (id / g.nb[2]) % g.nb[1], b0 = id / (g.nb[1] * g.nb[2]);
        for (long long d0 = -g.reach[0]; d0 <= g.reach[0]; d0++) {
            const long long c0 = b0 + d0, s0 = dpc_floor_div(c0, g.nb[0]), m0 = c0 - s0 * g.nb[0];
            for (long long d1 = -g.reach[1]; d1 <= g.reach[1]; d1++) {
                const long long c1 = b1 + d1, s1 = dpc_floor_div(c1, g.nb[1]), m1 = c1 - s1 * g.nb[1];
                for (long long d2 = -g.reach[2]; d2 <= g.reach[2]; d2++) {
                    const long long c2 = b2 + d2, s2 = dpc_floor_div(c2, g.nb[2]), m2 = c2 - s2 * g.nb[2];
                    const long long bin = (m0 * g.nb[1] + m1) * g.nb[2] + m2;
                    const long long sw[3] = {s0, s1, s2};
                    visit(g.cell_start[bin], g.cell_start[bin + 1], sw, (const long long *)0);
                }
            }
        }
    } else {
        const long long *c = g.home + 3 * i;
        for (long long d0 = -1; d0 <= 1; d0++)
            for (long long d1 = -1; d1 <= 1; d1++)
                for (long long d2 = -1; d2 <= 1; d2++) {
                    const long long fc[3] = {c[0] + d0, c[1] + d1, c[2] + d2};
                    const long long h = dpc_hash_cell(fc[0], fc[1], fc[2], g.nb[0]);
                    const long long sw[3] = {0, 0, 0};
                    visit(g.cell_start[h], g.cell_start[h + 1], sw, fc);
                }
    }
}

/* Is (j, image) a neighbor of i?  Fills r_ij and d2 = |r_ij|^2 exactly as the CPU does. */
static __device__ __forceinline__ int dpc_candidate(const dpc_grid &g, const double *__restrict__ coords, long long i,
                                                    long long j, const long long *sw, const long long *filter,
                                                    double rc2, double *v, double *d2)
{
    long long S[3];
    if (g.periodic) {
        for (int k = 0; k < 3; k++) S[k] = sw[k] + g.home[3 * i + k] - g.home[3 * j + k];
    } else {
        const long long *cj = g.home + 3 * j;
        if (cj[0] != filter[0] || cj[1] != filter[1] || cj[2] != filter[2]) return 0; /* hash collision */
        S[0] = S[1] = S[2] = 0;
    }
    if (j == i && S[0] == 0 && S[1] == 0 && S[2] == 0) return 0; /* the atom itself */
    const double S0 = (double)S[0], S1 = (double)S[1], S2 = (double)S[2];
    for (int c = 0; c < 3; c++) {
        const double shift = DPC_ADD(DPC_ADD(DPC_MUL(S0, g.cell[c]), DPC_MUL(S1, g.cell[3 + c])), DPC_MUL(S2, g.cell[6 + c]));
        v[c] = DPC_ADD(DPC_SUB(coords[3 * j + c], coords[3 * i + c]), shift);
    }
    *d2 = dpc_norm2(v[0], v[1], v[2]);
    return *d2 < rc2;
}

/* ------------------------------------------------------------------ binning */

/* Periodic: frac = r . inv_cell, n = floor(frac), bin of frac - n.
 * err[0] = first atom with a non-finite coordinate, err[1] = first atom more than 2^40 cells away. */
extern "C" __global__ void dpc_cell_candidates_bin_periodic(long long natoms, const double *__restrict__ coords,
                                                            const double *__restrict__ inv_cell, long long nb0,
                                                            long long nb1, long long nb2,
                                                            long long *__restrict__ bin_of,
                                                            long long *__restrict__ home,
                                                            unsigned long long *__restrict__ err)
{
    const long long nb[3] = {nb0, nb1, nb2};
    for (long long i = dpc_first_thread(); i < natoms; i += dpc_thread_stride()) {
        const double x = coords[3 * i], y = coords[3 * i + 1], z = coords[3 * i + 2];
        long long b[3] = {0, 0, 0}, n[3] = {0, 0, 0};
        if (!(dpc_finite(x) && dpc_finite(y) && dpc_finite(z))) {
            atomicMin(&err[0], (unsigned long long)i);
        } else {
            double f[3];
            int far = 0;
            for (int k = 0; k < 3; k++) {
                f[k] = x * inv_cell[k] + y * inv_cell[3 + k] + z * inv_cell[6 + k];
                if (fabs(f[k]) > 1099511627776.0) far = 1; /* 2^40 */
            }
            if (far) {
                atomicMin(&err[1], (unsigned long long)i);
            } else {
                for (int k = 0; k < 3; k++) {
                    const double fl = floor(f[k]);
                    n[k] = (long long)fl;
                    long long q = (long long)((f[k] - fl) * (double)nb[k]);
                    if (q < 0) q = 0;
                    if (q > nb[k] - 1) q = nb[k] - 1;
                    b[k] = q;
                }
            }
        }
        bin_of[i] = (b[0] * nb1 + b[1]) * nb2 + b[2];
        for (int k = 0; k < 3; k++) home[3 * i + k] = n[k];
    }
}

/* Open system: integer cell c = floor(r / width), bucket = hash(c) % hash_size. */
extern "C" __global__ void dpc_cell_candidates_bin_open(long long natoms, const double *__restrict__ coords,
                                                        double inv_width, long long hash_size,
                                                        long long *__restrict__ bin_of, long long *__restrict__ home,
                                                        unsigned long long *__restrict__ err)
{
    for (long long i = dpc_first_thread(); i < natoms; i += dpc_thread_stride()) {
        long long c[3] = {0, 0, 0};
        int ok = 1;
        for (int k = 0; k < 3; k++) {
            const double x = coords[3 * i + k];
            if (!dpc_finite(x)) {
                ok = 0;
                atomicMin(&err[0], (unsigned long long)i);
                break;
            }
            const double f = floor(x * inv_width);
            if (fabs(f) > 4503599627370496.0) { /* 2^52 cells */
                ok = 0;
                atomicMin(&err[1], (unsigned long long)i);
                break;
            }
            c[k] = (long long)f;
        }
        if (!ok) c[0] = c[1] = c[2] = 0;
        bin_of[i] = dpc_hash_cell(c[0], c[1], c[2], hash_size);
        for (int k = 0; k < 3; k++) home[3 * i + k] = c[k];
    }
}

/* ---------------------------------------------------------------- selection */

/* Scratch entry fields (doubles; j and the block are small integers, exact in a double). */
#define DPC_F_D2 0
#define DPC_F_X 1
#define DPC_F_Y 2
#define DPC_F_Z 3
#define DPC_F_J 4
#define DPC_F_B 5
#define DPC_NFIELDS 6

/* Rank of entry e among the entries of its block (ties, impossible for distinct pairs, by position). */
static __device__ long long dpc_rank_in_block(const double *__restrict__ buf, long long cap, long long n, long long e)
{
    const double d2e = buf[DPC_F_D2 * cap + e], be = buf[DPC_F_B * cap + e];
    const double xe = buf[DPC_F_X * cap + e], ye = buf[DPC_F_Y * cap + e], ze = buf[DPC_F_Z * cap + e];
    const long long je = (long long)buf[DPC_F_J * cap + e];
    long long rank = 0;
    for (long long f = 0; f < n; f++) {
        if (f == e || buf[DPC_F_B * cap + f] != be) continue;
        const double d2f = buf[DPC_F_D2 * cap + f];
        int before;
        if (d2f != d2e) {
            before = d2f < d2e;
        } else {
            const double xf = buf[DPC_F_X * cap + f], yf = buf[DPC_F_Y * cap + f], zf = buf[DPC_F_Z * cap + f];
            const long long jf = (long long)buf[DPC_F_J * cap + f];
            before = dpc_key_less(d2f, jf, xf, yf, zf, d2e, je, xe, ye, ze);
            if (!before && !dpc_key_less(d2e, je, xe, ye, ze, d2f, jf, xf, yf, zf)) before = f < e;
        }
        rank += before;
    }
    return rank;
}

/* Keep the sel_b nearest entries of every block: src -> dst, order of src kept.  Returns the new count. */
static __device__ long long dpc_prune(const double *__restrict__ src, double *__restrict__ dst, long long cap, long long n,
                                      const long long *__restrict__ sel_offsets)
{
    const int lane = dpc_lane();
    long long kept = 0;
    __syncwarp();
    for (long long e0 = 0; e0 < n; e0 += DPC_WARP) {
        const long long e = e0 + lane;
        int keep = 0;
        if (e < n) {
            const long long b = (long long)src[DPC_F_B * cap + e];
            keep = dpc_rank_in_block(src, cap, n, e) < sel_offsets[b + 1] - sel_offsets[b];
        }
        const unsigned m = __ballot_sync(DPC_FULL_MASK, keep);
        if (keep) {
            const long long pos = kept + __popc(m & ((1u << lane) - 1u));
            for (int f = 0; f < DPC_NFIELDS; f++) dst[f * cap + pos] = src[f * cap + e];
        }
        kept += __popc(m);
    }
    __syncwarp();
    return kept;
}

/* index/vectors/counts/overflow of every atom (layout of dpc_neighbor_rows, src_c/dpc_rows.h).
 *   scratch  [nwarps, 2 * 6 * cap] doubles, bcount [nwarps, nblocks] zero-initialised once
 *            (every warp leaves its counters at zero), nwarps = gridDim.x * blockDim.x / 32;
 *   cap >= nnei + 32;
 *   err[2]   min over coincident pairs (d2 < coincide2) of i * natoms + j. */
extern "C" __global__ void __launch_bounds__(128)
    dpc_neighbor_rows(long long natoms, const double *__restrict__ coords, const long long *__restrict__ types,
                      long long nblocks, int mixed, const long long *__restrict__ sel_offsets, double rc2,
                      double coincide2, DPC_GRID_PARAMS, long long cap, double *__restrict__ scratch,
                      unsigned long long *__restrict__ bcount, long long *__restrict__ index,
                      double *__restrict__ vectors, long long *__restrict__ counts, long long *__restrict__ overflow,
                      unsigned long long *__restrict__ err)
{
    DPC_GRID_INIT(g);
    const int lane = dpc_lane();
    const long long nnei = sel_offsets[nblocks];
    const long long wid = dpc_first_warp();
    double *const buf0 = scratch + wid * (2 * DPC_NFIELDS * cap);
    double *const buf1 = buf0 + DPC_NFIELDS * cap;
    unsigned long long *const bcnt = bcount + wid * nblocks;

    for (long long i = wid; i < natoms; i += dpc_warp_stride()) {
        double *A = buf0, *B = buf1;
        long long n = 0;
        auto visit = [&](long long start, long long end, const long long *sw, const long long *filter) {
            for (long long k0 = start; k0 < end; k0 += DPC_WARP) {
                const long long k = k0 + lane;
                int found = 0;
                long long j = -1;
                double v[3] = {0.0, 0.0, 0.0}, d2 = 0.0;
                if (k < end) {
                    j = g.cell_atoms[k];
                    found = dpc_candidate(g, coords, i, j, sw, filter, rc2, v, &d2);
                }
                if (found && d2 < coincide2) atomicMin(&err[2], (unsigned long long)(i * natoms + j));
                const unsigned m = __ballot_sync(DPC_FULL_MASK, found);
                const int cnt = __popc(m);
                if (cnt == 0) continue; /* warp-uniform */
                if (n + cnt > cap) {    /* warp-uniform */
                    n = dpc_prune(A, B, cap, n, sel_offsets);
                    double *t = A;
                    A = B;
                    B = t;
                }
                if (found) {
                    const long long pos = n + __popc(m & ((1u << lane) - 1u));
                    const long long b = mixed ? 0 : types[j];
                    A[DPC_F_D2 * cap + pos] = d2;
                    A[DPC_F_X * cap + pos] = v[0];
                    A[DPC_F_Y * cap + pos] = v[1];
                    A[DPC_F_Z * cap + pos] = v[2];
                    A[DPC_F_J * cap + pos] = (double)j;
                    A[DPC_F_B * cap + pos] = (double)b;
                    atomicAdd(&bcnt[b], 1ULL);
                }
                n += cnt;
            }
        };
        dpc_for_each_bin(g, i, visit);
        __syncwarp();
        for (long long s = lane; s < nnei; s += DPC_WARP) {
            const long long p = i * nnei + s;
            index[p] = -1;
            vectors[3 * p] = 0.0;
            vectors[3 * p + 1] = 0.0;
            vectors[3 * p + 2] = 0.0;
        }
        for (long long b = lane; b < nblocks; b += DPC_WARP) {
            /* read and reset in one atomic: the counter was last written by atomics (at L2) */
            const long long total = (long long)atomicExch(&bcnt[b], 0ULL);
            const long long sel = sel_offsets[b + 1] - sel_offsets[b];
            const long long kept = total < sel ? total : sel;
            counts[i * nblocks + b] = kept;
            overflow[i * nblocks + b] = total - kept;
        }
        __syncwarp();
        for (long long e = lane; e < n; e += DPC_WARP) {
            const long long b = (long long)A[DPC_F_B * cap + e];
            const long long rank = dpc_rank_in_block(A, cap, n, e);
            if (rank < sel_offsets[b + 1] - sel_offsets[b]) {
                const long long p = i * nnei + sel_offsets[b] + rank;
                index[p] = (long long)A[DPC_F_J * cap + e];
                vectors[3 * p] = A[DPC_F_X * cap + e];
                vectors[3 * p + 1] = A[DPC_F_Y * cap + e];
                vectors[3 * p + 2] = A[DPC_F_Z * cap + e];
            }
        }
        __syncwarp();
    }
}

/* ------------------------------------------------------------------- gather */

/* Slot of neighbor (jkey, r) in block [base, base + cnt) of atom `row`, or -1 (binary search on the key). */
static __device__ __forceinline__ long long dpc_find_slot(const long long *__restrict__ index,
                                                          const double *__restrict__ vectors, long long nnei,
                                                          long long row, long long base, long long cnt,
                                                          long long jkey, double x, double y, double z)
{
    const double d2 = dpc_norm2(x, y, z);
    long long lo = 0, hi = cnt;
    while (lo < hi) {
        const long long mid = (lo + hi) >> 1;
        const long long p = row * nnei + base + mid;
        const double *v = vectors + 3 * p;
        if (dpc_key_less(dpc_norm2(v[0], v[1], v[2]), index[p], v[0], v[1], v[2], d2, jkey, x, y, z))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < cnt) {
        const long long p = row * nnei + base + lo;
        const double *v = vectors + 3 * p;
        if (index[p] == jkey && v[0] == x && v[1] == y && v[2] == z) return base + lo;
    }
    return -1;
}

/* Forces and per-atom virials of one descriptor part, gathered per atom:
 *   force[j]       (=, or += with accumulate) sum over j's slots of g[j,s] - g[i,rev]
 *   atom_virial[j] (=, or +=) -sum over pairs (i -> j) of g[i,r] (x) r_ij[i,r]    (row-major 3x3)
 * The C twin of the same name is a serial scatter; sums differ by rounding only. */
extern "C" __global__ void __launch_bounds__(128)
    dpc_scatter_pair_gradients(long long natoms, long long nnei, long long nblocks, int mixed,
                               const long long *__restrict__ types, const long long *__restrict__ sel_offsets,
                               const long long *__restrict__ index, const double *__restrict__ vectors,
                               const long long *__restrict__ counts, const long long *__restrict__ overflow,
                               const double *__restrict__ pair_grad, const double *__restrict__ coords, double rc2,
                               DPC_GRID_PARAMS, int accumulate, double *__restrict__ force,
                               double *__restrict__ atom_virial)
{
    DPC_GRID_INIT(g);
    const int lane = dpc_lane();
    for (long long j = dpc_first_warp(); j < natoms; j += dpc_warp_stride()) {
        double f[3] = {0.0, 0.0, 0.0};
        double w[9] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
        const long long bj = mixed ? 0 : types[j]; /* j's block in its neighbors' rows */
        int any_overflow = 0;
        for (long long b = 0; b < nblocks; b++) {
            any_overflow |= overflow[j * nblocks + b] > 0;
            const long long cnt = counts[j * nblocks + b], base = sel_offsets[b];
            for (long long s = lane; s < cnt; s += DPC_WARP) {
                const long long p = j * nnei + base + s;
                const long long i = index[p];
                const double *gp = pair_grad + 3 * p, *vp = vectors + 3 * p;
                f[0] += gp[0];
                f[1] += gp[1];
                f[2] += gp[2];
                const long long r = dpc_find_slot(index, vectors, nnei, i, sel_offsets[bj], counts[i * nblocks + bj], j,
                                                  -vp[0], -vp[1], -vp[2]);
                if (r >= 0) {
                    const long long q = i * nnei + r;
                    const double *gq = pair_grad + 3 * q, *vq = vectors + 3 * q;
                    for (int a = 0; a < 3; a++) {
                        f[a] -= gq[a];
                        for (int c = 0; c < 3; c++) w[3 * a + c] -= gq[a] * vq[c];
                    }
                }
            }
        }
        if (any_overflow) { /* warp-uniform: atoms i that list j although j dropped them */
            auto visit = [&](long long start, long long end, const long long *sw, const long long *filter) {
                for (long long k = start + lane; k < end; k += DPC_WARP) {
                    const long long i = g.cell_atoms[k];
                    double v[3], d2;
                    if (!dpc_candidate(g, coords, j, i, sw, filter, rc2, v, &d2)) continue;
                    const long long b = mixed ? 0 : types[i];
                    if (overflow[j * nblocks + b] == 0) continue;
                    if (dpc_find_slot(index, vectors, nnei, j, sel_offsets[b], counts[j * nblocks + b], i, v[0], v[1],
                                      v[2]) >= 0)
                        continue; /* in j's list: done above */
                    const long long r = dpc_find_slot(index, vectors, nnei, i, sel_offsets[bj], counts[i * nblocks + bj],
                                                      j, -v[0], -v[1], -v[2]);
                    if (r < 0) continue;
                    const long long q = i * nnei + r;
                    const double *gq = pair_grad + 3 * q, *vq = vectors + 3 * q;
                    for (int a = 0; a < 3; a++) {
                        f[a] -= gq[a];
                        for (int c = 0; c < 3; c++) w[3 * a + c] -= gq[a] * vq[c];
                    }
                }
            };
            dpc_for_each_bin(g, j, visit);
        }
        for (int a = 0; a < 3; a++) f[a] = dpc_group_sum<32>(f[a]);
        for (int a = 0; a < 9; a++) w[a] = dpc_group_sum<32>(w[a]);
        if (lane == 0) {
            for (int a = 0; a < 3; a++) force[3 * j + a] = accumulate ? force[3 * j + a] + f[a] : f[a];
            for (int a = 0; a < 9; a++) atom_virial[9 * j + a] = accumulate ? atom_virial[9 * j + a] + w[a] : w[a];
        }
    }
}
