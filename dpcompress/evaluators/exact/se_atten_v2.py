r"""se_atten_v2 and se_atten (v1) without attention layers (stripped type embedding) in numpy, exact
(no tables).

Forward, for every center atom :math:`i` of type :math:`t_i` with its
:math:`N` = ``sel[0]`` mixed-type slots (see
:class:`~dpcompress.descriptors.se_atten_v2.DescriptorSeAttenV2`):

.. math::

    \tilde R_j = (R_j - \bar R_{t_i j})/\sigma_{t_i j},\quad
    \tau_j = S_{q(i,j)}\,w_j,\quad
    \hat G_j = G_s(\tilde R_{j,0}) \odot (1 + \tau_j),

    T = \frac1N\sum_j \tilde R_j^\top\otimes\hat G_j,\qquad
    D = \big[\,T^\top T_{:, :A},\ E_{t_i}\,\big]

with :math:`w_j = \mathrm{sw}(r_j)` (``smooth_type_embedding``, se_atten_v2) or
:math:`w_j = 1` (se_atten v1).  Smooth, padding and excluded slots have :math:`w = 0` (no
gate); not smooth, padding slots take the padding type's row :math:`S_{q(i,\text{pad})}`.
Excluded slots have :math:`\tilde R = 0`.

Backward, from :math:`\bar T = \partial E/\partial T` (as se_e2_a) and
:math:`u_{jm} = \sum_k \tilde R_{jk}\bar T_{km}`:

.. math::

    \frac{\partial E}{\partial \tilde R_{jk}} = \frac1N\sum_m \bar T_{km}\hat G_{jm}
        + \delta_{k0}\frac1N\sum_m G'_{s,m}(x_j)(1+\tau_{jm})\,u_{jm},\qquad
    \frac{\partial E}{\partial w_j} = \frac1N\sum_m G_{s,m}(x_j)\,S_{q m}\,u_{jm}

and :math:`\partial E/\partial\mathbf r_{ij}` collects both through
:math:`\partial R/\partial\mathbf r` (se_e2_a) and :math:`\mathrm{sw}'(r)\hat{\mathbf r}`
(smooth only: :math:`w = 1` does not depend on :math:`r`).
The appended type embedding has no coordinate gradient.

DPA-1 with attention layers (``desc.attention``): the rows :math:`\hat G_j` pass through the layers
of :mod:`.dpa1_attention` before the sum (:math:`T = \frac1N\sum_j\tilde R_j^\top\otimes X^{(L)}_j`),
and the backward pass goes through their adjoint from :math:`\partial E/\partial X^{(L)} = u/N`,
adding the attention's :math:`\partial E/\partial w_j` (smooth) and the directions'
:math:`\partial E/\partial\tilde R_{j,1:4}`; sw is then evaluated in DeePMD-kit's operation order
(:func:`~dpcompress.core.env_mat.smooth_switch_deepmd_order`).
"""

import numpy as np

from ...core.env_mat import smooth_switch, smooth_switch_deepmd_order
from ...core.networks import embedding_with_derivatives
from . import dpa1_attention
from .environment import normalised_env_mat


def switch_and_derivative(desc, vectors, mask):
    """:math:`\\mathrm{sw}(r)` and :math:`\\mathrm{sw}'(r)\\hat{\\mathbf r}` per slot, zero where ``mask`` is False."""
    vec = np.where(mask[..., None], vectors, 0.0)
    r = np.where(mask, np.linalg.norm(vec, axis=-1), 1.0)
    sw, dsw = smooth_switch(r, desc.rcut_smth, desc.rcut)
    return sw * mask, (dsw * mask / r)[..., None] * vec


def descriptor_forward(desc, atom_types, neighbor_types, vectors, real, zeroed):
    """Descriptor of a batch of center atoms.

    Parameters
    ----------
    desc : DescriptorSeAttenV2
    atom_types : ndarray of int, shape (n,)
        Types of the center atoms.
    neighbor_types : ndarray of int, shape (n, nnei)
        Type of each slot's neighbor, -1 on padding.
    vectors : ndarray, shape (n, nnei, 3)
    real : ndarray of bool, shape (n, nnei)
    zeroed : ndarray of bool, shape (n, nnei)
        Real slots of the descriptor's ``exclude_types`` pairs.

    Returns
    -------
    D : ndarray, shape (n, M * A [+ tebd_dim])
    cache : dict
    """
    n, nnei = real.shape
    # attention: DeePMD-kit's rounding of sw near rcut (see smooth_switch_deepmd_order)
    switch = smooth_switch_deepmd_order if desc.attention is not None else smooth_switch
    Rt, dR = normalised_env_mat(desc, atom_types, vectors, real, zeroed, switch=switch)
    gated = real & ~zeroed
    if desc.smooth_type_embedding:
        sw, dsw = switch_and_derivative(desc, vectors, gated)
    else:  # v1: the gate is not switched; padding slots get it too (their S is the padding type's row)
        sw, dsw = np.ones((n, nnei)), np.zeros((n, nnei, 3))
    # excluded neighbors look like padding to the type gate (DeePMD-kit sets their index to -1)
    S = desc.gate_table()[desc.gate_rows(atom_types, np.where(gated, neighbor_types, -1))]
    M, A = desc.n_channels, desc.axis_neuron
    if desc.embedding_net() is None:  # repinit of a compressed DPA-2 (dpa2_tables): G_s and G_s' from its table
        g, dg = desc.embedding_table()(Rt[..., 0].ravel())
    else:
        g, dg, _ = embedding_with_derivatives(desc.embedding_net(), Rt[..., 0].ravel())
    G, dG = g.reshape(n, nnei, M), dg.reshape(n, nnei, M)
    gate = 1.0 + S * sw[..., None]
    X = G * gate
    if desc.attention is not None:  # DPA-1's attention layers mix the rows (smooth: switched, else masked)
        X = dpa1_attention.rows_forward(desc.attention, X, gated, sw * gated, Rt)
    T = np.einsum("njk,njm->nkm", Rt, X) / nnei
    D = np.einsum("nkm,nka->nma", T, T[:, :, :A]).reshape(n, M * A)
    if desc.concat_output_tebd:
        D = np.concatenate([D, desc.type_embedding[atom_types]], axis=1)
    cache = dict(atom_types=atom_types, gated=gated, dR=dR, dsw=dsw, Rt=Rt, G=G, dG=dG, S=S, gate=gate, T=T, sw=sw, X=X)
    return D, cache


def descriptor_backward(desc, cache, dD):
    """Gradient of the energy with respect to every neighbor vector.

    Parameters
    ----------
    dD : ndarray, shape (n, dim_out)
        :math:`\\partial E/\\partial D` (the type-embedding columns are ignored).

    Returns
    -------
    ndarray, shape (n, nnei, 3)
        :math:`\\partial E/\\partial \\mathbf r_{ij}` (zero on padding and excluded slots).
    """
    T, G, dG, Rt, S, gate = (cache[k] for k in ("T", "G", "dG", "Rt", "S", "gate"))
    n, nnei, M = G.shape
    A = desc.axis_neuron
    dD = dD[:, : M * A].reshape(n, M, A)
    dT = np.einsum("nma,nka->nkm", dD, T[:, :, :A])
    dT[:, :, :A] += np.einsum("nma,nkm->nka", dD, T)
    mask = cache["gated"]
    u = np.einsum("njk,nkm->njm", Rt, dT)
    dRt = np.einsum("nkm,njm->njk", dT, cache["X"]) / nnei
    if desc.attention is None:
        dRt[:, :, 0] += np.einsum("njm,njm->nj", dG * gate, u) / nnei
        dsw = np.einsum("njm,njm->nj", G * S, u) / nnei
    else:  # back through the attention layers from dE/dX^L = u / N
        dX, dsw_att, dRdir = dpa1_attention.rows_backward(desc.attention, G * gate, mask, cache["sw"] * mask, Rt,
                                                          u / nnei)
        dRt[:, :, 1:4] += dRdir
        dRt[:, :, 0] += np.einsum("njm,njm->nj", dG * gate, dX)
        dsw = np.einsum("njm,njm->nj", G * S, dX) + (dsw_att if desc.smooth_type_embedding else 0.0)
    dRt[~mask] = 0.0
    dsw[~mask] = 0.0
    dR = dRt / desc.dstd[cache["atom_types"]]
    return np.einsum("njk,njkb->njb", dR, cache["dR"]) + dsw[..., None] * cache["dsw"]
