r"""se_e2_a ("smooth edition, two-body embedding, angular"): the model class, its reader, table
ranges, tabulator and ``.dpc`` packing.

For a center atom :math:`i` of type :math:`t_i` with neighbor slots :math:`j`:

.. math::

    \tilde R_{ij} = (R_{ij} - \bar R_{t_i j}) / \sigma_{t_i j},\qquad
    R_{ij} = \frac{s(r)}{r+p}\Big(1, \frac{\mathbf r_{ij}}{r+p}\Big),\qquad
    T_i = \frac1N \sum_j \tilde R_{ij}^\top \otimes G(\tilde R_{ij,0}),\qquad
    D_i = T_i^\top T_i[:, :M_<]

Padding slots have :math:`R = 0`, so they contribute :math:`G(-\bar R/\sigma)\,(-\bar R/\sigma)`
to the radial row.  Compressed, each embedding net :math:`G` is a table; the fused kernel is
``src_c/dpc_se_a_tab.c``.
"""

import dataclasses
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..core.errors import ModelFormatError
from ..tables import build_embedding_table, center_type_bounds, union_bounds
from . import fields
from .base import (
    KIND_SE_A,
    EmbeddingSizes,
    PackedPart,
    block_modes,
    block_statistics,
    check_min_nbor_dist,
    exclusions_from_modes,
    expand_statistics,
    pack_tables,
    unpack_tables,
)

TYPE_NAME = "se_e2_a"
#: DeePMD-kit's spellings
ALIASES = ("se_a", "se_e2_a")
KIND = KIND_SE_A


@dataclass(frozen=True)
class DescriptorSeA(EmbeddingSizes):
    r"""The se_e2_a descriptor (math in the module docstring).

    Attributes
    ----------
    rcut, rcut_smth : float
        Cutoff and start of the smooth switch, Å.
    sel : tuple of int
        Slots per neighbor type; ``nnei = sum(sel)``.
    neuron : tuple of int
        Embedding widths; ``M = neuron[-1]``.
    axis_neuron : int
        :math:`M_<`.
    type_one_side : bool
        Embedding nets depend on the neighbor type only.
    exclude_types : frozenset of (int, int)
        Symmetrised excluded (center, neighbor) type pairs: their rows are zeroed.
    env_protection : float
        :math:`p` above.
    davg, dstd : ndarray, shape (ntypes, nnei, 4)
        Normalisation statistics per center type and slot.
    embeddings : tuple or None
        ``embeddings[center][neighbor]`` (``type_one_side`` False) or ``embeddings[neighbor]``
        (True): a :class:`~dpcompress.core.networks.Network` or None.  None when compressed.
    tables : tuple or None
        Same indexing, :class:`~dpcompress.tables.EmbeddingTable` objects (None when uncompressed).
    """

    rcut: float
    rcut_smth: float
    sel: Tuple[int, ...]
    neuron: Tuple[int, ...]
    axis_neuron: int
    type_one_side: bool
    exclude_types: frozenset
    env_protection: float
    davg: np.ndarray
    dstd: np.ndarray
    embeddings: Optional[tuple]
    activation: str = "tanh"
    resnet_dt: bool = False
    tables: Optional[tuple] = None

    type_name = TYPE_NAME
    mixed_types = False  # one neighbor block per type

    @property
    def dim_out(self):
        return self.neuron[-1] * self.axis_neuron

    def embedding_net(self, center, neighbor):
        """The embedding net used for this (center, neighbor) type pair."""
        return self.embeddings[neighbor] if self.type_one_side else self.embeddings[center][neighbor]

    def embedding_table(self, center, neighbor):
        """The table of this (center, neighbor) type pair (compressed models)."""
        return self.tables[neighbor] if self.type_one_side else self.tables[center][neighbor]


def read(node, ntypes):
    """An se_e2_a descriptor from its node of DeePMD-kit's tree."""
    rcut, rcut_smth, protection = fields.radial_settings(node)
    sel = fields.per_type_sel(node, ntypes)
    neuron = node.int_list("neuron", lo=1)
    axis = int(node.number("axis_neuron", positive=True))
    if not neuron or axis > neuron[-1]:
        raise ModelFormatError(f"{node.source}: '{node.where}.axis_neuron' = {axis} exceeds the embedding width {neuron}")
    tos = node.flag("type_one_side", False)
    davg, dstd = fields.statistics(node, ntypes, sum(sel), 4)
    return DescriptorSeA(
        rcut=rcut,
        rcut_smth=rcut_smth,
        sel=sel,
        neuron=neuron,
        axis_neuron=axis,
        type_one_side=tos,
        exclude_types=fields.type_pairs(node, "exclude_types", ntypes),
        env_protection=protection,
        davg=davg,
        dstd=dstd,
        embeddings=fields.pair_embeddings(node, ntypes, sel, tos, neuron[-1]),
        activation=fields.activation(node, "activation_function"),
        resnet_dt=bool(node.raw("resnet_dt", False)),
    )


def table_bounds(descriptor, min_nbor_dist):
    """Integer ``(lower, upper)`` of every embedding table, DeePMD-kit's rule (also se_e2_r's).

    Indexed like ``descriptor.embeddings``: ``[center][neighbor]`` when ``type_one_side`` is
    False (table (c, n) takes center c's range), ``[neighbor]`` when True (table n takes the min
    of the lowers and the max of the uppers over every center type, excluded or not: never
    narrower than DeePMD-kit's table, see :mod:`dpcompress.tables.bounds`).  ``None`` where the
    embedding net is None.
    """
    r = check_min_nbor_dist(min_nbor_dist)
    per_center = center_type_bounds(descriptor.davg, descriptor.dstd, descriptor.rcut_smth, descriptor.rcut, r)
    nt = descriptor.ntypes
    emb = descriptor.embeddings
    if not descriptor.type_one_side:
        return tuple(tuple(None if emb[c][n] is None else per_center[c] for n in range(nt)) for c in range(nt))
    out = []
    for n in range(nt):
        if emb[n] is None:
            out.append(None)
            continue
        # every center type, exclusions included: an exclusion-aware range was narrower than
        # DeePMD-kit's (whose exclusion test never matches) and extrapolated close contacts
        out.append(union_bounds(per_center))
    return tuple(out)


def _build(net, bounds, grid):
    return None if net is None else build_embedding_table(net, bounds[0], bounds[1], **grid)


def tabulate(desc, min_nbor_dist, grid):
    """The compressed copy of ``desc``: one table per embedding net (also se_e2_r's)."""
    bounds = table_bounds(desc, min_nbor_dist)
    nt = desc.ntypes
    if desc.type_one_side:
        tables = tuple(_build(desc.embeddings[n], bounds[n], grid) if desc.sel[n] else None for n in range(nt))
    else:
        tables = tuple(
            tuple(_build(desc.embeddings[c][n], bounds[c][n], grid) if desc.sel[n] else None for n in range(nt))
            for c in range(nt)
        )
    return dataclasses.replace(desc, embeddings=None, tables=tables)


def pack_per_type(desc, pair_exclude_types, kind, n_rows_axis):
    """The part arrays of a per-type-block descriptor (se_e2_a, and se_e2_r with ``n_rows_axis`` 0)."""
    nt = desc.ntypes
    tables, table_of, index_of = [], -np.ones((nt, nt), dtype=np.int64), {}
    for t in range(nt):
        for b in range(nt):
            if desc.sel[b] == 0:
                continue
            tab = desc.embedding_table(t, b)
            if id(tab) not in index_of:  # type_one_side: centers share the neighbor type's table
                index_of[id(tab)] = len(tables)
                tables.append(tab)
            table_of[t, b] = index_of[id(tab)]
    packed = pack_tables(tables)
    avg, std = block_statistics(desc.davg, desc.dstd, desc.sel)
    M = packed.pop("M")
    ncoef = packed.pop("ncoef")
    A = n_rows_axis
    arrays = dict(
        sel_offsets=np.concatenate([[0], np.cumsum(desc.sel)]).astype(np.int64),
        avg=avg,
        std=std,
        block_mode=block_modes(nt, desc.exclude_types, pair_exclude_types),
        table_of=table_of,
        **packed,
    )
    ints = dict(kind=kind, nblocks=nt, nnei=desc.nnei, ntables=len(tables), ncoef=ncoef, M=M, axis_neuron=A,
                mixed=0, concat=0, tebd_dim=0, dim_out=desc.dim_out, n_gate_rows=0)
    settings = dict(neuron=list(desc.neuron), activation=desc.activation, resnet_dt=bool(desc.resnet_dt),
                    type_one_side=bool(desc.type_one_side))
    return PackedPart(ints, (desc.rcut, desc.rcut_smth, desc.env_protection), arrays, settings)


def pack(desc, pair_exclude_types):
    """The ``.dpc`` part of a compressed se_e2_a descriptor."""
    return pack_per_type(desc, pair_exclude_types, KIND, desc.axis_neuron)


def unpack_per_type(ints, real, arrays, settings, cls, ncomp, **extra):
    """A per-type-block descriptor back from its part (the inverse of :func:`pack_per_type`)."""
    sel = tuple(int(v) for v in np.diff(arrays["sel_offsets"]))
    nt = len(sel)
    tables = unpack_tables(arrays, int(ints["ncoef"]), int(ints["M"]))
    table_of = arrays["table_of"]
    tos = bool(settings["type_one_side"])

    def tab(t, b):
        k = int(table_of[t, b])
        return None if k < 0 else tables[k]

    if tos:
        nested = tuple(next((tab(t, b) for t in range(nt) if table_of[t, b] >= 0), None) for b in range(nt))
    else:
        nested = tuple(tuple(tab(t, b) for b in range(nt)) for t in range(nt))
    davg, dstd = expand_statistics(arrays["avg"], arrays["std"], sel, ncomp)
    return cls(
        rcut=float(real[0]),
        rcut_smth=float(real[1]),
        sel=sel,
        neuron=tuple(settings["neuron"]),
        type_one_side=tos,
        exclude_types=exclusions_from_modes(arrays["block_mode"], 1),
        env_protection=float(real[2]),
        davg=davg,
        dstd=dstd,
        embeddings=None,
        activation=settings.get("activation", "tanh"),
        resnet_dt=bool(settings.get("resnet_dt", False)),
        tables=nested,
        **extra,
    )


def unpack(ints, real, arrays, settings):
    """The compressed descriptor of a ``.dpc`` part."""
    return unpack_per_type(ints, real, arrays, settings, DescriptorSeA, 4, axis_neuron=int(ints["axis_neuron"]))
