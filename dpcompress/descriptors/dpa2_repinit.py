r"""DPA-2's repinit block with ``tebd_input_mode`` "concat" (DeePMD-kit's default): data class and reader.

The strip repinit is an se_atten_v2 block (:mod:`dpcompress.descriptors.se_atten_v2`); the math of this
one: :mod:`dpcompress.evaluators.exact.repinit_concat`.
"""

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from ..core.errors import ModelFormatError
from ..core.networks import network_forward
from . import fields
from .dpa2_repformer import int_at

@dataclass(frozen=True)
class RepinitConcat:
    r"""A repinit block with ``tebd_input_mode`` "concat": one net on :math:`[s_j, E_{t_j}, E_{t_i}]`.

    .. math::

        G_j = \mathcal N([\tilde R_{j,0}, E_{t_j}, E_{t_i}])\ \ (\text{type\_one\_side: } [\tilde R_{j,0}, E_{t_j}]),
        \qquad T = \frac1N\sum_j \tilde R_j^\top\otimes G_j,\qquad D = \mathrm{vec}(T^\top T_{:, :A})

    (no smooth gate: DeePMD-kit applies the switch to the strip net's output only).  Empty slots have
    :math:`\tilde R = 0` (davg 0) and add nothing whatever type they are given.
    """

    rcut: float
    rcut_smth: float
    sel: Tuple[int, ...]
    neuron: Tuple[int, ...]
    axis_neuron: int
    tebd_dim: int
    type_one_side: bool
    env_protection: float
    davg: np.ndarray
    dstd: np.ndarray
    type_embedding: np.ndarray
    net: object
    exclude_types: frozenset = frozenset()

    tebd_input_mode = "concat"

    @property
    def nnei(self):
        return int(sum(self.sel))

    @property
    def dim_out(self):
        return self.neuron[-1] * self.axis_neuron

    @property
    def embeddings(self):
        return self.net


def read_repinit_concat(node, ntypes):
    """The concat repinit: one net of input width 1 + (1 or 2) tebd_dim, no strip net."""
    src, where = node.source, node.where
    rcut, rcut_smth, protection = fields.radial_settings(node)
    nnei = int_at(node, "nsel", 1, fields.MAX_SEL)
    neuron = node.int_list("neuron", lo=1)
    if not neuron:
        raise ModelFormatError(f"{src}: '{where}.neuron' is empty")
    axis = int_at(node, "axis_neuron", 1, neuron[-1])
    tebd_dim = int_at(node, "tebd_dim")
    tos = node.flag("type_one_side", False)
    davg, dstd = fields.statistics(node, ntypes, nnei, 4)
    _, (net,) = fields.network_list(node.node("embeddings"), (0,), ntypes)
    n_in = 1 + tebd_dim * (1 if tos else 2)
    if net is None or net.in_dim != n_in or net.out_dim != neuron[-1]:
        got = "null" if net is None else f"{net.in_dim} -> {net.out_dim}"
        raise ModelFormatError(f"{src}: '{where}.embeddings.networks[0]' maps {got}, expected {n_in} -> "
                               f"{neuron[-1]} (concat: [s, type embeddings])")
    te = node.node("type_embedding")
    tnet = fields.read_network(te.node("embedding"))
    if tnet.in_dim != ntypes or tnet.out_dim != tebd_dim:
        raise ModelFormatError(f"{src}: '{te.where}.embedding' maps {tnet.in_dim} -> {tnet.out_dim}, expected "
                               f"{ntypes} (one-hot) -> {tebd_dim}")
    # E_t = net(one-hot t) (the Layer rule, residual included); the padding row is zero
    E = np.concatenate([network_forward(tnet, np.eye(ntypes))[0], np.zeros((1, tebd_dim))])
    return RepinitConcat(rcut=rcut, rcut_smth=rcut_smth, sel=(nnei,), neuron=neuron, axis_neuron=axis,
                         tebd_dim=tebd_dim, type_one_side=tos, env_protection=protection, davg=davg, dstd=dstd,
                         type_embedding=E, net=net,
                         exclude_types=fields.type_pairs(node, "exclude_types", ntypes))
