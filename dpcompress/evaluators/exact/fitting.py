r"""The energy part of a DP model in numpy: fitting nets, biases and exclusion masks.

:math:`e_i = m^{keep}_i\,\big(m^{fit}_i\,(F_{t_i}(x_i) + b_{t_i}) + \beta_{t_i}\big)`
with the fitting net :math:`F`, ``bias_atom_e`` :math:`b`, ``out_bias``
:math:`\beta`, and 0/1 masks for the fitting's ``exclude_types`` and the model's
``atom_exclude_types``.  The net's input :math:`x_i` is the descriptor :math:`D_i`, followed for
models with frame/atomic parameters by the normalised :math:`(f-\bar f)\,s_f` and
:math:`(a_i-\bar a)\,s_a` (:func:`parameter_columns`, DeePMD-kit's order).  The frame pipeline is
:mod:`dpcompress.evaluators.exact`.
"""

import numpy as np

from ...core.networks import network_backward, network_forward
from ...models.fitting_params import parameter_columns  # noqa: F401  (re-exported: the evaluator's input)


def atomic_energy_masks(model, atom_types):
    """Masks of atoms whose fitting output (and bias) counts, and whose energy counts at all."""
    fit = ~np.isin(atom_types, list(model.fitting.exclude_types))
    keep = ~np.isin(atom_types, list(model.atom_exclude_types))
    return fit.astype(np.float64), keep.astype(np.float64)


def fitting_forward_backward(model, atom_types, D, params=None):
    r"""Per-atom fitting energy :math:`F_{t_i}(x_i) + b_{t_i}` and :math:`\partial F/\partial D`.

    :math:`x_i = D_i` followed by ``params[i]`` (the :func:`parameter_columns` rows of these atoms)
    when the model takes frame/atomic parameters; the gradient is returned for the descriptor
    columns only (the parameters are inputs, not functions of the coordinates).  The exact
    evaluator's fitting (compressed models run the compiled kernel, ``src_c/dpc_fitting.c``).
    """
    X = D if params is None else np.concatenate([D, params], axis=1)
    e = np.empty(len(atom_types))
    dD = np.empty_like(D)
    width = D.shape[1]
    for t in np.unique(atom_types):
        rows = atom_types == t
        net = model.fitting.network(t)
        y, cache = network_forward(net, X[rows])
        e[rows] = y[:, 0] + model.fitting.bias_atom_e[t]
        dD[rows] = network_backward(net, cache, np.ones((rows.sum(), 1)))[:, :width]
    return e, dD
