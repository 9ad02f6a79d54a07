r"""Frame and atomic parameters of ``Potential.eval``: DeePMD-kit's shapes, and the evaluator that takes them.

``DeepPot.eval(..., fparam=, aparam=)`` accepts (DeePMD-kit 3.2, ``DeepEval._standard_input``):

* ``fparam``: ``nframes * nf`` values (any shape, e.g. ``(nframes, nf)``), or ``nf`` values used for
  every frame;
* ``aparam``: ``nframes * natoms * na`` values (e.g. ``(nframes, natoms, na)``), or ``natoms * na``
  values used for every frame, or ``na`` values used for every atom of every frame;

with ``nf = numb_fparam``, ``na = numb_aparam`` of the model; the sizes are tried in that order
(so with one frame the per-frame reading wins, as in DeePMD-kit).  ``fparam=None`` takes the
model's ``default_fparam`` when it has one.  :func:`frame_parameters` applies these rules and
:class:`WithParameters` hands each frame its own to the evaluator.
"""

import numpy as np

from ..core.errors import InputError
from .base import Evaluator


def _values(name, value):
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be an array of numbers ({exc})") from None
    if not np.all(np.isfinite(arr)):
        k = int(np.flatnonzero(~np.isfinite(arr.ravel()))[0])
        raise InputError(f"{name} holds a non-finite value (flat index {k})")
    return arr.ravel()


def frame_parameters(fparam, aparam, nframes, natoms, dim_fparam, dim_aparam, has_default_fparam=False):
    """Per-frame ``fparam`` (nframes, nf) and ``aparam`` (nframes, natoms, na), or None where absent.

    Parameters
    ----------
    fparam, aparam : array_like or None
        As given to :meth:`dpcompress.Potential.eval`.
    nframes, natoms : int
    dim_fparam, dim_aparam : int
        The model's ``numb_fparam`` and ``numb_aparam``.
    has_default_fparam : bool
        Whether ``fparam=None`` is allowed (the model stores ``default_fparam``).

    Returns
    -------
    (ndarray or None, ndarray or None)
        ``fparam`` is None when the model takes none or its default is used.

    Raises
    ------
    InputError
        Parameters given to a model that takes none, missing without a default, non-finite, or of a
        size none of DeePMD-kit's shapes has (the message lists them).
    """
    fp = ap = None
    if fparam is not None:
        if dim_fparam == 0:
            raise InputError("fparam given, but this model takes no frame parameters (numb_fparam = 0)")
        v = _values("fparam", fparam)
        if v.size == nframes * dim_fparam:
            fp = v.reshape(nframes, dim_fparam)
        elif v.size == dim_fparam:
            fp = np.tile(v, (nframes, 1))
        else:
            raise InputError(f"fparam has {v.size} values; expected nframes x numb_fparam = {nframes} x {dim_fparam} "
                             f"or numb_fparam = {dim_fparam}")
    elif dim_fparam and not has_default_fparam:
        raise InputError(f"this model takes frame parameters (numb_fparam = {dim_fparam}) and stores no "
                         f"default_fparam: pass fparam with shape (nframes, {dim_fparam}) or ({dim_fparam},)")
    if aparam is not None:
        if dim_aparam == 0:
            raise InputError("aparam given, but this model takes no atomic parameters (numb_aparam = 0)")
        v = _values("aparam", aparam)
        if v.size == nframes * natoms * dim_aparam:
            ap = v.reshape(nframes, natoms, dim_aparam)
        elif v.size == natoms * dim_aparam:
            ap = np.tile(v.reshape(1, natoms, dim_aparam), (nframes, 1, 1))
        elif v.size == dim_aparam:
            ap = np.tile(v.reshape(1, 1, dim_aparam), (nframes, natoms, 1))
        else:
            raise InputError(f"aparam has {v.size} values; expected nframes x natoms x numb_aparam = {nframes} x "
                             f"{natoms} x {dim_aparam}, natoms x numb_aparam = {natoms} x {dim_aparam} or "
                             f"numb_aparam = {dim_aparam}")
    elif dim_aparam:
        raise InputError(f"this model takes atomic parameters (numb_aparam = {dim_aparam}): pass aparam with shape "
                         f"(nframes, natoms, {dim_aparam}), (natoms, {dim_aparam}) or ({dim_aparam},)")
    return fp, ap


class WithParameters(Evaluator):
    """An evaluator whose frames each get their own ``fparam`` / ``aparam`` rows.

    Wraps one whose ``evaluate`` takes ``fparam=`` and ``aparam=`` (the exact evaluator); frame
    ``f`` is evaluated with ``fparam[f]`` and ``aparam[f]`` (None: the model's default / none).
    """

    def __init__(self, evaluator, fparam, aparam):
        self.inner, self.fparam, self.aparam = evaluator, fparam, aparam
        self.type_map, self.rcut, self.compressed = evaluator.type_map, evaluator.rcut, evaluator.compressed

    def evaluate_batch(self, xyz, cells, types, n_threads=1, atomic=True):
        """The inner evaluator's batch with every frame's parameters where it takes them (the C
        runtime, in one call), else :meth:`evaluate_frames` collected."""
        if getattr(self.inner, "batches_parameters", False):
            return self.inner.evaluate_batch(xyz, cells, types, n_threads, fparam=self.fparam, aparam=self.aparam,
                                             atomic=atomic)
        return super().evaluate_batch(xyz, cells, types, n_threads)

    def descriptors(self, xyz, cells, types, n_threads=1):
        if getattr(self.inner, "batches_parameters", False):
            return self.inner.descriptors(xyz, cells, types, n_threads, fparam=self.fparam, aparam=self.aparam)
        return self.inner.descriptors(xyz, cells, types, n_threads)

    def evaluate_frames(self, xyz, cells, types, n_threads=1):
        for f in range(xyz.shape[0]):
            yield self.inner.evaluate(xyz[f], None if cells is None else cells[f],
                                      types if types.ndim == 1 else types[f], n_threads,
                                      fparam=None if self.fparam is None else self.fparam[f],
                                      aparam=None if self.aparam is None else self.aparam[f])


def with_parameters(evaluator, fparam, aparam, takes_parameters=False):
    """``evaluator`` itself for a model without parameters (``takes_parameters`` false) given none, else a
    :class:`WithParameters` around it (whose frames reach ``evaluate``, which applies ``default_fparam``)."""
    if fparam is None and aparam is None and not takes_parameters:
        return evaluator
    return WithParameters(evaluator, fparam, aparam)


__all__ = ["frame_parameters", "with_parameters", "WithParameters"]
