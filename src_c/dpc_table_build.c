/* Embedding-net tables: forward-mode node derivatives and Hermite coefficients.
 * See dpc_table_build.h for the interface and dpc_table.h for the formulas. */
#include "dpc_table_build.h"

#include <math.h>
#include <stdlib.h>

#include "dpc_activations.h"
#include "dpc_table.h"

#ifdef _OPENMP
#include <omp.h>
#endif

dpc_status dpc_dense_net_check(const dpc_dense_net *net)
{
    int k;
    if (!net || net->n_layers < 1 || !net->width || !net->activation || !net->residual || !net->weights ||
        !net->w_offset || !net->b_offset || !net->idt_offset)
        return DPC_ERR_ARGUMENT;
    for (k = 0; k <= net->n_layers; ++k)
        if (net->width[k] < 1) return DPC_ERR_ARGUMENT;
    for (k = 0; k < net->n_layers; ++k) {
        const dpc_index n_in = net->width[k], n_out = net->width[k + 1];
        if (!dpc_activation_valid(net->activation[k])) return DPC_ERR_ARGUMENT;
        if (net->w_offset[k] < 0) return DPC_ERR_ARGUMENT;
        if (net->b_offset[k] >= 0 && !net->bias) return DPC_ERR_ARGUMENT;
        if (net->idt_offset[k] >= 0 && !net->idt) return DPC_ERR_ARGUMENT;
        switch (net->residual[k]) {
        case DPC_RESIDUAL_NONE: break;
        case DPC_RESIDUAL_IDENTITY:
            if (n_out != n_in) return DPC_ERR_ARGUMENT;
            break;
        case DPC_RESIDUAL_DOUBLE:
            if (n_out != 2 * n_in) return DPC_ERR_ARGUMENT;
            break;
        default: return DPC_ERR_ARGUMENT;
        }
    }
    return DPC_OK;
}

static dpc_index max_width(const dpc_dense_net *net)
{
    dpc_index w = 1;
    int k;
    for (k = 0; k <= net->n_layers; ++k)
        if (net->width[k] > w) w = net->width[k];
    return w;
}

/* Points go through the net DPC_TB_BLOCK at a time: the weight W[i][j] is
 * loaded once for the whole block and the block's partial sums live in
 * registers across the i loop (a small GEMM micro-kernel).  Each point still
 * sums over i in ascending order from 0, alone in its lane, so its bits do not
 * depend on which block (or thread) it lands in. */
#define DPC_TB_BLOCK 16

/* Layer weights transposed to [n_out][n_in], so that the i loop of one output
 * channel reads contiguous memory. */
static double *transpose_weights(const dpc_dense_net *net)
{
    dpc_index total = 0, i, j;
    int k;
    double *wt;
    for (k = 0; k < net->n_layers; ++k) total += net->width[k] * net->width[k + 1];
    wt = (double *)malloc((size_t)total * sizeof(double));
    if (!wt) return NULL;
    total = 0;
    for (k = 0; k < net->n_layers; ++k) {
        const dpc_index n_in = net->width[k], n_out = net->width[k + 1];
        const double *W = net->weights + net->w_offset[k];
        for (j = 0; j < n_out; ++j)
            for (i = 0; i < n_in; ++i) wt[total + j * n_in + i] = W[i * n_out + j];
        total += n_in * n_out;
    }
    return wt;
}

/* One block of points.  s holds 6 arrays of maxw * DPC_TB_BLOCK doubles, each
 * laid out [channel][point]: the current (y, y', y'') and the next layer's,
 * swapped after every layer.  Lanes past n_pts repeat the last point (their
 * results are dropped).  out gets rows of 3*M per point. */
static void forward_block(const dpc_dense_net *net, const double *wt, const double *x, int n_pts, dpc_index maxw,
                          double *s, double *out)
{
    enum { B = DPC_TB_BLOCK };
    double *y = s, *dy = s + maxw * B, *d2y = s + 2 * maxw * B;
    double *ny = s + 3 * maxw * B, *ndy = s + 4 * maxw * B, *nd2y = s + 5 * maxw * B;
    dpc_index i, j, wt_off = 0;
    int k, b;
    for (b = 0; b < B; ++b) {
        y[b] = x[b < n_pts ? b : n_pts - 1];
        dy[b] = 1.0;
        d2y[b] = 0.0;
    }
    for (k = 0; k < net->n_layers; ++k) {
        const dpc_index n_in = net->width[k], n_out = net->width[k + 1];
        const double *bias = net->b_offset[k] >= 0 ? net->bias + net->b_offset[k] : NULL;
        const double *d = net->idt_offset[k] >= 0 ? net->idt + net->idt_offset[k] : NULL;
        const int act = net->activation[k], res = net->residual[k];
        double *tmp;
        for (j = 0; j < n_out; ++j) {
            const double *wj = wt + wt_off + j * n_in;
            /* z = y W, z' = y' W, z'' = y'' W for the whole block */
            double z0[B], z1[B], z2[B];
            for (b = 0; b < B; ++b) z0[b] = z1[b] = z2[b] = 0.0;
            for (i = 0; i < n_in; ++i) {
                const double r = wj[i];
                const double *a0 = y + i * B, *a1 = dy + i * B, *a2 = d2y + i * B;
                for (b = 0; b < B; ++b) {
                    z0[b] += a0[b] * r;
                    z1[b] += a1[b] * r;
                    z2[b] += a2[b] * r;
                }
            }
            for (b = 0; b < B; ++b) {
                double p, p1, p2, v, dv, d2v;
                const double z = bias ? z0[b] + bias[j] : z0[b], zp = z1[b];
                dpc_activation(act, z, &p, &p1, &p2);
                v = p;
                dv = p1 * zp;
                d2v = p1 * z2[b] + p2 * zp * zp;
                if (d) {
                    v *= d[j];
                    dv *= d[j];
                    d2v *= d[j];
                }
                if (res != DPC_RESIDUAL_NONE) {
                    /* identity: j <- j; double ([v, v]): j and j + n_in <- j */
                    const dpc_index src = (j < n_in ? j : j - n_in) * B + b;
                    v += y[src];
                    dv += dy[src];
                    d2v += d2y[src];
                }
                ny[j * B + b] = v;
                ndy[j * B + b] = dv;
                nd2y[j * B + b] = d2v;
            }
        }
        wt_off += n_in * n_out;
        tmp = y; y = ny; ny = tmp;
        tmp = dy; dy = ndy; ndy = tmp;
        tmp = d2y; d2y = nd2y; nd2y = tmp;
    }
    {
        const dpc_index M = net->width[net->n_layers];
        for (b = 0; b < n_pts; ++b) {
            double *o = out + 3 * M * b;
            for (j = 0; j < M; ++j) {
                o[j] = y[j * B + b];
                o[M + j] = dy[j * B + b];
                o[2 * M + j] = d2y[j * B + b];
            }
        }
    }
}

/* Node derivatives at n points into out; returns DPC_ERR_ALLOC or
 * DPC_ERR_NONFINITE.  The net has been checked. */
static dpc_status node_derivatives(const dpc_dense_net *net, dpc_index n, const double *x, int n_threads, double *out)
{
    const dpc_index maxw = max_width(net), M = net->width[net->n_layers];
    const dpc_index n_blocks = (n + DPC_TB_BLOCK - 1) / DPC_TB_BLOCK;
    int alloc_failed = 0, nonfinite = 0;
    dpc_index blk;
    double *wt = transpose_weights(net);
    if (!wt) return DPC_ERR_ALLOC;
    if (n_threads < 1) n_threads = 1;
#pragma omp parallel num_threads(n_threads)
    {
        double *s = (double *)malloc((size_t)(6 * maxw * DPC_TB_BLOCK) * sizeof(double));
        int bad = 0;
        if (!s) {
#pragma omp atomic write
            alloc_failed = 1;
        }
        /* Every thread reaches the worksharing loop even without scratch, as
         * OpenMP requires; such a thread just skips its blocks. */
#pragma omp for schedule(static)
        for (blk = 0; blk < n_blocks; ++blk) {
            const dpc_index p0 = blk * DPC_TB_BLOCK;
            const int n_pts = (int)(n - p0 < DPC_TB_BLOCK ? n - p0 : DPC_TB_BLOCK);
            double *o = out + 3 * M * p0;
            dpc_index q;
            if (!s) continue;
            forward_block(net, wt, x + p0, n_pts, maxw, s, o);
            for (q = 0; q < 3 * M * n_pts; ++q)
                if (!isfinite(o[q])) bad = 1;
        }
        if (bad) {
#pragma omp atomic write
            nonfinite = 1;
        }
        free(s);
    }
    free(wt);
    if (alloc_failed) return DPC_ERR_ALLOC;
    if (nonfinite) return DPC_ERR_NONFINITE;
    return DPC_OK;
}

dpc_status dpc_embedding_derivatives(const dpc_dense_net *net, dpc_index n, const double *x, int n_threads, double *out)
{
    dpc_status st = dpc_dense_net_check(net);
    dpc_index p;
    if (st != DPC_OK) return st;
    if (net->width[0] != 1 || n < 0 || (n > 0 && (!x || !out))) return DPC_ERR_ARGUMENT;
    for (p = 0; p < n; ++p)
        if (!isfinite(x[p])) return DPC_ERR_NONFINITE;
    return node_derivatives(net, n, x, n_threads, out);
}

dpc_status dpc_build_table(const dpc_dense_net *net, dpc_index n_below, dpc_index n_fine, dpc_index n_coarse, double stride0,
                           double stride1, const double *x, int order, int n_threads, double *coef,
                           double *node_data)
{
    const dpc_index n_nodes = n_below + n_fine + n_coarse + 1, nspline = n_below + n_fine + n_coarse;
    const int ncoef = order + 1;
    dpc_index M, l;
    double *nd;
    dpc_status st = dpc_dense_net_check(net);
    if (st != DPC_OK) return st;
    M = net->width[net->n_layers];
    if (net->width[0] != 1 || n_fine < 1 || n_coarse < 0 || n_below < 0 || !(stride0 > 0.0) ||
        ((n_coarse > 0 || n_below > 0) && !(stride1 > 0.0)) ||
        (order != 3 && order != 5) || !x || !coef)
        return DPC_ERR_ARGUMENT;
    for (l = 0; l < n_nodes; ++l)
        if (!isfinite(x[l])) return DPC_ERR_NONFINITE;

    nd = node_data ? node_data : (double *)malloc((size_t)(3 * M * n_nodes) * sizeof(double));
    if (!nd) return DPC_ERR_ALLOC;
    st = node_derivatives(net, n_nodes, x, n_threads, nd);
    if (st == DPC_OK) {
        if (n_threads < 1) n_threads = 1;
        /* Each interval only reads its two end nodes: any split over threads
         * gives the same bits. */
#pragma omp parallel for schedule(static) num_threads(n_threads)
        for (l = 0; l < nspline; ++l) {
            const double w = (l >= n_below && l < n_below + n_fine) ? stride0 : stride1;
            const double *n0 = nd + 3 * M * l, *n1 = n0 + 3 * M;
            double *row = coef + (size_t)ncoef * M * l;
            double a[DPC_MAX_NCOEF];
            dpc_index m;
            int k;
            for (m = 0; m < M; ++m) {
                if (order == 5)
                    dpc_quintic_coefficients(n0[m], n0[M + m], n0[2 * M + m], n1[m], n1[M + m], n1[2 * M + m], w, a);
                else
                    dpc_cubic_coefficients(n0[m], n0[M + m], n1[m], n1[M + m], w, a);
                for (k = 0; k < ncoef; ++k) row[k * M + m] = a[k];
            }
        }
    }
    if (!node_data) free(nd);
    return st;
}
