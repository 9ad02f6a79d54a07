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

from ...core.errors import InputError
from ...core.networks import network_backward, network_forward


def atomic_energy_masks(model, atom_types):
    """Masks of atoms whose fitting output (and bias) counts, and whose energy counts at all."""
    fit = ~np.isin(atom_types, list(model.fitting.exclude_types))
    keep = ~np.isin(atom_types, list(model.atom_exclude_types))
    return fit.astype(np.float64), keep.astype(np.float64)


def parameter_columns(fitting, natoms, fparam=None, aparam=None):
    r"""The net-input columns after the descriptor: normalised frame and atomic parameters.

    Parameters
    ----------
    fitting : EnergyFitting
    natoms : int
    fparam : array_like (numb_fparam,) or None
        The frame's parameters; None takes the model's ``default_fparam``.
    aparam : array_like (natoms, numb_aparam) or None

    Returns
    -------
    ndarray (natoms, numb_fparam + numb_aparam) or None
        Row :math:`i` is :math:`\big((f - \bar f)\odot s_f,\ (a_i - \bar a)\odot s_a\big)`; None for a
        model without parameters.

    Raises
    ------
    InputError
        Parameters missing (and no default) or of the wrong size.
    """
    nf, na = fitting.numb_fparam, fitting.numb_aparam
    if nf == 0 and na == 0:
        if fparam is not None or aparam is not None:
            raise InputError("fparam/aparam given, but this model takes none (numb_fparam = numb_aparam = 0)")
        return None
    cols = np.empty((natoms, nf + na))
    if nf:
        if fparam is None:
            if fitting.default_fparam is None:
                raise InputError(f"this model takes frame parameters (numb_fparam = {nf}) and has no default_fparam; "
                                 "pass fparam")
            fparam = fitting.default_fparam
        f = np.asarray(fparam, dtype=np.float64)
        if f.size != nf:
            raise InputError(f"fparam has {f.size} values, the model takes numb_fparam = {nf}")
        cols[:, :nf] = (f.reshape(nf) - fitting.fparam_avg) * fitting.fparam_inv_std
    elif fparam is not None:
        raise InputError("fparam given, but this model takes no frame parameters (numb_fparam = 0)")
    if na:
        if aparam is None:
            raise InputError(f"this model takes atomic parameters (numb_aparam = {na}); pass aparam")
        a = np.asarray(aparam, dtype=np.float64)
        if a.size != natoms * na:
            raise InputError(f"aparam has {a.size} values, expected natoms x numb_aparam = {natoms} x {na}")
        cols[:, nf:] = (a.reshape(natoms, na) - fitting.aparam_avg) * fitting.aparam_inv_std
    elif aparam is not None:
        raise InputError("aparam given, but this model takes no atomic parameters (numb_aparam = 0)")
    return cols


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
