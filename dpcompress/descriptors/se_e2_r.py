r"""se_e2_r ("smooth edition, two-body embedding, radial"): model class, reader, tables, packing.

se_e2_r has se_e2_a's per-type blocks, statistics layout (one component), table ranges and
tabulator; only the contraction differs.  The fused kernel is se_e2_a's in radial mode
(``src_c/dpc_se_a_tab.c`` with one row).
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..core.errors import ModelFormatError
from . import fields, se_e2_a
from .base import KIND_SE_R, EmbeddingSizes

TYPE_NAME = "se_e2_r"
ALIASES = ("se_r", "se_e2_r")
KIND = KIND_SE_R

#: same ranges and tables as se_e2_a
table_bounds = se_e2_a.table_bounds
tabulate = se_e2_a.tabulate


@dataclass(frozen=True)
class DescriptorSeR(EmbeddingSizes):
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
        Same indexing, :class:`~dpcompress.tables.EmbeddingTable`
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

    type_name = TYPE_NAME
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


def read(node, ntypes):
    """Read an se_e2_r (se_r) descriptor.

    Its nets are laid out as se_e2_a's: ``ndim`` 1 (``type_one_side``, the only
    form DeePMD-kit's PyTorch backend writes) or 2 (flat index ``c + n*ntypes``).
    """
    rcut, rcut_smth, protection = fields.radial_settings(node)
    sel = fields.per_type_sel(node, ntypes)
    neuron = node.int_list("neuron", lo=1)
    if not neuron:
        raise ModelFormatError(f"{node.source}: '{node.where}.neuron' is empty")
    tos = node.flag("type_one_side", True)
    davg, dstd = fields.statistics(node, ntypes, sum(sel), 1)
    embeddings = fields.pair_embeddings(node, ntypes, sel, tos, neuron[-1])
    return DescriptorSeR(
        rcut=rcut,
        rcut_smth=rcut_smth,
        sel=sel,
        neuron=neuron,
        type_one_side=tos,
        exclude_types=fields.type_pairs(node, "exclude_types", ntypes),
        env_protection=protection,
        davg=davg,
        dstd=dstd,
        embeddings=embeddings,
        activation=fields.activation(node, "activation_function"),
        resnet_dt=bool(node.raw("resnet_dt", False)),
    )


def pack(desc, pair_exclude_types):
    """The ``.dpc`` part of a compressed se_e2_r descriptor (radial mode of the se_e2_a kernels)."""
    return se_e2_a.pack_per_type(desc, pair_exclude_types, KIND, 0)


def unpack(ints, real, arrays, settings):
    """The compressed descriptor of a ``.dpc`` part."""
    return se_e2_a.unpack_per_type(ints, real, arrays, settings, DescriptorSeR, 1)
