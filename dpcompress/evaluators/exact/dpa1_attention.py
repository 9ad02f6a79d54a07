r"""DPA-1's attention layers in numpy: forward and the hand-derived backward (exact evaluator).

The forward math is in :mod:`dpcompress.descriptors.dpa1_attention`.  Per layer, with the cached
:math:`\hat q, \hat k, \hat v` (and norms), :math:`\Lambda`, :math:`A^0`, :math:`A`, the normalised
:math:`\bar z = (z - \bar z)/\sigma`, and :math:`\bar X' = \partial E/\partial X'`, the backward pass is

.. math::

    \bar{\bar z} = \bar X'\odot\gamma,\qquad
    \bar Z = \big(\bar{\bar z} - \langle\bar{\bar z}\rangle - \bar z\,\langle\bar{\bar z}\odot\bar z\rangle\big)/\sigma,

    \bar O = \bar Z W_\text{out}^\top,\quad \bar A = \bar O\,\hat v^\top,\quad \bar{\hat v} = A^\top\bar O,

    \bar A^1 = \bar A\odot C,\quad \bar C = \bar A\odot A^1\ \ (\text{dotr}, C_{jk} = \hat r_j\cdot\hat r_k),

    \bar A^0 = \bar A^1\odot w_jw_k\ (\text{smooth}),\quad
    \bar\Lambda' = A^0\odot\big(\bar A^0 - \textstyle\sum_k \bar A^0_{jk}A^0_{jk}\big),

    \bar\Lambda = \bar\Lambda'\odot w_jw_k\ (\text{smooth; else } \bar\Lambda'),\quad
    \bar{\hat q} = \alpha\,\bar\Lambda\,\hat k,\quad \bar{\hat k} = \alpha\,\bar\Lambda^\top\hat q,

    \bar q = (\bar{\hat q} - \hat q\,(\hat q\cdot\bar{\hat q}))/|q|\ \ (\text{normalize}),\qquad
    \bar X = \bar Z + [\bar q\,|\,\bar k\,|\,\bar v]\,W_\text{in}^\top

(softmax rows of empty slots are zero, so they pass nothing back).  The switch collects, from the
smooth products :math:`\Pi_{jk} = w_jw_k` with
:math:`\bar\Pi = \bar\Lambda'\odot(\Lambda + c) + \bar A^1\odot A^0`:
:math:`\bar w_j \mathrel{+}= \sum_k \bar\Pi_{jk}w_k + \sum_k\bar\Pi_{kj}w_k`, and the directions
:math:`\bar{\hat r}_j = \sum_k(\bar C_{jk} + \bar C_{kj})\hat r_k`.

All functions take a batch of centers: arrays (n, N, ...), the mask (n, N) of real slots.
"""

import numpy as np

from ...descriptors.dpa1_attention import SMOOTH_SHIFT


#: floor of the norm in the direction :math:`\hat r_j` (DeePMD-kit's, as in ``torch.nn.functional.normalize``)
DIRECTION_EPS = 1e-12


def directions(Rt, mask):
    r""":math:`\hat r_j = \tilde R_{j,1:4}/\max(|\tilde R_{j,1:4}|, 10^{-12})` and the norms, zero on empty slots.

    The floor matters: a neighbor within ~1e-4 Å of rcut has :math:`|\tilde R_{j,1:4}| < 10^{-12}`,
    and then :math:`\hat r_j` is :math:`\tilde R_{j,1:4}\cdot 10^{12}` (not a unit vector), with
    the gradient of that linear map (:func:`direction_backward`).
    """
    v = np.where(mask[..., None], Rt[..., 1:4], 0.0)
    nv = np.linalg.norm(v, axis=-1)
    return v / np.maximum(nv, DIRECTION_EPS)[..., None], nv


def direction_backward(rhat, nv, g):
    r"""Adjoint of :func:`directions`: :math:`(g - \hat r(\hat r\cdot g))/|v|` above the floor, :math:`g/10^{-12}` below."""
    floor = (nv < DIRECTION_EPS)[..., None]
    return np.where(floor, g / DIRECTION_EPS, _unit_backward(rhat, np.maximum(nv, DIRECTION_EPS)[..., None], g))


def _unit(x):
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / n, n


def _unit_backward(xh, n, g):
    """Adjoint of :math:`x/|x|`."""
    return (g - xh * np.sum(xh * g, axis=-1, keepdims=True)) / n


def layer_forward(stack, layer, X, mask, sw, C, n_extra=0):
    """One attention layer; returns X' and what :func:`layer_backward` needs.

    ``n_extra``: padding slots cut off the arrays (after the last real slot).  They are masked keys,
    except in the smooth softmax, where each has the constant logit -c and is added to the
    denominator by count (they pass no gradient: their A is multiplied by w = 0).
    """
    d = stack.hidden
    P = X @ layer.w_in + layer.b_in
    q, k, v = P[..., :d], P[..., d : 2 * d], P[..., 2 * d : 3 * d]
    if stack.normalize:
        (q, nq), (k, nk), (v, nv) = _unit(q), _unit(k), _unit(v)
    else:
        nq = nk = nv = None
    Lam = stack.alpha * (q @ k.transpose(0, 2, 1))
    if stack.smooth:
        Pi = sw[:, :, None] * sw[:, None, :]
        Lp = (Lam + SMOOTH_SHIFT) * Pi - SMOOTH_SHIFT
    else:
        Pi = None
        Lp = np.where(mask[:, None, :], Lam, -np.inf)
    mx = np.max(Lp, axis=-1, keepdims=True) if Lp.shape[-1] else np.full(Lp.shape[:-1] + (1,), -np.inf)
    if stack.smooth and n_extra:
        mx = np.maximum(mx, -SMOOTH_SHIFT)
    mx = np.where(np.isfinite(mx), mx, 0.0)  # a center without neighbors: every logit -inf
    E = np.exp(Lp - mx)
    s = np.sum(E, axis=-1, keepdims=True)
    if stack.smooth and n_extra:
        s = s + n_extra * np.exp(-SMOOTH_SHIFT - mx)
    A0 = np.where(mask[:, :, None], E / np.where(s > 0, s, 1.0), 0.0)
    A1 = A0 * Pi if stack.smooth else A0
    A = A1 * C if stack.dotr else A1
    O = A @ v
    Z = X + O @ layer.w_out + layer.b_out
    zc = Z - Z.mean(axis=-1, keepdims=True)
    sigma = np.sqrt(np.mean(zc * zc, axis=-1, keepdims=True) + layer.ln_eps)
    zb = zc / sigma
    cache = dict(q=q, k=k, v=v, nq=nq, nk=nk, nv=nv, Lam=Lam, Pi=Pi, A0=A0, A1=A1, A=A, zb=zb, sigma=sigma)
    return zb * layer.ln_w + layer.ln_b, cache


def layer_backward(stack, layer, c, dXn, sw, C):
    """Adjoint of :func:`layer_forward`: (dX, dsw or None, dC or None)."""
    d = stack.hidden
    g = dXn * layer.ln_w
    zb = c["zb"]
    dZ = (g - g.mean(axis=-1, keepdims=True) - zb * np.mean(g * zb, axis=-1, keepdims=True)) / c["sigma"]
    dO = dZ @ layer.w_out.T
    dA = dO @ c["v"].transpose(0, 2, 1)
    dv = c["A"].transpose(0, 2, 1) @ dO
    dC = None
    if stack.dotr:
        dC = dA * c["A1"]
        dA1 = dA * C
    else:
        dA1 = dA
    A0 = c["A0"]
    dA0 = dA1 * c["Pi"] if stack.smooth else dA1
    dLp = A0 * (dA0 - np.sum(dA0 * A0, axis=-1, keepdims=True))
    dsw = None
    if stack.smooth:
        dLam = dLp * c["Pi"]
        dPi = dLp * (c["Lam"] + SMOOTH_SHIFT) + dA1 * A0
        dsw = (dPi @ sw[..., None])[..., 0] + (dPi.transpose(0, 2, 1) @ sw[..., None])[..., 0]
    else:
        dLam = dLp
    dq = stack.alpha * (dLam @ c["k"])
    dk = stack.alpha * (dLam.transpose(0, 2, 1) @ c["q"])
    if stack.normalize:
        dq = _unit_backward(c["q"], c["nq"], dq)
        dk = _unit_backward(c["k"], c["nk"], dk)
        dv = _unit_backward(c["v"], c["nv"], dv)
    dX = dZ + np.concatenate([dq, dk, dv], axis=-1) @ layer.w_in.T
    return dX, dsw, dC


def attention_forward(stack, X, mask, sw, rhat, keep=False, n_extra=0):
    """All layers; ``keep``: also return the per-layer caches (for :func:`attention_backward`)."""
    C = rhat @ rhat.transpose(0, 2, 1) if stack.dotr else None
    caches = []
    for layer in stack.layers:
        X, c = layer_forward(stack, layer, X, mask, sw, C, n_extra)
        if keep:
            caches.append(c)
    return (X, (caches, C)) if keep else X


def attention_backward(stack, state, dX, sw, rhat):
    """Gradient of the energy with respect to the input rows, the switch and the directions.

    Returns
    -------
    dX0 : ndarray, shape (n, N, M)
    dsw : ndarray, shape (n, N)
        Zero unless smooth.
    drhat : ndarray, shape (n, N, 3)
        Zero unless dotr.
    """
    caches, C = state
    dsw = np.zeros(sw.shape)
    dC = np.zeros(C.shape) if C is not None else None
    for layer, c in zip(reversed(stack.layers), reversed(caches)):
        dX, ds, dc = layer_backward(stack, layer, c, dX, sw, C)
        if ds is not None:
            dsw += ds
        if dc is not None:
            dC += dc
    drhat = np.zeros(rhat.shape)
    if C is not None:
        drhat = (dC + dC.transpose(0, 2, 1)) @ rhat
    return dX, dsw, drhat


__all__ = ["DIRECTION_EPS", "directions", "direction_backward", "layer_forward", "layer_backward", "attention_forward", "attention_backward"]


#: centers per attention sub-batch: the (n, N, N) intermediates of one layer stay a few MB
SUB = 32


def _used_slots(mask):
    """Slots up to the last real one of a sub-batch (the rest is padding, handled by count)."""
    real = np.nonzero(mask.any(axis=0))[0]
    return int(real[-1]) + 1 if real.size else 0


def rows_forward(stack, X0, mask, sw, Rt):
    """The attention output rows :math:`X^{(L)}` of a batch of centers, in sub-batches (no caches kept).

    Rows of padding slots are returned unchanged (they reach nothing: their :math:`\tilde R` is 0).
    """
    out = X0.copy()
    N = X0.shape[1]
    for a in range(0, X0.shape[0], SUB):
        sl = slice(a, a + SUB)
        k = _used_slots(mask[sl])
        rhat, _ = directions(Rt[sl, :k], mask[sl, :k])
        out[sl, :k] = attention_forward(stack, X0[sl, :k], mask[sl, :k], sw[sl, :k], rhat, n_extra=N - k)
    return out


def rows_backward(stack, X0, mask, sw, Rt, dXL):
    r"""From :math:`\partial E/\partial X^{(L)}`: (:math:`\partial E/\partial X^{(0)}`,
    :math:`\partial E/\partial w_j`, :math:`\partial E/\partial\tilde R_{j,1:4}` through :math:`\hat r_j`).

    The forward pass is recomputed per sub-batch with its caches (cheaper than storing them all).
    """
    dX0 = np.zeros_like(X0)
    dsw = np.zeros(mask.shape)
    dRdir = np.zeros(mask.shape + (3,))
    N = X0.shape[1]
    for a in range(0, X0.shape[0], SUB):
        sl = slice(a, a + SUB)
        k = _used_slots(mask[sl])
        rhat, nv = directions(Rt[sl, :k], mask[sl, :k])
        _, state = attention_forward(stack, X0[sl, :k], mask[sl, :k], sw[sl, :k], rhat, keep=True, n_extra=N - k)
        dX0[sl, :k], dsw[sl, :k], drhat = attention_backward(stack, state, dXL[sl, :k], sw[sl, :k], rhat)
        dRdir[sl, :k] = direction_backward(rhat, nv, drhat)
    return dX0, dsw, dRdir


__all__ += ["rows_forward", "rows_backward"]
