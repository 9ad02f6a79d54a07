"""The model runtime (``src_c/dpc_model.h``): thin wrapper, validation and dispatch only.

:class:`Model` opens a model from the bytes of a ``.dpc`` file (the C reader checks every size,
offset and checksum); :class:`Workspace` holds the scratch kept between calls; :func:`compute`
runs one frame.  Every array is checked for dtype, shape and contiguity here, before the GIL is
released; the C side checks the values (types, indices, finiteness) and reports a status and a
message, which :func:`dpcompress.core.errors.status_error` turns into the exception.
"""

import numpy as np

from libc.stdint cimport int32_t, int64_t, uint8_t, uintptr_t
from libc.string cimport memset
from libc.stdlib cimport free, malloc

from ..core.errors import STATUS_COINCIDENT, InputError, ModelFormatError, status_error
from .blas cimport dgemm_t, scipy_dgemm
from .blas import blas_single_thread
from .model_api cimport (
    DPC_CHUNK_SIZE, dpc_compute, dpc_crc32, dpc_dgemm_t, dpc_error, dpc_frame, dpc_model, dpc_model_close,
    dpc_model_dim, dpc_model_dim_aparam, dpc_model_dim_fparam, dpc_model_has_default_fparam, dpc_model_kind, dpc_model_ntypes, dpc_model_open, dpc_model_rcut, dpc_model_ghost_width, dpc_model_passes_messages,
    dpc_model_type_name, dpc_outputs, dpc_result, dpc_workspace, dpc_workspace_bytes, dpc_workspace_free,
    dpc_workspace_new, frame_init,
)


cdef extern from "dpc_model_file.h":
    ctypedef struct dpc_array:
        const char *name
        int dtype
        int ndim
        int64_t shape[4]
        int64_t count
        const void *data
    ctypedef struct dpc_file:
        const unsigned char *base
        size_t nbytes
        const char *header
        size_t header_nbytes
        int64_t n_arrays
        dpc_array *arrays
    int dpc_file_parse(const void *data, size_t nbytes, dpc_file *f, dpc_error *err) nogil
    void dpc_file_release(dpc_file *f)


#: centers per chunk of the runtime (compile-time constant)
CHUNK = DPC_CHUNK_SIZE
KIND_DP_ENERGY, KIND_NEP = 1, 2


cdef class Model:
    """A model opened by the runtime from the bytes of a ``.dpc`` file.

    Parameters
    ----------
    buffer : bytes-like
        The file's bytes (a read-only memory map serves); kept referenced while the model lives.
    source : str
        Named in the errors.

    Raises
    ------
    ModelFormatError
        The C reader's message, prefixed with ``source``.
    """
    cdef dpc_model *ptr
    cdef readonly object buffer
    cdef readonly str source

    def __cinit__(self, buffer, str source="<memory>"):
        self.ptr = NULL
        self.buffer = buffer
        self.source = source
        cdef const unsigned char[::1] view = memoryview(buffer).cast("B")
        cdef dpc_error err
        cdef int status
        cdef dgemm_t gemm = scipy_dgemm()
        cdef const void *data = &view[0] if view.shape[0] > 0 else NULL
        cdef size_t n = view.shape[0]
        with nogil:
            status = dpc_model_open(data, n, <dpc_dgemm_t>gemm, &self.ptr, &err)
        if status != 0:
            raise status_error(status, f"{source}: {err.message.decode('utf-8', 'replace')}", ModelFormatError)

    def __dealloc__(self):
        if self.ptr != NULL:
            dpc_model_close(self.ptr)
            self.ptr = NULL

    @property
    def kind(self):
        return dpc_model_kind(self.ptr)

    @property
    def ntypes(self):
        return dpc_model_ntypes(self.ptr)

    @property
    def rcut(self):
        """Largest cutoff of the model, Å."""
        return dpc_model_rcut(self.ptr)

    @property
    def ghost_width(self):
        """Halo a domain needs, Å (``dpc_model_ghost_width``): rcut, or for DPA-2
        rcut + nlayers * rcut(repformer); ghosts within ghost_width - rcut are senders."""
        return dpc_model_ghost_width(self.ptr)

    @property
    def passes_messages(self):
        """True for a model whose neighbors exchange state (DPA-2): see ``dpc_frame.nsender``."""
        return bool(dpc_model_passes_messages(self.ptr))

    @property
    def dim_fparam(self):
        """Frame parameters the model takes (``numb_fparam``; 0 for NEP)."""
        return dpc_model_dim_fparam(self.ptr)

    @property
    def dim_aparam(self):
        """Atomic parameters per atom the model takes (``numb_aparam``)."""
        return dpc_model_dim_aparam(self.ptr)

    @property
    def has_default_fparam(self):
        return bool(dpc_model_has_default_fparam(self.ptr))

    @property
    def type_map(self):
        return tuple(dpc_model_type_name(self.ptr, t).decode("utf-8", "replace") for t in range(self.ntypes))


def check_model_bytes(buffer, source="<memory>"):
    """Open and close the model in ``buffer``: the C reader's checks (raises ModelFormatError)."""
    Model(buffer, source)


cdef class Workspace:
    """Scratch of the runtime, kept between frames (grows during the first frames of a run)."""
    cdef dpc_workspace *ptr

    def __cinit__(self):
        self.ptr = dpc_workspace_new()
        if self.ptr == NULL:
            raise MemoryError("cannot allocate a runtime workspace")

    def __dealloc__(self):
        if self.ptr != NULL:
            dpc_workspace_free(self.ptr)
            self.ptr = NULL

    @property
    def nbytes(self):
        """Bytes the workspace holds."""
        return dpc_workspace_bytes(self.ptr)


def _array(a, dtype, shape, name):
    if not (isinstance(a, np.ndarray) and a.dtype == dtype and a.flags.c_contiguous and a.shape == shape):
        got = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
        raise ValueError(f"{name}: expected a C-contiguous {np.dtype(dtype)} array of shape {shape}, got {got}")
    return a


def compute(Model model, Workspace ws, x, types, int64_t nlocal, offsets, index, *, cell=None, lattice=None,
            image_owner=None, image_lattice=None, tag=None, int n_threads=1, force=None, atom_energy=None,
            atom_virial=None, bint blas_guard=True, fparam=None, aparam=None, nsender=None):
    """One frame through ``dpc_compute``; the output arrays are added to.

    Parameters
    ----------
    x : float64 (natoms, 3);  types : int32 (natoms,);  nlocal : the centers are atoms 0..nlocal-1
    offsets : int64 (nrows + 1,), index : int32 (offsets[-1],)
        Candidate neighbors of each center (CSR), indices into [0, natoms + nimage); nrows = nlocal, or
        nsender when senders are given (their rows follow the centers').
    nsender : int or None
        ``dpc_frame.nsender`` (message passing, DPA-2): atoms nlocal .. nsender-1 are evaluated as
        senders of messages only (no energy of theirs is counted); None or 0: no senders.
    cell : float64 (3, 3) or None;  lattice : int32 (natoms, 3) or None
    image_owner : int32 (nimage,), image_lattice : int32 (nimage, 3), or None
    tag : int64 (natoms,) or None
    force : float64 (natoms, 3), required;  atom_energy : (nlocal,) or None;  atom_virial : (natoms, 9) or None
    fparam : float64 (dim_fparam,) or None
        The frame parameters, raw (the runtime normalises them); None: the model's default_fparam.
    aparam : float64 (nlocal, dim_aparam) or None
        The centers' atomic parameters, raw.  The runtime refuses parameters a model does not take
        and a model without the ones it needs.
    blas_guard : bool
        Limit every BLAS to one thread around the call (:func:`~dpcompress._ext.blas.blas_single_thread`).
        False when the caller holds that limit already around many calls: entering it costs more than
        a small frame (threadpoolctl queries every library).

    Returns
    -------
    dict
        energy, virial (3, 3), beyond_fine, beyond_table, overflow, overflow_worst, overflow_atom,
        overflow_block, overflow_part.

    Raises
    ------
    InputError
        A problem with the frame, named by the runtime (coincident atoms with ``atoms`` = (i, j,
        shift) set on the exception).
    """
    cdef int64_t natoms = x.shape[0] if isinstance(x, np.ndarray) and x.ndim == 2 else -1
    _array(x, np.float64, (natoms, 3), "x")
    _array(types, np.int32, (natoms,), "types")
    if not 0 <= nlocal <= natoms:
        raise ValueError(f"nlocal must lie in [0, {natoms}], got {nlocal}")
    cdef int64_t nsend = 0 if nsender is None else nsender
    if nsend != 0 and not nlocal <= nsend <= natoms:
        raise ValueError(f"nsender must be 0 or lie in [nlocal, natoms] = [{nlocal}, {natoms}], got {nsend}")
    cdef int64_t nrows = nsend if nsend > nlocal else nlocal
    _array(offsets, np.int64, (nrows + 1,), "offsets")
    cdef int64_t ncand = offsets[nrows] if nrows >= 0 else 0
    _array(index, np.int32, (ncand,), "index")
    if nrows > 0 and (offsets[0] != 0 or np.any(np.diff(offsets) < 0) or np.any(np.diff(offsets) > 2**31 - 1)):
        raise ValueError("offsets must start at 0 and not decrease")
    cdef int64_t nimage = 0
    if image_owner is not None:
        nimage = image_owner.shape[0]
        _array(image_owner, np.int32, (nimage,), "image_owner")
        _array(image_lattice, np.int32, (nimage, 3), "image_lattice")
    if cell is not None:
        _array(cell, np.float64, (3, 3), "cell")
    if lattice is not None:
        _array(lattice, np.int32, (natoms, 3), "lattice")
    if tag is not None:
        _array(tag, np.int64, (natoms,), "tag")
    _array(force, np.float64, (natoms, 3), "force")
    if atom_energy is not None:
        _array(atom_energy, np.float64, (nlocal,), "atom_energy")
    if atom_virial is not None:
        _array(atom_virial, np.float64, (natoms, 9), "atom_virial")
    cdef const double[::1] fpv
    cdef const double[:, ::1] apv
    if fparam is not None:
        _array(fparam, np.float64, (dpc_model_dim_fparam(model.ptr),), "fparam")
    if aparam is not None:
        _array(aparam, np.float64, (nlocal, dpc_model_dim_aparam(model.ptr)), "aparam")

    cdef const double[:, ::1] xv = x
    cdef const int32_t[::1] tv = types
    cdef const int64_t[::1] ov = offsets
    cdef const int32_t[::1] iv = index
    cdef const int32_t[::1] own
    cdef const int32_t[:, ::1] ilat
    cdef const double[:, ::1] cv
    cdef const int32_t[:, ::1] lv
    cdef const int64_t[::1] tagv
    cdef double[:, ::1] fv = force
    cdef double[::1] ev
    cdef double[:, ::1] wv
    cdef dpc_frame fr
    cdef dpc_outputs out
    cdef dpc_result res
    cdef dpc_error err
    cdef int status
    cdef int64_t i
    cdef const int32_t **rows = NULL
    cdef int32_t *counts = NULL
    frame_init(&fr, natoms, nlocal, &xv[0, 0] if natoms > 0 else NULL, &tv[0] if natoms > 0 else NULL)
    fr.nimage = nimage
    fr.nsender = nsend
    if fparam is not None:  # a zero-length array is given as a pointer too: the runtime refuses it
        fpv = fparam if fparam.shape[0] > 0 else np.zeros(1)
        fr.fparam = &fpv[0]
    if aparam is not None:
        apv = aparam if aparam.size > 0 else np.zeros((1, 1))
        fr.aparam = &apv[0, 0]
    if tag is not None and natoms > 0:
        tagv = tag
        fr.tag = &tagv[0]
    if cell is not None:
        cv = cell
        fr.cell = &cv[0, 0]
    if lattice is not None and natoms > 0:
        lv = lattice
        fr.lattice = &lv[0, 0]
    if nimage > 0:
        own = image_owner
        ilat = image_lattice
        fr.image_owner = &own[0]
        fr.image_lattice = &ilat[0, 0]
    out.force = &fv[0, 0] if natoms > 0 else NULL
    out.atom_energy = NULL
    out.atom_virial = NULL
    out.descriptor = NULL
    if atom_energy is not None and nlocal > 0:
        ev = atom_energy
        out.atom_energy = &ev[0]
    if atom_virial is not None and natoms > 0:
        wv = atom_virial
        out.atom_virial = &wv[0, 0]
    rows = <const int32_t **>malloc(sizeof(int32_t *) * (nrows if nrows > 0 else 1))
    counts = <int32_t *>malloc(sizeof(int32_t) * (nrows if nrows > 0 else 1))
    if rows == NULL or counts == NULL:
        free(rows)
        free(counts)
        raise MemoryError("cannot allocate the candidate-row pointers")
    try:
        for i in range(nrows):
            counts[i] = <int32_t>(ov[i + 1] - ov[i])
            rows[i] = (&iv[0] + ov[i]) if ncand > 0 else NULL
        fr.numneigh = counts
        fr.firstneigh = rows
        if blas_guard:
            with blas_single_thread():
                with nogil:
                    status = dpc_compute(model.ptr, ws.ptr, &fr, n_threads, &out, &res, &err)
        else:
            with nogil:
                status = dpc_compute(model.ptr, ws.ptr, &fr, n_threads, &out, &res, &err)
    finally:
        free(rows)
        free(counts)
    if status != 0:
        exc = status_error(status, err.message.decode("utf-8", "replace"), InputError)
        if status == STATUS_COINCIDENT:
            exc.atoms = (int(err.atom_i), int(err.atom_j), (int(err.shift[0]), int(err.shift[1]), int(err.shift[2])),
                         float(err.d2))
        raise exc
    return {
        "energy": res.energy,
        "virial": np.array([res.virial[k] for k in range(9)]).reshape(3, 3),
        "beyond_fine": res.beyond_fine,
        "beyond_table": res.beyond_table,
        "overflow": res.overflow,
        "overflow_worst": res.overflow_worst,
        "overflow_atom": res.overflow_atom,
        "overflow_block": res.overflow_block,
        "overflow_part": res.overflow_part,
    }


cdef extern from "dpc_frames.h":
    int DPC_NCOUNTS
    ctypedef struct dpc_batch:
        int64_t nframes, natoms
        const double *x
        const int32_t *type
        int64_t type_stride
        const double *cell
        const uint8_t *periodic
        const double *fparam
        const double *aparam
    ctypedef struct dpc_batch_outputs:
        double *energy
        double *virial
        double *force
        double *atom_energy
        double *atom_virial
        double *descriptor
        int64_t *counts
    int dpc_compute_frames(const dpc_model *model, dpc_workspace *ws, const dpc_batch *batch, int n_threads,
                           const dpc_batch_outputs *out, int64_t *failed, dpc_error *err) nogil


#: the per-frame counters of :func:`compute_frames`, in their column order
FRAME_COUNTS = ("beyond_fine", "beyond_table", "overflow", "overflow_worst", "overflow_atom", "overflow_block",
                "overflow_part")


def compute_frames(Model model, Workspace ws, xyz, types, cells=None, periodic=None, *, int n_threads=1,
                   bint descriptor=False, fparam=None, aparam=None, bint per_atom_virial=True):
    """Many frames of the same atoms through ``dpc_compute_frames`` (``src_c/dpc_frames.h``): the
    candidate search and ``dpc_compute`` of every frame in one call without the GIL.

    Parameters
    ----------
    xyz : float64 (nframes, natoms, 3), natoms >= 1
    types : int32 (natoms,) for every frame, or (nframes, natoms)
    cells : float64 (nframes, 3, 3) reduced cells, or None (clusters)
    periodic : uint8 (nframes,) or None
        0 where frame f is a cluster although ``cells`` is given.
    descriptor : bool
        Also return every atom's descriptor (DP models): the fitting net's input.
    fparam : float64 (nframes, dim_fparam) or None
        Each frame's frame parameters, raw; None: the model's default_fparam (or a model without).
    aparam : float64 (nframes, natoms, dim_aparam) or None
        Each frame's atomic parameters, raw (:func:`compute`'s, per frame).
    per_atom_virial : bool
        False: no per-atom virial (returned as zeros; a DPA-2 model then skips its three weighted backward
        passes), the frame virial is the runtime's own sum (``virial``).

    Returns
    -------
    atom_energy : (nframes, natoms);  force : (nframes, natoms, 3);  atom_virial : (nframes, natoms, 9)
    counts : int64 (nframes, len(FRAME_COUNTS))
    descriptors : (nframes, natoms, dim) or None
    virial : (nframes, 9), the runtime's sum of the frame's pair terms
    failed : int
        The first frame that failed (its outputs and those after it are not computed), or -1.
    status : int;  message : str
        Why it failed (0 and "" when none did).

    The caller keeps every BLAS single-threaded around the call (:func:`~dpcompress._ext.blas.blas_single_thread`).
    """
    cdef int64_t nframes = xyz.shape[0] if isinstance(xyz, np.ndarray) and xyz.ndim == 3 else -1
    cdef int64_t natoms = xyz.shape[1] if nframes >= 0 else -1
    _array(xyz, np.float64, (nframes, natoms, 3), "xyz")
    if natoms < 1:
        raise ValueError("compute_frames needs at least one atom per frame")
    cdef int64_t stride = 0
    if isinstance(types, np.ndarray) and types.ndim == 2:
        _array(types, np.int32, (nframes, natoms), "types")
        stride = natoms
    else:
        _array(types, np.int32, (natoms,), "types")
    if cells is not None:
        _array(cells, np.float64, (nframes, 3, 3), "cells")
    if periodic is not None:
        _array(periodic, np.uint8, (nframes,), "periodic")
    if fparam is not None:
        _array(fparam, np.float64, (nframes, dpc_model_dim_fparam(model.ptr)), "fparam")
    if aparam is not None:
        _array(aparam, np.float64, (nframes, natoms, dpc_model_dim_aparam(model.ptr)), "aparam")
    atom_energy = np.full((nframes, natoms), -0.0)  # the additive identity that keeps a zero's sign
    force = np.zeros((nframes, natoms, 3))
    atom_virial = np.zeros((nframes, natoms, 9))
    counts = np.zeros((nframes, DPC_NCOUNTS), dtype=np.int64)
    energy = np.zeros(nframes)
    virial = np.zeros((nframes, 9))
    cdef int64_t dim = dpc_model_dim(model.ptr)
    if descriptor and dim < 1:
        raise ValueError("this model has no descriptor output (NEP)")
    desc = np.zeros((nframes, natoms, dim)) if descriptor else None
    cdef double[:, :, ::1] dv
    if nframes == 0:
        return atom_energy, force, atom_virial, counts, desc, -1, 0, "", virial
    cdef const double[:, :, ::1] xv = xyz
    cdef const int32_t[::1] t1
    cdef const int32_t[:, ::1] t2
    cdef const double[:, :, ::1] cv
    cdef const uint8_t[::1] pv
    cdef const double[:, ::1] fpv
    cdef const double[:, :, ::1] apv
    cdef double[::1] ev = energy
    cdef double[:, ::1] vv = virial
    cdef double[:, ::1] aev = atom_energy
    cdef double[:, :, ::1] fv = force
    cdef double[:, :, ::1] avv = atom_virial
    cdef int64_t[:, ::1] nv = counts
    cdef dpc_batch b
    cdef dpc_batch_outputs out
    cdef dpc_error err
    cdef int64_t failed = -1
    cdef int status
    memset(&b, 0, sizeof(b))
    b.nframes = nframes
    b.natoms = natoms
    b.x = &xv[0, 0, 0]
    b.type_stride = stride
    if stride:
        t2 = types
        b.type = &t2[0, 0]
    else:
        t1 = types
        b.type = &t1[0]
    if cells is not None:
        cv = cells
        b.cell = &cv[0, 0, 0]
    if periodic is not None:
        pv = periodic
        b.periodic = &pv[0]
    if fparam is not None:
        fpv = fparam if fparam.size > 0 else np.zeros((1, 1))
        b.fparam = &fpv[0, 0]
    if aparam is not None:
        apv = aparam if aparam.size > 0 else np.zeros((1, 1, 1))
        b.aparam = &apv[0, 0, 0]
    out.energy = &ev[0]
    out.virial = &vv[0, 0]
    out.force = &fv[0, 0, 0]
    out.atom_energy = &aev[0, 0]
    out.atom_virial = &avv[0, 0, 0] if per_atom_virial else NULL
    out.counts = &nv[0, 0]
    out.descriptor = NULL
    if descriptor:
        dv = desc
        out.descriptor = &dv[0, 0, 0]
    with nogil:
        status = dpc_compute_frames(model.ptr, ws.ptr, &b, n_threads, &out, &failed, &err)
    message = err.message.decode("utf-8", "replace") if status else ""
    return atom_energy, force, atom_virial, counts, desc, failed, status, message, virial


def directory(buffer):
    """What the C reader finds in a ``.dpc`` file: ``[(name, dtype code, shape, byte offset), ...]``
    (tests hold it equal to the Python reader's).  Raises ModelFormatError like the runtime."""
    cdef const unsigned char[::1] view = memoryview(buffer).cast("B")
    cdef dpc_file f
    cdef dpc_error err
    cdef int status
    cdef const void *data = &view[0] if view.shape[0] > 0 else NULL
    status = dpc_file_parse(data, view.shape[0], &f, &err)
    if status != 0:
        raise status_error(status, err.message.decode("utf-8", "replace"), ModelFormatError)
    try:
        return [(f.arrays[k].name.decode("ascii"), f.arrays[k].dtype,
                 tuple(f.arrays[k].shape[d] for d in range(f.arrays[k].ndim)),
                 <const unsigned char *>f.arrays[k].data - f.base) for k in range(f.n_arrays)]
    finally:
        dpc_file_release(&f)


def crc32(data):
    """The C library's CRC-32 of ``data`` (zlib's polynomial; tests hold it equal to zlib.crc32)."""
    cdef const unsigned char[::1] v = memoryview(data).cast("B")
    if v.shape[0] == 0:
        return 0
    return dpc_crc32(0, &v[0], v.shape[0])
