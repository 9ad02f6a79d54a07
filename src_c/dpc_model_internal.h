/* The model runtime's own structures (opaque to its callers, see dpc_model.h). */
#ifndef DPC_MODEL_INTERNAL_H
#define DPC_MODEL_INTERNAL_H

#include "dpc_attention.h"
#include "dpc_buffer.h"
#include "dpc_dpa2_part.h"
#include "dpc_fitting.h"
#include "dpc_model.h"
#include "dpc_model_file.h"
#include "dpc_nep.h"
#include "dpc_pair_table.h"
#include "dpc_se_a_tab.h"
#include "dpc_se_t_tab.h"

#define DPC_MAX_PARTS 8

/* Descriptor kinds of a part (part{p}.int[0]); docs/model-file.md. */
enum { DPC_PART_SE_A = 1, DPC_PART_SE_R = 2, DPC_PART_SE_T = 3, DPC_PART_SE_ATTEN = 4 };
/* se_e3_tebd: the se_t kernels in gated mode (one mixed-type block, the type-pair gate tt). */
enum { DPC_PART_SE_T_TEBD = 5 };
/* DPA-1 with attention layers: kind 4's arrays plus part{p}.att_* (dpc_attention.h) */
enum { DPC_PART_DPA1 = 6 };

/* Layout of part{p}.int */
enum {
    DPC_PI_KIND, DPC_PI_NBLOCKS, DPC_PI_NNEI, DPC_PI_NTABLES, DPC_PI_NCOEF, DPC_PI_M, DPC_PI_A, DPC_PI_MIXED,
    DPC_PI_CONCAT, DPC_PI_TEBD, DPC_PI_DIM, DPC_PI_NGATE, DPC_PI_SIZE
};

/* se_e2_r's fixed output scale (DeePMD-kit's res_rescale). */
#define DPC_SE_R_RESCALE 0.2

typedef struct {
    int kind;
    int64_t nblocks, nnei, M, A, dim_out, state_dim, tebd_dim, n_gate_rows;
    int mixed, concat;
    double rcut, rcut_smth, protection;
    const int64_t *sel_offsets;
    const int64_t *gate_of;        /* [ntypes][ntypes] gated: gate row of (center, neighbor), -1 excluded */
    const double *type_embedding;  /* [ntypes][tebd_dim] concat: appended to D */
    dpc_se_a_tab_args a;           /* se_a / se_r / se_atten: the per-frame fields are set per chunk */
    dpc_se_t_tab_args t;           /* se_t, se_t_tebd */
    dpc_attention_params att;      /* DPA-1 (kind 6) */
    dpc_dpa2_params dpa2;          /* DPA-2 (kind 7): the repformer stack (dpc_dpa2_part.h) */
} dpc_part;

struct dpc_model {
    int kind;
    int64_t ntypes;
    double rcut;
    dpc_file file;
    const char **names;            /* [ntypes] into the type_map array */
    /* DP energy */
    int64_t nparts, dim;
    int64_t nfit_params;           /* fitting-net inputs after the descriptor (fit.nparam; 0 if absent) */
    int64_t nfparam;               /* the first nfparam of them: frame parameters (fit.nfparam), then atomic */
    const double *param_avg, *param_inv_std; /* [nfit_params] normalisation (fit.param_avg, fit.param_inv_std) */
    const double *default_fparam;  /* [nfparam] or NULL (fit.default_fparam) */
    dpc_part parts[DPC_MAX_PARTS];
    const double *out_bias, *fit_mask, *keep_mask;
    const int8_t *pair_exclude;    /* [ntypes][ntypes], NULL when nothing is excluded */
    dpc_fit_layer *layers;         /* per type: layers[net_start[t] .. net_start[t+1]) */
    int64_t *net_start;            /* [ntypes + 1] */
    const double *fit_bias;
    dpc_dgemm_t dgemm;
    dpc_zbl zbl;                   /* DP + ZBL: pair table and switching (zbl.present 0: plain DP) */
    /* NEP */
    dpc_nep_model nep;
};

/* Per-part chunk arrays of the workspace. */
typedef struct {
    int64_t *index;     /* [chunk][nnei] */
    double *vectors;    /* [chunk][nnei][3] */
    int64_t *counts;    /* [chunk][nblocks] */
    int64_t *overflow;  /* [chunk][nblocks] */
    int64_t *gate_index;/* [chunk][nnei] gated */
    double *state;      /* [chunk][state_dim] T or D */
    double *dstate;     /* [chunk][state_dim] */
    double *pair_grad;  /* [chunk][nnei][3] */
    int64_t *beyond;    /* [2][chunk] */
    double *force;      /* [natoms][3] parts > 0: their own accumulators (added in part order at the end) */
    double *atom_virial;/* [natoms][9] */
} dpc_part_arrays;

struct dpc_workspace {
    dpc_buffer chunk;            /* every per-chunk array, carved */
    dpc_buffer frame;            /* per-frame arrays: the part accumulators */
    dpc_buffer centers;          /* per-frame: the list of centers, NEP's 64-bit types */
    dpc_buffer fit_shared;
    dpc_buffer dpa2;             /* per-frame: a DPA-2 part's arrays (dpc_dpa2_frame.h) */
    dpc_buffer *threads;         /* [n_thread_buffers] rows / kernels, per thread */
    dpc_buffer *fit_threads;     /* [n_thread_buffers] */
    int n_thread_buffers;
    int64_t nep_width;           /* NEP row width, grown as frames need */
};

#endif
