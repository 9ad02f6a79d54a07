r"""Fitting nets of the compressed path: per-atom energies and :math:`\partial e_i/\partial D_i`.

Same mathematics as :func:`dpcompress.reference.dp_model.fitting_forward_backward`
(its readable twin), compiled: :func:`dpcompress._ext.fitting_net.fitting_forward_backward`
(``src_c/dpc_fitting.c``) takes the atoms type by type in chunks of a fixed number
of rows, each chunk going through every layer forward and backward with its
intermediates in cache, the chunks shared among OpenMP threads; BLAS ``dgemm``
does the products, single-threaded inside each OpenMP thread, and the
activations (tanh without a libm call) are computed in C.
"""

import weakref

import numpy as np

from .._ext.fitting_net import pack_fitting
from .._ext.fitting_net import fitting_forward_backward as _compiled
from .._ext.threads import effective_n_threads

_PACKED = {}


def packed_fitting(fitting):
    """The :class:`~dpcompress._ext.fitting_net.PackedFitting` of ``fitting``, built once per object
    (it points into the layers' arrays, which models never modify after loading)."""
    key = id(fitting)
    hit = _PACKED.get(key)
    if hit is not None and hit[0]() is fitting:
        return hit[1]
    packed = pack_fitting(fitting)
    try:
        ref = weakref.ref(fitting, lambda _, key=key: _PACKED.pop(key, None))
    except TypeError:  # not weak-referenceable: pack on every call
        return packed
    _PACKED[key] = (ref, packed)
    return packed


def fitting_energy_and_gradient(model, atom_types, D, n_threads=None):
    r"""Per-atom fitting energies :math:`F_{t_i}(D_i) + b_{t_i}` and :math:`\partial F/\partial D`.

    Parameters
    ----------
    model : DPModel
    atom_types : ndarray of int, shape (n,)
    D : ndarray, shape (n, dim_descrpt)
    n_threads : int or None
        OpenMP threads (:func:`dpcompress.threads.effective_n_threads`); the
        result does not depend on it.

    Returns
    -------
    e : ndarray, shape (n,)
    dD : ndarray, shape (n, dim_descrpt)
    """
    types = np.ascontiguousarray(atom_types, dtype=np.int64)
    D = np.ascontiguousarray(D, dtype=np.float64)
    return _compiled(packed_fitting(model.fitting), types, D, effective_n_threads(n_threads))
