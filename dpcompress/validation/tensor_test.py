r"""``dpcompress test`` of dipole and polarizability models, as DeePMD-kit 3.2's ``dp test`` does it.

Labels (``deepmd/npy`` systems, in every ``set.*``; :math:`n_\text{dof}` = 3 for a dipole, 9 for a
polarizability, row-major):

* without ``-a``: the global tensor ``dipole.npy`` / ``polarizability.npy``, shape
  (nframes, :math:`n_\text{dof}`);
* with ``-a``: the atomic tensors ``atom_dipole.npy`` / ``atom_polarizability.npy`` (or, when absent,
  ``atomic_dipole.npy`` / ``atomic_polarizability.npy``), shape (nframes, :math:`n_s n_\text{dof}`)
  for the :math:`n_s` atoms of the model's selected types (``get_sel_type``) in their order, or
  (nframes, :math:`N n_\text{dof}`) for every atom (the unselected atoms' entries are ignored).

Errors of a system with :math:`n_s` selected atoms, :math:`\Delta` = prediction - label over every
component of every tested frame: the global tensor's prediction is the sum of the atomic ones,
:math:`\mathbf T_f = \sum_i \mathbf T_{fi}`, and

.. math::

    \text{RMSE} = \sqrt{\tfrac1{|\Delta|}\textstyle\sum \Delta^2}, \qquad
    \text{RMSE}/\sqrt{n_s}, \qquad \text{RMSE}/n_s

(the last two per system only, without ``-a``, and only when :math:`n_s > 0`); with ``-a``
:math:`\Delta` runs over the selected atoms' tensors (a system without selected atoms has no error).
``dp test`` reports only RMSEs; we also give the MAE :math:`\tfrac1{|\Delta|}\sum|\Delta|` (in
``--json``).  Over systems, each quantity is averaged with the weights :math:`|\Delta|` (RMSEs in
quadrature: :func:`~.metrics.merge`).  The errors are in the labels' unit.

Detail files (``-d DETAIL``): ``DETAIL.out`` for the first system, ``DETAIL.out.K`` for the
(K+1)-th, as ``dp test`` names them; one row per frame, the label's columns then the prediction's
(``data_x data_y data_z pred_x pred_y pred_z``, with ``-a`` ``data_x1 data_y1 data_z1 ... pred_zN``
over the selected atoms; ``pxx ... pzz`` for polarizabilities), ``numpy.savetxt``'s ``%.18e``.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..core.atomic_file import write_atomic
from ..core.errors import DataFormatError, InputError
from ..data import FrameReader, discover_systems
from ..data.checks import check_finite_frames
from ..deep_tensor import DeepDipole, DeepPolar
from ..modelfile import is_dpc_file, load_model, read_dpc, unpack
from ..models import DPModel
from ..models.tensor_fitting import TensorFitting
from .detail import table_text
from .frame_params import param_widths
from .metrics import merge
from .runner import BATCH_ATOMS, CHUNK_ATOMS, frames_to_test, model_types, runs, system_label


@dataclass(frozen=True)
class TensorKind:
    """What distinguishes the two tensor models in ``dp test``."""

    kind: str  # the fitting type: "dipole" / "polar"
    label: str  # global label file stem and our name of the quantity
    title: str  # as dp test prints it
    components: tuple
    cls: type

    @property
    def ndof(self):
        return len(self.components)

    def atomic_files(self):
        """Atomic label file stems, in the order looked for (``dp test`` tries ``atom_`` first)."""
        return ("atom_" + self.label, "atomic_" + self.label)


KINDS = {
    "dipole": TensorKind("dipole", "dipole", "Dipole", ("x", "y", "z"), DeepDipole),
    "polar": TensorKind("polar", "polarizability", "Polarizability",
                        tuple(f"p{a}{b}" for a in "xyz" for b in "xyz"), DeepPolar),
}
#: Our quantity names -> dp test's keys; ``mae`` is ours only.
KEYS = ("rmse", "rmse_sqrtn", "rmse_n", "mae")
#: Reported per system, left out of the average over systems (as ``dp test``).
PER_SYSTEM_ONLY = ("rmse_sqrtn", "rmse_n")
FOOTER = "The unit of error is the same as the unit of provided label."


def tensor_model(path):
    """The :class:`~dpcompress.models.DPModel` in ``path`` when it is a dipole/polar model, else None.

    A ``.dpc`` is told by its header (an energy model is not unpacked); other files are loaded.
    """
    if is_dpc_file(path):
        container = read_dpc(path)
        return unpack(container, str(path)) if container.header.get("kind") == "dp_tensor" else None
    model = load_model(path)
    return model if isinstance(model, DPModel) and isinstance(model.fitting, TensorFitting) else None


@dataclass
class TensorSystemResult:
    """One system: ``pred`` / ``label`` (nframes, width) as compared, ``errors`` ``{key: (value, weight)}``."""

    name: str
    natoms: int
    nsel: int
    pred: np.ndarray
    label: np.ndarray
    errors: Dict[str, tuple]
    original: Optional[np.ndarray] = None
    original_errors: Optional[Dict[str, tuple]] = None

    def differences(self):
        """``(max |Δ|, RMS Δ, count)`` of the prediction minus the original's, over every compared number."""
        d = self.pred - self.original
        if d.size == 0:
            return None
        return float(np.abs(d).max()), float(np.sqrt(np.mean(d * d))), int(d.size)

    @property
    def nframes(self):
        return int(self.pred.shape[0])


@dataclass
class TensorTestResult:
    model: str
    kind: TensorKind
    atomic: bool
    systems: List[TensorSystemResult] = field(default_factory=list)
    against: Optional[str] = None

    __test__ = False

    @property
    def nframes(self):
        return sum(s.nframes for s in self.systems)

    def weighted(self):
        """``dp test``'s weighted average over systems (the per-system-only quantities left out)."""
        return _merge([{k: v for k, v in s.errors.items() if k not in PER_SYSTEM_ONLY} for s in self.systems])

    def original_weighted(self):
        return _merge([{k: v for k, v in s.original_errors.items() if k not in PER_SYSTEM_ONLY} for s in self.systems])

    def differences_weighted(self):
        """:meth:`TensorSystemResult.differences` over every system: the largest max, the RMS over all numbers."""
        parts = [d for d in (s.differences() for s in self.systems) if d is not None]
        if not parts:
            return None
        count = sum(c for _, _, c in parts)
        return (max(m for m, _, _ in parts), float(np.sqrt(sum(r * r * c for _, r, c in parts) / count)), count)


def _merge(errors):
    """Weighted merge of ``{key: (value, weight)}`` (MAE linearly, RMSE in quadrature)."""
    triples = [{k: ((v, 0.0, w) if k == "mae" else (0.0, v, w)) for k, (v, w) in e.items()} for e in errors]
    merged = merge(triples, per_system=True)
    return {k: ((mae if k == "mae" else rmse), w) for k, (mae, rmse, w) in merged.items()}


def chunk_errors(pred, label, nsel, atomic):
    """Errors of one chunk of frames, ``dp test``'s ``evaluate_chunk`` (``{}`` for ``-a`` without selected atoms)."""
    if atomic and nsel == 0:
        return {}
    diff = pred - label
    rmse = float(np.sqrt(np.mean(diff * diff)))
    out = {"rmse": (rmse, float(diff.size)), "mae": (float(np.mean(np.abs(diff))), float(diff.size))}
    if not atomic and nsel:
        out["rmse_sqrtn"] = (rmse / np.sqrt(nsel), float(diff.size))
        out["rmse_n"] = (rmse / nsel, float(diff.size))
    return out


def read_tensor_labels(info, kind, atomic, sel_mask):
    """Every frame's label of system ``info``: (nframes, ndof), or with ``atomic`` (nframes, nsel * ndof).

    Raises
    ------
    DataFormatError
        A set without the label (the message names the file and the shape expected), a label of another
        shape, a non-numeric array, NaN or inf.
    """
    ndof, natoms, nsel = kind.ndof, info.natoms, int(np.count_nonzero(sel_mask))
    parts = []
    for st in info.sets:
        stems = kind.atomic_files() if atomic else (kind.label,)
        path = next((os.path.join(st.where, s + ".npy") for s in stems
                     if os.path.isfile(os.path.join(st.where, s + ".npy"))), None)
        if path is None:
            shape = (f"(nframes, {nsel * ndof}) for the {nsel} atoms of the selected types, or (nframes, "
                     f"{natoms * ndof})" if atomic else f"(nframes, {ndof})")
            what = "the atomic tensors (-a/--atomic)" if atomic else "the global tensor per frame"
            raise DataFormatError(f"{st.where}: no {' or '.join(s + '.npy' for s in stems)}: a {kind.kind} model is "
                                  f"tested against {what}, shape {shape}")
        try:
            value = np.load(path, allow_pickle=False)
        except Exception as exc:  # truncated, pickled, unreadable
            raise DataFormatError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
            raise DataFormatError(f"{path}: expected a numeric array")
        value = value.astype(np.float64)
        n = st.nframes
        if not atomic and value.size == n * ndof:
            value = value.reshape(n, ndof)
        elif atomic and value.size == n * natoms * ndof:
            value = value.reshape(n, natoms, ndof)[:, sel_mask, :].reshape(n, nsel * ndof)
        elif atomic and value.size == n * nsel * ndof:
            value = value.reshape(n, nsel * ndof)
        else:
            expected = (f"({n}, {nsel * ndof}) or ({n}, {natoms * ndof})" if atomic else f"({n}, {ndof})")
            raise DataFormatError(f"{path}: shape {value.shape}, expected {expected} ({st.nframes} frames, "
                                  f"{'the selected atoms or every atom, ' if atomic else ''}{ndof} numbers each)")
        check_finite_frames(value, path, 0)
        parts.append(value)
    return np.concatenate(parts) if parts else np.zeros((0, (nsel if atomic else 1) * ndof))


class _ParamView:
    """What :func:`~.frame_params.param_widths` asks of a model, for a :class:`~dpcompress.deep_tensor.DeepTensor`."""

    def __init__(self, dp):
        self.dp = dp

    def get_dim_fparam(self):
        return self.dp.get_dim_fparam()

    def get_dim_aparam(self):
        return self.dp.get_dim_aparam()

    def has_default_fparam(self):
        return getattr(self.dp.model.fitting, "default_fparam", None) is not None


def _predict(dp, info, frames, reader, sel_mask, atomic):
    """Predictions (nframes, width) of the sorted ``frames``: the global tensor (sum of the atomic ones,
    as ``dp test`` forms it), or with ``atomic`` the selected atoms' tensors.  A model with frame/atomic
    parameters reads them from ``fparam.npy`` / ``aparam.npy`` (the energy models' rules, :mod:`.frame_params`)."""
    to_model = model_types(info, dp.get_type_map())
    batch = max(1, BATCH_ATOMS // max(1, info.natoms))
    ndof = dp.output_dim
    out = []
    frames = np.asarray(frames, dtype=np.int64)
    widths = param_widths(info, _ParamView(dp))
    for lo, hi in runs(frames):
        for block in reader.blocks(info, lo, hi, chunk=batch, params=widths):
            types = block.atom_types if to_model is None else to_model[block.atom_types]
            try:
                t = dp.eval(block.coords, block.cells, types, atomic=True, fparam=block.labels.get("fparam"),
                            aparam=block.labels.get("aparam")).reshape(block.nframes, -1, ndof)
            except InputError as exc:
                last = block.first_in_set + block.nframes - 1
                raise InputError(f"{block.set_where} frames {block.first_in_set}..{last}"
                                 f" ({info.name}): {exc}") from None
            out.append(t[:, sel_mask, :].reshape(block.nframes, -1) if atomic else np.sum(t, axis=1))
    width = ndof * (int(np.count_nonzero(sel_mask)) if atomic else 1)
    return np.concatenate(out) if out else np.zeros((0, width))


def run_tensor_test(model, kind, systems, *, numb_test=0, shuffle=False, seed=None, fmt=None, atomic=False,
                    n_threads=None, source=None, against=None, against_source=None):
    """Errors of a dipole/polar model against the labels of ``systems`` (``dp test`` for tensor models).

    Parameters
    ----------
    model : DPModel
        The tensor model (:func:`tensor_model`).
    kind : TensorKind
    systems, numb_test, shuffle, seed, fmt
        As :func:`~.runner.run_test` (the same frames are tested).
    atomic : bool
        ``-a``: the atomic tensors against ``atom(ic)_dipole.npy`` / ``atom(ic)_polarizability.npy``.
    source : str
        The model file, as reported.
    against : DPModel or None
        The original model (a tensor model of the same kind), evaluated on the same frames: its errors and the
        differences of the two models' predictions (``--against``).
    against_source : str
        Its file, as reported.

    Returns
    -------
    TensorTestResult

    Raises
    ------
    DataFormatError
        A system that is not ``deepmd/npy``, or with per-frame types, or without the labels.
    """
    if isinstance(numb_test, bool) or not isinstance(numb_test, (int, np.integer)) or numb_test < 0:
        raise InputError(f"-n must be a non-negative integer (0: every frame), got {numb_test!r}")
    found = discover_systems(systems, labels=True, fmt=fmt)
    dp = kind.cls(model, n_threads=n_threads)
    original = None if against is None else kind.cls(against, n_threads=n_threads)
    if original is not None and (original.get_sel_type() != dp.get_sel_type()
                                 or original.get_type_map() != dp.get_type_map()):
        raise InputError(f"--against {against_source}: selected types {original.get_sel_type()} and type map "
                         f"{original.get_type_map()} differ from the model's "
                         f"({dp.get_sel_type()}, {dp.get_type_map()})")
    sel_type = dp.get_sel_type()
    masks = []
    for info in found:
        if info.kind != "npy" or info.mixed:
            raise DataFormatError(f"{info.name}: dpcompress test of a {kind.kind} model reads deepmd/npy systems "
                                  "with one type.raw (tensor labels are not read from other formats)")
        to_model = model_types(info, dp.get_type_map())
        types = info.types if to_model is None else to_model[info.types]
        masks.append(np.isin(types, sel_type))
    for info in found:  # a model that needs fparam/aparam the data lack: refused before any work
        for m in (dp, original):
            if m is not None:
                param_widths(info, _ParamView(m))
    labels = [read_tensor_labels(info, kind, atomic, mask) for info, mask in zip(found, masks)]
    rng = None
    if shuffle:
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        rng = np.random.RandomState(int(seed) % 2**32)
    result = TensorTestResult(str(source or getattr(model, "source", "") or "model"), kind, atomic,
                              against=None if against is None else str(against_source or against.source))
    with FrameReader() as reader:
        for info, mask, label in zip(found, masks, labels):
            frames = frames_to_test(info.nframes, numb_test, rng)
            ordered = np.sort(frames)
            back = np.argsort(np.argsort(frames, kind="stable"), kind="stable")
            preds = [_predict(m, info, ordered, reader, mask, atomic)[back] for m in (dp, original) if m is not None]
            lab = label[frames]
            nsel = int(np.count_nonzero(mask))
            step = max(1, CHUNK_ATOMS // max(1, info.natoms))  # dp test's chunks of frames, merged
            errors = [_merge([chunk_errors(p[a:a + step], lab[a:a + step], nsel, atomic)
                              for a in range(0, len(frames), step)]) for p in preds]
            res = TensorSystemResult(system_label(info), info.natoms, nsel, preds[0], lab, errors[0])
            if original is not None:
                res.original, res.original_errors = preds[1], errors[1]
            result.systems.append(res)
    return result


def report_lines(kind, errors):
    """``dp test``'s report lines of ``errors`` (``Dipole  RMSE       : ...``; the MAE is not printed)."""
    names = (("rmse", "RMSE      "), ("rmse_sqrtn", "RMSE/sqrtN"), ("rmse_n", "RMSE/N    "))
    return [f"{kind.title}  {label} : {errors[key][0]:e}" for key, label in names if key in errors] + [FOOTER]


def as_metrics(result, errors, nframes):
    r"""The ``--json`` form: ``nframes`` and ``{q}_rmse``, ``{q}_mae``, and per system
    ``{q}_rmse_per_sqrt_natoms``, ``{q}_rmse_per_natoms`` (:math:`n_s`: the selected atoms), with ``q`` =
    ``dipole`` / ``polarizability``, or ``atomic_dipole`` / ``atomic_polarizability`` with ``-a``."""
    q = ("atomic_" if result.atomic else "") + result.kind.label
    names = {"rmse": "rmse", "mae": "mae", "rmse_sqrtn": "rmse_per_sqrt_natoms", "rmse_n": "rmse_per_natoms"}
    out = {"nframes": int(nframes)}
    for key in KEYS:
        if key in errors:
            out[f"{q}_{names[key]}"] = float(errors[key][0])
    return out


def _differences_dict(result, d):
    q = ("atomic_" if result.atomic else "") + result.kind.label
    return None if d is None else {f"{q}_max": d[0], f"{q}_rms": d[1]}


def summary(result):
    """``{"model", "kind", "atomic", "systems": {SYSTEM: METRICS}, "weighted": METRICS}`` and, with
    ``--against``, ``"against": {"model", "systems", "weighted", "differences", "differences_weighted"}``
    (the differences: ``{q}_max``, ``{q}_rms`` of prediction − original)."""
    out = {"model": result.model, "kind": result.kind.kind, "atomic": result.atomic,
           "systems": {s.name: as_metrics(result, s.errors, s.nframes) for s in result.systems},
           "weighted": as_metrics(result, result.weighted(), result.nframes)}
    if result.against:
        out["against"] = {
            "model": result.against,
            "systems": {s.name: as_metrics(result, s.original_errors, s.nframes) for s in result.systems},
            "weighted": as_metrics(result, result.original_weighted(), result.nframes),
            "differences": {s.name: _differences_dict(result, s.differences()) for s in result.systems},
            "differences_weighted": _differences_dict(result, result.differences_weighted()),
        }
    return out


def detail_paths(prefix, nsystems):
    """``DETAIL.out``, ``DETAIL.out.1``, ... (``dp test``'s names: ``Path.with_suffix``)."""
    base = Path(prefix)
    return [str(base.with_suffix(".out" + (f".{k}" if k else ""))) for k in range(nsystems)]


def detail_header(kind, atomic, nsel):
    """The header line's columns (``dp test``'s)."""
    if not atomic:
        return " ".join([f"data_{c}" for c in kind.components] + [f"pred_{c}" for c in kind.components])
    return " ".join(f"{side}_{c}{i}" for side in ("data", "pred") for i in range(1, nsel + 1) for c in kind.components)


def write_details(result, prefix, inputs=()):
    """Write one detail file per system; returns their paths."""
    paths = detail_paths(prefix, len(result.systems))
    for path, s in zip(paths, result.systems):
        width = s.pred.shape[1] if s.pred.ndim == 2 else result.kind.ndof
        rows = np.concatenate((s.label.reshape(-1, width), s.pred.reshape(-1, width)), axis=1)
        header = detail_header(result.kind, result.atomic, s.nsel)
        write_atomic(path, table_text(rows, header), inputs=inputs, what="-d")
    return paths


def _difference_line(result, d):
    name = ("atomic " if result.atomic else "") + result.kind.label
    return [] if d is None else [f"max |d {name}| : {d[0]:e}   RMS {d[1]:e}"]


def print_report(result, say, rule):
    """The report ``dp test`` prints, with ``--against`` the original's errors and the differences."""
    for s in result.systems:
        say("# ---------------output of dp test--------------- ")
        say(f"# testing system : {s.name}")
        say(f"# number of test data : {s.nframes:d} ")
        for line in report_lines(result.kind, s.errors):
            say(line)
        if result.against:
            say(f"# original model {result.against} on the same frames:")
            for line in report_lines(result.kind, s.original_errors)[:-1]:
                say(line)
            say(f"# {result.model} - {result.against}:")
            for line in _difference_line(result, s.differences()):
                say(line)
        say(rule)
    say("# ----------weighted average of errors----------- ")
    say(f"# number of systems : {len(result.systems)}")
    for line in report_lines(result.kind, result.weighted()):
        say(line)
    if result.against:
        say(f"# original model {result.against}:")
        for line in report_lines(result.kind, result.original_weighted())[:-1]:
            say(line)
        say(f"# {result.model} - {result.against}, all frames:")
        for line in _difference_line(result, result.differences_weighted()):
            say(line)
    say(rule)


def kind_of(model) -> TensorKind:
    """The :class:`TensorKind` of a dipole/polar ``model``."""
    return KINDS[model.fitting.kind]
