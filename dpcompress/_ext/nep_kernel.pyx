"""NEP energy/force/virial kernel: thin wrapper over ``src_c/dpc_nep.c``.

Numpy twin: :mod:`dpcompress.reference.nep`.  Production runs the same C
through the model runtime (:mod:`dpcompress._ext.runtime`); this wrapper, on a model packed once
(:class:`PackedNEP`, from :func:`dpcompress.nep.packing.pack_model`), lets the tests hold the kernel
equal to its twin.  It checks shapes and dtypes (a wrong size here would be an out-of-bounds
access) and turns the C status into an exception.
"""

import numpy as np

from ..core.errors import status_error

from libc.stdint cimport int64_t


cdef extern from "dpc_nep.h":
    ctypedef struct dpc_nep_model:
        int64_t ntypes, n_max_R, n_max_A, basis_R, basis_A, l_need, num_L, n_neuron, dim, nmono
        const double *rc_R
        const double *rc_A
        const double *c_R
        const double *c_A
        const double *w0
        const double *b0
        const double *w1
        const double *b1_type
        double b1
        const double *q_scaler
        const double *mono
        const int64_t *block_start
        const double *zcoef
        int64_t zbl_kind
        const double *zbl_inner
        const double *zbl_outer
        const double *zbl_params
        const double *atomic_z
        int64_t tabulated
        const int64_t *tab_M
        const int64_t *tab_off
        const double *tab_grid
        const double *tab_coef

    int dpc_nep_compute(const dpc_nep_model *m, int64_t natoms, int64_t nnei, const int64_t *types,
                        const int64_t *index, const double *vectors, const int64_t *counts, int n_threads,
                        double *atom_energy, double *force, double *atom_virial, double *pair_force,
                        double *descriptor) nogil

_MESSAGES = {2: "model sizes out of the kernel's limits", 3: "an atom type or neighbor index is out of range",
             4: "two atoms coincide (zero distance)"}


def _f64(a, shape, name):
    a = np.ascontiguousarray(a, dtype=np.float64)
    if a.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {a.shape}")
    return a


def _i64(a, shape, name):
    a = np.ascontiguousarray(a, dtype=np.int64)
    if a.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {a.shape}")
    return a


cdef class PackedNEP:
    """Flat, kernel-ready arrays of one NEP model (analytic or tabulated)."""
    cdef dpc_nep_model m
    cdef public object keep
    cdef public int64_t dim
    cdef object _pf_spare  # pair-force scratch kept between calls (taken while in use: thread-safe)

    def __init__(self, dict a):
        T = int(a["ntypes"])
        nR1, nA1 = int(a["n_max_R"]) + 1, int(a["n_max_A"]) + 1
        nR1p, nA1p = (nR1 + 3) // 4 * 4, (nA1 + 3) // 4 * 4  # channel axes padded to a multiple of 4
        bR1, bA1 = int(a["basis_R"]) + 1, int(a["basis_A"]) + 1
        NN, D = int(a["n_neuron"]), int(a["dim"])
        nblk = int(a["num_L"])
        k = {}
        k["rc_R"] = _f64(a["rc_R"], (T * T,), "rc_R")
        k["rc_A"] = _f64(a["rc_A"], (T * T,), "rc_A")
        k["c_R"] = _f64(a["c_R"], (T * T, bR1, nR1p), "c_R")
        k["c_A"] = _f64(a["c_A"], (T * T, bA1, nA1p), "c_A")
        k["w0"] = _f64(a["w0"], (T, NN, D), "w0")
        k["b0"] = _f64(a["b0"], (T, NN), "b0")
        k["w1"] = _f64(a["w1"], (T, NN), "w1")
        k["b1_type"] = _f64(a["b1_type"], (T,), "b1_type")
        k["q_scaler"] = _f64(a["q_scaler"], (D,), "q_scaler")
        k["mono"] = np.ascontiguousarray(a["mono"], dtype=np.float64)
        k["block_start"] = _i64(a["block_start"], (nblk + 1,), "block_start")
        if k["mono"].ndim != 2 or k["mono"].shape[1] != 5 or k["block_start"][-1] != k["mono"].shape[0]:
            raise ValueError("mono/block_start inconsistent")
        k["zcoef"] = _f64(a["zcoef"], (8, 9, 9), "zcoef")
        k["zbl_inner"] = _f64(a["zbl_inner"], (T * T,), "zbl_inner")
        k["zbl_outer"] = _f64(a["zbl_outer"], (T * T,), "zbl_outer")
        k["zbl_params"] = _f64(a["zbl_params"], (T * T, 8), "zbl_params")
        k["atomic_z"] = _f64(a["atomic_z"], (T,), "atomic_z")
        k["tab_M"] = _i64(a["tab_M"], (2 * T * T,), "tab_M")
        k["tab_off"] = _i64(a["tab_off"], (2 * T * T,), "tab_off")
        k["tab_grid"] = _f64(a["tab_grid"], (2 * T * T, 2), "tab_grid")
        k["tab_coef"] = np.ascontiguousarray(a["tab_coef"], dtype=np.float64).ravel()
        if int(a["tabulated"]):
            for p in range(2 * T * T):
                nch = nR1p if p < T * T else nA1p
                if k["tab_M"][p] < 1 or k["tab_off"][p] < 0 or k["tab_off"][p] + k["tab_M"][p] * 6 * nch > k["tab_coef"].shape[0]:
                    raise ValueError(f"table {p} out of bounds")
        self.keep = k
        self.dim = D
        cdef double[::1] v
        cdef const int64_t[::1] iv
        self.m.ntypes, self.m.n_max_R, self.m.n_max_A = T, nR1 - 1, nA1 - 1
        self.m.basis_R, self.m.basis_A, self.m.l_need, self.m.num_L = bR1 - 1, bA1 - 1, int(a["l_need"]), nblk
        self.m.n_neuron, self.m.dim, self.m.nmono = NN, D, k["mono"].shape[0]
        self.m.b1 = float(a["b1"])
        self.m.zbl_kind = int(a["zbl_kind"])
        self.m.tabulated = int(a["tabulated"])
        v = k["rc_R"]; self.m.rc_R = &v[0]
        v = k["rc_A"]; self.m.rc_A = &v[0]
        v = k["c_R"].reshape(-1); self.m.c_R = &v[0]
        v = k["c_A"].reshape(-1); self.m.c_A = &v[0]
        v = k["w0"].reshape(-1); self.m.w0 = &v[0]
        v = k["b0"].reshape(-1); self.m.b0 = &v[0]
        v = k["w1"].reshape(-1); self.m.w1 = &v[0]
        v = k["b1_type"]; self.m.b1_type = &v[0]
        v = k["q_scaler"]; self.m.q_scaler = &v[0]
        v = k["mono"].reshape(-1); self.m.mono = &v[0]
        iv = k["block_start"]; self.m.block_start = &iv[0]
        v = k["zcoef"].reshape(-1); self.m.zcoef = &v[0]
        v = k["zbl_inner"]; self.m.zbl_inner = &v[0]
        v = k["zbl_outer"]; self.m.zbl_outer = &v[0]
        v = k["zbl_params"].reshape(-1); self.m.zbl_params = &v[0]
        v = k["atomic_z"]; self.m.atomic_z = &v[0]
        iv = k["tab_M"]; self.m.tab_M = &iv[0]
        iv = k["tab_off"]; self.m.tab_off = &iv[0]
        v = k["tab_grid"].reshape(-1); self.m.tab_grid = &v[0]
        if k["tab_coef"].shape[0] == 0:
            k["tab_coef"] = np.zeros(1)
        v = k["tab_coef"]; self.m.tab_coef = &v[0]

    def compute(self, types, index, vectors, counts, int n_threads=1, bint want_descriptor=False):
        """Returns (atom_energy (N,), force (N,3), atom_virial (N,9), descriptor (N,D) or None)."""
        index = np.ascontiguousarray(index, dtype=np.int64)
        if index.ndim != 2:
            raise ValueError("index must be (natoms, nnei)")
        cdef int64_t N = index.shape[0], nnei = index.shape[1]
        types = _i64(types, (N,), "types")
        vectors = _f64(vectors, (N, nnei, 3), "vectors")
        counts = _i64(np.asarray(counts).reshape(N), (N,), "counts")
        # every output element is written by the kernel (no zero-fill of the large pair-force scratch)
        e = np.empty(N)
        f = np.empty((N, 3))
        w = np.empty((N, 9))
        pf = self._pf_spare
        if pf is None or pf.shape[0] < max(N * nnei, 1):
            pf = np.empty((max(N * nnei, 1), 3))  # a fresh large buffer costs page faults on every call
        self._pf_spare = None
        d = np.empty((N, self.dim)) if want_descriptor else np.empty((1, 1))
        cdef const int64_t[::1] tv = types
        cdef const int64_t[:, ::1] ix = index
        cdef const double[:, :, ::1] vv = vectors
        cdef const int64_t[::1] cv = counts
        cdef double[::1] ev = e
        cdef double[:, ::1] fv = f, wv = w, pv = pf, dv = d
        cdef int st
        if N == 0:
            self._pf_spare = pf
            return e, f, w, (d if want_descriptor else None)
        with nogil:
            st = dpc_nep_compute(&self.m, N, nnei, &tv[0], &ix[0, 0] if nnei > 0 else NULL,
                                 &vv[0, 0, 0] if nnei > 0 else NULL, &cv[0], n_threads,
                                 &ev[0], &fv[0, 0], &wv[0, 0], &pv[0, 0], &dv[0, 0] if want_descriptor else NULL)
        self._pf_spare = pf
        if st != 0:
            raise status_error(st, f"NEP kernel failed: {_MESSAGES.get(st, st)}", RuntimeError)
        return e, f, w, (d if want_descriptor else None)
