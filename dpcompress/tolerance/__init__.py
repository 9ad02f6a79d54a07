r"""Error-targeted compression: ``dpcompress compress --tolerance TOL``.

What the tolerance means
------------------------
``TOL`` (eV/Å) bounds the force error of the compressed model against the exact one,

.. math::

    \max_{\text{frames}, i, a} |F^\text{compressed}_{ia} - F^\text{exact}_{ia}| \le \mathrm{TOL},

*guaranteed, with a margin* (:data:`MARGIN` × TOL), *on the calibration frames* (the training
data, or the frames given) *and on their close-contact frames* (:func:`contact_frames`), and
estimated everywhere else inside the tables' range.

How
---
1. *Budget.* Every table gets the largest fine and coarse strides whose sampled error (value and
   first derivative of every channel, weighted by :math:`(x/U)^2` beyond the fine region:
   :mod:`dpcompress.compression.table_error`) is at most one table-error budget
   :math:`\varepsilon`.  The force error is a linear contraction of the table errors, so for small
   errors :math:`\max|\Delta F| \approx S\,\varepsilon`; the sensitivity :math:`S` is measured: the
   model is compressed with a trial budget, its forces are compared with the exact model's on the
   calibration and contact frames, and the budget is rescaled,
   :math:`\varepsilon \leftarrow 0.7\,\varepsilon\,T/\max|\Delta F|` with the target
   :math:`T = \mathrm{MARGIN}\cdot\mathrm{TOL}`, until the error lies in :math:`[T/2, T]`.
2. *Growth.* One budget for all tables is not the cheapest allocation: tables whose error barely
   reaches the forces (rare neighbor types, a coarse segment no contact reaches) could take larger
   strides.  So each table's strides, largest table first, fine then coarse, are multiplied by
   1.5 (then 1.22, 1.11 after a failure) as long as the calibration and contact frames stay
   within :math:`T` (:func:`_grow`).  The other tables are not rebuilt (``FixedStrides``).

The margin: the contact frames sample the force error at :data:`N_CONTACTS` distances per type
pair, but the error oscillates with the distance (zero at the table's nodes, largest inside each
interval), and other frames put a contact into another environment; on the tiny water model 120
distances found up to a 1.15x larger error than 48, and the fixture's own stress contacts (other
frames) up to 0.96x the largest of 120 (docs/accuracy.md).  The file keeps the error reached, the budget and :math:`S` (``compression.calibration``),
and per table the achieved bound and every stride tried (``table_bounds``, ``table_search``).
"""
import math
import os
import warnings
from typing import Optional, Union

import numpy as np

from ..compression import compress, resolve_min_nbor_dist
from ..compression.table_error import FixedStrides
from ..core.errors import InputError
from ..core.warnings import TableAccuracyWarning
from ..descriptors import iter_tables
from ..modelfile import load_model
from ..models import DPModel, DPZBLModel
from ..potential import Potential, TableOverflowError

__all__ = ["compress_to_tolerance", "force_error", "calibration_frames", "contact_frames", "Calibration",
           "prepare_calibration", "largest_uniform_step", "MARGIN"]


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

#: compressions tried at most (budget rounds)
MAX_ROUNDS = 8
#: the guarantee on the calibration and contact frames is MARGIN * TOL (module docstring)
MARGIN = 0.7
#: growth factors of a table's stride: the next after a failure is the square root
GROW, GROW_MIN = 1.5, 1.1
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


#: contact distances per type pair, log-spaced between CONTACT_RANGE × the training set's closest
#: pair: dense, so that some fall near the middle of every coarse interval they cross
N_CONTACTS = 48
CONTACT_RANGE = (0.9, 0.13)


def contact_fractions(n=N_CONTACTS):
    """The contact distances, as fractions of the training set's closest pair."""
    return tuple(float(f) for f in np.geomspace(CONTACT_RANGE[0], CONTACT_RANGE[1], int(n)))


def contact_frames(frames, min_nbor_dist, n=N_CONTACTS):
    r"""Close-contact frames: for each pair of atom types, its closest pair over the first frames
    of all systems, pushed together along its bond to each of ``n`` distances
    (:func:`contact_fractions` × ``min_nbor_dist``).

    These put neighbors into the tables' coarse segments (inputs beyond the training set's range),
    which the calibration frames never reach.  Returns frames in the form of
    :func:`calibration_frames`, one per (type pair, distance).
    """
    closest = {}  # (a, b) -> (r, x, cell, types, i, j, d_ij)
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
                rm = np.where((t[:, None] == a) & (t[None, :] == b), r, np.inf)
                if not np.isfinite(rm).any():
                    continue
                i, j = np.unravel_index(int(np.argmin(rm)), r.shape)
                key = (str(a), str(b))
                if key not in closest or r[i, j] < closest[key][0]:
                    closest[key] = (r[i, j], x, cell, types, i, j, d[i, j])
    out = []
    for key in sorted(closest):
        rij, x, cell, types, i, j, dij = closest[key]
        u = dij / rij
        for frac in contact_fractions(n):
            y = x.copy()
            y[j] = x[i] + u * (frac * min_nbor_dist) + (x[j] - x[i] - dij)  # j's own image
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
    return _max_error(Potential(model, n_threads=n_threads, overflow="ignore" if skip_beyond else "error"),
                      frames, reference, skip_beyond)[0]


def _max_error(pot, frames, reference, skip_beyond, limit=math.inf, order=None):
    """``(max |ΔF|, per-frame errors)``; stops at the first frame above ``limit`` (then the max is
    that frame's error); ``order``: the frames' indices in the order to try (worst first)."""
    errs = np.zeros(len(frames))
    for k in (range(len(frames)) if order is None else order):
        (c, b, t, m), ref = frames[k], reference[k]
        try:
            got = pot.eval(c, b, t, mixed_type=m)[1]
        except TableOverflowError as exc:
            raise InputError(f"a calibration frame lies beyond the tables ({exc}); calibrate on frames inside the "
                             "training set's range (the training data), or compress with a larger -e") from None
        if skip_beyond and pot.table_overflow["beyond_table"]:
            continue
        if got.size:
            errs[k] = float(np.max(np.abs(got - ref)))
            if errs[k] > limit:
                return errs[k], errs
    return float(errs.max()) if len(errs) else 0.0, errs


class Calibration:
    """The calibration and close-contact frames with the exact model's forces on them.

    Build with :func:`prepare_calibration`; one serves any number of tolerances (the exact forces
    are the slow part: reuse it).

    Attributes
    ----------
    frames, reference : list
        Calibration frames (:func:`calibration_frames`) and the exact forces on them.
    contacts, contact_reference : list
        Close-contact frames (:func:`contact_frames`) and the exact forces on them.
    min_nbor_dist : float
    """

    def __init__(self, frames, reference, contacts, contact_reference, min_nbor_dist):
        self.frames, self.reference = frames, reference
        self.contacts, self.contact_reference = contacts, contact_reference
        self.min_nbor_dist = min_nbor_dist
        self._worst = None  # contact frames, worst first (from the last check)

    def check(self, model, limit=math.inf, n_threads=None):
        """``(max |ΔF| on the calibration frames, max over those and the contact frames)`` of a
        compressed ``model``; stops early (returning an error above ``limit``) once one frame
        exceeds ``limit``."""
        pot = Potential(model, n_threads=n_threads, overflow="error")
        err = _max_error(pot, self.frames, self.reference, False, limit)[0]
        if err > limit:
            return err, err
        pot = Potential(model, n_threads=n_threads, overflow="ignore")
        err_c, errs = _max_error(pot, self.contacts, self.contact_reference, True, limit, self._worst)
        if err_c <= limit:
            self._worst = list(np.argsort(-errs))
        return err, max(err, err_c)


def prepare_calibration(model, frames, *, n_threads=None, contacts=N_CONTACTS, training_script=None,
                        min_nbor_dist=None, scan=None):
    """A :class:`Calibration`: the frames, their close contacts and the exact forces on both.

    Parameters
    ----------
    model : str, os.PathLike or DPModel
        The uncompressed model.
    frames : iterable
        Calibration systems (:func:`calibration_frames`).
    contacts : int
        Contact distances per type pair (:data:`N_CONTACTS`).
    training_script, min_nbor_dist, scan
        As for :func:`dpcompress.compress` (the training set's closest pair scales the contacts).
    """
    model = _dp_model(model)
    frames = calibration_frames(frames)
    rmin = resolve_min_nbor_dist(model, training_script, min_nbor_dist, scan)[0]
    exact = Potential(model, n_threads=n_threads)
    cont = contact_frames(frames, rmin, contacts)
    return Calibration(frames, _forces(exact, frames), cont, _forces(exact, cont), rmin)


def _dp_model(model):
    if not isinstance(model, DPModel):
        model = load_model(os.fspath(model))
    if isinstance(model, DPZBLModel):  # calibration runs the plain DP evaluators
        raise InputError("a force tolerance is not supported for DP + ZBL models yet: compress with a step (-s)")
    if not isinstance(model, DPModel):
        raise InputError("a force tolerance applies to DeePMD-kit models; NEP tables take a step (-s)")
    if model.is_compressed:
        raise InputError("the model is already compressed")
    return model


def _check_tolerance(tolerance):
    if isinstance(tolerance, bool) or not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance > 0):
        raise InputError(f"tolerance must be a number > 0 (eV/Å), got {tolerance!r}")
    return float(tolerance)


def _grow(model, cm, cal, target, n_threads, options):
    """Larger strides table by table while the calibration and contact frames stay within
    ``target`` (module docstring, step 2).  Returns ``(model, err, err_c, trials)``."""
    tables = list(iter_tables(cm.descriptor))
    strides = [[t.stride0, t.stride1] for t in tables]
    caps = [[max(t.stride0, 0.25 * t.n_fine * t.stride0),
             max(t.stride1, 0.25 * max(t.n_coarse, t.n_below) * t.stride1) if max(t.n_coarse, t.n_below) else t.stride1]
            for t in tables]
    histories = list(cm.compression["table_search"])
    budget = tuple(cm.compression["table_budget"])
    cache, trials = {}, 0
    err, err_c = cal.check(cm, n_threads=n_threads)
    for k in sorted(range(len(tables)), key=lambda k: -tables[k].coef.nbytes):
        for seg in (0, 1):
            if seg == 1 and not (tables[k].n_coarse or tables[k].n_below):
                continue
            f = GROW
            while f >= GROW_MIN and strides[k][seg] < caps[k][seg]:
                trial = [list(s) for s in strides]
                trial[k][seg] = min(caps[k][seg], strides[k][seg] * f)
                rule = FixedStrides(budget, [tuple(s) for s in trial], histories, cache, n_threads)
                m = compress(model, table_error=rule, n_threads=n_threads, **options)
                trials += 1
                e, e_c = cal.check(m, target, n_threads)
                if e_c <= target and cm_size(m) <= cm_size(cm):
                    cm, strides, err, err_c = m, trial, e, e_c
                    histories = list(m.compression["table_search"])
                else:
                    f = math.sqrt(f)
    return cm, err, err_c, trials


def compress_to_tolerance(
    model: Union[str, os.PathLike, DPModel],
    tolerance: float,
    frames,
    *,
    n_threads: Optional[int] = None,
    grow: bool = True,
    **options,
) -> DPModel:
    r"""Compress with per-table strides so that the force error stays within ``tolerance``.

    Parameters
    ----------
    model : str, os.PathLike or DPModel
        Uncompressed DeePMD-kit model.
    tolerance : float
        eV/Å, > 0: the bound on max |F_compressed - F_exact| (module docstring).
    frames : iterable or Calibration
        Calibration frames (:func:`calibration_frames`), or a :class:`Calibration` of this model
        (:func:`prepare_calibration`: reuse one for several tolerances).
    n_threads : int or None
    grow : bool
        Run the growth pass (module docstring, step 2) after the budget is found.
    **options
        Passed to :func:`dpcompress.compress` (``extrapolate``, ``training_script``,
        ``min_nbor_dist``, ``scan``, ``order``, ``check_frequency``, ``max_bytes``; ``step`` is
        the stride search's start).

    Returns
    -------
    DPModel
        Compressed; ``compression`` also holds ``tolerance`` and ``calibration`` (``frames``,
        ``atoms``, ``contact_frames``, ``margin``, ``max_force_error``, ``max_contact_force_error``,
        ``table_budget``, ``sensitivity`` = error / max table bound, ``rounds``,
        ``growth_trials``).

    Raises
    ------
    InputError
        A bad tolerance, no frames, frames beyond the tables, or a tolerance no budget reaches
        (round-off or a kinked activation sets a floor).
    """
    tol = _check_tolerance(tolerance)
    if "table_error" in options:
        raise InputError("compress_to_tolerance chooses the table budget itself; do not pass table_error")
    model = _dp_model(model)
    if isinstance(frames, Calibration):
        cal = frames
    else:
        cal = prepare_calibration(model, frames, n_threads=n_threads, training_script=options.get("training_script"),
                                  min_nbor_dist=options.get("min_nbor_dist"), scan=options.get("scan"))
    target = MARGIN * tol
    budget = _Budget(target)
    best, tried, last = None, [], None
    for _ in range(MAX_ROUNDS):
        cm = compress(model, table_error=budget.value, n_threads=n_threads, **options)
        strides = [(t.stride0, t.stride1) for t in iter_tables(cm.descriptor)]
        if strides == last:  # every stride at its largest (a quarter of its region): nothing to gain
            break
        last = strides
        err, err_c = cal.check(cm, n_threads=n_threads)
        tried.append([budget.value, err, err_c])
        if err_c <= target and (best is None or cm_size(cm) < cm_size(best[0])):
            best = (cm, err, err_c, budget.value)
        # one budget for both segments: a close contact's force is also the most sensitive to
        # the errors of its other, ordinary neighbors (fine segments), so the contact frames
        # steer the fine strides as much as the coarse ones
        if budget.update(err_c, target):
            break
    if best is None:
        raise InputError(
            f"tolerance {tol:.2e} eV/Å not reached: max |ΔF| on the calibration and contact frames is still "
            f"{min(r[2] for r in tried):.2e} eV/Å (target {MARGIN:g} × TOL) at a table budget of "
            f"{min(r[0] for r in tried):.2e} (round-off or a kinked activation such as relu sets a floor); use a "
            "larger tolerance"
        )
    cm, err, err_c, b = best
    trials = 0
    if grow:
        cm, err, err_c, trials = _grow(model, cm, cal, target, n_threads, options)
    bound = max(x[0] for x in cm.compression["table_bounds"])
    cm.compression.update(
        tolerance=tol,
        calibration=dict(
            frames=int(sum(len(c) for c, *_ in cal.frames)),
            atoms=int(sum(c.shape[0] * c.shape[1] for c, *_ in cal.frames)),
            contact_frames=len(cal.contacts),
            margin=MARGIN,
            max_force_error=err,
            max_contact_force_error=err_c,
            table_budget=b,
            sensitivity=err / bound if bound > 0 else None,
            rounds=tried,
            growth_trials=trials,
        ),
    )
    return cm


def largest_uniform_step(model, tolerance, calibration, *, lo=1e-3, hi=2.56, steps=10, n_threads=None, **options):
    """The largest uniform ``-s`` (coarse stride 10×) meeting ``tolerance`` as :func:`compress_to_tolerance`
    guarantees it: max |ΔF| ≤ TOL on the calibration and contact frames (log bisection on
    ``[lo, hi]``, ``steps`` compressions; ``lo`` is returned if nothing larger meets it).

    The fair comparison for the per-table strides: it meets TOL itself, not MARGIN × TOL.
    """
    tol = _check_tolerance(tolerance)
    model = _dp_model(model)
    good, bad = lo, hi
    for _ in range(steps):
        s = math.sqrt(good * bad)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TableAccuracyWarning)
            m = compress(model, step=s, n_threads=n_threads, **options)
        ok = calibration.check(m, tol, n_threads)[1] <= tol
        good, bad = (s, bad) if ok else (good, s)
    return good
