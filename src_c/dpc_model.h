/* dpcompress model runtime: the public C API.
 *
 * One library computes a frame for every front end (dpcompress.Potential, the ASE
 * calculator, the LAMMPS pair style, the i-PI driver), so they cannot disagree.
 *
 *   dpc_model_open     a model from the bytes of a .dpc file (docs/model-file.md), which the
 *                      caller keeps alive (a read-only mmap: ranks on a node share the pages);
 *                      every size and offset is validated and every byte checksummed first
 *   dpc_workspace_new  scratch buffers, kept between calls (no allocation per step after the
 *                      first steps of a run)
 *   dpc_compute        one frame: local atoms (the centers) + other atoms (ghosts) + periodic
 *                      images + a candidate-neighbor list per center, as LAMMPS hands a pair style
 *
 * Frame
 * -----
 * Atoms 0 .. nlocal-1 are the centers; atoms nlocal .. natoms-1 are neighbors only (LAMMPS
 * ghosts, or the atoms another MPI rank owns).  A periodic frame may also name images: image g
 * (candidate index natoms + g) is atom image_owner[g] moved by image_lattice[g] cell vectors.
 * With a cell, every pair vector is formed from the caller's (unwrapped) coordinates as
 *
 *     r_ij = (x_j - x_i) + ((S_0 a_0 + S_1 a_1) + S_2 a_2),   S = q_j + n_i - n_j,
 *
 * n_a = lattice[a] (x_a = wrapped_a + n_a . cell) and q_j = image_lattice of an image (0 for an
 * atom); without a cell r_ij = (x_j - x_i) + 0.  The candidates of center i are indices into
 * [0, natoms + nimage), any superset of its neighbors within the model's cutoff (a LAMMPS full
 * list with skin); index bits outside neighmask are dropped first (LAMMPS's special bits).
 * Candidates of type -1 (atoms the model does not handle) are skipped.  Forces and per-atom
 * virials of an image go to its owner.
 *
 * Inside a neighbor block, neighbors are ordered by (d^2, tag of j, r_ij) (nearest first; the
 * tag is the atom index without tags, the owner's for an image) and cut at sel; the order does
 * not depend on the candidates' order, the thread count or the chunking.
 *
 * Outputs are ADDED to (the caller zeroes them; LAMMPS's force array already holds other
 * styles' forces): force [natoms][3], optional atom_energy [nlocal], optional atom_virial
 * [natoms][9] (row-major, the model kind's convention: DP W^(j)_ab -= g_a r_b, NEP W_j^ab -=
 * r^a f^b).  Energy and virial totals are returned in the result.  Centers are processed in
 * chunks of DPC_CHUNK atoms: scratch memory is O(DPC_CHUNK x neighbors) whatever the frame size.
 *
 * Errors
 * ------
 * Every function returns a dpc_status and, through dpc_error, a message naming the problem
 * (array, atom, what was expected); vesin's pattern.  No function prints or exits.
 *
 * Threads
 * -------
 * n_threads OpenMP threads per call (< 1: one).  Results are identical for any thread count.
 * The fitting net's matrix products go to the dgemm the caller gives at open (Fortran BLAS
 * signature), called from inside the OpenMP threads: the caller keeps that BLAS single-threaded.
 */
#ifndef DPC_MODEL_H
#define DPC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "dpc_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Centers per chunk of dpc_compute (compile-time: the fitting net's row partition depends on it). */
#ifndef DPC_CHUNK
#define DPC_CHUNK 2048
#endif

#define DPC_MESSAGE_SIZE 512

typedef struct {
    int status;                       /* dpc_status */
    char message[DPC_MESSAGE_SIZE];   /* empty when status == DPC_OK */
    /* DPC_ERR_COINCIDENT: the pair (center, atom, lattice shift) and its squared distance */
    int64_t atom_i, atom_j, shift[3];
    double d2;
} dpc_error;

/* Model kinds. */
enum { DPC_MODEL_DP_ENERGY = 1, DPC_MODEL_NEP = 2 };


typedef struct dpc_model dpc_model;
typedef struct dpc_workspace dpc_workspace;

typedef struct {
    int64_t natoms;                 /* atoms with coordinates: centers, then other atoms */
    int64_t nlocal;                 /* centers: atoms 0 .. nlocal-1 */
    const double *x;                /* [natoms][3], Å */
    const int32_t *type;            /* [natoms], model type index, or -1: not handled by the model */
    const int64_t *tag;             /* [natoms] tie-break ids, or NULL (the atom index) */
    const double *cell;             /* [3][3] rows = cell vectors, or NULL (no shifts) */
    const int32_t *lattice;         /* [natoms][3] n_a, or NULL (zeros) */
    int64_t nimage;                 /* periodic images (needs a cell) */
    const int32_t *image_owner;     /* [nimage] atom index in [0, natoms) */
    const int32_t *image_lattice;   /* [nimage][3] q */
    const int32_t *numneigh;        /* [nlocal] candidates per center */
    const int32_t *const *firstneigh; /* [nlocal] candidate indices in [0, natoms + nimage) */
    int32_t neighmask;              /* 0: indices used as given; else index & neighmask */
    /* Frame and atomic parameters (a model with dpc_model_dim_fparam / _aparam > 0), RAW: the runtime
     * normalises them with the model's statistics into the fitting input after D,
     * x_i = (D_i, (f - fbar) * s_f, (a_i - abar) * s_a) (arrays fit.param_avg, fit.param_inv_std). */
    const double *fparam;           /* [dim_fparam], or NULL: the model's default_fparam (refused without one) */
    const double *aparam;           /* [nlocal][dim_aparam] (the centers' rows), or NULL for a model without */
    /* Message passing (a DPA-2 part: a neighbor's state enters every repformer layer).  0 (or nlocal):
     * every neighbor of a center is a center or a periodic image of one.  > nlocal: atoms nlocal ..
     * nsender-1 (ghosts of a domain) are evaluated too, as senders of messages only (no energy of theirs
     * is counted); numneigh / firstneigh then have nsender entries, complete within dpc_model_rcut for
     * every sender closer than dpc_model_ghost_width - dpc_model_rcut to a center.  Forces land on the
     * ghosts (the caller sums them onto their owners, as for any ghost). */
    int64_t nsender;
} dpc_frame;

typedef struct {
    double energy;                  /* sum of the centers' energies */
    double virial[9];               /* sum of the per-atom virials */
    int64_t beyond_fine;            /* neighbor entries past the fine table (closer than the training set) */
    int64_t beyond_table;           /* neighbor entries past the whole table (linear extrapolation) */
    int64_t overflow;               /* neighbors within a cutoff dropped because sel was full */
    int64_t overflow_worst;         /* the largest drop of one (center, block), per the worst part */
    int64_t overflow_atom, overflow_block, overflow_part; /* where it happened (first in order), -1 if none */
} dpc_result;

typedef struct {
    double *atom_energy;            /* [nlocal] or NULL */
    double *force;                  /* [natoms][3], required */
    double *atom_virial;            /* [natoms][9] or NULL */
    double *descriptor;             /* [nlocal][dpc_model_dim] or NULL: each center's descriptor D_i,
                                       the fitting net's input (DP models only; DeepPot.eval_descriptor) */
} dpc_outputs;

/* Open a model from the bytes of a .dpc file; data must stay valid and unchanged while the
 * model is open.  dgemm may be NULL for a model without fitting net (NEP). */
dpc_status dpc_model_open(const void *data, size_t nbytes, dpc_dgemm_t dgemm, dpc_model **model, dpc_error *err);
void dpc_model_close(dpc_model *model);

int dpc_model_kind(const dpc_model *model);
int64_t dpc_model_ntypes(const dpc_model *model);
/* Frame parameters (dpc_frame.fparam) and atomic parameters per atom (dpc_frame.aparam) the model
 * takes (0: none); whether it stores a default for the frame parameters. */
int64_t dpc_model_dim_fparam(const dpc_model *model);
int64_t dpc_model_dim_aparam(const dpc_model *model);
int dpc_model_has_default_fparam(const dpc_model *model);
/* Element name of type t (NUL-terminated, inside the model's data), or NULL. */
const char *dpc_model_type_name(const dpc_model *model, int64_t t);
/* Width of the descriptor of a DP model (the fitting net's input), 0 for NEP. */
int64_t dpc_model_dim(const dpc_model *model);
/* Largest cutoff of the model, Å: candidates must cover every neighbor within it. */
double dpc_model_rcut(const dpc_model *model);
/* Halo a domain needs, Å: the ghost atoms within it make its centers' results exact.  dpc_model_rcut,
 * except for message passing (DPA-2: dpc_model_rcut + nlayers x the repformers' rcut), where the ghosts
 * closer than ghost_width - dpc_model_rcut are senders (dpc_frame.nsender). */
double dpc_model_ghost_width(const dpc_model *model);
/* 1 when the model passes messages between neighbors (a DPA-2 part), else 0. */
int dpc_model_passes_messages(const dpc_model *model);
/* The JSON header of the file (not NUL-terminated) and its length. */
const char *dpc_model_header(const dpc_model *model, size_t *nbytes);

dpc_workspace *dpc_workspace_new(void);
void dpc_workspace_free(dpc_workspace *ws);
/* Bytes the workspace holds now. */
size_t dpc_workspace_bytes(const dpc_workspace *ws);

/* One frame.  The result's totals are computed here; the arrays of out are added to. */
dpc_status dpc_compute(const dpc_model *model, dpc_workspace *ws, const dpc_frame *frame, int n_threads,
                       const dpc_outputs *out, dpc_result *result, dpc_error *err);

/* CRC-32 (zlib's polynomial) of n bytes, continuing from crc (0 to start). */
uint32_t dpc_crc32(uint32_t crc, const void *data, size_t n);

#ifdef __cplusplus
}
#endif

#endif
