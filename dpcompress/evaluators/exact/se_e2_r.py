r"""The se_e2_r descriptor in numpy, forward and backward, exact (no tables).

Forward, for every center atom :math:`i` of type :math:`t_i` (``N = sum(sel)``
slots, blocks :math:`b(j)` per neighbor type):

.. math::

    x_j = \frac{R_{j} - \bar R_{t_i j}}{\sigma_{t_i j}},\quad R_j = \frac{\mathrm{sw}(r_j)}{r_j + p},\qquad
    D = \frac{1}{5N}\sum_j G^{(t_i, b(j))}(x_j) \in \mathbb R^M

Every slot is in the sum: padding (:math:`R = 0`) adds :math:`G(-\bar R/\sigma)`,
a real neighbor of an ``exclude_types`` pair (its row zeroed) adds :math:`G(0)`;
neither depends on coordinates.

Backward, from :math:`\bar D = \partial E/\partial D`:

.. math::

    \frac{\partial E}{\partial \mathbf r_{ij}} = \frac{1}{5N}\Big(\sum_m \bar D_m G'_m(x_j)\Big)
        \frac{1}{\sigma_{t_i j}}\,\frac{\partial R_j}{\partial \mathbf r_{ij}},\qquad
    \frac{\partial R}{\partial \mathbf r} = \Big(\frac{\mathrm{sw}'}{r+p} - \frac{\mathrm{sw}}{(r+p)^2}\Big)\hat{\mathbf r}
"""

import numpy as np

from .environment import normalised_env_mat, per_type_embeddings


def descriptor_forward(desc, atom_types, neighbor_types, vectors, real, zeroed):
    """Descriptor of a batch of center atoms.

    Parameters
    ----------
    desc : DescriptorSeR
    atom_types : ndarray of int, shape (n,)
        Types of the center atoms.
    neighbor_types : ndarray of int, shape (n, nnei)
        Not needed (blocks are per neighbor type); part of the module protocol.
    vectors : ndarray, shape (n, nnei, 3)
        :math:`\\mathbf r_{ij}` per slot.
    real : ndarray of bool, shape (n, nnei)
        Slots holding a real neighbor; the others are padding (:math:`R = 0`).
    zeroed : ndarray of bool, shape (n, nnei)
        Real slots of excluded type pairs: their normalised row is set to 0.

    Returns
    -------
    D : ndarray, shape (n, M)
    cache : dict
        What :func:`descriptor_backward` needs.
    """
    n, nnei = real.shape
    Rt, dR = normalised_env_mat(desc, atom_types, vectors, real, zeroed)
    G, dG = per_type_embeddings(desc, atom_types, Rt[:, :, 0])
    D = G.sum(axis=1) * (desc.RESCALE / nnei)
    cache = dict(atom_types=atom_types, real=real, zeroed=zeroed, dR0=dR[..., 0, :], dG=dG)
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
    dG = cache["dG"]
    nnei = dG.shape[1]
    dx = np.einsum("njm,nm->nj", dG, dD) * (desc.RESCALE / nnei)
    dx[cache["zeroed"] | ~cache["real"]] = 0.0
    dR0 = dx / desc.dstd[cache["atom_types"]][..., 0]
    return dR0[..., None] * cache["dR0"]
