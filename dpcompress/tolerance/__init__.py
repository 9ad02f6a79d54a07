r"""Error-targeted compression: ``dpcompress compress --tolerance TOL``.

What the tolerance means
------------------------
``TOL`` (eV/Å) bounds the force error of the compressed model against the exact one,

.. math::

    \max_{\text{frames}, i, a} |F^\text{compressed}_{ia} - F^\text{exact}_{ia}| \le \mathrm{TOL},

*guaranteed on the calibration frames* (the training data, or the frames given) and estimated
everywhere else inside the tables' range.  It is reached through one number, the table-error
budget :math:`\varepsilon`: every table gets the largest fine and coarse strides whose sampled
error (value and first derivative of every channel, weighted by :math:`(x/U)^2` beyond the fine
region: :mod:`dpcompress.compression.table_error`) is at most :math:`\varepsilon`.  The force
error is a linear contraction of the table errors (the environment matrix and the fitting net's
gradient, both independent of the tables), so for small errors
:math:`\max|\Delta F| \approx S\,\varepsilon` with a sensitivity :math:`S` (Å⁻¹ eV per unit table
error) that depends on the model and the frames, not on the strides.  :math:`S` is measured: the
model is compressed with a trial budget, its forces are compared with the exact model's on the
calibration frames, and the budget is rescaled, :math:`\varepsilon \leftarrow 0.7\,\varepsilon\,
\mathrm{TOL}/\max|\Delta F|`, until the error lies in :math:`[\mathrm{TOL}/2, \mathrm{TOL}]` (or
the largest budget tried that meets TOL is kept).  Every budget tried is a full compression, and
the file keeps the last one's measured error, the budget and :math:`S`
(``compression.calibration``), and per table the achieved bound and the search
(``table_bounds``, ``table_search``).
"""

import math
import os
import warnings
from typing import Optional, Union

import numpy as np

from ..compression import compress
from ..core.errors import InputError
from ..modelfile import load_model
from ..models import DPModel
from ..potential import Potential, TableOverflowError

__all__ = ["compress_to_tolerance", "force_error", "calibration_frames"]

#: compressions tried at most
MAX_ROUNDS = 8
#: the calibration stops once max |dF| lies in [LOW * TOL, TOL]
LOW = 0.5
#: each new budget aims at TARGET * TOL
TARGET = 0.7


def calibration_frames(systems, type_map=None):
    """``(coords, cells, atom_types, mixed_type)`` per system, atom types as element names when known.

    Parameters
    ----------
    systems : iterable
        :class:`dpcompress.data.System` objects (``dpcompress.data.read_systems``) or tuples
        ``(coords (nframes, natoms, 3), cells (nframes, 3, 3) or None, atom_types)``; atom types as
        indices of the model's ``type_map`` or element names.
    """
    out = []
    for s in systems:
        if hasattr(s, "coords"):
            types = s.atom_types
            if s.type_map is not None:
                types = np.asarray([s.type_map[t] for t in np.ravel(types)]).reshape(np.shape(types))
            out.append((np.asarray(s.coords, dtype=np.float64), None if s.cells is None else np.asarray(s.cells),
                        types, np.ndim(types) == 2))
        else:
            coords, cells, types = s
            coords = np.asarray(coords, dtype=np.float64)
            coords = coords.reshape(coords.shape[0], -1, 3) if coords.ndim >= 2 else coords
            out.append((coords, None if cells is None else np.asarray(cells, dtype=np.float64), types, np.ndim(types) == 2))
    if not out or sum(len(c) for c, *_ in out) == 0:
        raise InputError("a tolerance needs calibration frames: none were given")
    return out


def _forces(pot, frames):
    return [pot.eval(c, b, t, mixed_type=m)[1] for c, b, t, m in frames]


def force_error(model, frames, reference, n_threads=None):
    """Max |F(model) - reference| over ``frames`` (eV/Å); ``reference`` from the exact model.

    Raises
    ------
    InputError
        A frame has a neighbor beyond the tables (the error there is extrapolation, not tables).
    """
    pot = Potential(model, n_threads=n_threads, overflow="error")
    try:
        got = _forces(pot, frames)
    except TableOverflowError as exc:
        raise InputError(f"a calibration frame lies beyond the tables ({exc}); calibrate on frames inside the "
                         "training set's range (the training data), or compress with a larger -e") from None
    return max(float(np.max(np.abs(g - r))) if g.size else 0.0 for g, r in zip(got, reference))


def compress_to_tolerance(
    model: Union[str, os.PathLike, DPModel],
    tolerance: float,
    frames,
    *,
    n_threads: Optional[int] = None,
    **options,
) -> DPModel:
    r"""Compress with per-table strides so that the force error stays within ``tolerance``.

    Parameters
    ----------
    model : str, os.PathLike or DPModel
        Uncompressed DeePMD-kit model.
    tolerance : float
        eV/Å, > 0: the bound on max |F_compressed - F_exact| (module docstring).
    frames : iterable
        Calibration frames (:func:`calibration_frames`).
    n_threads : int or None
    **options
        Passed to :func:`dpcompress.compress` (``extrapolate``, ``training_script``,
        ``min_nbor_dist``, ``scan``, ``order``, ``check_frequency``, ``max_bytes``; ``step`` is
        the stride search's start).

    Returns
    -------
    DPModel
        Compressed; ``compression`` also holds ``tolerance`` and ``calibration`` (``frames``,
        ``atoms``, ``max_force_error``, ``table_budget``, ``sensitivity`` = error / max table bound,
        ``rounds``).

    Raises
    ------
    InputError
        A bad tolerance, no frames, frames beyond the tables, or a tolerance no budget reaches
        (round-off or a kinked activation sets a floor).
    """
    if isinstance(tolerance, bool) or not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance > 0):
        raise InputError(f"tolerance must be a number > 0 (eV/Å), got {tolerance!r}")
    if "table_error" in options:
        raise InputError("compress_to_tolerance chooses the table budget itself; do not pass table_error")
    if not isinstance(model, DPModel):
        model = load_model(os.fspath(model))
    if not isinstance(model, DPModel):
        raise InputError("a force tolerance applies to DeePMD-kit models; NEP tables take a step (-s)")
    if model.is_compressed:
        raise InputError("the model is already compressed")
    frames = calibration_frames(frames)
    reference = _forces(Potential(model, n_threads=n_threads), frames)
    tol = float(tolerance)
    budget, best, tried = tol, None, []
    good, bad = None, None  # largest budget meeting TOL, smallest one missing it
    for _ in range(MAX_ROUNDS):
        cm = compress(model, table_error=budget, n_threads=n_threads, **options)
        err = force_error(cm, frames, reference, n_threads)
        tried.append([budget, err])
        if err <= tol:
            if best is None or budget > best[0]:
                best = (budget, cm, err)
            good = budget if good is None else max(good, budget)
            if err >= LOW * tol:
                break
        else:
            bad = budget if bad is None else min(bad, budget)
        guess = budget * min(100.0, max(1e-3, TARGET * tol / err)) if err > 0 else 100.0 * budget
        if good is not None and bad is not None:
            if bad / good < 1.2:
                break
            guess = min(bad / 1.05, max(good * 1.05, guess))
        budget = guess
    if best is None:
        raise InputError(
            f"tolerance {tol:.2e} eV/Å not reached: max |ΔF| on the calibration frames is still "
            f"{min(e for _, e in tried):.2e} eV/Å at a table budget of {min(b for b, _ in tried):.2e} (round-off or a "
            "kinked activation such as relu sets a floor); use a larger tolerance"
        )
    budget, cm, err = best
    bound = max(cm.compression["table_bounds"])
    cm.compression.update(
        tolerance=tol,
        calibration=dict(
            frames=int(sum(len(c) for c, *_ in frames)),
            atoms=int(sum(c.shape[0] * c.shape[1] for c, *_ in frames)),
            max_force_error=err,
            table_budget=budget,
            sensitivity=err / bound if bound > 0 else None,
            rounds=tried,
        ),
    )
    if err < 1e-3 * tol:
        warnings.warn(f"max |ΔF| = {err:.2e} eV/Å is far below the tolerance {tol:.2e}: the strides reached their "
                      "upper limit (64 times the start, -s)", stacklevel=2)
    return cm
