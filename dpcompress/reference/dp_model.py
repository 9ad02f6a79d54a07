r"""Exact evaluation of an uncompressed DP energy model, in numpy.

Energy, forces, virial and their per-atom parts of one frame, with analytic
gradients.  With :math:`\mathbf g_{ij} = \partial E/\partial\mathbf r_{ij}`
(:math:`\mathbf r_{ij} = \mathbf r_j + \text{shift} - \mathbf r_i`):

.. math::

    \mathbf F_i = \sum_j \mathbf g_{ij} - \sum_{k:\, i\in N(k)} \mathbf g_{ki},\qquad
    W_{ab} = -\sum_{ij} g_{ij,a}\, r_{ij,b},\qquad
    W^{(j)}_{ab} = -\sum_{i:\, j\in N(i)} g_{ij,a}\, r_{ij,b}

The per-atom virial is assigned to the neighbor (DeePMD-kit's convention); its
sum over atoms is the virial.  Centers are processed in chunks so memory stays
bounded for large frames; chunking does not change any number.
"""

import numpy as np

from .networks import network_backward, network_forward
from .se_e2_a import descriptor_backward, descriptor_forward

CHUNK_ATOMS = 1024


def pair_masks(model, atom_types, center_types, index):
    """Real and zeroed slots after the model's and descriptor's type-pair exclusions.

    ``atom_types`` are the types of all atoms of the frame (neighbors index
    into them), ``center_types`` those of the rows of ``index``.

    Returns
    -------
    real : ndarray of bool, shape (n, nnei)
        Real neighbors, minus the model's ``pair_exclude_types`` (they become padding).
    zeroed : ndarray of bool, shape (n, nnei)
        Real neighbors whose rows the descriptor's ``exclude_types`` set to zero.
    """
    real = index >= 0
    jtype = np.where(real, atom_types[np.maximum(index, 0)], -1)
    itype = np.broadcast_to(center_types[:, None], index.shape)

    def excluded(pairs):
        out = np.zeros(index.shape, dtype=bool)
        for a, b in pairs:
            out |= (itype == a) & (jtype == b)
        return out & real

    real = real & ~excluded(model.pair_exclude_types)
    return real, excluded(model.descriptor.exclude_types)


def atomic_energy_masks(model, atom_types):
    """Masks of atoms whose fitting output (and bias) counts, and whose energy counts at all."""
    fit = ~np.isin(atom_types, list(model.fitting.exclude_types))
    keep = ~np.isin(atom_types, list(model.atom_exclude_types))
    return fit.astype(np.float64), keep.astype(np.float64)


def fitting_forward_backward(model, atom_types, D):
    r"""Per-atom fitting energy :math:`F_{t_i}(D_i) + b_{t_i}` and :math:`\partial F/\partial D`."""
    e = np.empty(len(atom_types))
    dD = np.empty_like(D)
    for t in np.unique(atom_types):
        rows = atom_types == t
        net = model.fitting.network(t)
        y, cache = network_forward(net, D[rows])
        e[rows] = y[:, 0] + model.fitting.bias_atom_e[t]
        dD[rows] = network_backward(net, cache, np.ones((rows.sum(), 1)))
    return e, dD


def evaluate_frame(model, atom_types, nlist):
    """Evaluate one frame.

    Parameters
    ----------
    model : DPModel
    atom_types : ndarray of int, shape (natoms,)
    nlist : NeighborList
        Built with the model's ``rcut`` and ``sel``.

    Returns
    -------
    dict
        ``energy`` (float), ``force`` (natoms, 3), ``virial`` (3, 3),
        ``atom_energy`` (natoms,), ``atom_virial`` (natoms, 3, 3); eV, Å.
    """
    natoms = len(atom_types)
    desc = model.descriptor
    fit_mask, keep_mask = atomic_energy_masks(model, atom_types)
    atom_energy = np.empty(natoms)
    force = np.zeros((natoms, 3))
    atom_virial = np.zeros((natoms, 3, 3))
    for start in range(0, natoms, CHUNK_ATOMS):
        sl = slice(start, min(start + CHUNK_ATOMS, natoms))
        types, index, vectors = atom_types[sl], nlist.index[sl], nlist.vectors[sl]
        real, zeroed = pair_masks(model, atom_types, types, index)
        D, cache = descriptor_forward(desc, types, vectors, real, zeroed)
        e_fit, dD = fitting_forward_backward(model, types, D)
        w = fit_mask[sl] * keep_mask[sl]
        atom_energy[sl] = keep_mask[sl] * (fit_mask[sl] * e_fit + model.out_bias[types])
        g = descriptor_backward(desc, cache, dD * w[:, None])
        force[sl] += g.sum(axis=1)
        rows, slots = np.nonzero(real)
        np.add.at(force, index[rows, slots], -g[rows, slots])
        pair_virial = -g[rows, slots][:, :, None] * vectors[rows, slots][:, None, :]
        np.add.at(atom_virial, index[rows, slots], pair_virial)
    return dict(
        energy=float(atom_energy.sum()),
        force=force,
        virial=atom_virial.sum(axis=0),
        atom_energy=atom_energy,
        atom_virial=atom_virial,
    )

