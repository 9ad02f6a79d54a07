"""Compression: embedding nets -> piecewise-polynomial tables (each descriptor unit tabulates its
own nets, :mod:`dpcompress.descriptors`), and NEP radial functions -> tables.

``compress(model, step=0.01, extrapolate=5, ...)`` returns a compressed
:class:`~dpcompress.models.DPModel`; :func:`dpcompress.save_model` writes the ``.dpc`` file.
Flags mean what they mean in DeePMD-kit's ``dp compress``.
"""

import dataclasses
import hashlib
import math
import numbers
import os
import warnings
from typing import Optional, Union

from .._version import __version__
from ..core.errors import InputError, UnsupportedModelError
from ..core.memory_limit import format_bytes, how_to_raise, max_bytes as memory_limit
from ..core.warnings import TableAccuracyWarning
from ..data.min_distance import min_neighbor_distance, systems_from_training_script
from ..data.scan_file import scan_min_nbor_dist
from ..descriptors import iter_nets, iter_tables, parts, tabulate, unit_of
from ..modelfile import load_model
from ..models import DPModel, DPZBLModel
from ..nep import DEFAULT_STEP, NEPModel, build_tables, is_nep_text_file, read_nep
from .table_error import MIN_FACTOR, StrideSearch

__all__ = ["compress", "compress_nep", "resolve_min_nbor_dist", "estimate_table_bytes", "TableAccuracyWarning"]

#: A table whose estimated max |table - net| exceeds this triggers a TableAccuracyWarning.
WARN_TABLE_ERROR = 1e-8


def resolve_min_nbor_dist(model, training_script=None, min_nbor_dist=None, scan=None):
    """The training set's minimum pair distance, and where it came from.

    Order: a scan file (``scan``, written by ``dpcompress scan``) when given —
    an explicit request, so it wins over the model's value (with a warning when
    they differ); else (as DeePMD-kit) the value stored in the model; else a scan of the
    training data that ``training_script`` names; else ``min_nbor_dist``; else an error.
    """
    if scan is not None:
        value = scan_min_nbor_dist(scan)
        if model.min_nbor_dist is not None and abs(value - model.min_nbor_dist) > 1e-12 * value:
            warnings.warn(f"{scan}: min_nbor_dist = {value} is used; the model stores {model.min_nbor_dist}", stacklevel=3)
        return value, f"scan file {os.path.basename(scan)}"
    if model.min_nbor_dist is not None:
        if min_nbor_dist is not None and abs(min_nbor_dist - model.min_nbor_dist) > 1e-12:
            warnings.warn(
                f"the model stores min_nbor_dist = {model.min_nbor_dist}; the given {min_nbor_dist} is not used", stacklevel=3
            )
        return float(model.min_nbor_dist), "model"
    if training_script is not None:
        value = min_neighbor_distance(systems_from_training_script(training_script), cutoff=model.rcut)
        if not value < float("inf"):
            raise InputError(f"{training_script}: no atom pair within rcut in the training data")
        return value, f"training data of {os.path.basename(training_script)}"
    if min_nbor_dist is not None:
        if not min_nbor_dist > 0:
            raise InputError(f"min_nbor_dist must be > 0, got {min_nbor_dist}")
        return float(min_nbor_dist), "argument"
    raise InputError(
        "the model stores no min_nbor_dist: pass the training script (-t input.json) or --min-nbor-dist"
    )


#: descriptors whose tables use ten times the requested strides and a coarse segment below the fine
#: one (see ``dpcompress.descriptors.se_e3.tabulate``)
_WIDE_GRID = {"se_e3": 10.0, "se_e3_tebd": 10.0}


def _bound_leaves(bounds):
    """The ``(lower, upper)`` pairs of a unit's ``table_bounds`` result (any nesting; None skipped)."""
    if bounds is None:
        return
    if len(bounds) == 2 and all(isinstance(b, numbers.Real) for b in bounds):
        yield bounds
        return
    for item in bounds:
        yield from _bound_leaves(item)


def estimate_table_bytes(descriptor, min_nbor_dist, step, extrapolate, order):
    """Bytes the tables of ``descriptor`` would take, estimated before any is built.

    Each table of a part is counted with the part's widest range and widest net (an upper bound),
    in floating point, so a tiny step gives a huge number instead of a huge grid.

    Returns
    -------
    tables, largest : float
        All tables together, and the largest one.
    """
    total = largest = 0.0
    for part in parts(descriptor):
        leaves = list(_bound_leaves(unit_of(part).table_bounds(part, min_nbor_dist)))
        nets = list(iter_nets(part))
        if not leaves or not nets:
            continue
        lower = min(float(lo) for lo, _ in leaves)
        upper = max(float(hi) for _, hi in leaves)
        factor = _WIDE_GRID.get(part.type_name, 1.0)
        s0, s1 = factor * step, factor * 10.0 * step
        n = (upper - lower) / s0 + 1 + max(0.0, (extrapolate - 1) * abs(upper)) / s1 + 1
        if factor != 1.0:  # the coarse segment below the fine one
            n += max(0.0, (extrapolate - 1) * abs(lower)) / s1 + 1
        one = n * (order + 1) * max(net.out_dim for net in nets) * 8
        total += one * len(leaves)
        largest = max(largest, one)
    return total, largest


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def compress(
    model: Union[str, os.PathLike, DPModel, NEPModel, DPZBLModel],
    *,
    step: float = 0.01,
    extrapolate: float = 5,
    check_frequency: int = -1,
    training_script: Optional[str] = None,
    min_nbor_dist: Optional[float] = None,
    order: int = 5,
    n_threads: Optional[int] = None,
    scan: Optional[str] = None,
    max_bytes: Optional[Union[int, str]] = None,
    table_error: Optional[float] = None,
) -> Union[DPModel, NEPModel]:
    r"""Tabulate every embedding net of a model (or the radial functions of a NEP model).

    Each net :math:`g(x)` becomes a piecewise Hermite polynomial (quintic, matching
    :math:`g, g', g''` at the nodes; or cubic with ``order=3``) on a fine grid of
    stride ``step`` over :math:`[L, U)` and a coarse grid of stride ``10*step``
    over :math:`[U, e U]`, continued linearly beyond.  :math:`L, U` follow
    DeePMD-kit's rule from ``davg``/``dstd`` and the training set's minimum
    neighbor distance.

    A NEP model (a GPUMD ``nep.txt`` or a :class:`~dpcompress.nep.NEPModel`) goes to
    :func:`compress_nep` with ``step`` and ``max_bytes``; the options of DP models only
    (``extrapolate``, ``check_frequency``, ``training_script``, ``min_nbor_dist``, ``order``,
    ``n_threads``, ``scan``) must then be left at their defaults.

    Parameters
    ----------
    model : str, os.PathLike, DPModel or NEPModel
        Uncompressed model (``.dp`` / ``.yaml``), or a NEP model (``nep.txt``).
    step : float
        Fine stride (DeePMD-kit ``-s``).
    extrapolate : float
        Table end as a multiple of the fine region's upper bound (``-e``).
    check_frequency : int
        Default overflow-check period stored in the file (``-f``; -1: off).
    training_script, min_nbor_dist, scan
        See :func:`resolve_min_nbor_dist` (``scan``: a ``dpcompress scan`` JSON file).
    order : {5, 3}
    n_threads : int or None
    max_bytes : int, str or None
        Most memory the tables may take (``"4G"``); None: ``$DPCOMPRESS_MAX_BYTES`` or 2 GiB
        (:mod:`dpcompress.core.memory_limit`).
    table_error : float, (float, float) or None
        A table-error budget (or one for the fine region and one for the coarse segments): each
        table gets its own fine and coarse strides, the largest whose sampled error is at most it (:mod:`dpcompress.compression.table_error`; the search starts
        at ``step``).  ``compression`` then also holds ``table_budget`` ([fine, coarse]),
        ``table_bounds`` (per table, the achieved sampled errors [fine, coarse]) and ``table_search`` (per table, the strides tried and their
        errors); the file stores each table's strides.  A ``StrideSearch`` (e.g. ``FixedStrides``,
        given strides per table) is used as it is.  For a force tolerance in eV/Å see
        :func:`dpcompress.tolerance.compress_to_tolerance`.

    Returns
    -------
    DPModel or NEPModel
        Compressed (``is_compressed``), with ``compression`` provenance; a NEP model with its
        ``tables``.

    Raises
    ------
    InputError
        A bad argument, an option that does not apply to a NEP model, or tables above the memory
        limit (estimated before any is built).
    """
    source_path = None
    if not isinstance(model, (DPModel, NEPModel, DPZBLModel)):
        source_path = os.fspath(model)
        model = load_model(source_path)
    if isinstance(model, DPZBLModel):  # DP + ZBL: the DP part tabulated, the pair table kept (docs/dp-zbl.md)
        if model.dp.pair_exclude_types:
            raise UnsupportedModelError(f"{model.source or '<memory>'}: a DP + ZBL model whose DP part excludes pairs "
                                        "is not supported compressed (the pair table shares its neighbor rows)")
        if model.table.rcut != model.dp.rcut or model.table.sel != int(sum(model.dp.descriptor.sel)):
            raise UnsupportedModelError(f"{model.source or '<memory>'}: the pair table's rcut/sel "
                                        f"({model.table.rcut}, {model.table.sel}) differ from the DP part's "
                                        f"({model.dp.rcut}, {int(sum(model.dp.descriptor.sel))}); DeePMD-kit makes "
                                        "them equal and the runtime relies on it")
        dp = compress(dataclasses.replace(model.dp, source=model.dp.source or (source_path or "")), step=step,
                      extrapolate=extrapolate, check_frequency=check_frequency, training_script=training_script,
                      min_nbor_dist=min_nbor_dist, order=order, n_threads=n_threads, scan=scan, max_bytes=max_bytes,
                      table_error=table_error)
        return dataclasses.replace(model, dp=dp, compression=dp.compression)
    if isinstance(model, NEPModel):
        given = dict(extrapolate=extrapolate != 5, check_frequency=check_frequency != -1,
                     training_script=training_script is not None, min_nbor_dist=min_nbor_dist is not None,
                     order=order != 5, n_threads=n_threads is not None, scan=scan is not None,
                     table_error=table_error is not None)
        refused = [name for name, differs in given.items() if differs]
        if refused:
            raise InputError(f"{', '.join(refused)} appl{'ies' if len(refused) == 1 else 'y'} to DP models only; a NEP "
                             "model takes step and max_bytes (its tables cover [0, rc] and need no training data)")
        if model.tables is not None:
            raise InputError("the NEP model is already tabulated")
        return compress_nep(model, step=step, max_bytes=max_bytes)
    if model.is_compressed:
        raise InputError("the model is already compressed")
    if isinstance(step, bool) or not (isinstance(step, (int, float)) and math.isfinite(step) and step > 0):
        raise InputError(f"step must be > 0, got {step!r}")
    if isinstance(extrapolate, bool) or not (isinstance(extrapolate, (int, float)) and math.isfinite(extrapolate)
                                             and extrapolate >= 1):
        raise InputError(f"extrapolate must be >= 1, got {extrapolate!r}")
    if order not in (3, 5):
        raise InputError(f"order must be 5 or 3, got {order!r}")
    if isinstance(check_frequency, bool) or not isinstance(check_frequency, int):
        raise InputError(f"check_frequency must be an integer, got {check_frequency!r}")
    limit = memory_limit(max_bytes)
    rmin, rmin_source = resolve_min_nbor_dist(model, training_script, min_nbor_dist, scan)
    search = None
    if table_error is not None:
        # a StrideSearch itself: the tolerance's growth pass (FixedStrides) passes its own rule
        search = table_error if isinstance(table_error, StrideSearch) else StrideSearch(table_error, MIN_FACTOR, n_threads)
        size, largest = estimate_table_bytes(model.descriptor, rmin, float(step), float(extrapolate), order)
        # strides never go below the memory limit's (the size is about proportional to 1/stride)
        search.min_factor = max(1.0, min(MIN_FACTOR, limit / (1.2 * (size + 2 * largest))))
    size, largest = estimate_table_bytes(model.descriptor, rmin, float(step) / (search.min_factor if search else 1.0),
                                         float(extrapolate), order)
    # the builder holds the tables, plus about two of the largest while it measures their error
    if size + 2 * largest > limit:
        raise InputError(
            f"tables with step {step:g} (extrapolate {extrapolate:g}, order {order}) would take about "
            f"{format_bytes(size + 2 * largest)}, above the limit of {format_bytes(limit)}: use a larger step "
            f"(-s; default 0.01) or a smaller extrapolate, or {how_to_raise()}"
        )
    stride0, stride1 = float(step), 10.0 * float(step)
    grid = dict(stride0=stride0, stride1=stride1, extrapolate=extrapolate, order=order, n_threads=n_threads)
    if search is not None:
        grid["stride_rule"] = search
    # each builder measures max |table - net| at the interval midpoints (max_error)
    desc = tabulate(model.descriptor, rmin, grid)
    flat = list(iter_tables(desc))
    source = source_path or model.source or ""
    provenance = dict(
        source=os.path.basename(source),
        source_sha256=_sha256_file(source) if os.path.isfile(source) else None,
        dpcompress_version=__version__,
        step=stride0,
        stride0=stride0,
        stride1=stride1,
        extrapolate=extrapolate,
        order=order,
        check_frequency=check_frequency,
        min_nbor_dist=rmin,
        min_nbor_dist_source=rmin_source,
        max_table_error=max(t.max_error for t in flat),
        table_errors=[t.max_error for t in flat],
    )
    if search is not None:
        records = [search.records[id(t)] for t in flat]
        provenance.update(
            table_budget=list(search.budget),
            table_bounds=[[r["fine"], r["coarse"]] for r in records],
            table_search=[r["history"] for r in records],
        )
    if search is None and provenance["max_table_error"] > WARN_TABLE_ERROR:  # a budget is the user's choice
        acts = sorted({l.activation for net in iter_nets(model.descriptor) for l in net.layers})
        warnings.warn(
            f"max |table - net| = {provenance['max_table_error']:.2e} (step {stride0}, order {order}, activations {acts}); "
            "piecewise-linear activations (relu, relu6) have kinks that no smooth table interval reproduces exactly, "
            "otherwise a smaller step helps",
            TableAccuracyWarning,
            stacklevel=2,
        )
    return dataclasses.replace(model, descriptor=desc, min_nbor_dist=rmin, compression=provenance)


def compress_nep(model: Union[str, os.PathLike, NEPModel], step: Optional[float] = None,
                 max_bytes: Optional[Union[int, str]] = None) -> NEPModel:
    """A NEP model with quintic tables of its radial functions (``step`` Å at most per interval).

    Parameters
    ----------
    model : str, os.PathLike or NEPModel
        A ``nep.txt`` file, a PWMLFF ``nep_model.ckpt``, or a model read from one.
    step : float or None
        None: :data:`dpcompress.nep.DEFAULT_STEP`.
    max_bytes : int, str or None
        Memory limit of the tables (see :func:`compress`).

    Raises
    ------
    InputError
        A bad step, or tables above the memory limit (estimated before any is built).
    """
    if isinstance(model, (str, os.PathLike)):
        # a nep.txt, or a PWMLFF nep_model.ckpt (load_model reads it as the nep.txt PWMLFF writes)
        model = read_nep(model) if is_nep_text_file(model) else load_model(model)
        if not isinstance(model, NEPModel):
            raise InputError(f"{model.source}: not a NEP model (compress it with compress())")
    model.tables = build_tables(model, step=DEFAULT_STEP if step is None else step, max_bytes=max_bytes)
    return model
