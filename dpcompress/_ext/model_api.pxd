"""The runtime's C interface (``src_c/dpc_model.h``), declared once for every wrapper that needs it."""

from libc.stdint cimport int32_t, int64_t
from libc.string cimport memset


cdef extern from "dpc_model.h":
    int DPC_CHUNK_SIZE "DPC_CHUNK"
    ctypedef struct dpc_model:
        pass
    ctypedef struct dpc_workspace:
        pass
    ctypedef void (*dpc_dgemm_t)(char *, char *, int *, int *, int *, double *, double *, int *, double *, int *,
                                 double *, double *, int *) noexcept nogil
    ctypedef struct dpc_error:
        int status
        char message[512]
        int64_t atom_i, atom_j
        int64_t shift[3]
        double d2
    ctypedef struct dpc_frame:
        int64_t natoms, nlocal
        const double *x
        const int32_t *type
        const int64_t *tag
        const double *cell
        const int32_t *lattice
        int64_t nimage
        const int32_t *image_owner
        const int32_t *image_lattice
        const int32_t *numneigh
        const int32_t *const *firstneigh
        int32_t neighmask
        const double *fparam
        const double *aparam
        int64_t nsender
    ctypedef struct dpc_result:
        double energy
        double virial[9]
        int64_t beyond_fine, beyond_table, overflow, overflow_worst, overflow_atom, overflow_block, overflow_part
    ctypedef struct dpc_outputs:
        double *atom_energy
        double *force
        double *atom_virial
        double *descriptor

    int dpc_model_open(const void *data, size_t nbytes, dpc_dgemm_t dgemm, dpc_model **model, dpc_error *err) nogil
    void dpc_model_close(dpc_model *model)
    int dpc_model_kind(const dpc_model *model)
    int64_t dpc_model_ntypes(const dpc_model *model)
    int64_t dpc_model_dim(const dpc_model *model)
    int64_t dpc_model_dim_fparam(const dpc_model *model)
    int64_t dpc_model_dim_aparam(const dpc_model *model)
    int dpc_model_has_default_fparam(const dpc_model *model)
    const char *dpc_model_type_name(const dpc_model *model, int64_t t)
    double dpc_model_rcut(const dpc_model *model)
    double dpc_model_ghost_width(const dpc_model *model)
    int dpc_model_passes_messages(const dpc_model *model)
    dpc_workspace *dpc_workspace_new()
    void dpc_workspace_free(dpc_workspace *ws)
    size_t dpc_workspace_bytes(const dpc_workspace *ws)
    int dpc_compute(const dpc_model *model, dpc_workspace *ws, const dpc_frame *frame, int n_threads,
                    const dpc_outputs *out, dpc_result *result, dpc_error *err) nogil
    unsigned int dpc_crc32(unsigned int crc, const void *data, size_t n) nogil


cdef inline void frame_init(dpc_frame *fr, int64_t natoms, int64_t nlocal, const double *x,
                            const int32_t *types) noexcept nogil:
    """A frame of ``natoms`` atoms whose first ``nlocal`` are centers, with no tags, cell, images
    or candidate lists until the caller points at them."""
    memset(fr, 0, sizeof(dpc_frame))
    fr.natoms = natoms
    fr.nlocal = nlocal
    fr.x = x
    fr.type = types
