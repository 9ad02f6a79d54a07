r"""The energy part of a DP model in numpy: fitting nets, biases and exclusion masks.

:math:`e_i = m^{keep}_i\,\big(m^{fit}_i\,(F_{t_i}(D_i) + b_{t_i}) + \beta_{t_i}\big)`
with the fitting net :math:`F`, ``bias_atom_e`` :math:`b`, ``out_bias``
:math:`\beta`, and 0/1 masks for the fitting's ``exclude_types`` and the model's
``atom_exclude_types``.  The frame pipeline is :mod:`dpcompress.evaluators.exact`.
"""

import numpy as np

from ...core.networks import network_backward, network_forward


def atomic_energy_masks(model, atom_types):
    """Masks of atoms whose fitting output (and bias) counts, and whose energy counts at all."""
    fit = ~np.isin(atom_types, list(model.fitting.exclude_types))
    keep = ~np.isin(atom_types, list(model.atom_exclude_types))
    return fit.astype(np.float64), keep.astype(np.float64)


def fitting_forward_backward(model, atom_types, D):
    r"""Per-atom fitting energy :math:`F_{t_i}(D_i) + b_{t_i}` and :math:`\partial F/\partial D`.

    The exact evaluator's fitting (compressed models run the compiled kernel, ``src_c/dpc_fitting.c``).
    """
    e = np.empty(len(atom_types))
    dD = np.empty_like(D)
    for t in np.unique(atom_types):
        rows = atom_types == t
        net = model.fitting.network(t)
        y, cache = network_forward(net, D[rows])
        e[rows] = y[:, 0] + model.fitting.bias_atom_e[t]
        dD[rows] = network_backward(net, cache, np.ones((rows.sum(), 1)))
    return e, dD
