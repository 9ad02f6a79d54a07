r"""se_e3_tebd (se_t_tebd): the three-body embedding with a stripped type embedding: model class,
reader, table range, tabulator and packing.

:math:`D_i = \big[\frac{1}{N^2}\sum_{j,k} e_{jk}\,G_s(e_{jk})\odot(1 + \mathrm{tt}_{t_j t_k} w_j w_k),\ E_{t_i}\big]`
over one mixed-type block of :math:`N` = ``sel`` slots: one table of the geometric net over the
angular variable :math:`e_{jk}` (the se_e3 table format) and the exact type-pair table ``tt`` as
the gate; the se_e3 kernel in gated mode (``src_c/dpc_se_t_tab.c``).
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..core.env_mat import smooth_switch
from ..core.errors import ModelFormatError, UnsupportedModelError
from ..core.networks import Network, network_forward
from ..tables import build_embedding_table, deepmd_se_t_bounds
from . import fields
from .base import EmbeddingSizes, PackedPart, check_min_nbor_dist, pack_tables, unpack_tables

TYPE_NAME = "se_e3_tebd"
ALIASES = ("se_e3_tebd", "se_t_tebd")
#: part kind code of a .dpc part (src_c/dpc_model_internal.h DPC_PART_SE_T_TEBD)
KIND_SE_T_TEBD = 5
KIND = KIND_SE_T_TEBD


@dataclass(frozen=True)
class DescriptorSeTTebd(EmbeddingSizes):
    r"""se_e3_tebd: se_e3 over one mixed-type block, gated by a type-pair table.

    For a center atom :math:`i` with :math:`N` = ``sel[0]`` slots (nearest first, padded), the
    normalised rows :math:`\tilde R_j = (R_j - \bar R_{t_i j})/\sigma_{t_i j}` of se_e2_a and their
    angular parts :math:`\tilde{\mathbf r}_j = \tilde R_j[1{:}4]`:

    .. math::

        e_{jk} = \tilde{\mathbf r}_j\cdot\tilde{\mathbf r}_k,\qquad
        H_{jk} = G_s(e_{jk}) \odot \big(1 + \mathrm{tt}_{q(j,k)}\, w_j w_k\big),\qquad
        D_i = \Big[\frac{1}{N^2}\sum_{j,k} e_{jk} H_{jk},\ E_{t_i}\Big]

    over every ordered pair :math:`(j, k)` of slots (:math:`j = k` included), with
    :math:`\mathrm{tt}_{a(n_t+1)+b} = G_t([E_a, E_b])` the stripped type net on the type
    embeddings of slot :math:`j` (first) and slot :math:`k` (second) — the center type does not
    enter — and :math:`w = \mathrm{sw}(r)` (``smooth``) or :math:`w = 1`.  The center's type
    embedding :math:`E_{t_i}` is appended when ``concat_output_tebd``.  Padding slots have
    :math:`R = 0`, so with ``davg`` = 0 (required by :func:`read`) :math:`\tilde{\mathbf r} = 0`
    and they add nothing, whatever type DeePMD-kit gives them.  Neighbors of an ``exclude_types``
    pair (center type, neighbor type) have :math:`\tilde{\mathbf r} = 0` (DeePMD-kit zeroes their
    rows): they add nothing either.

    Attributes
    ----------
    rcut, rcut_smth : float
    sel : tuple of int
        One entry: the slots of the mixed-type block.
    neuron : tuple of int
        Widths of both embedding nets; ``M = neuron[-1]``.
    tebd_dim : int
    env_protection : float
    davg, dstd : ndarray, shape (ntypes, nnei, 4)
    type_embedding : ndarray, shape (ntypes + 1, tebd_dim)
        :math:`E` with the zero padding row appended.
    embeddings : Network or None
        :math:`G_s` (scalar input); None in a compressed model.
    strip_net : Network or None
        :math:`G_t`; None in a compressed model.
    strip_table : ndarray or None, shape ((ntypes+1)**2, M)
        ``tt`` (compressed models; DeePMD-kit's ``type_embd_data``).
    concat_output_tebd, smooth : bool
    tables : EmbeddingTable or None
        The table of :math:`G_s` over :math:`e` (compressed models).
    exclude_types : frozenset of (int, int)
        Symmetrised excluded (center, neighbor) type pairs: their rows are zeroed.
    """

    rcut: float
    rcut_smth: float
    sel: Tuple[int, ...]
    neuron: Tuple[int, ...]
    tebd_dim: int
    env_protection: float
    davg: np.ndarray
    dstd: np.ndarray
    type_embedding: np.ndarray
    embeddings: Optional[Network]
    strip_net: Optional[Network] = None
    strip_table: Optional[np.ndarray] = None
    concat_output_tebd: bool = True
    smooth: bool = True
    activation: str = "tanh"
    resnet_dt: bool = False
    tables: Optional[object] = None
    exclude_types: frozenset = frozenset()

    type_name = TYPE_NAME
    mixed_types = True  # one block, all neighbor types, nearest first

    @property
    def ntypes(self):
        return self.davg.shape[0]

    @property
    def dim_out(self):
        return self.neuron[-1] + (self.tebd_dim if self.concat_output_tebd else 0)

    def pair_table(self):
        r"""``tt``: ``strip_table``, or the strip net on :math:`[E_a, E_b]` for every (a, b), row ``a (ntypes+1) + b``."""
        if self.strip_table is not None:
            return self.strip_table
        E = self.type_embedding
        n = E.shape[0]
        inputs = np.concatenate([np.repeat(E, n, axis=0), np.tile(E, (n, 1))], axis=1)
        return network_forward(self.strip_net, inputs)[0]

    def embedding_net(self, center=None, neighbor=None):
        """:math:`G_s` (one net for every type pair)."""
        return self.embeddings

    def embedding_table(self, center=None, neighbor=None):
        """The table of :math:`G_s` (compressed models)."""
        return self.tables


def read(node, ntypes):
    """Read an se_e3_tebd descriptor (DeePMD-kit's ``DescrptSeTTebd``).

    Accepted: ``tebd_input_mode`` "strip", ``smooth`` true or false, ``exclude_types``, one-hot
    type embedding (no ``use_econf_tebd``), ``davg`` = 0 (``set_davg_zero``).  Everything
    else raises :class:`~dpcompress.UnsupportedModelError` naming the key and its value.  The type
    embedding is evaluated here (a constant table).
    """
    where, src = node.where, node.source
    mode = node.raw("tebd_input_mode", "concat")
    if mode != "strip":
        raise UnsupportedModelError(
            f"{src}: se_e3_tebd with '{where}.tebd_input_mode' = {mode!r} is not supported: 'concat' feeds "
            "[e, type embeddings] into one net, whose input is then not a scalar and cannot be tabulated "
            "(only 'strip' is supported)"
        )
    rcut, rcut_smth, protection = fields.radial_settings(node)
    raw_sel = node.raw("sel")
    sel = (raw_sel,) if isinstance(raw_sel, int) and not isinstance(raw_sel, bool) else node.int_list("sel", lo=1, hi=fields.MAX_SEL)
    if len(sel) != 1 or not 1 <= sel[0] <= fields.MAX_SEL:
        raise ModelFormatError(f"{src}: '{where}.sel' should be one positive number (mixed types), found {raw_sel!r}")
    neuron = node.int_list("neuron", lo=1)
    if not neuron:
        raise ModelFormatError(f"{src}: '{where}.neuron' is empty")
    M = neuron[-1]
    tebd_dim = int(node.number("tebd_dim", positive=True))
    smooth = node.flag("smooth", True)
    davg, dstd = fields.statistics(node, ntypes, sel[0], 4)
    if np.any(davg != 0):
        # a padding slot would carry -davg/dstd into e_jk with a type that differs between DeePMD-kit's
        # backends (docs/dp-file-attention.md section 3); with davg = 0 it adds exactly nothing
        raise UnsupportedModelError(
            f"{src}: se_e3_tebd with a nonzero '{where}.@variables.davg' (set_davg_zero false) is not supported: "
            "padding slots would contribute a phantom term whose type DeePMD-kit's backends choose differently"
        )
    _, (geo,) = fields.network_list(node.node("embeddings"), (0,), ntypes)
    _, (strip,) = fields.network_list(node.node("embeddings_strip"), (0,), ntypes)
    for key, net, n_in in (("embeddings", geo, 1), ("embeddings_strip", strip, 2 * tebd_dim)):
        if net is None or net.in_dim != n_in or net.out_dim != M:
            got = "null" if net is None else f"{net.in_dim} -> {net.out_dim}"
            raise ModelFormatError(f"{src}: '{where}.{key}.networks[0]' maps {got}, expected {n_in} -> {M}")
    te = node.node("type_embedding")
    for n in (te, node):
        if n.raw("use_econf_tebd", False):
            raise UnsupportedModelError(
                f"{src}: '{n.where}.use_econf_tebd' = true is not supported (the electronic-configuration inputs "
                "are not in the model file)"
            )
    tnet = fields.read_network(te.node("embedding"))
    if tnet.in_dim != ntypes or tnet.out_dim != tebd_dim:
        raise ModelFormatError(
            f"{src}: '{te.where}.embedding' maps {tnet.in_dim} -> {tnet.out_dim}, expected {ntypes} (one-hot) -> {tebd_dim}"
        )
    # E_t = net(one-hot t) (the layer's residual rule included); the padding type has the zero embedding
    E = np.concatenate([network_forward(tnet, np.eye(ntypes))[0], np.zeros((1, tebd_dim))])
    return DescriptorSeTTebd(
        rcut=rcut,
        rcut_smth=rcut_smth,
        sel=sel,
        neuron=neuron,
        tebd_dim=tebd_dim,
        env_protection=protection,
        davg=davg,
        dstd=dstd,
        type_embedding=E,
        embeddings=geo,
        strip_net=strip,
        concat_output_tebd=node.flag("concat_output_tebd", True),
        smooth=smooth,
        activation=fields.activation(node, "activation_function"),
        resnet_dt=bool(node.raw("resnet_dt", False)),
        exclude_types=fields.type_pairs(node, "exclude_types", ntypes),
    )


def table_bounds(descriptor, min_nbor_dist):
    r"""Integer, symmetric ``(-U, U)`` of the one table: the range of :math:`e_{jk}` over the training set.

    :math:`|e_{jk}| \le \rho_t^2`, :math:`\rho_t = s_\text{max}/\min\sigma_t` (the smallest
    angular σ of center type :math:`t`; ``davg`` is 0), :math:`s = \mathrm{sw}(r)/r` at the
    training set's closest pair.  DeePMD-kit's rule for se_e3_tebd ("T_TEBD") takes the widest
    range over the center types, :math:`\max_t \lceil (s_\text{max}/\sigma_t)^2\rceil`
    (:func:`~dpcompress.tables.deepmd_se_t_bounds`, which also lets the radial σ enter); here
    :math:`U = \max(1, \lceil\max_t \rho_t^2\rceil, U_\text{DeePMD-kit})`, never narrower.
    """
    r = check_min_nbor_dist(min_nbor_dist)
    sw, _ = smooth_switch(np.array([r]), descriptor.rcut_smth, descriptor.rcut)
    s_max = float(sw[0]) / r
    std = np.abs(np.asarray(descriptor.dstd, dtype=np.float64)[:, :, 1:])
    rho = s_max / std.min(axis=(1, 2))
    ud = max(hi for _, hi in deepmd_se_t_bounds(descriptor.dstd, descriptor.rcut_smth, descriptor.rcut, r))
    u = max(1, int(math.ceil(float(np.max(rho * rho)))), ud)
    return -u, u


def tabulate(desc, min_nbor_dist, grid):
    r"""The table of :math:`G_s` on the symmetric three-segment grid, and ``tt`` exact.

    Fine stride over :math:`[-U, U)`, coarse stride on both sides up to :math:`\pm eU`
    (:func:`table_bounds`); both strides ten times the requested ones, as DeePMD-kit does for
    se_e3 and se_e3_tebd.  The strip net only ever sees type-embedding pairs, so it is replaced
    by its exact outputs ``tt`` (DeePMD-kit's ``type_embd_data``).
    """
    lo, hi = table_bounds(desc, min_nbor_dist)
    grid = dict(grid, stride0=10.0 * grid["stride0"], stride1=10.0 * grid["stride1"], extrapolate_below=True)
    table = build_embedding_table(desc.embeddings, lo, hi, **grid)
    return dataclasses.replace(desc, embeddings=None, strip_net=None, strip_table=desc.pair_table(), tables=table)


def gate_of(desc):
    """Per (center type, neighbor type): the neighbor type (the gate row's index), -1 for ``exclude_types`` pairs."""
    nt = desc.ntypes
    return np.array([[-1 if (c, n) in desc.exclude_types else n for n in range(nt)] for c in range(nt)], dtype=np.int64)


def pack(desc, pair_exclude_types):
    """The ``.dpc`` part: one block, one table, the pair gate ``tt`` and the type embedding."""
    nt = desc.ntypes
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
        block_mode=np.zeros((nt, 1), dtype=np.int8),  # pair exclusions are per neighbor type: gate_of -1
        table_of=np.zeros((1, 1), dtype=np.int64),
        gate=gate,
        gate_of=gate_of(desc),
        type_embedding=np.ascontiguousarray(desc.type_embedding[:nt], dtype=np.float64),
        **packed,
    )
    if not desc.smooth:
        # its presence selects the unswitched gate (1 + tt instead of 1 + tt sw_j sw_k); the value is unused
        arrays["gate_pad"] = np.full(nt, nt * (nt + 1) + nt, dtype=np.int64)
    ints = dict(kind=KIND, nblocks=1, nnei=desc.nnei, ntables=1, ncoef=ncoef, M=M, axis_neuron=0, mixed=1,
                concat=int(desc.concat_output_tebd), tebd_dim=desc.tebd_dim, dim_out=desc.dim_out,
                n_gate_rows=gate.shape[0])
    settings = dict(neuron=list(desc.neuron), activation=desc.activation, resnet_dt=bool(desc.resnet_dt),
                    smooth=bool(desc.smooth), exclude_types=sorted([int(a), int(b)] for a, b in desc.exclude_types))
    return PackedPart(ints, (desc.rcut, desc.rcut_smth, desc.env_protection), arrays, settings)


def unpack(ints, real, arrays, settings):
    """The compressed descriptor of a ``.dpc`` part."""
    nnei = int(arrays["sel_offsets"][1])
    (table,) = unpack_tables(arrays, int(ints["ncoef"]), int(ints["M"]))
    tebd = int(ints["tebd_dim"])
    E = np.concatenate([np.asarray(arrays["type_embedding"], dtype=np.float64), np.zeros((1, tebd))])
    return DescriptorSeTTebd(
        rcut=float(real[0]),
        rcut_smth=float(real[1]),
        sel=(nnei,),
        neuron=tuple(settings["neuron"]),
        tebd_dim=tebd,
        env_protection=float(real[2]),
        davg=np.repeat(np.asarray(arrays["avg"], dtype=np.float64), nnei, axis=1),
        dstd=np.repeat(np.asarray(arrays["std"], dtype=np.float64), nnei, axis=1),
        type_embedding=E,
        embeddings=None,
        strip_net=None,
        strip_table=np.array(arrays["gate"]),
        concat_output_tebd=bool(ints["concat"]),
        smooth="gate_pad" not in arrays,
        activation=settings.get("activation", "tanh"),
        resnet_dt=bool(settings.get("resnet_dt", False)),
        tables=table,
        exclude_types=frozenset((int(c), int(n)) for c, n in zip(*np.nonzero(np.asarray(arrays["gate_of"]) < 0))),
    )
