"""What every descriptor unit shares: sizes of the embedding descriptors, the range check of
``min_nbor_dist``, and the packing of tables and statistics into the arrays of a ``.dpc`` part.

A part's arrays are the kernels' layout (``src_c/dpc_model.c`` reads them, docs/model-file.md
lists them): per (center type, neighbor block) statistics ``avg``/``std`` and exclusion mode
``block_mode``, a table index ``table_of``, and the tables themselves as ``tab_real`` (lower,
upper, xmax, stride0, stride1), ``tab_count`` (n_fine, n_coarse, n_below), ``tab_offset`` and one
flat ``coef`` in the layout of ``src_c/dpc_table.h``.
"""

import math
import types
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import InputError, ModelFormatError, UnsupportedModelError
from ..tables import EmbeddingTable

#: descriptor kind codes of a .dpc part (part{p}.int[0]); src_c/dpc_model_internal.h
KIND_SE_A, KIND_SE_R, KIND_SE_T, KIND_SE_ATTEN = 1, 2, 3, 4
#: DPA-1 with attention layers: kind 4's arrays plus part{p}.att_* (src_c/dpc_attention.h)
KIND_DPA1 = 6


class EmbeddingSizes:
    """Sizes shared by the descriptors with embedding nets (``sel``, ``neuron``, ``tables`` fields)."""

    @property
    def ntypes(self):
        return len(self.sel)

    @property
    def nnei(self):
        return int(sum(self.sel))

    @property
    def n_channels(self):
        """M, the width of the embedding output."""
        return self.neuron[-1]

    @property
    def is_compressed(self):
        return self.tables is not None


def check_min_nbor_dist(min_nbor_dist):
    """``min_nbor_dist`` as a positive finite float, or :class:`InputError`."""
    try:
        r = float(min_nbor_dist)
    except (TypeError, ValueError):
        raise InputError(f"min_nbor_dist must be a positive number, got {min_nbor_dist!r}") from None
    if isinstance(min_nbor_dist, bool) or not math.isfinite(r) or r <= 0:
        raise InputError(f"min_nbor_dist must be a positive finite distance (Å), got {min_nbor_dist!r}")
    return r


@dataclass
class PackedPart:
    """One descriptor as the arrays of a ``.dpc`` part.

    ``ints`` fills ``part{p}.int`` (names of ``INT_FIELDS``), ``real`` is (rcut, rcut_smth,
    env_protection), ``arrays`` are stored as ``part{p}.<name>``, ``settings`` (JSON) keep what
    the kernels do not need but the Python model does (widths of the nets, activation, ...).
    """

    ints: dict
    real: tuple
    arrays: dict
    settings: dict = field(default_factory=dict)

    def kernel_view(self):
        """The part under the names of the single-kernel wrappers (``dpcompress._ext.se_a_tab.PackedTables``):
        what the GPU path and the numpy twins read."""
        a, i = self.arrays, self.ints
        return types.SimpleNamespace(
            nnei=i["nnei"], nblocks=i["nblocks"], ntypes=a["avg"].shape[0], n_channels=i["M"],
            axis_neuron=i["axis_neuron"], ncoef=i["ncoef"], rcut=self.real[0], rcut_smth=self.real[1],
            protection=self.real[2], n_rows=1 if i["kind"] == KIND_SE_R else 4, gate=a.get("gate"), gate_pad=a.get("gate_pad"),
            n_gate_rows=i["n_gate_rows"], ntables=i["ntables"],
            **{k: a[k] for k in ("sel_offsets", "avg", "std", "block_mode", "table_of", "tab_real", "tab_count",
                                 "tab_offset", "coef")},
        )


#: part{p}.int, in order (src_c/dpc_model_internal.h)
INT_FIELDS = ("kind", "nblocks", "nnei", "ntables", "ncoef", "M", "axis_neuron", "mixed", "concat", "tebd_dim",
              "dim_out", "n_gate_rows")


def block_statistics(davg, dstd, sel):
    """davg/dstd reduced to one row per (center type, neighbor block), shape (ntypes, nblocks, 4).

    DeePMD-kit's statistics are identical for every slot of a block; the fused kernels rely on
    that (all padding slots of a block share one value).  Statistics with one component (se_e2_r)
    fill all four.
    """
    offsets = np.concatenate([[0], np.cumsum(sel)])
    nt = davg.shape[0]
    avg = np.zeros((nt, len(sel), 4))
    std = np.ones((nt, len(sel), 4))
    for b in range(len(sel)):
        if sel[b] == 0:
            continue
        sl = slice(offsets[b], offsets[b + 1])
        for name, src, dst in (("davg", davg, avg), ("dstd", dstd, std)):
            block = src[:, sl]
            if not np.all(block == block[:, :1]):
                raise UnsupportedModelError(
                    f"{name} differs between the slots of neighbor block {b}; compressed evaluation needs "
                    "per-block statistics (as DeePMD-kit computes them)"
                )
            dst[:, b] = block[:, 0]
    return avg, std


def expand_statistics(avg, std, sel, ncomp):
    """Inverse of :func:`block_statistics`: (ntypes, nnei, ncomp) arrays."""
    reps = np.asarray(sel, dtype=np.int64)
    return (np.repeat(avg[:, :, :ncomp], reps, axis=1).copy(), np.repeat(std[:, :, :ncomp], reps, axis=1).copy())


def block_modes(ntypes, exclude_types, pair_exclude_types):
    """Exclusion mode per (center type, block): 0 normal, 1 rows zeroed, 2 neighbors removed."""
    mode = np.zeros((ntypes, ntypes), dtype=np.int8)
    for t in range(ntypes):
        for b in range(ntypes):
            if (t, b) in pair_exclude_types:
                mode[t, b] = 2
            elif (t, b) in exclude_types:
                mode[t, b] = 1
    return mode


def exclusions_from_modes(mode, value):
    """The symmetrised type pairs whose mode is ``value``."""
    return frozenset((int(a), int(b)) for a, b in zip(*np.nonzero(np.asarray(mode) == value)))


def pack_tables(tables):
    """The table arrays of a part from a list of :class:`EmbeddingTable` (shared order and width).

    Returns
    -------
    dict
        tab_real, tab_count, tab_offset, coef, tab_error; and ncoef, M.
    """
    orders = {tab.coef.shape[1] for tab in tables}
    widths = {tab.coef.shape[2] for tab in tables}
    if len(orders) != 1 or len(widths) != 1:
        raise UnsupportedModelError("all tables of a descriptor must share the order and the channel count")
    offsets = np.cumsum([0] + [tab.coef.size for tab in tables])
    return dict(
        tab_real=np.array([[t.lower, t.upper, t.xmax, t.stride0, t.stride1] for t in tables], dtype=np.float64),
        tab_count=np.array([[t.n_fine, t.n_coarse, t.n_below] for t in tables], dtype=np.int64),
        tab_offset=offsets[:-1].astype(np.int64),
        coef=np.concatenate([np.ascontiguousarray(t.coef, dtype=np.float64).ravel() for t in tables]),
        tab_error=np.array([t.max_error for t in tables], dtype=np.float64),
        ncoef=orders.pop(),
        M=widths.pop(),
    )


def unpack_tables(arrays, ncoef, M):
    """The :class:`EmbeddingTable` list of a part (sizes already checked by the C reader)."""
    out = []
    for k, (r, c, off) in enumerate(zip(arrays["tab_real"], arrays["tab_count"], arrays["tab_offset"])):
        n_fine, n_coarse, n_below = (int(v) for v in c)
        n = (n_below + n_fine + n_coarse) * ncoef * M
        coef = np.array(arrays["coef"][int(off) : int(off) + n]).reshape(n_below + n_fine + n_coarse, ncoef, M)
        err = float(arrays["tab_error"][k]) if "tab_error" in arrays else float("nan")
        out.append(EmbeddingTable(float(r[0]), float(r[3]), float(r[4]), n_fine, n_coarse, coef, err, n_below))
    return out


def require(arrays, name, where):
    """``arrays[name]`` or a :class:`ModelFormatError` naming it."""
    if name not in arrays:
        raise ModelFormatError(f"{where}: array '{name}' is missing")
    return arrays[name]
