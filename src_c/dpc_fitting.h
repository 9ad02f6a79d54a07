/* Fitting nets of an energy model: per-atom energies and dE/dD, forward and
 * backward in one pass.
 *
 * For atom i of type t, with x_0 = D_i (a row of width dim) and the layers of
 * net t (DeePMD-kit's rule, dpcompress/models/structures.py::Layer):
 *
 *   z_k   = x_{k-1} W_k + b_k
 *   x_k   = d_k * phi_k(z_k) + rho_k(x_{k-1})        (d_k = idt or 1)
 *   e_i   = x_L[0] + bias[t]                         (the last layer has one output)
 *
 * rho_k is the residual: none, identity (n_out == n_in) or double ([x, x],
 * n_out == 2 n_in).  Backward, from g_L = 1:
 *
 *   g_{k-1} = ((d_k * phi_k'(z_k)) * g_k) W_k^T + rho_k^T(g_k),   dE/dD_i = g_0
 *
 * Rows are taken type by type in the order of atom_types, the rows of a type cut
 * into ceil(count / DPC_FIT_CHUNK) chunks of near-equal size (DPC_FIT_CHUNK is a
 * compile-time constant); each chunk goes through every layer forward and
 * backward while its intermediates stay in cache.  The
 * matrix products are BLAS dgemm calls (Fortran column-major: a row-major
 * m x n matrix is its n x m transpose) made by the OpenMP thread that owns the
 * chunk: the caller must make the BLAS run single-threaded meanwhile.  Each
 * chunk's result depends on that chunk's rows only, so any thread count gives
 * identical numbers (for a given BLAS on a given machine).
 *
 * Buffers (C-contiguous, row-major)
 *   atom_types [natoms]           int64 in [0, ntypes)
 *   D          [natoms, dim]
 *   net_start  [ntypes + 1]       layers of net t: layers[net_start[t] .. net_start[t+1])
 *   layers     [...]              w [n_in, n_out]; b, idt [n_out] or NULL
 *   bias       [ntypes]           bias_atom_e
 *   e          [natoms]           output
 *   dD         [natoms, dim]      output
 *
 * Status: DPC_ERR_ARGUMENT for inconsistent widths, an unknown activation or
 * residual, or a width beyond BLAS's int; DPC_ERR_INDEX for an atom type out of
 * range; DPC_ERR_ALLOC when the scratch cannot be allocated.
 *
 * Numpy twin: dpcompress/reference/dp_model.py::fitting_forward_backward.
 */
#ifndef DPC_FITTING_H
#define DPC_FITTING_H

#include "dpc_buffer.h"
#include "dpc_common.h"

#ifndef DPC_FIT_CHUNK
#define DPC_FIT_CHUNK 128
#endif

/* Residual kinds, the same codes as dpc_table_build.h. */
enum { DPC_FIT_RESIDUAL_NONE = 0, DPC_FIT_RESIDUAL_IDENTITY = 1, DPC_FIT_RESIDUAL_DOUBLE = 2 };


typedef struct {
    dpc_index n_in, n_out;
    const double *w;   /* [n_in, n_out] */
    const double *b;   /* [n_out] or NULL */
    const double *idt; /* [n_out] or NULL */
    int activation;    /* DPC_ACT_* of dpc_activations.h */
    int residual;      /* DPC_FIT_RESIDUAL_* */
} dpc_fit_layer;

/* Rows of D made on demand, and dE/dD handed back, one chunk at a time (the model runtime:
 * D_i is never stored for a whole frame).  rows are indices into atom_types; x and dx are
 * m x dim, row-major (dx is scratch: take may change it).  Called from the OpenMP thread that
 * owns the chunk. */
typedef void (*dpc_fit_fill_t)(void *ctx, const dpc_index *rows, dpc_index m, double *x);
typedef void (*dpc_fit_take_t)(void *ctx, const dpc_index *rows, dpc_index m, double *dx);

typedef struct {
    dpc_index natoms, dim, ntypes;
    const dpc_index *atom_types;
    const double *D;              /* [natoms, dim], or NULL with fill */
    const dpc_index *net_start;
    const dpc_fit_layer *layers;
    const double *bias;
    dpc_dgemm_t dgemm;
    dpc_fit_fill_t fill;          /* NULL: read D */
    dpc_fit_take_t take;          /* NULL: write dD */
    void *ctx;
    dpc_buffer *thread_scratch;   /* [n_threads] kept between calls, or NULL (allocated per call) */
    dpc_buffer *shared_scratch;   /* one, or NULL */
} dpc_fitting_args;

/* e [natoms]; dD [natoms, dim] (unused, may be NULL, with take). */
dpc_status dpc_fitting_forward_backward(const dpc_fitting_args *a, int n_threads, double *e, double *dD);

/* Chunk size the library was compiled with (for the tests). */
int dpc_fitting_chunk(void);

/* out[i] = tanh(x[i]) as the kernel's activation loops compute it (polynomial
 * expm1, a few ulp at most), exposed for the tests. */
void dpc_fitting_tanh(dpc_index n, const double *x, double *out);

#endif
