r"""Fitting nets of the compressed path: per-atom energies and :math:`\partial e_i/\partial D_i`.

Same mathematics as :func:`dpcompress.reference.dp_model.fitting_forward_backward`
(its readable twin), arranged for speed: atoms of one type go through BLAS
together, in chunks small enough that every intermediate array stays in cache,
and activations are updated in place.
"""

import numpy as np

from ..models.activations import activate

CHUNK = 1024


def _forward_backward(net, x):
    """Return (y[:, 0], dy/dx) for rows ``x`` of one chunk."""
    saved = []
    for layer in net.layers:
        z = x @ layer.w
        if layer.b is not None:
            z += layer.b
        if layer.activation == "tanh":
            phi = np.tanh(z, out=z)
            dphi = phi * phi
            np.subtract(1.0, dphi, out=dphi)
        else:
            phi, dphi = activate(layer.activation, z, order=1)
        if layer.idt is not None:
            phi *= layer.idt
            dphi *= layer.idt
        kind = layer.residual
        if kind == "identity":
            phi += x
        elif kind == "double":
            phi[:, : layer.n_in] += x
            phi[:, layer.n_in :] += x
        saved.append(dphi)
        x = phi
    y = x[:, 0].copy()
    grad = np.ones((x.shape[0], 1))
    for layer, dphi in zip(reversed(net.layers), reversed(saved)):
        dphi *= grad
        dx = dphi @ layer.w.T
        kind = layer.residual
        if kind == "identity":
            dx += grad
        elif kind == "double":
            dx += grad[:, : layer.n_in]
            dx += grad[:, layer.n_in :]
        grad = dx
    return y, grad


def fitting_energy_and_gradient(model, atom_types, D):
    r"""Per-atom fitting energies :math:`F_{t_i}(D_i) + b_{t_i}` and :math:`\partial F/\partial D`.

    Parameters
    ----------
    model : DPModel
    atom_types : ndarray of int64, shape (n,)
    D : ndarray, shape (n, dim_descrpt)

    Returns
    -------
    e : ndarray, shape (n,)
    dD : ndarray, shape (n, dim_descrpt)
    """
    e = np.empty(len(atom_types))
    dD = np.empty_like(D)
    for t in np.unique(atom_types):
        rows = np.flatnonzero(atom_types == t)
        net = model.fitting.network(t)
        for start in range(0, len(rows), CHUNK):
            r = rows[start : start + CHUNK]
            y, g = _forward_backward(net, D[r])
            e[r] = y + model.fitting.bias_atom_e[t]
            dD[r] = g
    return e, dD
