r"""What the exact descriptors share: the normalised environment matrix and per-type embeddings.

.. math::

    \tilde R_j = (R_j - \bar R_{t_i j}) / \sigma_{t_i j},\qquad
    G_j = G^{(t_i, b(j))}(\tilde R_{j,0})

with :math:`R_j` of :func:`dpcompress.core.env_mat.env_mat_se_a`, the statistics of the center's
type and slot, and a row set to zero on excluded type pairs.
"""

import numpy as np

from ...core.env_mat import env_mat_se_a, smooth_switch
from ...core.networks import embedding_with_derivatives


def normalised_env_mat(desc, center_types, vectors, real, zeroed, switch=smooth_switch):
    r"""(:math:`\tilde R`, :math:`\partial R/\partial\mathbf r`), shapes (n, nnei, 4) and (n, nnei, 4, 3)."""
    R, dR = env_mat_se_a(vectors, real, desc.rcut, desc.rcut_smth, desc.env_protection, switch=switch)
    Rt = (R - desc.davg[center_types]) / desc.dstd[center_types]
    Rt[zeroed] = 0.0
    return Rt, dR


def per_type_embeddings(desc, center_types, x):
    """G and dG/dx of the per-type embedding nets on ``x`` (n, nnei), shapes (n, nnei, M).

    Blocks of slots go by neighbor type; each (center type, neighbor type) pair has its own net
    (:meth:`embedding_net`).
    """
    n, nnei = x.shape
    M = desc.n_channels
    G = np.zeros((n, nnei, M))
    dG = np.zeros((n, nnei, M))
    offsets = np.concatenate([[0], np.cumsum(desc.sel)])
    for b in range(desc.ntypes):
        if offsets[b] == offsets[b + 1]:
            continue
        sl = slice(offsets[b], offsets[b + 1])
        for c in np.unique(center_types):
            rows = center_types == c
            xb = x[rows, sl]
            g, dg, _ = embedding_with_derivatives(desc.embedding_net(c, b), xb.ravel())
            G[rows, sl] = g.reshape(xb.shape + (M,))
            dG[rows, sl] = dg.reshape(xb.shape + (M,))
    return G, dG
