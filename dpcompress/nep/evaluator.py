"""Evaluate NEP models on frames: neighbor list → C kernel (or the numpy reference).

:class:`NEPEvaluator` is what :class:`dpcompress.Potential` uses for a NEP
model (``nep.txt`` or a NEP ``.dpc``).  Virial: W = −Σ_ij r_ij ⊗ f_ij, the same
W = −Vσ as DeePMD-kit's virial; per-atom virials follow NEP_CPU's split
(W_j^{ab} −= r_ij^a f_ij^b), row-major [xx, xy, xz, yx, ...].
"""

import time

import numpy as np

from .constants import block_monomials, z_table
from .pairs import NeighborCache, pair_arrays


def _pad4(n):
    return (n + 3) // 4 * 4


def _pad_channels(a, nch_pad):
    """Zero-pad the last axis (channels n) to ``nch_pad``: the kernel's n loops then have no remainder."""
    out = np.zeros(a.shape[:-1] + (nch_pad,))
    out[..., : a.shape[-1]] = a
    return out


def pack_model(model, tabulated=None):
    """Flat arrays for :class:`dpcompress._ext.nep_kernel.PackedNEP` (layouts: src_c/dpc_nep.h).

    Channel axes (n) of the radial-function coefficients and tables are zero-padded to a multiple
    of 4; tables also get their interval width w = r_c / M and 1 / w = M / r_c.
    """
    m = model
    T = m.ntypes
    tabulated = m.tables is not None if tabulated is None else tabulated
    mono, start, lneed = block_monomials(m.l_max, m.flags)
    z = m.zbl
    nR1p, nA1p = _pad4(m.n_max_radial + 1), _pad4(m.n_max_angular + 1)
    a = {
        "ntypes": T, "n_max_R": m.n_max_radial, "n_max_A": m.n_max_angular,
        "basis_R": m.basis_radial, "basis_A": m.basis_angular, "l_need": lneed, "num_L": m.num_L,
        "n_neuron": m.n_neuron, "dim": m.dim,
        "rc_R": m.rc_radial.ravel(), "rc_A": m.rc_angular.ravel(),
        "c_R": _pad_channels(m.c_radial.transpose(2, 3, 1, 0).reshape(T * T, m.basis_radial + 1, -1), nR1p),
        "c_A": _pad_channels(m.c_angular.transpose(2, 3, 1, 0).reshape(T * T, m.basis_angular + 1, -1), nA1p),
        "w0": m.w0, "b0": m.b0, "w1": m.w1, "b1_type": m.b1_type, "b1": m.b1, "q_scaler": m.q_scaler,
        "mono": mono, "block_start": start, "zcoef": z_table(),
        "zbl_kind": 0 if z is None else (2 if z["kind"] == "flexible" else 1),
        "zbl_inner": np.zeros(T * T) if z is None else z["inner"].ravel(),
        "zbl_outer": np.zeros(T * T) if z is None else z["outer"].ravel(),
        "zbl_params": np.zeros((T * T, 8)) if z is None or z["kind"] != "flexible" else z["params"].reshape(T * T, 8),
        "atomic_z": m.atomic_numbers.astype(np.float64),
        "tabulated": int(bool(tabulated)),
        "tab_M": np.ones(2 * T * T, dtype=np.int64), "tab_off": np.zeros(2 * T * T, dtype=np.int64),
        "tab_grid": np.ones((2 * T * T, 2)), "tab_coef": np.zeros(1),
    }
    if tabulated:
        if m.tables is None:
            raise ValueError("tabulated=True but the model has no tables (dpcompress.nep.tables.build_tables)")
        tb = m.tables
        chunks, off, pos = [], np.zeros(2 * T * T, dtype=np.int64), 0
        for k, (M, o) in enumerate(zip(tb.M.ravel(), tb.offsets.ravel())):
            nch = (m.n_max_radial if k < T * T else m.n_max_angular) + 1
            coef = _pad_channels(tb.coef[o: o + M * 6 * nch].reshape(M, 6, nch), nR1p if k < T * T else nA1p)
            chunks.append(coef.ravel())
            off[k], pos = pos, pos + coef.size
        rc = np.concatenate([m.rc_radial.ravel(), m.rc_angular.ravel()])
        M = tb.M.ravel()
        a["tab_M"], a["tab_off"], a["tab_coef"] = M, off, np.concatenate(chunks)
        a["tab_grid"] = np.stack([rc / M, M / rc], axis=1)  # same w and 1/w as tables.table_values
    return a


class NEPEvaluator:
    """Energy/forces/virials of one NEP model.

    Parameters
    ----------
    model : NEPModel (with ``tables`` set for the tabulated kernel)
    backend : 'c' (default) or 'numpy' (the readable reference)
    tabulated : bool or None; None = use tables when the model has them
    """

    def __init__(self, model, backend="c", tabulated=None):
        self.model = model
        self.backend = backend
        self.tabulated = model.tables is not None if tabulated is None else bool(tabulated)
        self.neighbors = NeighborCache()
        self.timings = {}  # seconds spent in the stages of the last evaluate() (neighbors, kernel, total)
        self._packed = None
        if backend == "c":
            from .._ext.nep_kernel import PackedNEP

            self._packed = PackedNEP(pack_model(model, self.tabulated))
        elif backend != "numpy":
            raise ValueError(f"backend must be 'c' or 'numpy', got {backend!r}")

    def evaluate(self, coords, cell, types, n_threads=1, descriptor=False):
        """One frame; returns dict(energy, force (N,3), virial (3,3), atom_energy (N,), atom_virial (N,9), overflow)."""
        t0 = time.perf_counter()
        coords = np.asarray(coords, dtype=np.float64)
        types = np.asarray(types, dtype=np.int64)
        n = len(coords)
        nl = self.neighbors.build(coords, cell, types, self.model.rcut, n_threads)
        t1 = time.perf_counter()
        if self.backend == "numpy":
            from .reference import evaluate_pairs
            from .tables import table_gfun

            pi, pj, vec = pair_arrays(nl)
            gf = table_gfun(self.model, self.model.tables) if self.tabulated else None
            r = evaluate_pairs(self.model, types, pi, pj, vec, n, gfun=gf)
            e, f, w, d = r["atom_energy"], r["force"], r["atom_virial"], r["descriptor"]
        else:
            e, f, w, d = self._packed.compute(types, nl.index, nl.vectors, nl.counts[:, 0], int(n_threads), descriptor)
        t2 = time.perf_counter()
        out = {"energy": float(e.sum()), "atom_energy": e, "force": f, "atom_virial": w,
               "virial": w.sum(0).reshape(3, 3), "overflow": [np.zeros((n, 1), dtype=np.int64)]}
        if descriptor:
            out["descriptor"] = d
        self.timings = {"neighbors": t1 - t0, "kernel": t2 - t1, "total": time.perf_counter() - t0}
        return out
