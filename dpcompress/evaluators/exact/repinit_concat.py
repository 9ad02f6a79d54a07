r"""DPA-2's repinit with ``tebd_input_mode`` "concat" in numpy, exact: forward and hand-derived backward.

One net on :math:`u_j = [\tilde R_{j,0}, E_{t_j}, E_{t_i}]` (``type_one_side``: :math:`[\tilde R_{j,0}, E_{t_j}]`),
see :class:`~dpcompress.descriptors.dpa2_repinit.RepinitConcat`:

.. math::

    G_j = \mathcal N(u_j),\qquad T = \frac1N\sum_j \tilde R_j^\top\otimes G_j,\qquad
    D = \mathrm{vec}(T^\top T_{:, :A})

Only :math:`\tilde R_{j,0}` depends on the coordinates, so the net is needed with its derivative in
its first input, :math:`G'_j = \partial G_j/\partial u_{j,0}` (:func:`net_value_and_slope`).  Backward
as se_atten_v2 without the gate: with :math:`\bar T` and :math:`v_{jm} = \sum_k \tilde R_{jk}\bar T_{km}`,
:math:`\partial E/\partial\tilde R_{jk} = \frac1N\sum_m \bar T_{km}G_{jm} + \delta_{k0}\frac1N\sum_m G'_{jm} v_{jm}`.
"""

import numpy as np

from ...core.activations import activate
from ...core.env_mat import env_mat_se_a


def net_value_and_slope(net, x):
    r"""The net on rows ``x`` (m, n_in) and its derivative in input 0, by forward mode.

    :math:`y_k = d\odot\varphi(z_k) + \rho(y_{k-1})`, :math:`y_k' = d\odot\varphi'(z_k)(y_{k-1}'W_k) + \rho(y_{k-1}')`,
    :math:`y_0' = e_0`.
    """
    y = x
    dy = np.zeros_like(x)
    dy[:, 0] = 1.0
    for layer in net.layers:
        z = y @ layer.w
        if layer.b is not None:
            z = z + layer.b
        phi, dphi = activate(layer.activation, z, order=1)
        ny, ndy = phi, dphi * (dy @ layer.w)
        if layer.idt is not None:
            ny, ndy = ny * layer.idt, ndy * layer.idt
        kind = layer.residual
        if kind == "identity":
            ny, ndy = ny + y, ndy + dy
        elif kind == "double":
            ny, ndy = ny + np.concatenate([y, y], axis=-1), ndy + np.concatenate([dy, dy], axis=-1)
        y, dy = ny, ndy
    return y, dy


def descriptor_forward(desc, atom_types, neighbor_types, vectors, real, zeroed):
    """Repinit descriptor (n, M * A) and cache; arguments as :func:`.se_atten_v2.descriptor_forward`
    (``zeroed``: slots of excluded type pairs, whose rows are zero as DeePMD-kit's)."""
    n, nnei = real.shape
    real = real & ~zeroed
    R, dR = env_mat_se_a(vectors, real, desc.rcut, desc.rcut_smth, desc.env_protection)
    Rt = (R - desc.davg[atom_types]) / desc.dstd[atom_types]
    E = desc.type_embedding
    # empty slots: any type will do (their R row is zero); DeePMD-kit uses the first atom's, we use the padding row
    parts = [Rt[..., :1], E[np.where(real, neighbor_types, -1)]]
    if not desc.type_one_side:
        parts.append(np.broadcast_to(E[atom_types][:, None, :], (n, nnei, E.shape[1])))
    u = np.concatenate(parts, axis=-1).reshape(n * nnei, -1)
    g, dg = net_value_and_slope(desc.net, u)
    M, A = desc.neuron[-1], desc.axis_neuron
    G, dG = g.reshape(n, nnei, M), dg.reshape(n, nnei, M)
    T = np.einsum("njk,njm->nkm", Rt, G) / nnei
    D = np.einsum("nkm,nka->nma", T, T[:, :, :A]).reshape(n, M * A)
    return D, dict(atom_types=atom_types, real=real, dR=dR, Rt=Rt, G=G, dG=dG, T=T)


def descriptor_backward(desc, cache, dD):
    """:math:`\\partial E/\\partial\\mathbf r_{ij}` (n, nnei, 3) from :math:`\\bar D` (n, M * A)."""
    T, G, dG, Rt = (cache[k] for k in ("T", "G", "dG", "Rt"))
    n, nnei, M = G.shape
    A = desc.axis_neuron
    dD = dD.reshape(n, M, A)
    dT = np.einsum("nma,nka->nkm", dD, T[:, :, :A])
    dT[:, :, :A] += np.einsum("nma,nkm->nka", dD, T)
    v = np.einsum("njk,nkm->njm", Rt, dT)
    dRt = np.einsum("nkm,njm->njk", dT, G) / nnei
    dRt[:, :, 0] += np.einsum("njm,njm->nj", dG, v) / nnei
    dRt[~cache["real"]] = 0.0
    dR = dRt / desc.dstd[cache["atom_types"]]
    return np.einsum("njk,njkb->njb", dR, cache["dR"])
