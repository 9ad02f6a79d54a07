r"""DPA-2 (DeePMD-kit's ``dpa2`` descriptor): model classes and the reader of DeePMD-kit's tree.

DPA-2 is a repinit block (se_atten_v2 without attention layers, read here as a
:class:`~dpcompress.descriptors.se_atten_v2.DescriptorSeAttenV2` in strip mode, or as a
:class:`~dpcompress.descriptors.dpa2_repinit.RepinitConcat`) followed by ``nlayers`` repformer
layers that pass messages between neighbors (the g1 of a neighbor enters every layer), so an atom's
energy reaches ``rcut_repinit + nlayers * rcut_repformer``.  Layout and forward math:
``docs/dp-file-attention.md`` section 2; the evaluator is :mod:`dpcompress.evaluators.exact.dpa2`.

Only the exact (uncompressed) evaluation exists.  The repinit's table and the numpy twin of the
compressed form are in :mod:`.dpa2_tables`, the ``.dpc`` part (kind 7) and the unit registered for
DPA-2 (reader, tabulate, pack) in :mod:`.dpa2_part`.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..core.errors import ModelFormatError, UnsupportedModelError
from . import fields, se_atten_v2
from .dpa2_repformer import Linear, RepformerLayer, int_at, linear_at, read_repformer_layer
from .dpa2_repinit import read_repinit_concat
from .fields import Node

TYPE_NAME = "dpa2"
ALIASES = ("dpa2",)
KIND = None  # the unit with the .dpc part (kind 7) is dpa2_part

@dataclass(frozen=True)
class DescriptorDPA2:
    r"""DPA-2: repinit, the g1 shape transform, ``nlayers`` repformer layers.

    .. math::

        g_1^{(0)} = \varphi\big(D^{\text{repinit}}_i W_s\ [+\ E_{t_i} W_t]\big),\quad
        g_2^{(0)} = \varphi(\tilde R'_{ij,0} w_{g2} + b_{g2}),\quad
        h_2^{(0)} = \tilde R'_{ij,1:4},\qquad
        D_i = [\,g_1^{(L)},\ E_{t_i}\,]

    with the repinit descriptor :math:`D^{\text{repinit}}` (se_atten_v2 math, no type embedding
    appended), the repformer environment matrix :math:`\tilde R'` (its own rcut, nsel and
    statistics), :math:`\varphi` the repformer activation and the layers of
    :mod:`dpcompress.evaluators.exact.repformer_layer`.

    Attributes
    ----------
    repinit : DescriptorSeAttenV2
        ``concat_output_tebd`` false; ``smooth_type_embedding`` = DPA-2's ``smooth``.
    g1_shape : Linear or None
        ``g1_shape_tranform`` (None: DeePMD-kit's Identity, the widths agree).
    tebd_transform : Linear or None
        Set when ``add_tebd_to_repinit_out``.
    g2_embd : Linear
    rf_rcut, rf_rcut_smth : float
    rf_nsel : int
    rf_davg, rf_dstd : ndarray, shape (ntypes, rf_nsel, 4)
    layers : tuple of RepformerLayer
    activation : str
    smooth, use_sqrt_nnei, concat_output_tebd : bool
    type_embedding : ndarray, shape (ntypes + 1, tebd_dim)
    env_protection : float
    ln_eps : float
    """

    repinit: se_atten_v2.DescriptorSeAttenV2
    g1_shape: Optional[Linear]
    tebd_transform: Optional[Linear]
    g2_embd: Linear
    rf_rcut: float
    rf_rcut_smth: float
    rf_nsel: int
    rf_davg: np.ndarray
    rf_dstd: np.ndarray
    layers: Tuple[RepformerLayer, ...]
    activation: str
    smooth: bool
    use_sqrt_nnei: bool
    concat_output_tebd: bool
    type_embedding: np.ndarray
    env_protection: float = 0.0
    direct_dist: bool = False  # g2/h2 from |r|/rcut and r/rcut instead of the environment matrix
    exclude_types: frozenset = frozenset()  # (center, neighbor) type pairs masked in both neighbor lists

    type_name = TYPE_NAME
    display_name = TYPE_NAME
    mixed_types = True

    @property
    def tables(self):
        """The repinit's table once tabulated (:func:`~dpcompress.descriptors.dpa2_tables.tabulate_repinit`), else None."""
        return getattr(self.repinit, "tables", None)

    @property
    def is_compressed(self):
        return self.tables is not None

    @property
    def ntypes(self):
        return self.rf_davg.shape[0]

    @property
    def rcut(self):
        """The largest cutoff (DeePMD-kit's ``get_rcut``); the reach of an energy is larger (see module doc)."""
        return max(self.repinit.rcut, self.rf_rcut)

    @property
    def reach(self):
        """``rcut_repinit + nlayers * rcut_repformer``: the farthest atom one atom's energy depends on."""
        return self.repinit.rcut + len(self.layers) * self.rf_rcut

    @property
    def rcut_smth(self):
        return self.repinit.rcut_smth

    @property
    def sel(self):
        return self.repinit.sel

    def info_lines(self):
        """What ``dpcompress info`` prints about the blocks (beyond the repinit's rcut and sel)."""
        rep, l0 = self.repinit, (self.layers[0] if self.layers else None)
        out = [f"repinit: neuron={list(rep.neuron)} axis_neuron={rep.axis_neuron} tebd_dim={rep.tebd_dim} "
               f"{getattr(rep, 'tebd_input_mode', 'strip')}"]
        rf = (f"repformer: rcut={self.rf_rcut} Å rcut_smth={self.rf_rcut_smth} Å nsel={self.rf_nsel} "
              f"nlayers={len(self.layers)}")
        if l0 is not None:
            rf += f" g1_dim={l0.g1_dim} g2_dim={l0.g2_dim} update_style={l0.update_style}"
        out.append(rf)
        done = "the repinit tabulated, the repformers exact" if self.is_compressed else "evaluated exactly"
        out.append(f"reach {self.reach:g} Å (message passing: a domain's ghost width); {done}")
        return out

    @property
    def nnei(self):
        return self.repinit.nnei

    @property
    def g1_dim(self):
        return self.layers[0].g1_dim if self.layers else self.repinit.dim_out

    @property
    def dim_out(self):
        return self.g1_dim + (self.type_embedding.shape[1] if self.concat_output_tebd else 0)

    @property
    def embeddings(self):
        """The repinit nets (what :func:`~dpcompress.descriptors.iter_nets` lists)."""
        return (self.repinit.embeddings, getattr(self.repinit, "strip_net", None))


def _refuse(node, key, value, why):
    raise UnsupportedModelError(f"{node.source}: '{node._key(key)}' = {value!r} is not supported ({why})")


def read(node, ntypes):
    """Read a DPA-2 descriptor (``type`` "dpa2").

    Accepted: every repformer option DeePMD-kit 3.2 serialises (update styles, g1/g2/h2 update terms,
    gates, ``smooth``, ``use_sqrt_nnei``, ``g1_out_conv``/``g1_out_mlp``, ``add_tebd_to_repinit_out``),
    a repinit with ``tebd_input_mode`` "strip" or "concat".  Refused with :class:`~dpcompress.UnsupportedModelError`
    naming the key: ``use_three_body``, ``use_econf_tebd``,
    nonzero ``davg`` (``set_davg_zero`` false), ``use_exp_switch``.
    """
    src = node.source
    ri_args, rf_args = node.node("repinit_args"), node.node("repformer_args")
    if ri_args.raw("use_three_body", False):
        _refuse(ri_args, "use_three_body", True, "the three-body repinit block is not implemented")
    for n in (node, node.node("type_embedding")):
        if n.raw("use_econf_tebd", False):
            _refuse(n, "use_econf_tebd", True, "the electronic-configuration inputs are not in the model file")
    mode = ri_args.raw("tebd_input_mode", "concat")
    if mode not in ("strip", "concat"):
        _refuse(ri_args, "tebd_input_mode", mode, "DeePMD-kit's modes are 'strip' and 'concat'")
    exclude_types = fields.type_pairs(node, "exclude_types", ntypes)
    if node.raw("spin", None) is not None:
        raise UnsupportedModelError(f"{src}: spin models are not supported ('{node.where}.spin' is set)")
    smooth = node.flag("smooth", True)
    protection = node.number("env_protection", 0.0)
    if protection < 0:
        raise ModelFormatError(f"{src}: '{node._key('env_protection')}' should be >= 0, found {protection}")
    ri_var, rf_var = node.node("repinit_variable"), node.node("repformers_variable")
    # repinit = se_atten_v2 (attn_layer 0) with DPA-2's smooth switch as its smooth_type_embedding
    merged = {**ri_args.data, **ri_var.data, "type": "dpa1", "attn_layer": 0, "sel": [ri_args.raw("nsel")],
              "smooth_type_embedding": smooth, "concat_output_tebd": False,
              "type_embedding": node.raw("type_embedding"),
              "env_protection": protection, "exclude_types": sorted(exclude_types)}
    if mode == "strip":
        repinit = se_atten_v2.read(Node(merged, ri_var.where, src), ntypes)
    else:
        repinit = read_repinit_concat(Node(merged, ri_var.where, src), ntypes)
    if np.any(repinit.davg != 0):
        _refuse(ri_var, "@variables.davg", "nonzero", "DPA-2 is read with set_davg_zero true only")
    # the repformer block
    rf_rcut = rf_args.number("rcut", positive=True)
    rf_smth = rf_args.number("rcut_smth")
    if not 0 <= rf_smth < rf_rcut:
        raise ModelFormatError(f"{src}: '{rf_args._key('rcut_smth')}' = {rf_smth} should lie in [0, rcut={rf_rcut})")
    env = Node(rf_var.raw("env_mat", {}) or {}, f"{rf_var.where}.env_mat", src)
    if env.raw("use_exp_switch", False):
        _refuse(env, "use_exp_switch", True, "only the polynomial switch is implemented")
    nsel = int_at(rf_args, "nsel", 1, fields.MAX_SEL)
    nlayers = int_at(rf_args, "nlayers", 0, 64)
    davg, dstd = fields.statistics(rf_var, ntypes, nsel, 4)
    if np.any(davg != 0):
        _refuse(rf_var, "@variables.davg", "nonzero", "DPA-2 is read with set_davg_zero true only")
    act = fields.activation(rf_args, "activation_function")
    raw_layers = rf_var.raw("repformer_layers")
    if not isinstance(raw_layers, list) or len(raw_layers) != nlayers:
        raise ModelFormatError(f"{src}: '{rf_var._key('repformer_layers')}' should hold nlayers = {nlayers} layers")
    layers = tuple(read_repformer_layer(Node(l, f"{rf_var.where}.repformer_layers[{k}]", src), rf_args,
                                        k == nlayers - 1, act, smooth) for k, l in enumerate(raw_layers))
    g1_dim = int_at(rf_args, "g1_dim")
    g2_dim = int_at(rf_args, "g2_dim")
    if any(l.g1_dim != g1_dim or l.g2_dim != g2_dim for l in layers):
        raise ModelFormatError(f"{src}: repformer layers disagree with repformer_args on g1_dim/g2_dim")
    g2_embd = linear_at(rf_var, "g2_embd", 1, g2_dim, True)
    # g1 shape transform: a Layer, or DeePMD-kit's Identity when the widths agree
    n0 = repinit.dim_out
    gst = node.node("g1_shape_tranform")
    if gst.raw("@class", "Layer") == "Identity":
        if n0 != g1_dim:
            raise ModelFormatError(f"{src}: '{gst.where}' is Identity but the repinit gives {n0} != g1_dim {g1_dim}")
        g1_shape = None
    else:
        g1_shape = linear_at(node, "g1_shape_tranform", n0, g1_dim, False)
    tebd_dim = repinit.tebd_dim
    tebd_transform = None
    if node.flag("add_tebd_to_repinit_out", False):
        tebd_transform = linear_at(node, "tebd_transform", tebd_dim, g1_dim, False)
    return DescriptorDPA2(
        repinit=repinit, g1_shape=g1_shape, tebd_transform=tebd_transform, g2_embd=g2_embd, rf_rcut=rf_rcut,
        rf_rcut_smth=rf_smth, rf_nsel=nsel, rf_davg=davg, rf_dstd=dstd, layers=layers, activation=act, smooth=smooth,
        use_sqrt_nnei=rf_args.flag("use_sqrt_nnei", True), concat_output_tebd=node.flag("concat_output_tebd", True),
        type_embedding=repinit.type_embedding, env_protection=protection,
        direct_dist=rf_args.flag("direct_dist", False), exclude_types=exclude_types,
    )

