r"""The se_e3 (se_t) descriptor in numpy, forward and backward, exact (no tables).

Forward, for every center atom :math:`i` (all arrays per atom), with the
normalised rows :math:`\tilde R_j = (R_j - \bar R_j)/\sigma_j` (zeroed for
excluded type pairs) and their angular parts :math:`\tilde{\mathbf r}_j = \tilde R_j[1{:}4]`:

.. math::

    e_{jk} = \tilde{\mathbf r}_j\cdot\tilde{\mathbf r}_k,\qquad
    D_m = \sum_{a\le b} c_{ab} \sum_{j\in a,\,k\in b} e_{jk}\,G^{(a,b)}_m(e_{jk}),\qquad
    c_{ab} = \frac{1}{N_a N_b}

Backward, from :math:`\bar D = \partial E/\partial D`:

.. math::

    \bar e_{jk} = c_{ab}\sum_m \bar D_m\,\big(G_m(e_{jk}) + e_{jk} G'_m(e_{jk})\big),\qquad
    \frac{\partial E}{\partial\tilde{\mathbf r}_j} \mathrel{+}= \sum_k \bar e_{jk}\,\tilde{\mathbf r}_k,\qquad
    \frac{\partial E}{\partial\tilde{\mathbf r}_k} \mathrel{+}= \sum_j \bar e_{jk}\,\tilde{\mathbf r}_j

then through :math:`\partial\tilde R/\partial R = 1/\sigma` and the environment-matrix
derivative to :math:`\partial E/\partial\mathbf r_{ij}` (the radial column does not enter).
Padding slots are included as DeePMD-kit has them (:math:`R = 0`); with the usual
zero angular average they contribute nothing.
"""

import numpy as np

from ...core.networks import embedding_value_and_slope
from .environment import normalised_env_mat


def _block_pairs(desc):
    """``(a, b, slice_a, slice_b)`` for every neighbor-type pair a <= b with slots on both sides."""
    offsets = np.concatenate([[0], np.cumsum(desc.sel)])
    for a in range(desc.ntypes):
        for b in range(a, desc.ntypes):
            if desc.sel[a] and desc.sel[b]:
                yield a, b, slice(offsets[a], offsets[a + 1]), slice(offsets[b], offsets[b + 1])


def descriptor_forward(desc, center_types, neighbor_types, vectors, real, zeroed):
    """Descriptor of a batch of center atoms.

    Parameters
    ----------
    desc : DescriptorSeT
    center_types : ndarray of int, shape (n,)
    neighbor_types : ndarray of int, shape (n, nnei)
        Not needed: the blocks are per neighbor type.
    vectors : ndarray, shape (n, nnei, 3)
        :math:`\\mathbf r_{ij}` per slot.
    real : ndarray of bool, shape (n, nnei)
        Slots holding a real neighbor (after the model's pair exclusions).
    zeroed : ndarray of bool, shape (n, nnei)
        Real slots of the descriptor's ``exclude_types``: normalised row set to 0.

    Returns
    -------
    D : ndarray, shape (n, M)
    cache : dict
        What :func:`descriptor_backward` needs.
    """
    n, nnei = real.shape
    Rt, dR = normalised_env_mat(desc, center_types, vectors, real, zeroed)
    rr = Rt[:, :, 1:]
    M = desc.n_channels
    D = np.zeros((n, M))
    pairs = []
    for a, b, sa, sb in _block_pairs(desc):
        e = np.einsum("nja,nka->njk", rr[:, sa], rr[:, sb])
        g, dg = embedding_value_and_slope(desc.embedding_net(a, b), e.ravel())
        g, dg = g.reshape(e.shape + (M,)), dg.reshape(e.shape + (M,))
        c = 1.0 / (desc.sel[a] * desc.sel[b])
        D += c * np.einsum("njk,njkm->nm", e, g)
        pairs.append((sa, sb, c, e, g, dg))
    cache = dict(center_types=center_types, real=real, zeroed=zeroed, dR=dR, rr=rr, pairs=pairs)
    return D, cache


def descriptor_backward(desc, cache, dD):
    """Gradient of the energy with respect to every neighbor vector.

    Parameters
    ----------
    dD : ndarray, shape (n, M)
        :math:`\\partial E/\\partial D`.

    Returns
    -------
    ndarray, shape (n, nnei, 3)
        :math:`\\partial E/\\partial \\mathbf r_{ij}` (zero on padding and excluded slots).
    """
    rr = cache["rr"]
    drr = np.zeros_like(rr)
    for sa, sb, c, e, g, dg in cache["pairs"]:
        de = c * (np.einsum("nm,njkm->njk", dD, g) + e * np.einsum("nm,njkm->njk", dD, dg))
        drr[:, sa] += np.einsum("njk,nka->nja", de, rr[:, sb])
        drr[:, sb] += np.einsum("njk,nja->nka", de, rr[:, sa])
    drr[cache["zeroed"] | ~cache["real"]] = 0.0
    dR = drr / desc.dstd[cache["center_types"]][:, :, 1:]
    return np.einsum("nja,njab->njb", dR, cache["dR"][:, :, 1:, :])
