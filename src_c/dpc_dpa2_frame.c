/* The DPA-2 steps of a frame (see dpc_dpa2_frame.h). */
#include "dpc_dpa2_frame.h"

#include <math.h>
#include <string.h>

#include "dpc_env_mat.h"

size_t dpc_dpa2_frame_carve(const dpc_part *P, int64_t n, int64_t natoms, char *base, dpc_dpa2_frame *F)
{
    const dpc_dpa2_params *D = &P->dpa2;
    const int64_t J = D->nsel, n0 = D->stack.repinit_dim, d1 = D->stack.g1_dim;
    size_t off = 0;
    F->n = n;
    F->J = J;
    F->idx = (int64_t *)dpc_carve(base, &off, sizeof(int64_t) * n * J);
    F->P = (double *)dpc_carve(base, &off, sizeof(double) * n * J * 4);
    F->dP = (double *)dpc_carve(base, &off, sizeof(double) * n * J * 12);
    F->m = (double *)dpc_carve(base, &off, sizeof(double) * n * J);
    F->sw = (double *)dpc_carve(base, &off, sizeof(double) * n * J);
    F->dsw = (double *)dpc_carve(base, &off, sizeof(double) * n * J * 3);
    F->D0 = (double *)dpc_carve(base, &off, sizeof(double) * n * n0);
    F->g1 = (double *)dpc_carve(base, &off, sizeof(double) * n * d1);
    F->dg1 = (double *)dpc_carve(base, &off, sizeof(double) * n * d1);
    F->wdg1 = (double *)dpc_carve(base, &off, sizeof(double) * n * d1);
    F->dD0 = (double *)dpc_carve(base, &off, sizeof(double) * n * n0);
    F->dPbar = (double *)dpc_carve(base, &off, sizeof(double) * n * J * 4);
    F->dswbar = (double *)dpc_carve(base, &off, sizeof(double) * n * J);
    F->rf_grad = (double *)dpc_carve(base, &off, sizeof(double) * n * J * 3);
    F->H = (double *)dpc_carve(base, &off, sizeof(double) * n * P->nnei * 3);
    F->stack_ws = (double *)dpc_carve(base, &off, sizeof(double) * dpc_repformer_stack_workspace(&D->stack, n, J));
    F->depth = (int64_t *)dpc_carve(base, &off, sizeof(int64_t) * n);
    F->row_of = (int64_t *)dpc_carve(base, &off, sizeof(int64_t) * (natoms > 0 ? natoms : 1));
    return off;
}

/* 1 when slot j of row k is real: it holds an atom within rcut' (the repinit's list cut at rcut'); r its distance. */
static int slot_real(const dpc_part *P, const int64_t *index, const double *vectors, int64_t k, int64_t j, double *r)
{
    const int64_t S = P->nnei;
    if (j >= S || index[k * S + j] < 0) return 0;
    const double *v = vectors + 3 * (k * S + j);
    *r = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    return *r < P->dpa2.rcut;
}

dpc_status dpc_dpa2_inputs(const dpc_part *P, const int64_t *types, int64_t natoms, const int64_t *rows,
                           int64_t nlocal_rows, const int64_t *index, const double *vectors, int nth,
                           dpc_dpa2_frame *F, dpc_error *err)
{
    const dpc_dpa2_params *D = &P->dpa2;
    const int64_t n = F->n, J = F->J, S = P->nnei, L = D->stack.n_layers;
    for (int64_t a = 0; a < natoms; a++) F->row_of[a] = -1;
    for (int64_t k = 0; k < n; k++) F->row_of[rows[k]] = k;
    int64_t total = 0;
#pragma omp parallel for num_threads(nth) schedule(static) reduction(+ : total)
    for (int64_t k = 0; k < n; k++) {
        const double *std = D->dstd + 4 * types[k];
        for (int64_t j = 0; j < J; j++) {
            const int64_t q = k * J + j;
            double r = 0.0;
            double *Pq = F->P + 4 * q, *dPq = F->dP + 12 * q, *dsq = F->dsw + 3 * q;
            if (!slot_real(P, index, vectors, k, j, &r)) {
                F->idx[q] = k; /* any row: the slot's weight is 0 */
                F->m[q] = F->sw[q] = 0.0;
                memset(Pq, 0, sizeof(double) * 4);
                memset(dPq, 0, sizeof(double) * 12);
                memset(dsq, 0, sizeof(double) * 3);
                continue;
            }
            const double *v = vectors + 3 * (k * S + j);
            const int64_t row = F->row_of[index[k * S + j]];
            F->idx[q] = row >= 0 ? row : k; /* a missing row is refused below where it matters */
            F->m[q] = 1.0;
            dpc_env_mat_row(v, D->rcut, D->rcut_smth, P->protection, Pq, dPq);
            for (int c = 0; c < 4; c++) {
                Pq[c] /= std[c];
                for (int b = 0; b < 3; b++) dPq[3 * c + b] /= std[c];
            }
            double s, ds;
            dpc_switch(r, D->rcut, D->rcut_smth, &s, &ds);
            F->sw[q] = s;
            for (int b = 0; b < 3; b++) dsq[b] = ds * v[b] / r;
        }
        for (int64_t j = J; j < S && k < nlocal_rows; j++) { /* within rcut' past the repformer's nsel: dropped */
            double r;
            total += slot_real(P, index, vectors, k, j, &r);
        }
    }
    F->overflow = total;
    F->overflow_atom = -1;
    F->overflow_worst = 0;
    if (total)
        for (int64_t k = 0; k < nlocal_rows; k++) {
            int64_t c = 0;
            for (int64_t j = J; j < S; j++) {
                double r;
                c += slot_real(P, index, vectors, k, j, &r);
            }
            if (c > F->overflow_worst) {
                F->overflow_worst = c;
                F->overflow_atom = rows[k];
            }
        }
    /* depth: centers 0; rows of depth < L need every repformer neighbor as a row */
    for (int64_t k = 0; k < n; k++) F->depth[k] = k < nlocal_rows ? 0 : INT64_MAX;
    for (int64_t d = 0; d < L; d++)
        for (int64_t k = 0; k < n; k++) {
            if (F->depth[k] != d) continue;
            for (int64_t j = 0; j < J; j++) {
                const int64_t q = k * J + j;
                if (F->m[q] == 0.0) continue;
                const int64_t a = index[k * S + j], row = F->row_of[a];
                if (row < 0)
                    return dpc_set_error(err, DPC_ERR_ARGUMENT,
                                         "DPA-2 passes messages over %lld repformer layers: atom %lld (a neighbor of "
                                         "atom %lld, %lld message step(s) from a center) has no neighbor row: a ghost "
                                         "that is not a sender (dpc_frame.nsender; ghosts out to the model's ghost "
                                         "width) or an atom the model skips", (long long)L, (long long)a,
                                         (long long)rows[k], (long long)d);
                if (F->depth[row] > d + 1) F->depth[row] = d + 1;
            }
        }
    return DPC_OK;
}

dpc_status dpc_dpa2_forward(const dpc_part *P, const int64_t *row_types, const double *T, int nth, dpc_dpa2_frame *F,
                            dpc_error *err)
{
    const dpc_repformer_stack *S = &P->dpa2.stack;
    const int64_t n = F->n, n0 = S->repinit_dim;
    if (n0 != P->M * P->A)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "DPA-2: repinit width %lld, its M x axis give %lld", (long long)n0,
                             (long long)(P->M * P->A));
#pragma omp parallel for num_threads(nth) schedule(static)
    for (int64_t k = 0; k < n; k++) dpc_descriptor_from_T_atom(P->M, P->A, T + k * P->state_dim, F->D0 + k * n0);
    /* a sender's layers stop where no center reads them (F->depth, from dpc_dpa2_inputs) */
    if (dpc_repformer_stack_forward_depth(S, n, F->J, F->D0, row_types, F->P, F->idx, F->m, F->sw, F->depth, nth,
                                          F->stack_ws, F->g1))
        return dpc_set_error(err, DPC_ERR_ALLOC, "DPA-2: the repformer stack's forward failed (memory)");
    return DPC_OK;
}

dpc_status dpc_dpa2_backward(const dpc_part *P, const double *T, const double *dg1, int nth, dpc_dpa2_frame *F,
                             double *dT, dpc_error *err)
{
    const dpc_repformer_stack *S = &P->dpa2.stack;
    const int64_t n = F->n, J = F->J, n0 = S->repinit_dim;
    if (dpc_repformer_stack_backward_depth(S, n, J, F->P, F->idx, F->m, F->sw, F->depth, F->stack_ws, dg1, nth, F->dD0,
                                           F->dPbar, F->dswbar))
        return dpc_set_error(err, DPC_ERR_ALLOC, "DPA-2: the repformer stack's backward failed (memory)");
#pragma omp parallel for num_threads(nth) schedule(static)
    for (int64_t k = 0; k < n; k++) {
        dpc_descriptor_gradient_to_T_atom(P->M, P->A, T + k * P->state_dim, F->dD0 + k * n0, dT + k * P->state_dim);
        for (int64_t j = 0; j < J; j++) {
            const int64_t q = k * J + j;
            double *g = F->rf_grad + 3 * q;
            const double *bar = F->dPbar + 4 * q, *dPq = F->dP + 12 * q, *dsq = F->dsw + 3 * q;
            for (int b = 0; b < 3; b++)
                g[b] = F->m[q] * (bar[0] * dPq[b] + bar[1] * dPq[3 + b] + bar[2] * dPq[6 + b] + bar[3] * dPq[9 + b] +
                                  F->dswbar[q] * dsq[b]);
        }
    }
    return DPC_OK;
}

void dpc_dpa2_add_rf_grad(const dpc_part *P, const dpc_dpa2_frame *F, double *pair_grad)
{
    const int64_t S = P->nnei, J = F->J < S ? F->J : S;
    for (int64_t k = 0; k < F->n; k++)
        for (int64_t j = 0; j < J; j++)
            for (int b = 0; b < 3; b++) pair_grad[(k * S + j) * 3 + b] += F->rf_grad[(k * F->J + j) * 3 + b];
}

void dpc_dpa2_virial_term(const dpc_part *P, const dpc_dpa2_frame *F, const int64_t *rows, const double *x,
                          const int64_t *index, const double *G, int b, double *atom_virial)
{
    const int64_t S = P->nnei;
    for (int64_t k = 0; k < F->n; k++) {
        const int64_t i = rows[k];
        const double xb = x[3 * i + b];
        for (int64_t s = 0; s < S; s++) {
            const int64_t p = k * S + s, l = index[p];
            if (l < 0) continue;
            for (int a = 0; a < 3; a++) {
                const double c = G[3 * p + a] * xb - F->H[3 * p + a];
                atom_virial[9 * l + 3 * a + b] -= c;
                atom_virial[9 * i + 3 * a + b] += c;
            }
        }
    }
}
