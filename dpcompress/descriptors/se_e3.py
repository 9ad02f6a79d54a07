r"""se_e3 (se_t, "three-body embedding"): model class, reader, table ranges, tabulator, packing.

:math:`D_i[m] = \sum_{a\le b} \frac{1}{N_a N_b} \sum_{j\in a, k\in b} e_{jk} G^{(a,b)}_m(e_{jk})`,
:math:`e_{jk} = \tilde{\mathbf r}_j\cdot\tilde{\mathbf r}_k`: one net and one table per unordered pair
of neighbor types, on a symmetric three-segment grid; fused kernel ``src_c/dpc_se_t_tab.c``.
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..core.env_mat import smooth_switch
from ..core.errors import ModelFormatError, UnsupportedModelError
from ..tables import build_embedding_table, deepmd_se_t_bounds
from . import fields
from .base import (
    KIND_SE_T,
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

TYPE_NAME = "se_e3"
ALIASES = ("se_e3", "se_t", "se_at", "se_a_3be")
KIND = KIND_SE_T


@dataclass(frozen=True)
class DescriptorSeT(EmbeddingSizes):
    r"""The se_e3 (se_t, "three-body embedding") descriptor.

    For a center atom :math:`i` of type :math:`t_i`, with the normalised
    environment rows :math:`\tilde R_j` of its neighbor slots (as se_e2_a) and
    :math:`\tilde{\mathbf r}_j = \tilde R_j[1{:}4]` their angular parts:

    .. math::

        D_i[m] = \sum_{a \le b} \frac{1}{N_a N_b}
            \sum_{j \in a,\, k \in b} e_{jk}\, G^{(a,b)}_m(e_{jk}),\qquad
        e_{jk} = \tilde{\mathbf r}_j \cdot \tilde{\mathbf r}_k

    over the neighbor-type blocks :math:`a \le b` (:math:`N_a` = ``sel[a]``;
    within a block :math:`a = b` every ordered pair :math:`(j, k)`, :math:`j = k`
    included).  One embedding net per unordered pair of *neighbor* types, shared
    by all center types.  Padding slots have :math:`R = 0`, hence
    :math:`\tilde{\mathbf r} = -\bar R[1{:}4]/\sigma[1{:}4]`, which is 0 for
    DeePMD-kit's statistics (the angular average is 0): they contribute nothing.
    Rows of ``exclude_types`` pairs are zeroed (:math:`e = 0`: no contribution).

    Attributes
    ----------
    rcut, rcut_smth : float
        Cutoff and start of the smooth switch, Å.
    sel : tuple of int
        Slots per neighbor type; ``nnei = sum(sel)``.
    neuron : tuple of int
        Embedding widths; ``M = neuron[-1]`` is also the descriptor width.
    exclude_types : frozenset of (int, int)
        Symmetrised excluded (center, neighbor) type pairs: their rows are zeroed.
    env_protection : float
    davg, dstd : ndarray, shape (ntypes, nnei, 4)
        Normalisation statistics per center type and slot.
    embeddings : tuple or None
        ``embeddings[a][b]`` for neighbor types ``a <= b``: a :class:`Network`
        (DeePMD-kit's flat index ``a + b*ntypes``); None for ``a > b`` and in a
        compressed model.
    tables : tuple or None
        Same nesting, :class:`~dpcompress.tables.EmbeddingTable`
        objects (None when uncompressed); a whole row may be None.
    """

    rcut: float
    rcut_smth: float
    sel: Tuple[int, ...]
    neuron: Tuple[int, ...]
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
        return self.neuron[-1]

    @staticmethod
    def _pair(nested, a, b):
        a, b = min(a, b), max(a, b)
        row = nested[a] if nested is not None else None
        return None if row is None else row[b]

    def embedding_net(self, a, b):
        """The embedding :class:`Network` of the neighbor-type pair (a, b), in either order."""
        return self._pair(self.embeddings, a, b)

    def embedding_table(self, a, b):
        """The :class:`EmbeddingTable` of the neighbor-type pair (a, b) (compressed models)."""
        return self._pair(self.tables, a, b)


def read(node, ntypes):
    """Read an se_e3 (se_t) descriptor.

    Its ``embeddings`` collection (``ndim`` 2) holds ``ntypes**2`` nets at
    DeePMD-kit's flat index ``a + b*ntypes``; only the neighbor-type pairs
    ``a <= b`` are used (the others are stored but never evaluated, and may be null).
    """
    rcut, rcut_smth, protection = fields.radial_settings(node)
    sel = fields.per_type_sel(node, ntypes)
    neuron = node.int_list("neuron", lo=1)
    if not neuron:
        raise ModelFormatError(f"{node.source}: '{node.where}.neuron' is empty")
    davg, dstd = fields.statistics(node, ntypes, sum(sel), 4)
    ndim, nets = fields.network_list(node.node("embeddings"), (2,), ntypes)
    M = neuron[-1]
    embeddings = []
    for a in range(ntypes):
        row = []
        for b in range(ntypes):
            net = nets[a + b * ntypes] if a <= b else None
            where = f"{node.where}.embeddings.networks[{a + b * ntypes}]"
            if net is None and a <= b and sel[a] and sel[b]:
                raise ModelFormatError(f"{node.source}: '{where}' (neighbor types {a}, {b}) is null")
            if net is not None and (net.in_dim != 1 or net.out_dim != M):
                raise ModelFormatError(f"{node.source}: '{where}' maps {net.in_dim} -> {net.out_dim}, expected 1 -> {M}")
            row.append(net)
        embeddings.append(tuple(row))
    return DescriptorSeT(
        rcut=rcut,
        rcut_smth=rcut_smth,
        sel=sel,
        neuron=neuron,
        exclude_types=fields.type_pairs(node, "exclude_types", ntypes),
        env_protection=protection,
        davg=davg,
        dstd=dstd,
        embeddings=tuple(embeddings),
        activation=fields.activation(node, "activation_function"),
        resnet_dt=bool(node.raw("resnet_dt", False)),
    )


def table_bounds(descriptor, min_nbor_dist):
    r"""Integer, symmetric ``(-U, U)`` of every se_e3 table: the range of :math:`e_{jk}` over the training set.

    The table of the neighbor-type pair :math:`(a, b)` sees
    :math:`e_{jk} = \tilde{\mathbf r}_j\cdot\tilde{\mathbf r}_k` with
    :math:`\tilde{\mathbf r}_j = (s_j\hat{\mathbf r}_j - \bar{\mathbf R}_j)/\boldsymbol\sigma_j`
    (component-wise), :math:`s = \mathrm{sw}(r)/r \le s_\text{max}` at the training
    set's closest pair, so :math:`|e_{jk}| \le \rho_a\rho_b` with, per center type
    :math:`t` and block :math:`a` (over its slots and the three angular components),

    .. math::

        \rho_{t,a} = \frac{s_\text{max}}{\min \sigma} + \max\Big|\frac{\bar{\mathbf R}}{\boldsymbol\sigma}\Big|,\qquad
        U_{ab} = \Big\lceil \max_t \rho_{t,a}\,\rho_{t,b} \Big\rceil .

    With DeePMD-kit's statistics (angular average 0, one angular σ per center
    type) this is its own ``ceil((s_max/σ_a)^2)`` (``_get_env_mat_range``, type
    "T"), except that DeePMD-kit takes the center type :math:`t = a` only,
    although the net of :math:`(a, b)` serves every center type: its table is
    then too narrow for the other centers, whose values land in the coarse
    region and, through DeePMD-kit's interval-width off-by-one, in a wrongly
    built interval.  Here the max runs over every center type for which neither
    block :math:`a` nor :math:`b` is zeroed by ``exclude_types`` (all of them
    when that leaves none), and :math:`U_{ab}` is never below DeePMD-kit's
    (:func:`~dpcompress.tables.deepmd_se_t_bounds` of center type :math:`a`).
    (DeePMD-kit's PyTorch code also lets the radial σ enter; it is larger than
    the angular one in practice, so it never decides the bound.)

    Parameters
    ----------
    descriptor : DescriptorSeT
    min_nbor_dist : float
        Smallest pair distance of the training data, Å, > 0.

    Returns
    -------
    tuple
        ``bounds[a][b] = (-U_ab, U_ab)`` for ``a <= b``, None for ``a > b``.
    """
    r = check_min_nbor_dist(min_nbor_dist)
    sw, _ = smooth_switch(np.array([r]), descriptor.rcut_smth, descriptor.rcut)
    s_max = float(sw[0]) / r
    nt = descriptor.ntypes
    offsets = np.concatenate([[0], np.cumsum(descriptor.sel)])
    rho = np.zeros((descriptor.davg.shape[0], nt))
    silent = np.ones((descriptor.davg.shape[0], nt), dtype=bool)  # padding rows are zero
    for b in range(nt):
        if descriptor.sel[b] == 0:
            continue
        avg = np.asarray(descriptor.davg, dtype=np.float64)[:, offsets[b] : offsets[b + 1], 1:]
        std = np.asarray(descriptor.dstd, dtype=np.float64)[:, offsets[b] : offsets[b + 1], 1:]
        rho[:, b] = s_max / np.abs(std).min(axis=(1, 2)) + np.linalg.norm(avg / std, axis=2).max(axis=1)
        silent[:, b] = np.all(avg == 0, axis=(1, 2))
    excl = descriptor.exclude_types
    deepmd = deepmd_se_t_bounds(descriptor.dstd, descriptor.rcut_smth, descriptor.rcut, r)
    out = []
    for a in range(nt):
        row = []
        for b in range(nt):
            if a > b:
                row.append(None)
                continue
            # a block zeroed by exclude_types (with zero padding rows) gives e = 0 for center t
            off = [t for t in range(rho.shape[0]) if any((t, x) in excl and silent[t, x] for x in (a, b))]
            centers = [t for t in range(rho.shape[0]) if t not in off] or list(range(rho.shape[0]))
            # at least 1: a table needs a fine region (s_max = 0 when min_nbor_dist >= rcut);
            # at least DeePMD-kit's range for this table (center type a's), whatever the exclusions
            u = max(1, int(math.ceil(max(rho[t, a] * rho[t, b] for t in centers))), deepmd[a][1])
            row.append((-u, u))
        out.append(tuple(row))
    return tuple(out)


def _build(net, bounds, grid):
    return None if net is None else build_embedding_table(net, bounds[0], bounds[1], **grid)


def tabulate(desc, min_nbor_dist, grid):
    r"""Tables of se_e3: one per neighbor-type pair a <= b, on a symmetric three-segment grid.

    The grid covers :math:`[-eU, eU]`: fine stride over :math:`[-U, U)`, coarse
    stride on both sides (:func:`~dpcompress.tables.build_embedding_table`
    with ``extrapolate_below``), :math:`U` from
    :func:`table_bounds`.  Both strides are ten
    times the requested ones, as DeePMD-kit does for se_e3 (step 0.01 gives 0.1
    and 1.0): :math:`e_{jk}` spans a range some ten times wider than se_e2_a's input.
    """
    bounds = table_bounds(desc, min_nbor_dist)
    grid = dict(grid, stride0=10.0 * grid["stride0"], stride1=10.0 * grid["stride1"], extrapolate_below=True)
    nt = desc.ntypes
    tables = []
    for a in range(nt):
        row = tuple(
            _build(desc.embedding_net(a, b), bounds[a][b], grid) if a <= b and desc.sel[a] and desc.sel[b] else None
            for b in range(nt)
        )
        # an all-None row is stored as None: the .dpc writer infers the nesting from the first non-None entry
        tables.append(row if any(t is not None for t in row) else None)
    return dataclasses.replace(desc, embeddings=None, tables=tuple(tables))


def pack(desc, pair_exclude_types):
    """The ``.dpc`` part of a compressed se_e3 descriptor: one table per neighbor-type pair a <= b."""
    nt = desc.ntypes
    tables, table_of = [], -np.ones((nt, nt), dtype=np.int64)
    for a in range(nt):
        for b in range(a, nt):
            if desc.sel[a] == 0 or desc.sel[b] == 0:
                continue
            tab = desc.embedding_table(a, b)
            if tab is None:
                raise UnsupportedModelError(f"se_e3: no table for neighbor types ({a}, {b})")
            table_of[a, b] = len(tables)
            tables.append(tab)
    if not tables:
        raise UnsupportedModelError("se_e3: no neighbor-type pair has slots on both sides")
    packed = pack_tables(tables)
    M, ncoef = packed.pop("M"), packed.pop("ncoef")
    if M != desc.n_channels:
        raise UnsupportedModelError("all tables of a model must share the order and the channel count")
    avg, std = block_statistics(desc.davg, desc.dstd, desc.sel)
    arrays = dict(
        sel_offsets=np.concatenate([[0], np.cumsum(desc.sel)]).astype(np.int64),
        avg=avg,
        std=std,
        block_mode=block_modes(nt, desc.exclude_types, pair_exclude_types),
        table_of=table_of,
        **packed,
    )
    ints = dict(kind=KIND, nblocks=nt, nnei=desc.nnei, ntables=len(tables), ncoef=ncoef, M=M, axis_neuron=0,
                mixed=0, concat=0, tebd_dim=0, dim_out=desc.dim_out, n_gate_rows=0)
    settings = dict(neuron=list(desc.neuron), activation=desc.activation, resnet_dt=bool(desc.resnet_dt))
    return PackedPart(ints, (desc.rcut, desc.rcut_smth, desc.env_protection), arrays, settings)


def unpack(ints, real, arrays, settings):
    """The compressed descriptor of a ``.dpc`` part."""
    sel = tuple(int(v) for v in np.diff(arrays["sel_offsets"]))
    nt = len(sel)
    tables = unpack_tables(arrays, int(ints["ncoef"]), int(ints["M"]))
    rows = []
    for a in range(nt):
        row = tuple(tables[int(k)] if k >= 0 else None for k in arrays["table_of"][a])
        rows.append(row if any(t is not None for t in row) else None)
    davg, dstd = expand_statistics(arrays["avg"], arrays["std"], sel, 4)
    return DescriptorSeT(
        rcut=float(real[0]),
        rcut_smth=float(real[1]),
        sel=sel,
        neuron=tuple(settings["neuron"]),
        exclude_types=exclusions_from_modes(arrays["block_mode"], 1),
        env_protection=float(real[2]),
        davg=davg,
        dstd=dstd,
        embeddings=None,
        activation=settings.get("activation", "tanh"),
        resnet_dt=bool(settings.get("resnet_dt", False)),
        tables=tuple(rows),
    )
