r"""The attention maps of a DPA-2 repformer layer in numpy, forward and hand-derived backward.

Shapes: ``n`` centers, ``J`` neighbor slots, ``nh`` heads.  ``m`` (n, J) is 1 on real slots,
``sw`` (n, J) the smooth switch (0 on empty slots).  Every forward returns its output and a cache;
every backward takes the cache and :math:`\bar y = \partial L/\partial y` and returns the gradients
of the inputs (``dsw`` included: the switch depends on the coordinates).  Empty slots carry finite
values that the masks remove; their gradients are exactly zero.

Softmax of logits :math:`L` over the last axis, :math:`P = \mathrm{softmax}(L)`:
:math:`\bar L = P \odot (\bar P - \sum_k P_k \bar P_k)`.
"""

import numpy as np


def softmax(L, valid):
    """Softmax over the last axis; entries where ``valid`` is False get 0 (rows with none valid: all 0).

    Equal to DeePMD-kit's ``-inf`` masking (non-smooth) and to the plain softmax when every entry is
    valid (smooth: the shift makes empty entries small, not absent, so ``valid`` is all True there).
    """
    Lm = np.where(valid, L, -np.inf)
    top = np.max(Lm, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.where(valid, np.exp(np.where(valid, L, top) - top), 0.0)
    s = e.sum(axis=-1, keepdims=True)
    return e / np.where(s > 0, s, 1.0)


def softmax_backward(P, dP):
    return P * (dP - np.sum(P * dP, axis=-1, keepdims=True))


# --------------------------------------------------------------------------- Atten2Map
def atten2_map_forward(layer, g2, h2, m, sw, smooth):
    r"""Pair-pair attention weights :math:`A^h_{jk}` of one center, shape (n, nh, J, J).

    .. math::

        [q|k] = g_2 W_{qk},\quad L^h_{jk} = q^h_j\cdot k^h_k/\sqrt{d}\ [\times\, h_{2,j}\cdot h_{2,k}],\quad
        L \leftarrow (L + c)\,\mathrm{sw}_j\mathrm{sw}_k - c\ \text{(smooth)},

        A^h_{jk} = \mathrm{softmax}_k(L^h_j)\,m_j m_k\,[\mathrm{sw}_j\mathrm{sw}_k]\,
        \frac{h_{2,j}\cdot h_{2,k}}{\sqrt3}

    with :math:`d` = ``attn2_hidden``, the shift :math:`c` = ``attnw_shift``; column ``e*(2 nh) + h``
    of :math:`W_{qk}` is component e of head h's query (h < nh) or key (h >= nh).
    """
    n, J, _ = g2.shape
    d, nh = layer.attn2_hidden, layer.attn2_nhead
    qk = layer.mapqk(g2).reshape(n, J, d, 2 * nh)
    q = qk[..., :nh].transpose(0, 3, 1, 2)  # n nh J d
    k = qk[..., nh:].transpose(0, 3, 1, 2)
    L0 = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
    hh = np.einsum("njc,nkc->njk", h2, h2)[:, None]  # n 1 J J
    L1 = L0 * hh if layer.attn2_has_gate else L0
    mm = (m[:, :, None] * m[:, None, :])[:, None]
    ss = (sw[:, :, None] * sw[:, None, :])[:, None]
    if smooth:
        L2 = (L1 + layer.attn2_shift) * ss - layer.attn2_shift
        valid = np.ones(L2.shape, dtype=bool)
    else:
        L2 = L1
        valid = np.broadcast_to(m[:, None, None, :] > 0, L2.shape)
    P = softmax(L2, valid)
    P3 = P * mm
    P4 = P3 * ss if smooth else P3
    A = P4 * hh / np.sqrt(3.0)
    cache = dict(g2=g2, h2=h2, q=q, k=k, L0=L0, L1=L1, hh=hh, mm=mm, ss=ss, P=P, P3=P3, P4=P4, sw=sw, smooth=smooth)
    return A, cache


def _pair_product_grad(dM, v):
    r""":math:`\partial L/\partial v_j` for :math:`M_{jk} = v_j\cdot v_k` given :math:`\bar M` (n, J, J)."""
    return np.einsum("njk,nkc->njc", dM + dM.transpose(0, 2, 1), v)


def _switch_pair_grad(dS, sw):
    r""":math:`\partial L/\partial \mathrm{sw}_j` for :math:`S_{jk} = \mathrm{sw}_j\mathrm{sw}_k`, given
    :math:`\bar S`."""
    return np.einsum("njk,nk->nj", dS, sw) + np.einsum("nkj,nk->nj", dS, sw)


def atten2_map_backward(layer, c, dA):
    """Gradients (dg2, dh2, dsw) of :func:`atten2_map_forward` from ``dA`` (n, nh, J, J)."""
    n, _, J, _ = dA.shape
    d, nh = layer.attn2_hidden, layer.attn2_nhead
    r3 = np.sqrt(3.0)
    dP4 = dA * c["hh"] / r3
    dhh = np.sum(dA * c["P4"], axis=1) / r3  # n J J
    dsw = np.zeros((n, J))
    if c["smooth"]:
        dP3 = dP4 * c["ss"]
        dss = np.sum(dP4 * c["P3"], axis=1)
    else:
        dP3, dss = dP4, np.zeros((n, J, J))
    dP = dP3 * c["mm"]
    dL2 = softmax_backward(c["P"], dP)
    if c["smooth"]:
        dL1 = dL2 * c["ss"]
        dss = dss + np.sum(dL2 * (c["L1"] + layer.attn2_shift), axis=1)
        dsw += _switch_pair_grad(dss, c["sw"])
    else:
        dL1 = dL2
    if layer.attn2_has_gate:
        dL0 = dL1 * c["hh"]
        dhh = dhh + np.sum(dL1 * c["L0"], axis=1)
    else:
        dL0 = dL1
    dh2 = _pair_product_grad(dhh, c["h2"])
    dq = dL0 @ c["k"] / np.sqrt(d)  # n nh J d
    dk = dL0.transpose(0, 1, 3, 2) @ c["q"] / np.sqrt(d)
    dqk = np.concatenate([dq.transpose(0, 2, 3, 1), dk.transpose(0, 2, 3, 1)], axis=-1).reshape(n, J, 2 * d * nh)
    return layer.mapqk.back(dqk), dh2, dsw


# --------------------------------------------------------------------------- Atten2MultiHeadApply (+ LayerNorm)
def layer_norm_forward(ln, x):
    r""":math:`y = (x - \mu)/\sqrt{\sigma^2 + \epsilon}\,w + b` over the last axis (population variance)."""
    w, b, eps = ln
    mu = x.mean(axis=-1, keepdims=True)
    sd = np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + eps)
    xhat = (x - mu) / sd
    return xhat * w + b, (xhat, sd)


def layer_norm_backward(ln, cache, dy):
    r""":math:`\bar x = (\bar{\hat x} - \langle\bar{\hat x}\rangle - \hat x\langle\bar{\hat x}\hat x\rangle)/\sigma`."""
    xhat, sd = cache
    g = dy * ln[0]
    return (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True)) / sd


def atten2_apply_forward(layer, A, g2):
    r""":math:`o^h_j = \sum_k A^h_{jk} v^h_k`, :math:`v = g_2 W_v` (column ``g*nh + h``), then the head map
    and the LayerNorm: the g2 attention update term."""
    n, J, d2 = g2.shape
    nh = layer.attn2_nhead
    v = layer.mapv(g2).reshape(n, J, d2, nh).transpose(0, 3, 1, 2)  # n nh J g
    o = A @ v  # n nh J g
    flat = o.transpose(0, 2, 3, 1).reshape(n, J, d2 * nh)
    y, ln_cache = layer_norm_forward(layer.ln, layer.head_map2(flat))
    return y, dict(A=A, v=v, ln=ln_cache)


def atten2_apply_backward(layer, c, dy):
    """Gradients (dA, dg2) of :func:`atten2_apply_forward`."""
    n, J, d2 = dy.shape
    nh = layer.attn2_nhead
    dflat = layer.head_map2.back(layer_norm_backward(layer.ln, c["ln"], dy))
    do = dflat.reshape(n, J, d2, nh).transpose(0, 3, 1, 2)
    dA = do @ c["v"].transpose(0, 1, 3, 2)
    dv = c["A"].transpose(0, 1, 3, 2) @ do
    return dA, layer.mapv.back(dv.transpose(0, 2, 3, 1).reshape(n, J, d2 * nh))


# --------------------------------------------------------------------------- Atten2EquiVarApply
def atten2_equivariant_forward(layer, A, h2):
    r""":math:`\sum_h w_h \sum_k A^h_{jk} h_{2,k}`: the h2 attention update term (update_h2)."""
    return np.einsum("h,nhjk,nkc->njc", layer.ev_head, A, h2)


def atten2_equivariant_backward(layer, A, h2, dy):
    """Gradients (dA, dh2)."""
    dA = np.einsum("h,njc,nkc->nhjk", layer.ev_head, dy, h2)
    dh2 = np.einsum("h,nhjk,njc->nkc", layer.ev_head, A, dy)
    return dA, dh2


# --------------------------------------------------------------------------- LocalAtten
def local_attention_forward(layer, g1, gg1, m, sw, smooth):
    r"""The g1 attention over an atom's neighbors.

    .. math::

        q = g_1 W_q,\quad [k_j|v_j] = g_{1,j} W_{kv},\quad L^h_j = q^h\cdot k^h_j/\sqrt d,\quad
        L \leftarrow (L + c)\,\mathrm{sw}_j - c\ \text{(smooth)},

        a^h_j = \mathrm{softmax}_j(L^h)\,m_j\,[\mathrm{sw}_j],\qquad
        y = \big[\textstyle\sum_j a^h_j v^h_j\big]_{h\text{-major}} W_o + b_o

    (q column ``e*nh + h``, kv column ``e*nh + h`` with e < d keys and e >= d values, the head map's
    input column ``h*g1_dim + g``).
    """
    n, J, d1 = gg1.shape
    d, nh = layer.attn1_hidden, layer.attn1_nhead
    q = layer.mapq(g1).reshape(n, d, nh).transpose(0, 2, 1)  # n nh d
    kv = layer.mapkv(gg1).reshape(n, J, d + d1, nh).transpose(0, 3, 1, 2)  # n nh J (d+d1)
    k, v = kv[..., :d], kv[..., d:]
    L = np.einsum("nhd,nhjd->nhj", q, k) / np.sqrt(d)
    if smooth:
        L2 = (L + layer.attn1_shift) * sw[:, None, :] - layer.attn1_shift
        valid = np.ones(L2.shape, dtype=bool)
    else:
        L2 = L
        valid = np.broadcast_to(m[:, None, :] > 0, L2.shape)
    P = softmax(L2, valid)
    a = P * m[:, None, :] * (sw[:, None, :] if smooth else 1.0)
    o = np.einsum("nhj,nhjg->nhg", a, v)
    y = layer.head_map1(o.reshape(n, nh * d1))
    return y, dict(q=q, k=k, v=v, L=L, P=P, a=a, m=m, sw=sw, smooth=smooth)


def local_attention_backward(layer, c, dy):
    """Gradients (dg1, dgg1, dsw) of :func:`local_attention_forward`."""
    n, nh, J, d1 = c["v"].shape
    d = layer.attn1_hidden
    do = layer.head_map1.back(dy).reshape(n, nh, d1)
    da = np.einsum("nhg,nhjg->nhj", do, c["v"])
    dv = np.einsum("nhj,nhg->nhjg", c["a"], do)
    dsw = np.zeros((n, J))
    m, sw = c["m"][:, None, :], c["sw"][:, None, :]
    if c["smooth"]:
        dP = da * m * sw
        dsw += np.sum(da * c["P"] * m, axis=1)
    else:
        dP = da * m
    dL2 = softmax_backward(c["P"], dP)
    if c["smooth"]:
        dL = dL2 * sw
        dsw += np.sum(dL2 * (c["L"] + layer.attn1_shift), axis=1)
    else:
        dL = dL2
    dq = np.einsum("nhj,nhjd->nhd", dL, c["k"]) / np.sqrt(d)
    dk = np.einsum("nhj,nhd->nhjd", dL, c["q"]) / np.sqrt(d)
    dg1 = layer.mapq.back(dq.transpose(0, 2, 1).reshape(n, d * nh))
    dkv = np.concatenate([dk, dv], axis=-1).transpose(0, 2, 3, 1).reshape(n, J, (d + d1) * nh)
    return dg1, layer.mapkv.back(dkv), dsw
