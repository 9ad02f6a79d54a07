r"""se_atten_v2 and se_atten (DPA-1 v1), both with stripped type embedding and without attention
layers: model class, reader, table range, tabulator and packing.

One mixed-type block of neighbors, one table of the geometric net, and the exact outputs of the
stripped type-embedding net per (center, neighbor) type pair as the gate table: the se_e2_a kernel
in gated mode (``src_c/dpc_se_a_tab.c``).  The two versions differ in one switch: se_atten_v2
multiplies the type gate by the smooth switch sw(r) (DeePMD-kit's ``smooth_type_embedding``
true), v1 does not (false), so that in v1 padding slots are gated too.
"""

import dataclasses
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..core.errors import ModelFormatError, UnsupportedModelError
from ..core.networks import Network, network_forward
from ..tables import build_embedding_table, center_type_bounds
from . import dpa1_attention, fields
from .base import KIND_DPA1, KIND_SE_ATTEN, EmbeddingSizes, PackedPart, check_min_nbor_dist, pack_tables, unpack_tables

TYPE_NAME = "se_atten_v2"
ALIASES = ("se_atten_v2", "se_atten", "dpa1")
KIND = KIND_SE_ATTEN
#: the part kind of DPA-1 with attention layers (the arrays of :data:`KIND` plus ``att_*``)
KIND_ATTENTION = KIND_DPA1


@dataclass(frozen=True)
class DescriptorSeAttenV2(EmbeddingSizes):
    r"""se_atten_v2 (DPA-1 with stripped type embedding) without attention layers.

    One mixed-type block of :math:`N` = ``sel[0]`` slots, nearest first.  With the
    normalised rows :math:`\tilde R_j` of se_e2_a (statistics per center type),
    :math:`x_j = \tilde R_{j,0}`, the geometric net :math:`G_s`, the type
    embedding :math:`E` (row ``ntypes`` = padding, all zero) and the strip net
    :math:`G_t`:

    .. math::

        \tau_j = S_{q(i,j)}\,w_j,\quad w_j = \mathrm{sw}(r_j)\ (\text{smooth})\ \text{or}\ 1,\qquad
        S_{c(n_t+1)+t} = G_t([E_t, E_c])\ \ (\text{or } S_t = G_t(E_t)\text{ with type\_one\_side}),

        T_i = \frac1N \sum_j \tilde R_j^\top \otimes \big(G_s(x_j)\odot(1 + \tau_j)\big),\qquad
        D_i = \big[\,T_i^\top T_i[:, :M_<],\ E_{t_i}\,\big]

    (the type embedding of the center is appended when ``concat_output_tebd``; it
    does not depend on coordinates).  Padding slots have :math:`R = 0`, the
    padding type (row ``ntypes`` of :math:`E`) and, smooth, :math:`\mathrm{sw} = 0`:
    they add :math:`G_s(x_\text{pad})\,\tilde R_\text{pad}` (smooth) or
    :math:`G_s(x_\text{pad})(1 + S_{q(i,\text{pad})})\,\tilde R_\text{pad}` (not smooth:
    zero, since v1 is read only with ``davg`` = 0, see :func:`read`).
    Neighbors of an ``exclude_types`` pair have :math:`\tilde R = 0`: they add nothing.
    ``sw`` is the smooth switch itself (DeePMD-kit's ``smooth_type_embedding``, always on
    for se_atten_v2, off by default for se_atten v1), not :math:`\mathrm{sw}/r`.

    Attributes
    ----------
    rcut, rcut_smth : float
    sel : tuple of int
        One entry: the slots of the mixed-type block.
    neuron : tuple of int
        Widths of both embedding nets; ``M = neuron[-1]``.
    axis_neuron : int
        :math:`M_<`.
    tebd_dim : int
        Width of the type embedding.
    type_one_side : bool
        The strip net sees the neighbor's type embedding only (else neighbor, center).
    exclude_types : frozenset of (int, int)
    env_protection : float
    davg, dstd : ndarray, shape (ntypes, nnei, 4)
    type_embedding : ndarray, shape (ntypes + 1, tebd_dim)
        :math:`E`, evaluated from DeePMD-kit's type-embedding net on one-hot inputs,
        with the zero padding row appended.
    embeddings : Network or None
        :math:`G_s` (scalar input); None in a compressed model.
    strip_net : Network or None
        :math:`G_t`; None in a compressed model (its outputs live in ``strip_table``).
    strip_table : ndarray or None, shape ((ntypes+1)**2 or ntypes+1, M)
        :math:`S` precomputed for every type pair (compressed models; None when
        uncompressed, see :meth:`gate_table`).
    concat_output_tebd : bool
    smooth_type_embedding : bool
        :math:`w_j = \mathrm{sw}(r_j)` (true, se_atten_v2) or 1 (false, se_atten v1).
    tables : EmbeddingTable or None
        The table of :math:`G_s` (compressed models).
    attention : AttentionStack or None
        DPA-1's attention layers (``attn_layer`` > 0), applied to the rows
        :math:`G_s(x_j)\odot(1+\tau_j)` before the sum over slots
        (:mod:`dpcompress.descriptors.dpa1_attention`); None without.
    """

    rcut: float
    rcut_smth: float
    sel: Tuple[int, ...]
    neuron: Tuple[int, ...]
    axis_neuron: int
    tebd_dim: int
    type_one_side: bool
    exclude_types: frozenset
    env_protection: float
    davg: np.ndarray
    dstd: np.ndarray
    type_embedding: np.ndarray
    embeddings: Optional[Network]
    strip_net: Optional[Network] = None
    strip_table: Optional[np.ndarray] = None
    concat_output_tebd: bool = True
    activation: str = "tanh"
    resnet_dt: bool = False
    tables: Optional[object] = None
    smooth_type_embedding: bool = True
    attention: Optional[dpa1_attention.AttentionStack] = None

    type_name = TYPE_NAME
    mixed_types = True  # one block, all neighbor types, nearest first

    @property
    def ntypes(self):
        return self.davg.shape[0]

    @property
    def display_name(self):
        """What users call it: "se_atten_v2", or "se_atten" (DPA-1 v1) without the smooth type gate."""
        if self.attention is not None:
            return "dpa1"
        return TYPE_NAME if self.smooth_type_embedding else "se_atten"

    @property
    def dim_out(self):
        return self.neuron[-1] * self.axis_neuron + (self.tebd_dim if self.concat_output_tebd else 0)

    def strip_inputs(self):
        r"""Inputs of the strip net for every row of :math:`S`.

        ``type_one_side``: :math:`E_t` for ``t = 0..ntypes`` (the last is padding);
        else row ``c*(ntypes+1) + t`` is :math:`[E_t, E_c]` (neighbor first, as DeePMD-kit).
        """
        E = self.type_embedding
        if self.type_one_side:
            return E
        n = E.shape[0]
        return np.concatenate([np.tile(E[None, :, :], (n, 1, 1)), np.tile(E[:, None, :], (1, n, 1))], axis=-1).reshape(
            n * n, 2 * E.shape[1]
        )

    def gate_table(self):
        """:math:`S`: ``strip_table``, or the strip net evaluated on :meth:`strip_inputs`."""
        if self.strip_table is not None:
            return self.strip_table
        return network_forward(self.strip_net, self.strip_inputs())[0]

    def padding_gate_rows(self):
        """Row of :math:`S` of the padding slots of each center type (used when not smooth)."""
        nt = self.ntypes
        return np.array([nt if self.type_one_side else c * (nt + 1) + nt for c in range(nt)], dtype=np.int64)

    def gate_rows(self, center_types, neighbor_types):
        """Row of :math:`S` for each slot; ``neighbor_types`` -1 (padding) maps to the padding type."""
        nbr = np.where(neighbor_types < 0, self.ntypes, neighbor_types)
        if self.type_one_side:
            return nbr
        return np.asarray(center_types)[:, None] * (self.ntypes + 1) + nbr

    def embedding_net(self, center=None, neighbor=None):
        """:math:`G_s` (one net for every type pair)."""
        return self.embeddings

    def embedding_table(self, center=None, neighbor=None):
        """The table of :math:`G_s` (compressed models)."""
        return self.tables


def read(node, ntypes):
    """Read se_atten_v2 or DPA-1 / se_atten (v1) without attention layers.

    Accepted: any ``attn_layer`` (layers > 0 are read by
    :func:`~.dpa1_attention.read_attention`, which says what it refuses), stripped type embedding (``tebd_input_mode``
    "strip", implied by se_atten_v2) with or without ``smooth_type_embedding``
    (always true in se_atten_v2; false needs ``davg`` = 0, v1's ``set_davg_zero``), ``lmax`` 1,
    one-hot type embedding (no ``use_econf_tebd``).  Everything else raises
    :class:`~dpcompress.UnsupportedModelError` saying why.  The type
    embedding is evaluated here (it is a constant table).
    """
    dtype = node.raw("type")
    where, src = node.where, node.source
    attn_layer = node.raw("attn_layer", 2)
    if isinstance(attn_layer, bool) or not isinstance(attn_layer, int) or attn_layer < 0:
        raise ModelFormatError(f"{src}: '{where}.attn_layer' should be a non-negative integer, found {attn_layer!r}")
    # se_atten_v2 is strip by definition; DPA-1's default is concat
    mode = node.raw("tebd_input_mode", "strip" if dtype == "se_atten_v2" else "concat")
    if mode != "strip":
        raise UnsupportedModelError(
            f"{src}: {dtype} with tebd_input_mode = {mode!r} is not supported: 'concat' feeds [s, type embedding] "
            "into one net, whose input is then not a scalar and cannot be tabulated (only 'strip' is supported)"
        )
    # DeePMD-kit's default (DPA-1 v1) is true; se_atten_v2 has no such key and always smooths
    smooth = True if dtype == "se_atten_v2" else node.flag("smooth_type_embedding", True)
    if int(node.number("lmax", 1)) != 1:
        raise UnsupportedModelError(f"{src}: '{where}.lmax' = {node.raw('lmax')} is not supported (only 1)")
    rcut, rcut_smth, protection = fields.radial_settings(node)
    raw_sel = node.raw("sel")
    sel = (raw_sel,) if isinstance(raw_sel, int) and not isinstance(raw_sel, bool) else node.int_list("sel", lo=1, hi=fields.MAX_SEL)
    if len(sel) != 1 or not 1 <= sel[0] <= fields.MAX_SEL:
        raise ModelFormatError(f"{src}: '{where}.sel' should be one positive number (mixed types), found {raw_sel!r}")
    neuron = node.int_list("neuron", lo=1)
    if not neuron:
        raise ModelFormatError(f"{src}: '{where}.neuron' is empty")
    M = neuron[-1]
    axis = int(node.number("axis_neuron", positive=True))
    if axis > M:
        raise ModelFormatError(f"{src}: '{where}.axis_neuron' = {axis} exceeds the embedding width {neuron}")
    tebd_dim = int(node.number("tebd_dim", positive=True))
    tos = node.flag("type_one_side", False)
    davg, dstd = fields.statistics(node, ntypes, sel[0], 4)
    if not smooth and np.any(davg != 0):
        # DeePMD-kit (3.2) gives a padding slot the type-pair gate row of the first atom of the frame's
        # extended list (its -1 index is clamped to atom 0), which depends on the atom order; the padding
        # term G_s(x_pad)(1 + S) R_pad vanishes, and that choice with it, only when davg is zero
        raise UnsupportedModelError(
            f"{src}: '{where}.smooth_type_embedding' = false with a nonzero davg (set_davg_zero false) is not "
            "supported: DeePMD-kit gates the padding slots by the type of the frame's first atom, which no per-pair "
            "table reproduces; only set_davg_zero true (the se_atten default) is"
        )
    _, (geo,) = fields.network_list(node.node("embeddings"), (0,), ntypes)
    _, (strip,) = fields.network_list(node.node("embeddings_strip"), (0,), ntypes)
    n_strip = tebd_dim if tos else 2 * tebd_dim
    for key, net, n_in in (("embeddings", geo, 1), ("embeddings_strip", strip, n_strip)):
        if net is None or net.in_dim != n_in or net.out_dim != M:
            got = "null" if net is None else f"{net.in_dim} -> {net.out_dim}"
            raise ModelFormatError(f"{src}: '{where}.{key}.networks[0]' maps {got}, expected {n_in} -> {M}")
    te = node.node("type_embedding")
    if te.raw("use_econf_tebd", False) or node.raw("use_econf_tebd", False):
        raise UnsupportedModelError(
            f"{src}: '{te.where}.use_econf_tebd' = true is not supported (the electronic-configuration inputs are not in the model file)"
        )
    tnet = fields.read_network(te.node("embedding"))
    if tnet.in_dim != ntypes or tnet.out_dim != tebd_dim:
        raise ModelFormatError(
            f"{src}: '{te.where}.embedding' maps {tnet.in_dim} -> {tnet.out_dim}, expected {ntypes} (one-hot) -> {tebd_dim}"
        )
    # E_t = net(one-hot t); the padding type (-1 -> row ntypes) has the zero embedding
    E = np.concatenate([network_forward(tnet, np.eye(ntypes))[0], np.zeros((1, tebd_dim))])
    exclude = fields.type_pairs(node, "exclude_types", ntypes)
    attention = None
    if attn_layer > 0:
        dpa1_attention.refuse_unsupported(node, davg)
        attention = dpa1_attention.read_attention(node, attn_layer, sel[0], M, smooth)
    return DescriptorSeAttenV2(
        rcut=rcut,
        rcut_smth=rcut_smth,
        sel=sel,
        neuron=neuron,
        axis_neuron=axis,
        tebd_dim=tebd_dim,
        type_one_side=tos,
        exclude_types=exclude,
        env_protection=protection,
        davg=davg,
        dstd=dstd,
        type_embedding=E,
        embeddings=geo,
        strip_net=strip,
        concat_output_tebd=node.flag("concat_output_tebd", True),
        activation=fields.activation(node, "activation_function"),
        resnet_dt=bool(node.raw("resnet_dt", False)),
        smooth_type_embedding=smooth,
        attention=attention,
    )


def table_bounds(descriptor, min_nbor_dist):
    r"""Integer ``(lower, upper)`` of the one geometric table of se_atten_v2.

    DeePMD-kit's rule for "Atten" descriptors: the per-center-type bounds of
    :func:`center_type_bounds` (all four components, as for se_e2_a), then
    :math:`L = \min_t L_t`, :math:`U = \max_t U_t`, since one net serves every
    center type.
    """
    r = check_min_nbor_dist(min_nbor_dist)
    per_center = center_type_bounds(descriptor.davg, descriptor.dstd, descriptor.rcut_smth, descriptor.rcut, r)
    return min(lo for lo, _ in per_center), max(hi for _, hi in per_center)


def tabulate(desc, min_nbor_dist, grid):
    r"""Tables of se_atten_v2: one table of the geometric net, and the strip net's outputs.

    The geometric net :math:`G_s` gets one table on :math:`[L, U)` with
    :func:`table_bounds`.  The strip net
    only ever sees the type-embedding rows of the (center, neighbor) type pairs,
    so it is replaced by its exact outputs :math:`S` (``strip_table``, DeePMD-kit's
    ``type_embd_data``) — no approximation there.
    """
    lo, hi = table_bounds(desc, min_nbor_dist)
    table = build_embedding_table(desc.embeddings, lo, hi, **grid)
    return dataclasses.replace(desc, embeddings=None, strip_net=None, strip_table=desc.gate_table(), tables=table)


def gate_of(desc):
    """Row of the gate table per (center type, neighbor type); -1 for the descriptor's excluded pairs."""
    nt = desc.ntypes
    out = np.empty((nt, nt), dtype=np.int64)
    for c in range(nt):
        for n in range(nt):
            excluded = (c, n) in desc.exclude_types
            out[c, n] = -1 if excluded else (n if desc.type_one_side else c * (nt + 1) + n)
    return out


def pack(desc, pair_exclude_types):
    """The ``.dpc`` part of a compressed se_atten_v2 descriptor: one block, one table, the gate table."""
    nt = desc.ntypes
    if desc.attention is not None and np.any(desc.davg != 0):
        raise UnsupportedModelError("DPA-1 with attention layers needs davg = 0 in a .dpc file")
    avg, std = desc.davg[:, :1, :], desc.dstd[:, :1, :]
    if not (np.all(desc.davg == avg) and np.all(desc.dstd == std)):
        raise UnsupportedModelError(
            "davg/dstd differ between neighbor slots; compressed evaluation needs per-center-type statistics "
            "(as DeePMD-kit computes them)"
        )
    packed = pack_tables([desc.tables])
    M, ncoef = packed.pop("M"), packed.pop("ncoef")
    gate = np.ascontiguousarray(desc.strip_table, dtype=np.float64)
    arrays = dict(
        sel_offsets=np.array([0, desc.nnei], dtype=np.int64),
        avg=np.ascontiguousarray(avg),
        std=np.ascontiguousarray(std),
        block_mode=np.zeros((nt, 1), dtype=np.int8),  # pair exclusions are per neighbor: gate rows -1
        table_of=np.zeros((nt, 1), dtype=np.int64),
        gate=gate,
        gate_of=gate_of(desc),
        type_embedding=np.ascontiguousarray(desc.type_embedding[:nt], dtype=np.float64),
        **packed,
    )
    if desc.attention is not None:
        arrays.update(dpa1_attention.pack_arrays(desc.attention))
    elif not desc.smooth_type_embedding:
        # its presence selects the kernels' unswitched gate (readers that do not know it refuse the file)
        arrays["gate_pad"] = desc.padding_gate_rows()
    ints = dict(kind=KIND if desc.attention is None else KIND_ATTENTION, nblocks=1, nnei=desc.nnei, ntables=1, ncoef=ncoef, M=M, axis_neuron=desc.axis_neuron,
                mixed=1, concat=int(desc.concat_output_tebd), tebd_dim=desc.tebd_dim, dim_out=desc.dim_out,
                n_gate_rows=gate.shape[0])
    settings = dict(neuron=list(desc.neuron), activation=desc.activation, resnet_dt=bool(desc.resnet_dt),
                    type_one_side=bool(desc.type_one_side), smooth_type_embedding=bool(desc.smooth_type_embedding),
                    exclude_types=sorted([int(a), int(b)] for a, b in desc.exclude_types))
    return PackedPart(ints, (desc.rcut, desc.rcut_smth, desc.env_protection), arrays, settings)


def unpack(ints, real, arrays, settings):
    """The compressed descriptor of a ``.dpc`` part."""
    nnei = int(arrays["sel_offsets"][1])
    (table,) = unpack_tables(arrays, int(ints["ncoef"]), int(ints["M"]))
    tebd = int(ints["tebd_dim"])
    E = np.concatenate([np.asarray(arrays["type_embedding"], dtype=np.float64), np.zeros((1, tebd))])
    return DescriptorSeAttenV2(
        rcut=float(real[0]),
        rcut_smth=float(real[1]),
        sel=(nnei,),
        neuron=tuple(settings["neuron"]),
        axis_neuron=int(ints["axis_neuron"]),
        tebd_dim=tebd,
        type_one_side=bool(settings["type_one_side"]),
        exclude_types=frozenset(tuple(p) for p in settings.get("exclude_types", [])),
        env_protection=float(real[2]),
        davg=np.repeat(np.asarray(arrays["avg"], dtype=np.float64), nnei, axis=1),
        dstd=np.repeat(np.asarray(arrays["std"], dtype=np.float64), nnei, axis=1),
        type_embedding=E,
        embeddings=None,
        strip_net=None,
        strip_table=np.array(arrays["gate"]),
        concat_output_tebd=bool(ints["concat"]),
        activation=settings.get("activation", "tanh"),
        resnet_dt=bool(settings.get("resnet_dt", False)),
        tables=table,
        smooth_type_embedding=("gate_pad" not in arrays) if "att_int" not in arrays else bool(arrays["att_int"][4]),
        attention=dpa1_attention.unpack_arrays(arrays) if "att_int" in arrays else None,
    )
