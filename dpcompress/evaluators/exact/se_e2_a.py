r"""The se_e2_a descriptor in numpy, forward and backward, exact (no tables).

Forward, for every center atom :math:`i` (all arrays per atom):

.. math::

    \tilde R_j = (R_j - \bar R_j)/\sigma_j,\quad
    G_j = G^{(t_i, b(j))}(\tilde R_{j,0}),\quad
    T = \frac1N\sum_j \tilde R_j^\top \otimes G_j \in \mathbb R^{4\times M},\quad
    D = T^\top T_{:, :A} \in \mathbb R^{M\times A}

Backward, from :math:`\bar D = \partial E/\partial D`:

.. math::

    \bar T = T_{:, :A}\,\bar D^\top + \big[\,T\,\bar D\,\big]_{\text{columns } <A},\qquad
    \frac{\partial E}{\partial \tilde R_{j,k}} = \frac1N\sum_m \bar T_{km} G_{jm}
        + \delta_{k0}\,\frac1N\sum_m G'_{jm}\,(\tilde R_j \bar T)_m

then through :math:`\partial\tilde R/\partial R = 1/\sigma` and the environment-matrix
derivative to :math:`\partial E/\partial \mathbf r_{ij}`.  ``N = sum(sel)`` counts padding slots.
"""

import numpy as np

from .environment import normalised_env_mat, per_type_embeddings


def descriptor_forward(desc, atom_types, neighbor_types, vectors, real, zeroed):
    """Descriptor of a batch of center atoms.

    Parameters
    ----------
    desc : DescriptorSeA
    atom_types : ndarray of int, shape (n,)
        Types of the center atoms.
    neighbor_types : ndarray of int, shape (n, nnei)
        Type of each slot's neighbor, -1 on padding (not needed by se_e2_a: its
        blocks are per neighbor type).
    vectors : ndarray, shape (n, nnei, 3)
        :math:`\\mathbf r_{ij}` per slot.
    real : ndarray of bool, shape (n, nnei)
        Slots holding a real neighbor; the others are padding (:math:`R = 0`).
    zeroed : ndarray of bool, shape (n, nnei)
        Real slots of excluded type pairs: their normalised row is set to 0.

    Returns
    -------
    D : ndarray, shape (n, M * A)
        Row-major flattening of :math:`D_{m a}`.
    cache : dict
        What :func:`descriptor_backward` needs.
    """
    n, nnei = real.shape
    Rt, dR = normalised_env_mat(desc, atom_types, vectors, real, zeroed)
    M, A = desc.n_channels, desc.axis_neuron
    G, dG = per_type_embeddings(desc, atom_types, Rt[:, :, 0])
    T = np.einsum("njk,njm->nkm", Rt, G) / nnei
    D = np.einsum("nkm,nka->nma", T, T[:, :, :A])
    cache = dict(atom_types=atom_types, real=real, zeroed=zeroed, dR=dR, Rt=Rt, G=G, dG=dG, T=T)
    return D.reshape(n, M * A), cache


def descriptor_backward(desc, cache, dD):
    """Gradient of the energy with respect to every neighbor vector.

    Parameters
    ----------
    dD : ndarray, shape (n, M * A)
        :math:`\\partial E/\\partial D`.

    Returns
    -------
    ndarray, shape (n, nnei, 3)
        :math:`\\partial E/\\partial \\mathbf r_{ij}` (zero on padding and excluded slots).
    """
    T, G, dG, Rt = cache["T"], cache["G"], cache["dG"], cache["Rt"]
    n, nnei, M = G.shape
    A = desc.axis_neuron
    dD = dD.reshape(n, M, A)
    dT = np.einsum("nma,nka->nkm", dD, T[:, :, :A])
    dT[:, :, :A] += np.einsum("nma,nkm->nka", dD, T)
    dRt = np.einsum("nkm,njm->njk", dT, G) / nnei
    dx = np.einsum("njm,njm->nj", dG, np.einsum("njk,nkm->njm", Rt, dT)) / nnei
    dRt[:, :, 0] += dx
    dRt[cache["zeroed"] | ~cache["real"]] = 0.0
    dR = dRt / desc.dstd[cache["atom_types"]]
    return np.einsum("njk,njkb->njb", dR, cache["dR"])
