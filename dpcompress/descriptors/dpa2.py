r"""DPA-2 (DeePMD-kit's ``dpa2`` descriptor): model classes and the reader of DeePMD-kit's tree.

DPA-2 is a repinit block (se_atten_v2 without attention layers, read here as a
:class:`~dpcompress.descriptors.se_atten_v2.DescriptorSeAttenV2`) followed by ``nlayers`` repformer
layers that pass messages between neighbors (the g1 of a neighbor enters every layer), so an atom's
energy reaches ``rcut_repinit + nlayers * rcut_repformer``.  Layout and forward math:
``docs/dp-file-attention.md`` section 2; the evaluator is :mod:`dpcompress.evaluators.exact.dpa2`.

Only the exact (uncompressed) evaluation exists: :func:`tabulate` and :func:`table_bounds` refuse.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..core.errors import ModelFormatError, UnsupportedModelError
from ..core.networks import network_forward
from . import fields, se_atten_v2
from .fields import Node

TYPE_NAME = "dpa2"
ALIASES = ("dpa2",)
KIND = None  # no .dpc part kind: the compressed DPA-2 does not exist yet

#: why compression is refused (named by :func:`tabulate`, the CLI's compress)
NOT_COMPRESSED = ("compressing DPA-2 (repinit tables + repformer layers in the C runtime) is not implemented yet; "
                  "dpcompress evaluates the uncompressed .dp model exactly (dpcompress.Potential, the ASE calculator, "
                  "dpcompress test)")

UPDATE_STYLES = ("res_avg", "res_incr", "res_residual")


@dataclass(frozen=True)
class Linear:
    """A repformer ``Layer``: :math:`y = x W + b` (activation none, no residual)."""

    w: np.ndarray
    b: Optional[np.ndarray]

    def __call__(self, x):
        y = x @ self.w
        return y if self.b is None else y + self.b

    def back(self, dy):
        """:math:`\\partial L/\\partial x` from :math:`\\partial L/\\partial y`."""
        return dy @ self.w.T


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


@dataclass(frozen=True)
class RepformerLayer:
    r"""One repformer layer's options and weights (``repformers_variable.repformer_layers[l]``).

    Linear maps are :class:`Linear` or None when the option that needs them is off; the LayerNorm of
    the g2 attention is ``(ln_w, ln_b, ln_eps)``; ``ev_head`` is ``attn2_ev_apply.head_map.w[:, 0]``;
    ``g1_residual`` / ``g2_residual`` / ``h2_residual`` are the res_residual weights, one per
    update term after the first.
    """

    g1_dim: int
    g2_dim: int
    axis_neuron: int
    update_chnnl_2: bool
    g1_has_conv: bool
    g1_has_drrd: bool
    g1_has_grrg: bool
    g1_has_attn: bool
    g2_has_g1g1: bool
    g2_has_attn: bool
    update_h2: bool
    g1_out_conv: bool
    g1_out_mlp: bool
    attn1_hidden: int
    attn1_nhead: int
    attn2_hidden: int
    attn2_nhead: int
    attn2_has_gate: bool
    attn1_shift: float
    attn2_shift: float
    update_style: str
    linear1: Linear
    g1_self_mlp: Optional[Linear] = None
    proj_g1g2: Optional[Linear] = None
    linear2: Optional[Linear] = None
    proj_g1g1g2: Optional[Linear] = None
    mapqk: Optional[Linear] = None
    mapv: Optional[Linear] = None
    head_map2: Optional[Linear] = None
    ln: Optional[Tuple[np.ndarray, np.ndarray, float]] = None
    ev_head: Optional[np.ndarray] = None
    mapq: Optional[Linear] = None
    mapkv: Optional[Linear] = None
    head_map1: Optional[Linear] = None
    g1_residual: Tuple[np.ndarray, ...] = ()
    g2_residual: Tuple[np.ndarray, ...] = ()
    h2_residual: Tuple[np.ndarray, ...] = ()


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

    type_name = TYPE_NAME
    display_name = TYPE_NAME
    mixed_types = True
    tables = None
    is_compressed = False
    exclude_types = frozenset()

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
        out.append(f"reach {self.reach:g} Å (message passing); evaluated exactly, not compressible yet")
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


def _flag(node, key, expected=None):
    v = node.flag(key)
    if expected is not None and v != expected:
        raise UnsupportedModelError(f"{node.source}: '{node._key(key)}' = {str(v).lower()} is not supported "
                                    f"(only {str(expected).lower()})")
    return v


def _int(node, key, lo=1, hi=fields.MAX_WIDTH):
    v = node.raw(key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ModelFormatError(f"{node.source}: '{node._key(key)}' should be an integer in [{lo}, {hi}], found {v!r}")
    return v


def _linear(parent, key, n_in, n_out, bias):
    """The ``Layer`` at ``parent.key``: shape (n_in, n_out), bias present or not, no activation, no residual."""
    node = parent.node(key)
    layer = fields.read_layer(node)
    if layer.w.shape != (n_in, n_out):
        raise ModelFormatError(f"{node.source}: '{node.where}.@variables.w' has shape {layer.w.shape}, "
                               f"expected ({n_in}, {n_out})")
    if (layer.b is not None) != bias:
        raise ModelFormatError(f"{node.source}: '{node.where}' should {'have' if bias else 'not have'} a bias")
    if layer.activation != "linear" or layer.residual is not None or layer.idt is not None:
        raise UnsupportedModelError(f"{node.source}: '{node.where}' with activation {layer.activation!r}, a residual "
                                    "or a timestep is not supported (DeePMD-kit writes a plain linear map here)")
    return Linear(layer.w, layer.b)


def _layer_norm(parent, key, n):
    node = parent.node(key)
    var = node.node("@variables")
    eps = node.number("eps", positive=True)
    return var.array("w", shape=(n,)), var.array("b", shape=(n,)), eps


#: repformer options read from every layer and checked against ``repformer_args``
_LAYER_FLAGS = ("update_g1_has_conv", "update_g1_has_drrd", "update_g1_has_grrg", "update_g1_has_attn",
                "update_g2_has_g1g1", "update_g2_has_attn", "update_h2", "attn2_has_gate", "g1_out_conv", "g1_out_mlp",
                "use_sqrt_nnei", "smooth")
_LAYER_INTS = ("g1_dim", "g2_dim", "axis_neuron", "attn1_hidden", "attn1_nhead", "attn2_hidden", "attn2_nhead")


def _same_smooth(node, smooth):
    """An attention map's ``smooth`` must be the descriptor's (DeePMD-kit builds them so)."""
    if node.flag("smooth", smooth) != smooth:
        raise ModelFormatError(f"{node.source}: '{node._key('smooth')}' differs from the descriptor's "
                               f"smooth = {smooth}")


def _read_layer(node, args, last, act, smooth):
    """One ``repformer_layers[l]``; its options must equal ``repformer_args`` (the copy DeePMD-kit also writes)."""
    src = node.source
    # the last layer does not update g2 / h2: DeePMD-kit writes its g2 options false there
    g2_keys = ("update_g2_has_g1g1", "update_g2_has_attn", "update_h2", "attn2_has_gate")
    for key in _LAYER_FLAGS + _LAYER_INTS + ("update_style", "activation_function", "rcut", "rcut_smth"):
        if key == "smooth" or (last and key in g2_keys):
            continue
        if key in args.data and node.has(key) and node.raw(key) != args.raw(key):
            raise ModelFormatError(f"{src}: '{node._key(key)}' = {node.raw(key)!r} differs from "
                                   f"'{args._key(key)}' = {args.raw(key)!r}")
    if node.flag("smooth", smooth) != smooth:
        raise ModelFormatError(f"{src}: '{node._key('smooth')}' differs from the descriptor's 'smooth' = {smooth}")
    if fields.activation(node, "activation_function") != act:
        raise ModelFormatError(f"{src}: '{node._key('activation_function')}' differs from the repformer's")
    d1, d2, ax = _int(node, "g1_dim"), _int(node, "g2_dim"), _int(node, "axis_neuron")
    if ax > d2 or (node.flag("update_g1_has_drrd") and ax > d1):
        raise ModelFormatError(f"{src}: '{node._key('axis_neuron')}' = {ax} exceeds g2_dim {d2} or g1_dim {d1}")
    ch2 = node.flag("update_chnnl_2")
    if ch2 == last:
        raise ModelFormatError(f"{src}: '{node._key('update_chnnl_2')}' should be {str(not last).lower()} "
                               "(false exactly on the last layer)")
    style = node.raw("update_style")
    if style not in UPDATE_STYLES:
        raise UnsupportedModelError(f"{src}: '{node._key('update_style')}' = {style!r} is not supported "
                                    f"(one of {', '.join(UPDATE_STYLES)})")
    f = {k: node.flag(k) for k in _LAYER_FLAGS if k not in ("use_sqrt_nnei", "smooth")}
    h1, n1, h2, n2 = (_int(node, k) for k in ("attn1_hidden", "attn1_nhead", "attn2_hidden", "attn2_nhead"))
    conv, mlp, out_conv = f["update_g1_has_conv"], f["g1_out_mlp"], f["g1_out_conv"]
    dim_in1 = ((0 if mlp else d1) + (d2 * ax if f["update_g1_has_grrg"] else 0)
               + (d1 * ax if f["update_g1_has_drrd"] else 0) + (d2 if conv and not out_conv else 0))
    if dim_in1 == 0:
        raise UnsupportedModelError(f"{src}: '{node.where}' has no input for linear1 (g1_out_mlp true and no grrg, "
                                    "drrd or unprojected conv term)")
    kw = dict(linear1=_linear(node, "linear1", dim_in1, d1, True))
    if mlp:
        kw["g1_self_mlp"] = _linear(node, "g1_self_mlp", d1, d1, True)
    if conv:
        kw["proj_g1g2"] = _linear(node, "proj_g1g2", d2, d1, False) if out_conv else _linear(node, "proj_g1g2", d1, d2,
                                                                                                False)
    g2_attn, h2_upd = f["update_g2_has_attn"], f["update_h2"]
    if ch2:
        kw["linear2"] = _linear(node, "linear2", d2, d2, True)
        if f["update_g2_has_g1g1"]:
            kw["proj_g1g1g2"] = _linear(node, "proj_g1g1g2", d1, d2, False)
        if g2_attn or h2_upd:
            amap = node.node("attn2g_map")
            kw["mapqk"] = _linear(amap, "mapqk", d2, 2 * h2 * n2, False)
            if amap.flag("has_gate", f["attn2_has_gate"]) != f["attn2_has_gate"]:
                raise ModelFormatError(f"{src}: '{amap._key('has_gate')}' differs from the layer's attn2_has_gate")
            attn2_shift = amap.number("attnw_shift", 20.0)
            _same_smooth(amap, smooth)
        if g2_attn:
            mh = node.node("attn2_mh_apply")
            kw["mapv"] = _linear(mh, "mapv", d2, d2 * n2, False)
            kw["head_map2"] = _linear(mh, "head_map", d2 * n2, d2, True)
            kw["ln"] = _layer_norm(node, "attn2_lm", d2)
        if h2_upd:
            kw["ev_head"] = _linear(node.node("attn2_ev_apply"), "head_map", n2, 1, False).w[:, 0].copy()
    attn1_shift = 20.0
    if f["update_g1_has_attn"]:
        la = node.node("loc_attn")
        kw["mapq"] = _linear(la, "mapq", d1, h1 * n1, False)
        kw["mapkv"] = _linear(la, "mapkv", d1, (h1 + d1) * n1, False)
        kw["head_map1"] = _linear(la, "head_map", d1 * n1, d1, True)
        attn1_shift = la.number("attnw_shift", 20.0)
        _same_smooth(la, smooth)
    if style == "res_residual":
        var = node.node("@variables")
        n_g1 = int(mlp) + int(conv and out_conv) + 1 + int(f["update_g1_has_attn"])
        n_g2 = (1 + int(f["update_g2_has_g1g1"]) + int(g2_attn)) if ch2 else 0
        n_h2 = int(h2_upd) if ch2 else 0
        for key, n, width in (("g1_residual", n_g1, d1), ("g2_residual", n_g2, d2), ("h2_residual", n_h2, 1)):
            raw = var.raw(key, [])
            if not isinstance(raw, list) or len(raw) != n:
                raise ModelFormatError(f"{src}: '{var._key(key)}' should list {n} weight vectors of width {width}")
            kw[key] = tuple(Node({"w": w}, f"{var._key(key)}[{k}]", src).array("w", shape=(width,))
                            for k, w in enumerate(raw))
    return RepformerLayer(
        g1_dim=d1, g2_dim=d2, axis_neuron=ax, update_chnnl_2=ch2, g1_has_conv=conv,
        g1_has_drrd=f["update_g1_has_drrd"], g1_has_grrg=f["update_g1_has_grrg"], g1_has_attn=f["update_g1_has_attn"],
        g2_has_g1g1=f["update_g2_has_g1g1"], g2_has_attn=g2_attn, update_h2=h2_upd, g1_out_conv=out_conv,
        g1_out_mlp=mlp, attn1_hidden=h1, attn1_nhead=n1, attn2_hidden=h2, attn2_nhead=n2,
        attn2_has_gate=f["attn2_has_gate"], attn1_shift=attn1_shift,
        attn2_shift=attn2_shift if ch2 and (g2_attn or h2_upd) else 20.0, update_style=style, **kw)


def _read_repinit_concat(node, ntypes):
    """The concat repinit: one net of input width 1 + (1 or 2) tebd_dim, no strip net."""
    src, where = node.source, node.where
    rcut, rcut_smth, protection = fields.radial_settings(node)
    nnei = _int(node, "nsel", 1, fields.MAX_SEL)
    neuron = node.int_list("neuron", lo=1)
    if not neuron:
        raise ModelFormatError(f"{src}: '{where}.neuron' is empty")
    axis = _int(node, "axis_neuron", 1, neuron[-1])
    tebd_dim = _int(node, "tebd_dim")
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
                         type_embedding=E, net=net)


def _refuse(node, key, value, why):
    raise UnsupportedModelError(f"{node.source}: '{node._key(key)}' = {value!r} is not supported ({why})")


def read(node, ntypes):
    """Read a DPA-2 descriptor (``type`` "dpa2").

    Accepted: every repformer option DeePMD-kit 3.2 serialises (update styles, g1/g2/h2 update terms,
    gates, ``smooth``, ``use_sqrt_nnei``, ``g1_out_conv``/``g1_out_mlp``, ``add_tebd_to_repinit_out``),
    a repinit with ``tebd_input_mode`` "strip" or "concat".  Refused with :class:`~dpcompress.UnsupportedModelError`
    naming the key: ``use_three_body``, ``use_econf_tebd``,
    ``exclude_types``, nonzero ``davg`` (``set_davg_zero`` false), ``use_exp_switch``.
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
    if node.raw("exclude_types", []) not in ([], None):
        _refuse(node, "exclude_types", node.raw("exclude_types"), "type exclusion inside DPA-2 is not implemented")
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
              "env_protection": protection, "exclude_types": []}
    if mode == "strip":
        repinit = se_atten_v2.read(Node(merged, ri_var.where, src), ntypes)
    else:
        repinit = _read_repinit_concat(Node(merged, ri_var.where, src), ntypes)
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
    nsel = _int(rf_args, "nsel", 1, fields.MAX_SEL)
    nlayers = _int(rf_args, "nlayers", 0, 64)
    davg, dstd = fields.statistics(rf_var, ntypes, nsel, 4)
    if np.any(davg != 0):
        _refuse(rf_var, "@variables.davg", "nonzero", "DPA-2 is read with set_davg_zero true only")
    act = fields.activation(rf_args, "activation_function")
    raw_layers = rf_var.raw("repformer_layers")
    if not isinstance(raw_layers, list) or len(raw_layers) != nlayers:
        raise ModelFormatError(f"{src}: '{rf_var._key('repformer_layers')}' should hold nlayers = {nlayers} layers")
    layers = tuple(_read_layer(Node(l, f"{rf_var.where}.repformer_layers[{k}]", src), rf_args, k == nlayers - 1, act,
                               smooth) for k, l in enumerate(raw_layers))
    g1_dim = _int(rf_args, "g1_dim")
    g2_dim = _int(rf_args, "g2_dim")
    if any(l.g1_dim != g1_dim or l.g2_dim != g2_dim for l in layers):
        raise ModelFormatError(f"{src}: repformer layers disagree with repformer_args on g1_dim/g2_dim")
    g2_embd = _linear(rf_var, "g2_embd", 1, g2_dim, True)
    # g1 shape transform: a Layer, or DeePMD-kit's Identity when the widths agree
    n0 = repinit.dim_out
    gst = node.node("g1_shape_tranform")
    if gst.raw("@class", "Layer") == "Identity":
        if n0 != g1_dim:
            raise ModelFormatError(f"{src}: '{gst.where}' is Identity but the repinit gives {n0} != g1_dim {g1_dim}")
        g1_shape = None
    else:
        g1_shape = _linear(node, "g1_shape_tranform", n0, g1_dim, False)
    tebd_dim = repinit.tebd_dim
    tebd_transform = None
    if node.flag("add_tebd_to_repinit_out", False):
        tebd_transform = _linear(node, "tebd_transform", tebd_dim, g1_dim, False)
    return DescriptorDPA2(
        repinit=repinit, g1_shape=g1_shape, tebd_transform=tebd_transform, g2_embd=g2_embd, rf_rcut=rf_rcut,
        rf_rcut_smth=rf_smth, rf_nsel=nsel, rf_davg=davg, rf_dstd=dstd, layers=layers, activation=act, smooth=smooth,
        use_sqrt_nnei=rf_args.flag("use_sqrt_nnei", True), concat_output_tebd=node.flag("concat_output_tebd", True),
        type_embedding=repinit.type_embedding, env_protection=protection,
        direct_dist=rf_args.flag("direct_dist", False),
    )


def table_bounds(descriptor, min_nbor_dist):
    """Refused: DPA-2 has no compressed form yet."""
    raise UnsupportedModelError(NOT_COMPRESSED)


def tabulate(descriptor, min_nbor_dist, grid):
    """Refused: DPA-2 has no compressed form yet."""
    raise UnsupportedModelError(NOT_COMPRESSED)


def pack(descriptor, pair_exclude_types):
    """Refused: DPA-2 has no ``.dpc`` part."""
    raise UnsupportedModelError(NOT_COMPRESSED)
