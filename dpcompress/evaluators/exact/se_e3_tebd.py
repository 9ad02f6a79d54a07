r"""se_e3_tebd (se_t_tebd, stripped type embedding) in numpy, forward and backward, exact (no tables).

Forward, for every center atom :math:`i` with its :math:`N` = ``sel[0]`` mixed-type slots (see
:class:`~dpcompress.descriptors.se_e3_tebd.DescriptorSeTTebd`), :math:`\tilde{\mathbf r}_j` the
angular part of the normalised row of slot :math:`j`, :math:`w_j = \mathrm{sw}(r_j)` (``smooth``;
0 on padding and excluded slots) or 1, and :math:`S_{jk} = \mathrm{tt}_{t_j (n_t+1) + t_k}` (padding: type
:math:`n_t`):

.. math::

    e_{jk} = \tilde{\mathbf r}_j\cdot\tilde{\mathbf r}_k,\qquad
    c_{jk} = 1 + S_{jk}\, w_j w_k,\qquad
    D_m = \frac{1}{N^2}\sum_{j,k} e_{jk}\, G_m(e_{jk})\, c_{jkm}

then :math:`[D, E_{t_i}]` (``concat_output_tebd``; no coordinate gradient).

Backward, from :math:`\bar D = \partial E/\partial D`:

.. math::

    \bar e_{jk} = \frac{1}{N^2}\sum_m \bar D_m\big(G_m + e_{jk} G'_m\big)c_{jkm},\qquad
    \bar p_{jk} = \frac{1}{N^2}\sum_m \bar D_m\, e_{jk} G_m S_{jkm}\quad(p_{jk} = w_j w_k),

    \frac{\partial E}{\partial\tilde{\mathbf r}_j} = \sum_k (\bar e_{jk} + \bar e_{kj})\,\tilde{\mathbf r}_k,\qquad
    \frac{\partial E}{\partial w_j} = \sum_k (\bar p_{jk} + \bar p_{kj})\, w_k

and :math:`\partial E/\partial\mathbf r_{ij} = \sum_c \frac{\partial E}{\partial\tilde r_{jc}}
\frac{1}{\sigma_c}\frac{\partial R_c}{\partial\mathbf r_{ij}} + \frac{\partial E}{\partial w_j}
\mathrm{sw}'(r)\hat{\mathbf r}` (the second term only when ``smooth``).  Centers are taken in
sub-batches so that the :math:`N\times N\times M` intermediates stay small; the backward pass
evaluates the net again instead of keeping them.
"""

import numpy as np

from ...core.networks import embedding_value_and_slope
from .environment import normalised_env_mat
from .se_atten_v2 import switch_and_derivative

#: centers per sub-batch (an N x N x M block of doubles each)
BATCH = 32


def _pairs(desc, rr, t, w, lo, hi):
    """e, G, G', the gate c and S for centers lo:hi: shapes (b, N, N[, M])."""
    e = np.einsum("nja,nka->njk", rr[lo:hi], rr[lo:hi])
    M, nt = desc.n_channels, desc.ntypes
    g, dg = embedding_value_and_slope(desc.embedding_net(), e.ravel())
    S = desc.pair_table()[t[lo:hi, :, None] * (nt + 1) + t[lo:hi, None, :]]
    c = 1.0 + S * (w[lo:hi, :, None] * w[lo:hi, None, :])[..., None]
    return e, g.reshape(e.shape + (M,)), dg.reshape(e.shape + (M,)), c, S


def descriptor_forward(desc, center_types, neighbor_types, vectors, real, zeroed):
    """Descriptor of a batch of center atoms.

    Parameters
    ----------
    desc : DescriptorSeTTebd
    center_types : ndarray of int, shape (n,)
    neighbor_types : ndarray of int, shape (n, nnei)
        Type of each slot's neighbor, -1 on padding.
    vectors : ndarray, shape (n, nnei, 3)
    real : ndarray of bool, shape (n, nnei)
    zeroed : ndarray of bool, shape (n, nnei)
        Real slots of the descriptor's ``exclude_types`` pairs: row zeroed (:math:`\\tilde{\\mathbf r} = 0`),
        no gate, no switch term.

    Returns
    -------
    D : ndarray, shape (n, M [+ tebd_dim])
    cache : dict
    """
    n, nnei = real.shape
    Rt, dR = normalised_env_mat(desc, center_types, vectors, real, zeroed)
    rr = Rt[:, :, 1:]
    live = real & ~zeroed
    if desc.smooth:
        w, dw = switch_and_derivative(desc, vectors, live)
    else:
        w, dw = np.ones((n, nnei)), np.zeros((n, nnei, 3))
    nt = desc.ntypes
    t = np.where(live, neighbor_types, nt)
    D = np.zeros((n, desc.n_channels))
    for lo in range(0, n, BATCH):
        hi = min(lo + BATCH, n)
        e, G, _, c, _ = _pairs(desc, rr, t, w, lo, hi)
        D[lo:hi] = np.einsum("njk,njkm->nm", e, G * c) / nnei**2
    if desc.concat_output_tebd:
        D = np.concatenate([D, desc.type_embedding[center_types]], axis=1)
    cache = dict(center_types=center_types, live=live, dR=dR, rr=rr, w=w, dw=dw, t=t)
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
        :math:`\\partial E/\\partial \\mathbf r_{ij}` (zero on padding slots).
    """
    rr, w, t = cache["rr"], cache["w"], cache["t"]
    n, nnei, _ = rr.shape
    M = desc.n_channels
    dD = dD[:, :M]
    drr = np.zeros_like(rr)
    dw = np.zeros((n, nnei))
    for lo in range(0, n, BATCH):
        hi = min(lo + BATCH, n)
        e, G, dG, c, S = _pairs(desc, rr, t, w, lo, hi)
        d = dD[lo:hi] / nnei**2
        de = np.einsum("nm,njkm->njk", d, (G + e[..., None] * dG) * c)
        dp = e * np.einsum("nm,njkm->njk", d, G * S)
        de = de + de.transpose(0, 2, 1)
        dp = dp + dp.transpose(0, 2, 1)
        drr[lo:hi] = np.einsum("njk,nka->nja", de, rr[lo:hi])
        dw[lo:hi] = np.einsum("njk,nk->nj", dp, w[lo:hi])
    live = cache["live"]
    drr[~live] = 0.0
    dw[~live] = 0.0
    dRt = drr / desc.dstd[cache["center_types"]][:, :, 1:]
    grad = np.einsum("nja,njab->njb", dRt, cache["dR"][:, :, 1:, :])
    if desc.smooth:
        grad += dw[..., None] * cache["dw"]
    return grad
