r"""One DPA-2 repformer layer in numpy: forward with an explicit cache, hand-derived backward.

Inputs per layer: :math:`g_1` (n, d1) of the local atoms, :math:`g_2` (n, J, d2) and
:math:`h_2` (n, J, 3) per neighbor slot, the slot's atom ``idx`` (n, J) (a local atom: periodic
images share their atom's :math:`g_1`), ``m`` (1 on real slots) and the switch ``sw``.  With
:math:`w_j = m_j\mathrm{sw}_j` (smooth) or :math:`m_j` and :math:`\tilde g_{1,j} = g_1[\mathrm{idx}_j]`:

.. math::

    \text{conv} = c_1 \textstyle\sum_j (g_{2,j}W_p)\odot w_j\tilde g_{1,j}
        \quad(\text{g1\_out\_conv false: } c_1\textstyle\sum_j g_{2,j}\odot w_j(\tilde g_{1,j}W_p)),

    \mathrm{hg}(X) = c_2 \textstyle\sum_j h_{2,j}\otimes w_j X_j\ (3\times n_X),\qquad
    \mathrm{sym}(X) = \mathrm{vec}\big(\mathrm{hg}_{:, :a}^\top\,\mathrm{hg}\big)/3,

    g_1' = \mathrm{upd}\big(g_1,\ \varphi(g_1 W_s + b_s),\ \text{conv},\
        \varphi([\,\mathrm{sym}(g_2), \mathrm{sym}(\tilde g_1)\,]W_1 + b_1),\ \mathrm{LocalAtten}(g_1, \tilde g_1)\big),

    g_2' = \mathrm{upd}\big(g_2,\ \varphi(g_2W_2 + b_2),\ (w_j\, g_1\odot\tilde g_{1,j})W_{12},\
        \mathrm{LN}(\mathrm{MHApply}(A, g_2))\big),\qquad
    h_2' = \mathrm{upd}\big(h_2,\ \mathrm{EV}(A, h_2)\big)

with :math:`c_1 = 1/J` and :math:`c_2 = 1/\sqrt J` (``use_sqrt_nnei``) or :math:`1/J` when smooth,
:math:`1/(10^{-4} + n_\text{real})` and :math:`1/(10^{-4} + \sqrt{n_\text{real}})` (or
:math:`n_\text{real}`) otherwise; terms present per option (``docs/dp-file-attention.md`` section 2),
:math:`A` of :func:`~.repformer_attention.atten2_map_forward`.  The update
:math:`\mathrm{upd}(t_0, \dots, t_K)` is :math:`\sum_k t_k/\sqrt{K+1}` (res_avg),
:math:`t_0 + \sum_{k\ge1} t_k/\sqrt K` (res_incr) or :math:`t_0 + \sum_{k\ge1} r_k\odot t_k` (res_residual).

Backward: every term's adjoint is written next to its forward; the gradient of :math:`\tilde g_1`
is scattered back onto :math:`g_1` through ``idx`` (the message-passing part of the chain rule).
"""

import numpy as np

from ...core.activations import activate
from . import repformer_attention as att

EPSILON = 1e-4  # DeePMD-kit's protection of 1/n_real (non-smooth only)


def update_coefficients(layer, n_terms, which):
    """The weights :math:`(1, r_1, \\dots)` of the update terms (scalars or vectors)."""
    if layer.update_style == "res_avg":
        return [1.0 / np.sqrt(n_terms)] * n_terms
    if layer.update_style == "res_incr":
        return [1.0] + ([1.0 / np.sqrt(n_terms - 1)] * (n_terms - 1) if n_terms > 1 else [])
    return [1.0] + list(getattr(layer, f"{which}_residual"))


def _norms(m, J, smooth, sqrt_nnei):
    """(c_1, c_2) per center, shape (n, 1)."""
    n_real = m.sum(axis=1, keepdims=True)
    if smooth:
        return np.full_like(n_real, 1.0 / J), np.full_like(n_real, 1.0 / (np.sqrt(J) if sqrt_nnei else J))
    return 1.0 / (EPSILON + n_real), 1.0 / (EPSILON + (np.sqrt(n_real) if sqrt_nnei else n_real))


def sym_forward(X, h2, w, c2, ax):
    """:math:`\\mathrm{sym}(X)` (n, ax * n_X), row-major (ax, n_X), and its cache."""
    Xw = X * w[..., None]
    hg = c2[:, :, None] * np.einsum("njc,njg->ncg", h2, Xw)
    out = np.einsum("nca,ncg->nag", hg[:, :, :ax], hg) / 3.0
    return out.reshape(len(X), -1), (X, Xw, hg)


def sym_backward(cache, h2, w, c2, ax, dout):
    """Gradients (dX, dh2, dw) of :func:`sym_forward`."""
    X, Xw, hg = cache
    n, nX = X.shape[0], X.shape[-1]
    d = dout.reshape(n, ax, nX)
    dhg = np.einsum("nag,nca->ncg", d, hg[:, :, :ax]) / 3.0
    dhg[:, :, :ax] += np.einsum("nag,ncg->nca", d, hg) / 3.0
    dhg = dhg * c2[:, :, None]
    dXw = np.einsum("njc,ncg->njg", h2, dhg)
    dh2 = np.einsum("ncg,njg->njc", dhg, Xw)
    return dXw * w[..., None], dh2, np.sum(dXw * X, axis=-1)


def layer_forward(layer, g1, g2, h2, idx, m, sw, smooth, act, sqrt_nnei):
    """One repformer layer: (g1', g2', h2') and the cache of :func:`layer_backward`."""
    n, J, _ = g2.shape
    gg1 = g1[idx]
    w = m * sw if smooth else m
    c1, c2 = _norms(m, J, smooth, sqrt_nnei)
    ax = layer.axis_neuron
    c = dict(gg1=gg1, w=w, c1=c1, c2=c2, g1=g1, g2=g2, h2=h2)
    U1, mlp_in = [g1], []
    if layer.g1_out_mlp:
        a, c["d_self"] = activate(act, layer.g1_self_mlp(g1), order=1)
        U1.append(a)
    else:
        mlp_in.append(g1)
    g2_new, h2_new = g2, h2
    if layer.update_chnnl_2:
        a, c["d_lin2"] = activate(act, layer.linear2(g2), order=1)
        U2, Uh = [g2, a], [h2]
        if layer.g2_has_g1g1:
            U2.append(layer.proj_g1g1g2(g1[:, None, :] * gg1 * w[..., None]))
        if layer.g2_has_attn or layer.update_h2:
            A, c["map"] = att.atten2_map_forward(layer, g2, h2, m, sw, smooth)
            c["A"] = A
            if layer.g2_has_attn:
                y, c["apply"] = att.atten2_apply_forward(layer, A, g2)
                U2.append(y)
            if layer.update_h2:
                Uh.append(att.atten2_equivariant_forward(layer, A, h2))
        c["n2"], c["nh"] = len(U2), len(Uh)
        k2, kh = update_coefficients(layer, len(U2), "g2"), update_coefficients(layer, len(Uh), "h2")
        g2_new = sum(k * t for k, t in zip(k2, U2))
        h2_new = sum(k * t for k, t in zip(kh, Uh))
    if layer.g1_has_conv:
        if layer.g1_out_conv:
            c["pg2"] = layer.proj_g1g2(g2)
            U1.append(c1 * np.einsum("njg,njg->ng", c["pg2"], gg1 * w[..., None]))
        else:
            c["pgg1"] = layer.proj_g1g2(gg1)
            mlp_in.append(c1 * np.einsum("njg,njg->ng", g2, c["pgg1"] * w[..., None]))
    if layer.g1_has_grrg:
        out, c["grrg"] = sym_forward(g2, h2, w, c2, ax)
        mlp_in.append(out)
    if layer.g1_has_drrd:
        out, c["drrd"] = sym_forward(gg1, h2, w, c2, ax)
        mlp_in.append(out)
    c["widths"] = [x.shape[1] for x in mlp_in]
    a, c["d_lin1"] = activate(act, layer.linear1(np.concatenate(mlp_in, axis=1)), order=1)
    U1.append(a)
    if layer.g1_has_attn:
        y, c["loc"] = att.local_attention_forward(layer, g1, gg1, m, sw, smooth)
        U1.append(y)
    c["n1"] = len(U1)
    g1_new = sum(k * t for k, t in zip(update_coefficients(layer, len(U1), "g1"), U1))
    return g1_new, g2_new, h2_new, c


def layer_backward(layer, c, dg1_new, dg2_new, dh2_new, idx, m, smooth):
    r"""Gradients (dg1, dg2, dh2, dsw) of one layer from those of its outputs.

    ``dg1`` includes the messages: :math:`\bar g_{1,a} \mathrel{+}= \sum_{(i,j):\,\mathrm{idx}_{ij}=a}
    m_{ij}\,\bar{\tilde g}_{1,ij}`.
    """
    g1, g2, h2, gg1, w, c1, c2 = (c[k] for k in ("g1", "g2", "h2", "gg1", "w", "c1", "c2"))
    ax = layer.axis_neuron
    dw_dsw = m if smooth else np.zeros_like(m)
    dw = np.zeros_like(w)
    dgg1 = np.zeros_like(gg1)
    k1 = update_coefficients(layer, c["n1"], "g1")
    dU1 = [k * dg1_new for k in k1]
    dg1 = dU1[0].copy()
    t = 1
    if layer.g1_out_mlp:
        dg1 += layer.g1_self_mlp.back(dU1[t] * c["d_self"])
        t += 1
    dg2 = np.zeros_like(g2)
    dh2 = np.zeros_like(h2)
    if layer.g1_has_conv and layer.g1_out_conv:
        dconv = dU1[t][:, None, :] * c1[:, :, None]  # n 1 d1
        t += 1
        dg2 += layer.proj_g1g2.back(dconv * gg1 * w[..., None])
        dgg1 += dconv * c["pg2"] * w[..., None]
        dw += np.sum(dconv * c["pg2"] * gg1, axis=-1)
    # linear1 and its inputs, in the forward's order
    dz1 = dU1[t] * c["d_lin1"]
    t += 1
    din = np.split(layer.linear1.back(dz1), np.cumsum(c["widths"])[:-1], axis=1)
    p = 0
    if not layer.g1_out_mlp:
        dg1 += din[p]
        p += 1
    if layer.g1_has_conv and not layer.g1_out_conv:
        dconv = din[p][:, None, :] * c1[:, :, None]  # n 1 d2
        p += 1
        dg2 += dconv * c["pgg1"] * w[..., None]
        dgg1 += layer.proj_g1g2.back(dconv * g2 * w[..., None])
        dw += np.sum(dconv * g2 * c["pgg1"], axis=-1)
    for name, on in (("grrg", layer.g1_has_grrg), ("drrd", layer.g1_has_drrd)):
        if on:
            dX, dh, dwx = sym_backward(c[name], h2, w, c2, ax, din[p])
            p += 1
            dh2 += dh
            dw += dwx
            if name == "grrg":
                dg2 += dX
            else:
                dgg1 += dX
    dsw = np.zeros_like(m)
    if layer.g1_has_attn:
        dg1_a, dgg1_a, dsw_a = att.local_attention_backward(layer, c["loc"], dU1[t])
        dg1 += dg1_a
        dgg1 += dgg1_a
        dsw += dsw_a
    if layer.update_chnnl_2:
        k2 = update_coefficients(layer, c["n2"], "g2")
        kh = update_coefficients(layer, c["nh"], "h2")
        dU2 = [k * dg2_new for k in k2]
        dUh = [k * dh2_new for k in kh]
        dg2 += dU2[0] + layer.linear2.back(dU2[1] * c["d_lin2"])
        dh2 += dUh[0]
        s = 2
        if layer.g2_has_g1g1:
            dx = layer.proj_g1g1g2.back(dU2[s])
            s += 1
            dg1 += np.einsum("njg,njg->ng", dx, gg1 * w[..., None])
            dgg1 += dx * g1[:, None, :] * w[..., None]
            dw += np.sum(dx * g1[:, None, :] * gg1, axis=-1)
        if layer.g2_has_attn or layer.update_h2:
            dA = np.zeros_like(c["A"])
            if layer.g2_has_attn:
                dA_m, dg2_m = att.atten2_apply_backward(layer, c["apply"], dU2[s])
                dA += dA_m
                dg2 += dg2_m
            if layer.update_h2:
                dA_e, dh2_e = att.atten2_equivariant_backward(layer, c["A"], h2, dUh[1])
                dA += dA_e
                dh2 += dh2_e
            dg2_a, dh2_a, dsw_a = att.atten2_map_backward(layer, c["map"], dA)
            dg2 += dg2_a
            dh2 += dh2_a
            dsw += dsw_a
    else:
        dg2 += dg2_new
        dh2 += dh2_new
    dsw += dw * dw_dsw
    # messages: each slot's g1 came from atom idx (images included); empty slots carry no gradient
    np.add.at(dg1, idx, dgg1 * m[..., None])
    return dg1, dg2, dh2, dsw
