r"""The attention layers of DPA-1 (DeePMD-kit's ``NeighborGatedAttention``): parameters and reader.

DPA-1 with ``attn_layer`` :math:`L > 0` is se_atten (:mod:`.se_atten_v2`) whose embedding
matrix :math:`X^{(0)} = G` [N, M] (one row per neighbor slot, :math:`G_j = G_s(x_j)\odot(1+\tau_j)`)
passes through :math:`L` residual attention layers before the sum against :math:`\tilde R`.
One layer (one head, width :math:`d` = ``attn``):

.. math::

    [q\,|\,k\,|\,v] = X W_\text{in} + b_\text{in},\qquad
    \hat q_j = q_j/|q_j|\ \ (\text{same for } k, v;\ \text{only with ``normalize``}),

    \Lambda_{jk} = \alpha\,\hat q_j\cdot\hat k_k,\qquad
    \alpha = \text{temperature, or } (d\,s)^{-1/2}\ (s = \text{scaling\_factor}),

    A^0_{jk} = \operatorname{softmax}_k(\Lambda'_{jk})\,m_j,\qquad
    \Lambda' = \begin{cases}
        (\Lambda_{jk} + c)\,w_j w_k - c & \text{smooth } (c = 20)\\
        \Lambda_{jk}\ \text{on real } k,\ -\infty \text{ on empty } k & \text{else}\end{cases}

    A_{jk} = A^0_{jk}\,(w_j w_k)^{[\text{smooth}]}\,(\hat r_j\cdot\hat r_k)^{[\text{dotr}]},\qquad
    X' = \operatorname{LN}\big(X + (A\hat v) W_\text{out} + b_\text{out}\big)

with :math:`m_j` = 1 on real slots, :math:`w_j = \mathrm{sw}(r_j)` (0 on empty slots),
:math:`\hat r_j = \tilde R_{j,1:4}/|\tilde R_{j,1:4}|` and
:math:`\operatorname{LN}(z) = (z - \bar z)/\sqrt{\operatorname{var}z + \epsilon}\odot\gamma + \beta`
over the M channels (population variance).  Layout and checks against DeePMD-kit:
docs/dp-file-attention.md, section 1.
"""

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from ..core.errors import ModelFormatError, UnsupportedModelError
from . import fields

#: DeePMD-kit's logit shift of the smooth attention (``attnw_shift``)
SMOOTH_SHIFT = 20.0


@dataclass(frozen=True)
class AttentionLayer:
    """One gated attention layer: projections and layer norm.

    Attributes
    ----------
    w_in : ndarray, shape (M, 3 d)
    b_in : ndarray, shape (3 d,)
    w_out : ndarray, shape (d, M)
    b_out : ndarray, shape (M,)
    ln_w, ln_b : ndarray, shape (M,)
        :math:`\\gamma`, :math:`\\beta` of the layer norm.
    ln_eps : float
    """

    w_in: np.ndarray
    b_in: np.ndarray
    w_out: np.ndarray
    b_out: np.ndarray
    ln_w: np.ndarray
    ln_b: np.ndarray
    ln_eps: float


@dataclass(frozen=True)
class AttentionStack:
    """The attention layers of a DPA-1 descriptor and their shared switches.

    Attributes
    ----------
    layers : tuple of AttentionLayer
    hidden : int
        :math:`d` (one head).
    alpha : float
        Logit scale :math:`\\alpha`.
    normalize, dotr, smooth : bool
    """

    layers: Tuple[AttentionLayer, ...]
    hidden: int
    alpha: float
    normalize: bool
    dotr: bool
    smooth: bool

    @property
    def n_layers(self):
        return len(self.layers)

    def summary(self):
        """One line for ``dpcompress info``."""
        return (f"attn_layer={self.n_layers}  attn={self.hidden}  dotr={self.dotr}  normalize={self.normalize}  "
                f"smooth={self.smooth}  alpha={self.alpha:.6g}")


def _linear_layer(node, n_in, n_out):
    """(w, b) of a projection ``Layer``: linear activation, no timestep, no residual; b zero when bias is off."""
    layer = fields.read_layer(node)
    if layer.w.shape != (n_in, n_out):
        raise ModelFormatError(
            f"{node.source}: '{node.where}.@variables.w' has shape {layer.w.shape}, expected ({n_in}, {n_out})"
        )
    if layer.activation != "linear" or layer.idt is not None or layer.residual is not None:
        raise UnsupportedModelError(
            f"{node.source}: '{node.where}' is not a plain linear projection (activation "
            f"{layer.activation!r}, timestep {layer.idt is not None}, residual {layer.residual!r}); not supported"
        )
    return layer.w, (np.zeros(n_out) if layer.b is None else layer.b)


def _layer_norm(node, M):
    """(w, b, eps) of a ``LayerNorm`` over M channels (w = 1, b = 0 where not stored)."""
    var = node.node("@variables")
    w = var.array("w", shape=(M,), allow_none=True) if var.has("w") else None
    b = var.array("b", shape=(M,), allow_none=True) if var.has("b") else None
    eps = node.number("eps", 1e-5, positive=True)
    return (np.ones(M) if w is None else w), (np.zeros(M) if b is None else b), eps


def _same(node, key, expected, why):
    got = node.raw(key, expected)
    if got != expected:
        raise ModelFormatError(f"{node.source}: '{node.where}.{key}' = {got!r} disagrees with {why} ({expected!r})")


def read_attention(node, n_layers, nnei, M, smooth):
    r"""The :class:`AttentionStack` of a DPA-1 descriptor node (``attn_layer`` = ``n_layers`` > 0).

    Refused (:class:`~dpcompress.UnsupportedModelError`, naming key and value): ``attn_mask`` true,
    ``num_heads`` other than 1, non-linear projections.  Inconsistent copies of the hyper-parameters
    (``layer_num``, ``nnei``, ``embed_dim``, ``hidden_dim``, ``smooth``) are format errors.
    """
    src, where = node.source, node.where
    for key in ("attn_mask",):
        if node.raw(key, False):
            raise UnsupportedModelError(f"{src}: '{where}.{key}' = true is not supported (only false)")
    hidden = int(node.number("attn", positive=True))
    dotr = node.flag("attn_dotr", True)
    normalize = node.flag("normalize", True)
    scaling = node.number("scaling_factor", 1.0, positive=True)
    temperature = node.raw("temperature", None)
    alpha = (hidden * scaling) ** -0.5 if temperature is None else node.number("temperature", positive=True)
    stack = node.node("attention_layers")
    if stack.raw("do_mask", False):
        raise UnsupportedModelError(f"{src}: '{stack.where}.do_mask' = true is not supported (only false)")
    _same(stack, "layer_num", n_layers, f"'{where}.attn_layer'")
    _same(stack, "nnei", nnei, f"'{where}.sel'")
    _same(stack, "embed_dim", M, f"the embedding width '{where}.neuron[-1]'")
    _same(stack, "hidden_dim", hidden, f"'{where}.attn'")
    raw_layers = stack.raw("attention_layers")
    if not isinstance(raw_layers, list) or len(raw_layers) != n_layers:
        got = len(raw_layers) if isinstance(raw_layers, list) else type(raw_layers).__name__
        raise ModelFormatError(f"{src}: '{stack.where}.attention_layers' should list {n_layers} layers, found {got}")
    layers = []
    for l, raw in enumerate(raw_layers):
        lay = fields.Node(raw, f"{stack.where}.attention_layers[{l}]", src)
        att = lay.node("attention_layer")
        heads = att.raw("num_heads", 1)
        if heads != 1:
            raise UnsupportedModelError(f"{src}: '{att.where}.num_heads' = {heads!r} is not supported (only 1)")
        if att.raw("do_mask", False):
            raise UnsupportedModelError(f"{src}: '{att.where}.do_mask' = true is not supported (only false)")
        _same(att, "hidden_dim", hidden, f"'{where}.attn'")
        _same(att, "smooth", smooth, f"'{where}.smooth_type_embedding'")
        for key, want in (("dotr", dotr), ("normalize", normalize)):
            _same(att, key, want, f"'{where}.{'attn_dotr' if key == 'dotr' else key}'")
        w_in, b_in = _linear_layer(att.node("in_proj"), M, 3 * hidden)
        w_out, b_out = _linear_layer(att.node("out_proj"), hidden, M)
        ln_w, ln_b, eps = _layer_norm(lay.node("attn_layer_norm"), M)
        layers.append(AttentionLayer(w_in, b_in, w_out, b_out, ln_w, ln_b, eps))
    return AttentionStack(layers=tuple(layers), hidden=hidden, alpha=float(alpha), normalize=normalize, dotr=dotr,
                          smooth=smooth)


def refuse_unsupported(node, davg):
    """What the attention evaluators do not implement, refused naming the key.

    (``exclude_types`` is supported: as in DeePMD-kit an excluded neighbor is a padding slot, masked in
    the attention and switched off.)"""
    src, where = node.source, node.where
    if node.has("@variables") and node.node("@variables").has("degree_gain_raw"):
        raise UnsupportedModelError(f"{src}: '{where}.@variables.degree_gain_raw' (lmax > 1 DPA-1) is not supported")
    if np.any(davg != 0):
        raise UnsupportedModelError(
            f"{src}: '{where}.@variables.davg' is nonzero (set_davg_zero false): not supported with attention layers "
            "(DeePMD-kit gives empty slots the -davg/dstd rows and the type of the frame's first atom)"
        )


def pack_arrays(stack):
    """The ``part{p}.att_*`` arrays of a ``.dpc`` file (docs/model-file.md)."""
    L = stack.n_layers
    return dict(
        att_int=np.array([L, stack.hidden, int(stack.normalize), int(stack.dotr), int(stack.smooth)], dtype=np.int64),
        att_real=np.array([stack.alpha] + [lay.ln_eps for lay in stack.layers], dtype=np.float64),
        att_w_in=np.ascontiguousarray([lay.w_in for lay in stack.layers], dtype=np.float64),
        att_b_in=np.ascontiguousarray([lay.b_in for lay in stack.layers], dtype=np.float64),
        att_w_out=np.ascontiguousarray([lay.w_out for lay in stack.layers], dtype=np.float64),
        att_b_out=np.ascontiguousarray([lay.b_out for lay in stack.layers], dtype=np.float64),
        att_ln=np.ascontiguousarray([[lay.ln_w, lay.ln_b] for lay in stack.layers], dtype=np.float64),
    )


def unpack_arrays(arrays):
    """The :class:`AttentionStack` of checked ``att_*`` arrays."""
    L, hidden, normalize, dotr, smooth = (int(v) for v in arrays["att_int"])
    real = np.asarray(arrays["att_real"], dtype=np.float64)
    layers = tuple(
        AttentionLayer(np.array(arrays["att_w_in"][l]), np.array(arrays["att_b_in"][l]), np.array(arrays["att_w_out"][l]),
                       np.array(arrays["att_b_out"][l]), np.array(arrays["att_ln"][l][0]),
                       np.array(arrays["att_ln"][l][1]), float(real[1 + l]))
        for l in range(L)
    )
    return AttentionStack(layers=layers, hidden=hidden, alpha=float(real[0]), normalize=bool(normalize),
                          dotr=bool(dotr), smooth=bool(smooth))


__all__ = ["pack_arrays", "unpack_arrays", "SMOOTH_SHIFT", "AttentionLayer", "AttentionStack", "read_attention", "refuse_unsupported"]
