r"""Frame and atomic parameters of a DeePMD-kit fitting: sizes, normalisation statistics, default.

DeePMD-kit's fitting nets take, after the descriptor :math:`D_i`, the frame parameters
:math:`f` (``numb_fparam`` numbers per frame: an electronic temperature, a charge state, ...) and
the atomic parameters :math:`a_i` (``numb_aparam`` numbers per atom), each normalised with the
training-set statistics stored in the fitting's ``@variables``:

.. math::

    x_i = \big(D_i,\ (f - \bar f)\odot s_f,\ (a_i - \bar a)\odot s_a\big),

``fparam_avg`` :math:`\bar f`, ``fparam_inv_std`` :math:`s_f`, ``aparam_avg`` :math:`\bar a`,
``aparam_inv_std`` :math:`s_a`.  ``default_fparam`` (a list in the tree, or null) is used when
the caller passes no frame parameters.  :func:`parameter_columns` is the numpy form of this
normalisation, for the exact evaluator; compressed models are normalised by the C runtime itself
(``src_c/dpc_runtime.c`` ``fill_rows``, from the ``.dpc`` arrays ``fit.param_avg`` /
``fit.param_inv_std``), which every front end, LAMMPS included, hands the raw values.  Every size is bounded and every array checked for shape
and finiteness (model files are untrusted input).
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..core.errors import InputError, ModelFormatError, UnsupportedModelError

#: Upper bound on numb_fparam / numb_aparam read from a file (real models use a handful).
MAX_PARAMS = 4096


def _count(node, key):
    v = node.raw(key, 0)
    if v is None:
        return 0
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_PARAMS:
        raise ModelFormatError(f"{node.source}: '{node.where}.{key}' should be an integer in [0, {MAX_PARAMS}], "
                               f"found {v!r}")
    return v


def _statistic(var, key, n, count_key):
    """One (n,) statistics array of the fitting's ``@variables``; None when n = 0."""
    if n == 0:
        return None
    if var is None or var.raw(key, None) is None:
        raise ModelFormatError(f"{var.source if var else ''}: '{count_key}' = {n} but the fitting's "
                               f"'@variables.{key}' is missing; the file is incomplete")
    arr = var.array(key)
    if arr.size != n:
        raise ModelFormatError(f"{var.source}: '{var.where}.{key}' has shape {arr.shape}, expected ({n},) "
                               f"('{count_key}' = {n})")
    return arr.reshape(n)


def _default_fparam(node, n):
    raw = node.raw("default_fparam", None)
    if raw is None:
        return None
    arr = np.asarray(raw) if isinstance(raw, (list, tuple, np.ndarray)) else None
    if arr is None or arr.dtype.kind not in "fiu" or arr.size != n or not np.all(np.isfinite(arr)):
        raise ModelFormatError(f"{node.source}: '{node.where}.default_fparam' should list {n} finite numbers "
                               f"('numb_fparam' = {n}), found {raw!r}")
    return arr.astype(np.float64).reshape(n)


def read_fitting_params(node):
    """The frame/atomic-parameter fields of an ``ener`` fitting node, as keyword arguments.

    Returns
    -------
    dict
        ``numb_fparam``, ``numb_aparam``, ``fparam_avg``, ``fparam_inv_std``, ``aparam_avg``,
        ``aparam_inv_std``, ``default_fparam`` (arrays, or None where the count is 0).

    Raises
    ------
    ModelFormatError
        A count out of bounds, a missing or mis-shaped statistics array, a bad default.
    UnsupportedModelError
        ``use_aparam_as_mask`` (the atomic parameters select atoms instead of entering the nets).
    """
    nf = _count(node, "numb_fparam")
    na = _count(node, "numb_aparam")
    if na and node.raw("use_aparam_as_mask", False):
        raise UnsupportedModelError(f"{node.source}: '{node.where}.use_aparam_as_mask' = true is not supported "
                                    "(the atomic parameters would mask atoms instead of entering the fitting nets)")
    var = node.node("@variables") if (nf or na) else None
    where = f"{node.where}.numb_fparam"
    out = {"numb_fparam": nf, "numb_aparam": na,
           "fparam_avg": _statistic(var, "fparam_avg", nf, where),
           "fparam_inv_std": _statistic(var, "fparam_inv_std", nf, where)}
    where = f"{node.where}.numb_aparam"
    out["aparam_avg"] = _statistic(var, "aparam_avg", na, where)
    out["aparam_inv_std"] = _statistic(var, "aparam_inv_std", na, where)
    out["default_fparam"] = _default_fparam(node, nf) if nf else None
    return out


def parameter_columns(fitting, natoms, fparam=None, aparam=None):
    r"""The net-input columns after the descriptor: normalised frame and atomic parameters.

    Parameters
    ----------
    fitting : EnergyFitting or FittingParams
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


@dataclass(frozen=True)
class FittingParams:
    """The frame/atomic parameter fields of a fitting, without its nets: the base of
    :class:`~dpcompress.models.model.EnergyFitting` and
    :class:`~dpcompress.models.tensor_fitting.TensorFitting` (declared once here), and what
    :func:`params_of` keeps of either.

    Attributes
    ----------
    numb_fparam, numb_aparam : int
        Frame and atomic parameters the nets take (0: none).
    fparam_avg, fparam_inv_std : ndarray (numb_fparam,) or None
    aparam_avg, aparam_inv_std : ndarray (numb_aparam,) or None
    default_fparam : ndarray (numb_fparam,) or None
        The frame parameters used when the caller gives none (DeePMD-kit's ``default_fparam``).
    """

    numb_fparam: int = 0
    numb_aparam: int = 0
    fparam_avg: Optional[np.ndarray] = None
    fparam_inv_std: Optional[np.ndarray] = None
    aparam_avg: Optional[np.ndarray] = None
    aparam_inv_std: Optional[np.ndarray] = None
    default_fparam: Optional[np.ndarray] = None

    @property
    def n_params(self):
        """Input columns of the nets after the descriptor (``numb_fparam + numb_aparam``)."""
        return self.numb_fparam + self.numb_aparam


PARAM_FIELDS = ("numb_fparam", "numb_aparam", "fparam_avg", "fparam_inv_std", "aparam_avg", "aparam_inv_std",
                "default_fparam")


def params_of(fitting):
    """The :class:`FittingParams` of an ``EnergyFitting`` (or of another object with those fields)."""
    return FittingParams(**{k: getattr(fitting, k, 0 if k.startswith("numb_") else None)
                            for k in PARAM_FIELDS})


__all__ = ["MAX_PARAMS", "FittingParams", "PARAM_FIELDS", "params_of", "parameter_columns", "read_fitting_params"]
