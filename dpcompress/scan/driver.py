r"""Running the scan over the ranks of a communicator: set-up on rank 0, a share of the frames on
each rank, the statistics merged on rank 0, the document on every rank; and writing it.

Frames are spread over the ranks in contiguous runs balanced by frames :math:`\times` atoms
(:mod:`dpcompress.parallel.partition`); each rank reads only its frames
(:class:`dpcompress.data.FrameReader`).
"""

import json
import logging
import os
import time

import numpy as np

from ..core.atomic_file import write_atomic
from ..core.errors import DataFormatError, DPCompressError, InputError
from ..data import FrameReader, discover_systems, resolve_type_map
from ..parallel.partition import rank_work, split_frames
from .accumulator import Accumulator, scan_frame
from .model_info import model_setup
from .mpi_comm import SerialComm
from .progress import Progress
from .result import DEFAULT_PERCENTILE, build_result, percent_fraction
from .table_changes import table_changes

log = logging.getLogger("dpcompress.scan")


class CollectiveError(DataFormatError):
    """An error every rank knows of (found before the scan, broadcast by rank 0); no MPI_Abort needed."""


def check_cutoffs(rcut, rcut_smth):
    """``rcut`` > 0 and finite, ``rcut_smth`` in ``[0, rcut)`` (or None), as floats."""
    rcut = float(rcut)
    if not (np.isfinite(rcut) and rcut > 0):
        raise InputError(f"rcut must be a positive number, got {rcut}")
    if rcut_smth is not None:
        rcut_smth = float(rcut_smth)
        if not (0 <= rcut_smth < rcut):
            raise InputError(f"rcut_smth must lie in [0, rcut) = [0, {rcut}), got {rcut_smth}")
    return rcut, rcut_smth


#: Cutoffs (Å) of the bare scan (no --rcut, no model): the usual range of DP models' rcut.
DEFAULT_CUTOFFS = (4.0, 5.0, 6.0, 7.0, 8.0)


def _cutoff_list(rcut):
    """``rcut`` as a list of floats (a number, a sequence of numbers, or None)."""
    if rcut is None:
        return []
    if isinstance(rcut, (int, float, np.floating, np.integer)):
        return [float(rcut)]
    return [float(r) for r in rcut]


def setup_scan(paths, rcut=None, rcut_smth=None, type_map=None, model=None, fmt=None):
    """Rank 0's part before the scan: read the model, fix the type map and cutoffs, find the systems.

    Cutoffs: those given (``rcut``, one or several), else the model's, else
    :data:`DEFAULT_CUTOFFS`; a model's descriptor parts add theirs.  The document's own
    ``rcut`` (the one ``min_nbor_dist``, ``max_nbor_size`` and the s ranges refer to) is the
    largest given, else the model's, else the largest default.  The model's ``rcut_smth`` is
    used only with its own ``rcut``.

    Returns
    -------
    dict
        Plain data broadcast to every rank: ``paths``, ``systems`` (list of
        :class:`~dpcompress.data.SystemInfo`), ``nsystems``, ``type_map``, ``ntypes``,
        ``rcut``, ``rcut_smth``, ``cutoffs`` (ascending), ``model``, ``format``.
    """
    given = _cutoff_list(rcut)
    msetup = model_setup(model) if model is not None else None
    if msetup is not None:
        if type_map is not None and tuple(type_map) != msetup["type_map"]:
            raise InputError(f"--type-map {list(type_map)} differs from the model's type map {list(msetup['type_map'])}")
        type_map = msetup["type_map"]
    if given:
        rcut = max(given)
    elif msetup is not None:
        rcut = msetup["rcut"]
    else:
        rcut = max(DEFAULT_CUTOFFS)
        given = list(DEFAULT_CUTOFFS)
    if msetup is not None and rcut_smth is None and float(rcut) == msetup["rcut"]:
        rcut_smth = msetup["rcut_smth"]
    rcut, rcut_smth = check_cutoffs(rcut, rcut_smth)
    for r in given:
        check_cutoffs(r, None)
    systems = discover_systems(paths, fmt=fmt)
    tmap, ntypes = resolve_type_map(systems, type_map)
    cutoffs = sorted({rcut, *given} | ({p["rcut"] for p in msetup["parts"]} if msetup else set()))
    return dict(
        paths=[os.fspath(p) for p in paths],
        systems=systems,
        nsystems=len(systems),
        type_map=tmap,
        ntypes=ntypes,
        rcut=rcut,
        rcut_smth=rcut_smth,
        cutoffs=cutoffs,
        model=msetup,
        format=fmt,
    )


def iter_frames(reader, system, start, stop):
    """Frames ``start..stop-1`` of ``system`` (types resolved): ``(coords, cell or None, global types, where)``.

    ``system.to_global`` must be set (:func:`~dpcompress.data.resolve_type_map`).
    """
    to_global = system.to_global
    for block in reader.blocks(system, start, stop, ntypes=len(to_global)):
        shared = to_global[block.atom_types] if block.atom_types.ndim == 1 else None
        for k in range(block.nframes):
            types = shared if shared is not None else to_global[block.atom_types[k]]
            cell = None if block.cells is None else block.cells[k]
            yield block.coords[k], cell, types, block.frame_where(k)


def run_scan(paths, *, rcut=None, rcut_smth=None, type_map=None, model=None, comm=None, n_threads=1,
             show_progress=True, log_interval=10.0, fmt=None, percentile=DEFAULT_PERCENTILE):
    """Scan training data; every rank of ``comm`` takes part and gets the result.

    Parameters
    ----------
    paths : str or list of str
        Folders (searched recursively), system folders, or deepmd/hdf5 files.
    rcut : float or sequence of float, optional
        Cutoff(s), Å (see :func:`setup_scan`); default: the model's, else :data:`DEFAULT_CUTOFFS`.
    rcut_smth : float, optional
        Switch start, Å; default: the model's.
    type_map : sequence of str, optional
        Global type names (default: the model's, else those of the data).
    model : str or os.PathLike, optional
        DeePMD-kit model (or ``.dpc``): cutoffs, type map, and ``davg``/``dstd`` for the x ranges.
    comm : mpi4py communicator or None
        None: one process.
    n_threads : int
        Threads of the pair search per rank.
    show_progress : bool
    log_interval : float
        Seconds between progress lines when not on a terminal.
    fmt : str, optional
        Data format (:mod:`dpcompress.data.formats`); None: told from the names.
    percentile : str or float
        Percent level of the neighbor-count percentiles (``99.9``), read exactly as a decimal.

    Returns
    -------
    dict
        The scan document (what ``main`` writes as JSON), on every rank.

    Raises
    ------
    CollectiveError
        Bad arguments or data found by rank 0 before the scan; raised on every rank.
    DataFormatError
        Bad data found while scanning; raised on the rank that read it only.
    """
    comm = comm or SerialComm()
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if comm.rank == 0:
        try:
            setup = setup_scan(paths, rcut, rcut_smth, type_map, model, fmt)
            setup["percentile"] = percent_fraction(percentile)
            payload = ("ok", setup)
        except DPCompressError as exc:
            payload = ("error", str(exc))
    else:
        payload = None
    payload = comm.bcast(payload, root=0)
    if payload[0] == "error":
        raise CollectiveError(payload[1])
    setup = payload[1]
    systems = setup["systems"]
    nframes = [s.nframes for s in systems]
    weights = [s.natoms for s in systems]
    segments = split_frames(nframes, weights, comm.size)
    total_frames = sum(nframes)
    if comm.rank == 0:
        work = [rank_work(seg, weights) for seg in segments]
        log.info(
            "%d systems, %d frames, %d atoms in all; %d rank(s) (work per rank %d..%d atoms); rcut %g Å%s",
            len(systems), total_frames, sum(n * w for n, w in zip(nframes, weights)), comm.size, min(work), max(work),
            setup["rcut"], "" if setup["model"] is None else f"; model {setup['model']['file']}",
        )
    acc = Accumulator(setup["ntypes"], setup["cutoffs"])
    progress = Progress(comm, total_frames, log_interval, show_progress)
    t0 = time.perf_counter()
    with FrameReader() as reader:
        for s, start, stop in segments[comm.rank]:
            for coords, cell, types, where in iter_frames(reader, systems[s], start, stop):
                scan_frame(acc, coords, cell, types, where, n_threads)
                progress.advance(1)
    elapsed = time.perf_counter() - t0
    progress.finish()
    wall = time.perf_counter() - t0
    states = comm.gather(acc.state(), root=0)
    result = None
    if comm.rank == 0:
        result = build_result(Accumulator.merged(states), setup)
        if setup["model"] is not None:
            result["model"]["tables"] = table_changes(setup["model"]["file"], result["min_nbor_dist"])
        log.info("scanned %d frames in %.2f s (%.1f frames/s; rank 0 busy %.2f s); min_nbor_dist %s Å, max_nbor_size %s",
                 result["nframes"], wall, result["nframes"] / wall if wall > 0 else 0.0, elapsed,
                 result["min_nbor_dist"], result["max_nbor_size"])
    return comm.bcast(result, root=0)


def write_json(doc, path):
    """Write ``doc`` to ``path`` atomically (:func:`dpcompress.core.atomic_file.write_atomic`).

    A reader never sees half a file, and a failed run leaves the previous file (or none) behind.
    """
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    write_atomic(path, text, what="scan output")
