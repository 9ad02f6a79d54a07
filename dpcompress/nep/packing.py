"""A NEP model as the flat arrays of the kernel (``src_c/dpc_nep.h``), analytic or tabulated.

:func:`pack_model` fills the ``nep.*`` arrays of a ``.dpc`` file (:mod:`dpcompress.modelfile.nep`).
Channel axes (n) of the radial-function coefficients and tables are zero-padded to a multiple of
4 (the kernel's n loops then vectorise without remainder); tables also get their interval width
w = r_c / M and 1 / w = M / r_c.
"""

import numpy as np

from .constants import block_monomials, z_table

#: nep.int, in order (src_c/dpc_model.c)
INT_FIELDS = ("ntypes", "n_max_R", "n_max_A", "basis_R", "basis_A", "l_need", "num_L", "n_neuron", "dim", "nmono",
              "zbl_kind", "tabulated")


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


def pack_arrays(model, tabulated=None):
    """The ``nep.*`` arrays of a ``.dpc`` file."""
    a = pack_model(model, tabulated)
    mono = np.ascontiguousarray(a["mono"], dtype=np.float64).reshape(-1, 5)
    a["nmono"] = mono.shape[0]
    ints = np.array([int(a[k]) for k in INT_FIELDS], dtype=np.int64)
    out = {"nep.int": ints, "nep.b1": np.array([float(a["b1"])])}
    for k in ("rc_R", "rc_A", "c_R", "c_A", "w0", "b0", "w1", "b1_type", "q_scaler", "zcoef", "zbl_inner",
              "zbl_outer", "zbl_params", "atomic_z", "tab_grid", "tab_coef"):
        out[f"nep.{k}"] = np.ascontiguousarray(a[k], dtype=np.float64)
    out["nep.mono"] = mono
    for k in ("block_start", "tab_M", "tab_off"):
        out[f"nep.{k}"] = np.ascontiguousarray(a[k], dtype=np.int64)
    return out
