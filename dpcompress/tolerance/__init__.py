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
from typing import Optional, Union

import numpy as np

from ..compression import compress
from ..core.errors import InputError
from ..descriptors import iter_tables
from ..modelfile import load_model
from ..models import DPModel
from ..potential import Potential, TableOverflowError

__all__ = ["compress_to_tolerance", "force_error", "calibration_frames", "contact_frames"]


def cm_size(model):
    """Bytes of a compressed model's tables."""
    return sum(t.coef.nbytes for t in iter_tables(model.descriptor))


class _Budget:
    """One table-error budget, rescaled by the force error it gave: ``b <- b * TARGET * TOL / err``
    (x100 at most) until the error lies in [LOW * TOL, TOL], bracketed once a budget failed."""

    def __init__(self, tol):
        self.value, self.good, self.bad, self.done = float(tol), None, None, False

    def update(self, err, tol):
        if self.done:
            return True
        b = self.value
        if err <= tol:
            self.good = b if self.good is None else max(self.good, b)
            if err >= LOW * tol:
                self.done = True
                return True
        else:
            self.bad = b if self.bad is None else min(self.bad, b)
        guess = b * min(100.0, max(1e-3, TARGET * tol / err)) if err > 0 else 100.0 * b
        if self.good is not None and self.bad is not None:
            if self.bad / self.good < 1.2:
                self.value, self.done = self.good, True
                return True
            guess = min(self.bad / 1.05, max(self.good * 1.05, guess))
        self.value = guess
        return False

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


#: contact distances, as fractions of the training set's closest pair: they reach into the coarse
#: segments of the tables (frames whose contact lies beyond a table are skipped)
CONTACTS = (0.9, 0.75, 0.6, 0.5, 0.4, 0.32, 0.25, 0.2, 0.16, 0.13)


def contact_frames(frames, min_nbor_dist):
    r"""Close-contact frames: in the first frame of each system, the closest pair of each pair of
    atom types pushed together along its bond to each distance of :data:`CONTACTS` × ``min_nbor_dist``.

    These put neighbors into the tables' coarse segments (inputs beyond the training set's range),
    which the calibration frames never reach.  Returns frames in the form of
    :func:`calibration_frames`, one per (system, type pair, distance).
    """
    out = []
    for coords, cells, types, mixed in frames:
        if mixed or len(coords) == 0 or coords.shape[1] < 2:
            continue
        x = coords[0]
        cell = None if cells is None else np.asarray(cells[0], dtype=np.float64).reshape(3, 3)
        d = x[None, :, :] - x[:, None, :]
        if cell is not None:  # minimum image through fractional coordinates
            f = d @ np.linalg.inv(cell)
            d = (f - np.round(f)) @ cell
        r = np.linalg.norm(d, axis=2)
        np.fill_diagonal(r, np.inf)
        t = np.asarray(types)
        for a in np.unique(t):
            for b in np.unique(t):
                if str(b) < str(a):
                    continue
                mask = (t[:, None] == a) & (t[None, :] == b)
                if not np.isfinite(np.where(mask, r, np.inf)).any():
                    continue
                i, j = np.unravel_index(int(np.argmin(np.where(mask, r, np.inf))), r.shape)
                u = d[i, j] / r[i, j]
                for frac in CONTACTS:
                    y = x.copy()
                    y[j] = x[i] + u * (frac * min_nbor_dist) + (x[j] - x[i] - d[i, j])  # j's own image
                    out.append((y[None], None if cell is None else cell[None], types, False))
    return out


def force_error(model, frames, reference, n_threads=None, skip_beyond=False):
    """Max |F(model) - reference| over ``frames`` (eV/Å); ``reference`` from the exact model.

    ``skip_beyond``: frames with a neighbor beyond the tables do not count (contact frames);
    otherwise they raise.

    Raises
    ------
    InputError
        A frame has a neighbor beyond the tables (the error there is extrapolation, not tables).
    """
    pot = Potential(model, n_threads=n_threads, overflow="ignore" if skip_beyond else "error")
    worst = 0.0
    for (c, b, t, m), ref in zip(frames, reference):
        try:
            got = pot.eval(c, b, t, mixed_type=m)[1]
        except TableOverflowError as exc:
            raise InputError(f"a calibration frame lies beyond the tables ({exc}); calibrate on frames inside the "
                             "training set's range (the training data), or compress with a larger -e") from None
        if skip_beyond and pot.table_overflow["beyond_table"]:
            continue
        if got.size:
            worst = max(worst, float(np.max(np.abs(got - ref))))
    return worst


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
    exact = Potential(model, n_threads=n_threads)
    reference = _forces(exact, frames)
    tol = float(tolerance)
    first = compress(model, n_threads=n_threads, **options)  # the nominal grid: min_nbor_dist as resolved
    contacts = contact_frames(frames, first.compression["min_nbor_dist"])
    contact_ref = _forces(exact, contacts)
    budget = _Budget(tol)
    best, tried, last = None, [], None
    for _ in range(MAX_ROUNDS):
        cm = compress(model, table_error=budget.value, n_threads=n_threads, **options)
        strides = [(t.stride0, t.stride1) for t in iter_tables(cm.descriptor)]
        if strides == last:  # every stride at its largest (a quarter of its region): nothing to gain
            break
        last = strides
        err = force_error(cm, frames, reference, n_threads)
        err_c = max(err, force_error(cm, contacts, contact_ref, n_threads, skip_beyond=True))
        tried.append([budget.value, err, err_c])
        if err_c <= tol and (best is None or cm_size(cm) < cm_size(best[0])):
            best = (cm, err, err_c, budget.value)
        # one budget for both segments: a close contact's force is also the most sensitive to
        # the errors of its other, ordinary neighbors (fine segments), so the contact frames
        # steer the fine strides as much as the coarse ones
        if budget.update(err_c, tol):
            break
    if best is None:
        raise InputError(
            f"tolerance {tol:.2e} eV/Å not reached: max |ΔF| on the calibration frames is still "
            f"{min(r[2] for r in tried):.2e} eV/Å at a table budget of {min(r[0] for r in tried):.2e} (round-off or a "
            "kinked activation such as relu sets a floor); use a larger tolerance"
        )
    cm, err, err_c, b = best
    bound = max(b[0] for b in cm.compression["table_bounds"])
    cm.compression.update(
        tolerance=tol,
        calibration=dict(
            frames=int(sum(len(c) for c, *_ in frames)),
            atoms=int(sum(c.shape[0] * c.shape[1] for c, *_ in frames)),
            contact_frames=len(contacts),
            max_force_error=err,
            max_contact_force_error=err_c,
            table_budget=b,
            sensitivity=err / bound if bound > 0 else None,
            rounds=tried,
        ),
    )
    return cm
