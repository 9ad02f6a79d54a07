r"""The repformer layers of DPA-2 (``repformers_variable.repformer_layers[l]``): data classes and reader.

Layout: ``docs/dp-file-attention.md`` section 2; math: :mod:`dpcompress.evaluators.exact.repformer_layer`.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..core.errors import ModelFormatError, UnsupportedModelError
from . import fields
from .fields import Node

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


def int_at(node, key, lo=1, hi=fields.MAX_WIDTH):
    v = node.raw(key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ModelFormatError(f"{node.source}: '{node._key(key)}' should be an integer in [{lo}, {hi}], found {v!r}")
    return v


def linear_at(parent, key, n_in, n_out, bias):
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


def read_repformer_layer(node, args, last, act, smooth):
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
    d1, d2, ax = int_at(node, "g1_dim"), int_at(node, "g2_dim"), int_at(node, "axis_neuron")
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
    h1, n1, h2, n2 = (int_at(node, k) for k in ("attn1_hidden", "attn1_nhead", "attn2_hidden", "attn2_nhead"))
    conv, mlp, out_conv = f["update_g1_has_conv"], f["g1_out_mlp"], f["g1_out_conv"]
    dim_in1 = ((0 if mlp else d1) + (d2 * ax if f["update_g1_has_grrg"] else 0)
               + (d1 * ax if f["update_g1_has_drrd"] else 0) + (d2 if conv and not out_conv else 0))
    if dim_in1 == 0:
        raise UnsupportedModelError(f"{src}: '{node.where}' has no input for linear1 (g1_out_mlp true and no grrg, "
                                    "drrd or unprojected conv term)")
    kw = dict(linear1=linear_at(node, "linear1", dim_in1, d1, True))
    if mlp:
        kw["g1_self_mlp"] = linear_at(node, "g1_self_mlp", d1, d1, True)
    if conv:
        shape = (d2, d1) if out_conv else (d1, d2)  # projects g2 (g1_out_conv) or the neighbors' g1
        kw["proj_g1g2"] = linear_at(node, "proj_g1g2", *shape, False)
    g2_attn, h2_upd = f["update_g2_has_attn"], f["update_h2"]
    if ch2:
        kw["linear2"] = linear_at(node, "linear2", d2, d2, True)
        if f["update_g2_has_g1g1"]:
            kw["proj_g1g1g2"] = linear_at(node, "proj_g1g1g2", d1, d2, False)
        if g2_attn or h2_upd:
            amap = node.node("attn2g_map")
            kw["mapqk"] = linear_at(amap, "mapqk", d2, 2 * h2 * n2, False)
            if amap.flag("has_gate", f["attn2_has_gate"]) != f["attn2_has_gate"]:
                raise ModelFormatError(f"{src}: '{amap._key('has_gate')}' differs from the layer's attn2_has_gate")
            attn2_shift = amap.number("attnw_shift", 20.0)
            _same_smooth(amap, smooth)
        if g2_attn:
            mh = node.node("attn2_mh_apply")
            kw["mapv"] = linear_at(mh, "mapv", d2, d2 * n2, False)
            kw["head_map2"] = linear_at(mh, "head_map", d2 * n2, d2, True)
            kw["ln"] = _layer_norm(node, "attn2_lm", d2)
        if h2_upd:
            kw["ev_head"] = linear_at(node.node("attn2_ev_apply"), "head_map", n2, 1, False).w[:, 0].copy()
    attn1_shift = 20.0
    if f["update_g1_has_attn"]:
        la = node.node("loc_attn")
        kw["mapq"] = linear_at(la, "mapq", d1, h1 * n1, False)
        kw["mapkv"] = linear_at(la, "mapkv", d1, (h1 + d1) * n1, False)
        kw["head_map1"] = linear_at(la, "head_map", d1 * n1, d1, True)
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
