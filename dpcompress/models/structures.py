"""Plain data classes for a trained Deep Potential energy model.

They hold arrays (float64) and settings only; they know nothing about files
(see :mod:`dpcompress.models.deepmd_reader`) or evaluation (see
:mod:`dpcompress.reference`).  Type indices follow the model's ``type_map``.
"""

from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class Layer:
    r"""One dense layer, DeePMD-kit's rule.

    .. math::

        y = d \odot \varphi(x W + b) + \rho(x),\qquad
        \rho(x) = \begin{cases} x & n_\text{out} = n_\text{in} \\
                               [x, x] & n_\text{out} = 2 n_\text{in} \\
                               0 & \text{otherwise or without resnet}\end{cases}

    with :math:`d` the timestep vector ``idt`` (``resnet_dt``) or 1.

    Attributes
    ----------
    w : ndarray, shape (n_in, n_out)
    b : ndarray, shape (n_out,), or None
    idt : ndarray, shape (n_out,), or None
    activation : str
        Canonical name (see :mod:`dpcompress.models.activations`).
    resnet : bool
        Residual connection requested; it exists only when the widths allow.
    """

    w: np.ndarray
    b: Optional[np.ndarray]
    idt: Optional[np.ndarray]
    activation: str
    resnet: bool

    @property
    def n_in(self):
        return self.w.shape[0]

    @property
    def n_out(self):
        return self.w.shape[1]

    @property
    def residual(self):
        """``'identity'``, ``'double'`` or ``None``: the skip connection actually applied."""
        if not self.resnet:
            return None
        if self.n_out == self.n_in:
            return "identity"
        if self.n_out == 2 * self.n_in:
            return "double"
        return None


@dataclass(frozen=True)
class Network:
    """A chain of :class:`Layer` (an embedding net or a fitting net)."""

    layers: Tuple[Layer, ...]

    @property
    def in_dim(self):
        return self.layers[0].n_in

    @property
    def out_dim(self):
        return self.layers[-1].n_out


class _EmbeddingDescriptor:
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


@dataclass(frozen=True)
class DescriptorSeA(_EmbeddingDescriptor):
    r"""The se_e2_a ("smooth edition, two-body embedding, angular") descriptor.

    For a center atom :math:`i` of type :math:`t_i` with neighbor slots :math:`j`:

    .. math::

        \tilde R_{ij} = (R_{ij} - \bar R_{t_i j}) / \sigma_{t_i j},\qquad
        R_{ij} = \frac{s(r)}{r+p}\Big(1, \frac{\mathbf r_{ij}}{r+p}\Big),\qquad
        T_i = \frac1N \sum_j \tilde R_{ij}^\top \otimes G(\tilde R_{ij,0}),\qquad
        D_i = T_i^\top T_i[:, :M_<]

    Padding slots have :math:`R = 0`, so they contribute
    :math:`G(-\bar R/\sigma)\,(-\bar R/\sigma)` to the radial row.

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
        ``embeddings[center][neighbor]`` (``type_one_side`` False) or
        ``embeddings[neighbor]`` (True): a :class:`Network` or None.
        None in a compressed model.
    tables : tuple or None
        Same indexing, :class:`~dpcompress.compress.tables.EmbeddingTable`
        objects: the compressed embedding nets (None when uncompressed).
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
    embeddings: tuple
    activation: str = "tanh"
    resnet_dt: bool = False
    tables: Optional[tuple] = None

    type_name = "se_e2_a"
    mixed_types = False  # one neighbor block per type

    @property
    def dim_out(self):
        return self.neuron[-1] * self.axis_neuron

    def embedding_net(self, center, neighbor):
        """The embedding :class:`Network` used for this (center, neighbor) type pair."""
        if self.type_one_side:
            return self.embeddings[neighbor]
        return self.embeddings[center][neighbor]

    def embedding_table(self, center, neighbor):
        """The :class:`EmbeddingTable` of this (center, neighbor) type pair (compressed models)."""
        if self.type_one_side:
            return self.tables[neighbor]
        return self.tables[center][neighbor]

    def check_compressed(self, ntypes):
        """Why this compressed descriptor is inconsistent, or None (used when reading ``.dpc``)."""
        return check_per_type_tables(self, ntypes, shape=(ntypes, self.nnei, 4))


def check_per_type_tables(desc, ntypes, shape):
    """Shared consistency checks of descriptors with per-type tables (se_e2_a, se_e2_r)."""
    if len(desc.sel) != ntypes or min(desc.sel) < 0 or not 0 < sum(desc.sel) < 2**20:
        return f"sel {desc.sel} does not fit {ntypes} types"
    for name in ("davg", "dstd"):
        arr = getattr(desc, name)
        if arr.shape != shape:
            return f"{name} has shape {arr.shape}, expected {shape}"
    if np.any(desc.dstd == 0):
        return "dstd contains zeros"
    M = desc.neuron[-1]
    for c in range(ntypes):
        for n in range(ntypes):
            if desc.sel[n] == 0:
                continue
            tab = desc.tables[n] if desc.type_one_side else desc.tables[c][n]
            if tab is None:
                return f"no table for center type {c}, neighbor type {n}"
            if tab.n_channels != M:
                return f"a table has {tab.n_channels} channels, the net {M}"
    return None


@dataclass(frozen=True)
class EnergyFitting:
    r"""Per-type fitting nets of an energy model.

    :math:`e_i = F_{t_i}(D_i) + b_{t_i}`; atoms of ``exclude_types`` get :math:`e_i = 0`.

    Attributes
    ----------
    networks : tuple of Network
        One per atom type, or a single one shared by all types.
    bias_atom_e : ndarray, shape (ntypes,)
    exclude_types : frozenset of int
    """

    networks: Tuple[Network, ...]
    bias_atom_e: np.ndarray
    exclude_types: frozenset = field(default_factory=frozenset)

    def network(self, atom_type):
        return self.networks[0] if len(self.networks) == 1 else self.networks[atom_type]


@dataclass(frozen=True)
class DPModel:
    r"""A standard Deep Potential energy model.

    :math:`E = \sum_i e_i`, :math:`e_i = F_{t_i}(D_i) + b_{t_i} + \beta_{t_i}`
    with :math:`\beta` the ``out_bias``; atoms of ``atom_exclude_types`` contribute 0,
    neighbor pairs of ``pair_exclude_types`` are removed from the neighbor list.

    Attributes
    ----------
    type_map : tuple of str
    descriptor : DescriptorSeA
    fitting : EnergyFitting
    out_bias : ndarray, shape (ntypes,)
    pair_exclude_types : frozenset of (int, int)
        Symmetrised.
    atom_exclude_types : frozenset of int
    min_nbor_dist : float or None
        Smallest pair distance of the training set, when the file stores it.
    source : str
        File the model was read from.
    compression : dict or None
        Provenance of a compressed model (source checksum, parameters, version,
        table errors); None when uncompressed.
    """

    type_map: Tuple[str, ...]
    descriptor: DescriptorSeA
    fitting: EnergyFitting
    out_bias: np.ndarray
    pair_exclude_types: frozenset = field(default_factory=frozenset)
    atom_exclude_types: frozenset = field(default_factory=frozenset)
    min_nbor_dist: Optional[float] = None
    source: str = ""
    compression: Optional[dict] = None

    @property
    def ntypes(self):
        return len(self.type_map)

    @property
    def rcut(self):
        return self.descriptor.rcut

    @property
    def is_compressed(self):
        return self.descriptor.is_compressed

    def save(self, path):
        """Write this compressed model to a ``.dpc`` file (see :mod:`dpcompress.models.compressed_file`)."""
        from .compressed_file import save_compressed

        save_compressed(self, path)


@dataclass(frozen=True)
class DescriptorHybrid:
    r"""Several descriptors side by side: :math:`D_i = [D^{(1)}_i, D^{(2)}_i, \dots]`.

    Each part keeps its own ``rcut``, ``sel`` and neighbor list (DeePMD-kit
    builds one list for the largest cutoff and cuts it per part; nearest-first
    selection makes that the same).

    Attributes
    ----------
    parts : tuple
        The sub-descriptors, in the order their outputs are concatenated.
    """

    parts: tuple

    type_name = "hybrid"

    @property
    def rcut(self):
        return max(p.rcut for p in self.parts)

    @property
    def ntypes(self):
        return self.parts[0].ntypes

    @property
    def dim_out(self):
        return sum(p.dim_out for p in self.parts)

    @property
    def sel(self):
        return tuple(tuple(p.sel) for p in self.parts)

    @property
    def is_compressed(self):
        return all(p.is_compressed for p in self.parts)

    def check_compressed(self, ntypes):
        for k, p in enumerate(self.parts):
            problem = p.check_compressed(ntypes) if hasattr(p, "check_compressed") else None
            if problem:
                return f"part {k} ({p.type_name}): {problem}"
        return None


@dataclass(frozen=True)
class DescriptorSeT(_EmbeddingDescriptor):
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
        Same nesting, :class:`~dpcompress.compress.tables.EmbeddingTable`
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

    type_name = "se_e3"
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

    def check_compressed(self, ntypes):
        """Why this compressed descriptor is inconsistent, or None (used when reading ``.dpc``)."""
        if len(self.sel) != ntypes or min(self.sel) < 0 or not 0 < sum(self.sel) < 2**20:
            return f"sel {self.sel} does not fit {ntypes} types"
        for name in ("davg", "dstd"):
            arr = getattr(self, name)
            if arr.shape != (ntypes, self.nnei, 4):
                return f"{name} has shape {arr.shape}, expected {(ntypes, self.nnei, 4)}"
        if np.any(self.dstd == 0):
            return "dstd contains zeros"
        if not isinstance(self.tables, tuple) or len(self.tables) != ntypes:
            return "tables should be nested [ntypes][ntypes]"
        for a in range(ntypes):
            for b in range(a, ntypes):
                if self.sel[a] == 0 or self.sel[b] == 0:
                    continue
                tab = self.embedding_table(a, b)
                if tab is None:
                    return f"no table for neighbor types ({a}, {b})"
                if tab.n_channels != self.n_channels:
                    return f"a table has {tab.n_channels} channels, the net {self.n_channels}"
        return None


#: descriptor ``type_name`` -> data class (used by the ``.dpc`` reader)
DESCRIPTOR_CLASSES = {"se_e2_a": DescriptorSeA, "hybrid": DescriptorHybrid}
DESCRIPTOR_CLASSES["se_e3"] = DescriptorSeT


@dataclass(frozen=True)
class DescriptorSeR(_EmbeddingDescriptor):
    r"""The se_e2_r ("smooth edition, two-body embedding, radial") descriptor.

    For a center atom :math:`i` of type :math:`t_i` with neighbor slots :math:`j`
    (blocks per neighbor type :math:`b(j)`, :math:`N` = ``nnei`` slots in all):

    .. math::

        x_{ij} = \frac{s(r_{ij})/(r_{ij}+p) - \bar R_{t_i j}}{\sigma_{t_i j}},\qquad
        D_i = \frac15\,\frac1N \sum_j G^{(t_i, b(j))}(x_{ij}) \in \mathbb R^M

    (the factor 1/5 is DeePMD-kit's hard-coded ``res_rescale``).  Every slot
    counts: padding has :math:`R = 0`, so it adds :math:`G(-\bar R/\sigma)`;
    a real neighbor of an ``exclude_types`` pair has its normalised row zeroed
    and adds :math:`G(0)`.

    Attributes
    ----------
    rcut, rcut_smth : float
        Cutoff and start of the smooth switch, Å.
    sel : tuple of int
        Slots per neighbor type; ``nnei = sum(sel)``.
    neuron : tuple of int
        Embedding widths; ``M = neuron[-1]`` is the descriptor width.
    type_one_side : bool
        Embedding nets depend on the neighbor type only (DeePMD-kit's PyTorch
        and numpy backends know only this form; TensorFlow also wrote False).
    exclude_types : frozenset of (int, int)
        Symmetrised excluded (center, neighbor) type pairs: their rows are zeroed.
    env_protection : float
        :math:`p` above.
    davg, dstd : ndarray, shape (ntypes, nnei, 1)
        Normalisation statistics per center type and slot (radial only).
    embeddings : tuple or None
        ``embeddings[neighbor]`` (``type_one_side``) or ``embeddings[center][neighbor]``:
        a :class:`Network` or None.  None in a compressed model.
    tables : tuple or None
        Same indexing, :class:`~dpcompress.compress.tables.EmbeddingTable`
        objects (None when uncompressed).
    """

    rcut: float
    rcut_smth: float
    sel: Tuple[int, ...]
    neuron: Tuple[int, ...]
    type_one_side: bool
    exclude_types: frozenset
    env_protection: float
    davg: np.ndarray
    dstd: np.ndarray
    embeddings: Optional[tuple]
    activation: str = "tanh"
    resnet_dt: bool = False
    tables: Optional[tuple] = None

    type_name = "se_e2_r"
    mixed_types = False  # one neighbor block per type
    #: DeePMD-kit's fixed output scale (``res_rescale``)
    RESCALE = 0.2

    @property
    def dim_out(self):
        return self.neuron[-1]

    def embedding_net(self, center, neighbor):
        """The embedding :class:`Network` used for this (center, neighbor) type pair."""
        return self.embeddings[neighbor] if self.type_one_side else self.embeddings[center][neighbor]

    def embedding_table(self, center, neighbor):
        """The :class:`EmbeddingTable` of this (center, neighbor) type pair (compressed models)."""
        return self.tables[neighbor] if self.type_one_side else self.tables[center][neighbor]

    def check_compressed(self, ntypes):
        """Why this compressed descriptor is inconsistent, or None (used when reading ``.dpc``)."""
        return check_per_type_tables(self, ntypes, shape=(ntypes, self.nnei, 1))


@dataclass(frozen=True)
class DescriptorSeAttenV2(_EmbeddingDescriptor):
    r"""se_atten_v2 (DPA-1 with stripped type embedding) without attention layers.

    One mixed-type block of :math:`N` = ``sel[0]`` slots, nearest first.  With the
    normalised rows :math:`\tilde R_j` of se_e2_a (statistics per center type),
    :math:`x_j = \tilde R_{j,0}`, the geometric net :math:`G_s`, the type
    embedding :math:`E` (row ``ntypes`` = padding, all zero) and the strip net
    :math:`G_t`:

    .. math::

        \tau_j = S_{q(i,j)}\,\mathrm{sw}(r_j),\qquad
        S_{c(n_t+1)+t} = G_t([E_t, E_c])\ \ (\text{or } S_t = G_t(E_t)\text{ with type\_one\_side}),

        T_i = \frac1N \sum_j \tilde R_j^\top \otimes \big(G_s(x_j)\odot(1 + \tau_j)\big),\qquad
        D_i = \big[\,T_i^\top T_i[:, :M_<],\ E_{t_i}\,\big]

    (the type embedding of the center is appended when ``concat_output_tebd``; it
    does not depend on coordinates).  Padding slots have :math:`R = 0`,
    :math:`\mathrm{sw} = 0`: they add :math:`G_s(x_\text{pad})\,\tilde R_\text{pad}`.
    Neighbors of an ``exclude_types`` pair have :math:`\tilde R = 0` and
    :math:`\mathrm{sw} = 0`: they add nothing.  ``sw`` is the smooth switch itself
    (DeePMD-kit's ``smooth_type_embedding``, always on for se_atten_v2), not
    :math:`\mathrm{sw}/r`.

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
    tables : EmbeddingTable or None
        The table of :math:`G_s` (compressed models).
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

    type_name = "se_atten_v2"
    mixed_types = True  # one block, all neighbor types, nearest first

    @property
    def ntypes(self):
        return self.davg.shape[0]

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
        from ..reference.networks import network_forward

        return network_forward(self.strip_net, self.strip_inputs())[0]

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

    def check_compressed(self, ntypes):
        """Why this compressed descriptor is inconsistent, or None (used when reading ``.dpc``)."""
        if len(self.sel) != 1 or not 0 < self.sel[0] < 2**20:
            return f"sel {self.sel} should be one positive block size"
        for name in ("davg", "dstd"):
            arr = getattr(self, name)
            if arr.shape != (ntypes, self.nnei, 4):
                return f"{name} has shape {arr.shape}, expected {(ntypes, self.nnei, 4)}"
        if np.any(self.dstd == 0):
            return "dstd contains zeros"
        if self.type_embedding.shape != (ntypes + 1, self.tebd_dim):
            return f"type_embedding has shape {self.type_embedding.shape}, expected {(ntypes + 1, self.tebd_dim)}"
        rows = ntypes + 1 if self.type_one_side else (ntypes + 1) ** 2
        M = self.n_channels
        if self.strip_table is None or self.strip_table.shape != (rows, M):
            got = None if self.strip_table is None else self.strip_table.shape
            return f"strip_table has shape {got}, expected {(rows, M)}"
        if not 1 <= self.axis_neuron <= M:
            return f"axis_neuron {self.axis_neuron} outside [1, {M}]"
        if getattr(self.tables, "n_channels", None) != M:
            return f"the table has {getattr(self.tables, 'n_channels', None)} channels, the net {M}"
        return None
DESCRIPTOR_CLASSES.update(se_e2_r=DescriptorSeR, se_atten_v2=DescriptorSeAttenV2)
