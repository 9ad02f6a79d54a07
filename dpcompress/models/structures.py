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


@dataclass(frozen=True)
class DescriptorSeA:
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

    @property
    def is_compressed(self):
        return self.tables is not None

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


#: descriptor ``type_name`` -> data class (used by the ``.dpc`` reader)
DESCRIPTOR_CLASSES = {"se_e2_a": DescriptorSeA, "hybrid": DescriptorHybrid}
