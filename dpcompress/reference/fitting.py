"""Numpy twin of the fitting-net kernel (``src_c/dpc_fitting.c``): per-atom energies and dE/dD.

Same name and outputs as :func:`dpcompress._ext.fitting_net.fitting_forward_backward` (which
takes the packed nets; this takes the model).
"""

import numpy as np

from ..core.networks import network_backward, network_forward


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
