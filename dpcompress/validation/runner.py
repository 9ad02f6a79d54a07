"""Evaluate a model on labelled systems, in batches, over MPI ranks: what ``dpcompress test`` runs.

Per system, the frames tested (:func:`frames_to_test`: the first ``numb_test`` ones, all with 0, or
with ``shuffle`` the first ``numb_test`` of a random permutation drawn as ``dp test
--shuffle-test`` draws it) are split into contiguous ranges of their sorted indices, one per
rank; each rank reads only its frames (:class:`~dpcompress.data.FrameReader`), evaluates them in
batches of about :data:`BATCH_ATOMS` atoms (one :meth:`dpcompress.Potential.eval` call each) and
rank 0 gathers the predictions and puts them in the tested order.  Every frame's prediction is the single-frame one bit
for bit (tests/test_batching.py), so the report does not depend on the number of ranks or the batch
size.  Errors are gathered with the results: when any rank fails, every rank raises the first
failing rank's error, and no rank waits for the others forever.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..core.errors import DataFormatError, DPCompressError, InputError
from ..data import FrameReader, discover_systems
from ..potential import Potential
from .frame_params import describe, param_widths
from .metrics import differences, merge, merge_differences, system_errors
from .progress import FrameProgress

#: Atoms per ``Potential.eval`` call: bounds the memory of a batch (predictions of ~100 B per atom).
BATCH_ATOMS = 100_000
#: Frames per chunk of the metrics, in atoms: DeePMD-kit's ``DP_TEST_CHUNK_ATOMS`` default.  Its
#: per-system errors are the weighted merge of its chunks' errors, so ours are formed the same way.
CHUNK_ATOMS = 1_000_000


@dataclass
class SystemResult:
    """One system's predictions, labels and errors (rank 0).

    ``pred``, ``labels`` and ``original``: ``energy`` (nframes,), ``force`` (nframes, natoms, 3),
    ``virial`` (nframes, 9); labels only those the system has, ``original`` only with ``against``;
    ``cells`` (nframes, 3, 3), None for a non-periodic system; ``frames``: the index of each tested
    frame in the system (in the order tested).
    ``errors`` / ``original_errors``: :func:`~.metrics.system_errors` of each model; ``differences``:
    :func:`~.metrics.differences` of the model from the original.
    """

    name: str
    natoms: int
    periodic: bool
    pred: Dict[str, np.ndarray]
    labels: Dict[str, np.ndarray]
    errors: dict
    cells: Optional[np.ndarray] = None
    frames: Optional[np.ndarray] = None
    original: Optional[Dict[str, np.ndarray]] = None
    original_errors: Optional[dict] = None
    differences: Optional[dict] = None

    @property
    def nframes(self):
        return int(np.size(self.pred["energy"]))


@dataclass
class TestResult:
    """Every system's :class:`SystemResult` and the weighted errors (``dp test``'s weighting)."""

    model: str
    systems: List[SystemResult] = field(default_factory=list)
    against: Optional[str] = None

    __test__ = False  # not a pytest test class

    @property
    def nframes(self):
        return sum(s.nframes for s in self.systems)

    def weighted(self):
        return merge([s.errors for s in self.systems])

    def original_weighted(self):
        return merge([s.original_errors for s in self.systems])

    def differences_weighted(self):
        return merge_differences([(s.differences, s.nframes, 3 * s.natoms * s.nframes, 9 * s.nframes)
                                  for s in self.systems])


def system_label(info):
    """The name of a system in reports and detail files: ``str(Path(folder))`` as ``dp test`` prints it."""
    return str(Path(info.name)) if info.kind == "npy" else info.name


def model_types(info, type_map):
    """Local type index -> the model's type index for system ``info`` (names when it has them)."""
    if info.type_map is None:
        return None
    missing = [name for name in info.type_map if name not in type_map]
    if missing:
        raise DataFormatError(f"{info.name}: elements {missing} of its type_map.raw are not in the model's type map "
                              f"{list(type_map)}")
    return np.array([list(type_map).index(name) for name in info.type_map], dtype=np.int64)


def _predict(pot, coords, cells, types, atomic=False, params=None):
    """One ``Potential.eval`` call; ``params``: the block's ``fparam`` / ``aparam`` (those ``pot`` takes)."""
    params = params or {}
    fparam = params.get("fparam") if pot.get_dim_fparam() > 0 else None
    aparam = params.get("aparam") if pot.get_dim_aparam() > 0 else None
    out = pot.eval(coords, cells, types, mixed_type=np.ndim(types) == 2, atomic=atomic, fparam=fparam, aparam=aparam)
    pred = {"energy": out[0].reshape(-1), "force": out[1], "virial": out[2]}
    if atomic:
        pred["atom_energy"] = out[3].reshape(out[1].shape[0], -1)
    return pred


def runs(frames):
    """Split sorted frame indices into ``(lo, hi)`` ranges of consecutive frames."""
    frames = np.asarray(frames, dtype=np.int64)
    if frames.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(frames) != 1) + 1
    return [(int(part[0]), int(part[-1]) + 1) for part in np.split(frames, cuts)]


def _blocks(reader, info, frames, **kw):
    """Blocks of the sorted frames ``frames`` of system ``info``, in order."""
    for lo, hi in runs(frames):
        yield from reader.blocks(info, lo, hi, **kw)


def _param_blocks(reader, info, frames, batch, widths, pot):
    """:func:`_blocks` with the parameters ``widths`` (:func:`~.frame_params.param_widths`) read too."""
    try:
        yield from _blocks(reader, info, frames, chunk=batch, params=widths)
    except DataFormatError as exc:  # e.g. a parameter file of another width than the model's: say what it takes
        if not any(f"{key}.npy" in str(exc) for key in widths):
            raise
        raise DataFormatError(f"{exc} ({describe(pot)})") from None


def _evaluate_frames(info, frames, models, reader, progress, atomic=False):
    """Predictions of every model in ``models`` for the sorted frames ``frames`` of one system
    (with ``atomic``, the atomic energies of the first model too)."""
    to_model = model_types(info, models[0].get_type_map())
    batch = max(1, BATCH_ATOMS // max(1, info.natoms))
    parts = [[] for _ in models]
    widths = param_widths(info, models[0])
    for block in _param_blocks(reader, info, frames, batch, widths, models[0]):
        types = block.atom_types if to_model is None else to_model[block.atom_types]
        params = {key: block.labels[key] for key in widths}
        for k, pot in enumerate(models):
            try:
                parts[k].append(_predict(pot, block.coords, block.cells, types, atomic and k == 0, params))
            except InputError as exc:  # name the frames as the data name them
                raise InputError(f"{block.set_where} frames {block.first_in_set}..{block.first_in_set + block.nframes - 1}"
                                 f" ({info.name}): {exc}") from None
        progress.advance(block.nframes)
    return [_join(p, info.natoms, atomic and k == 0) for k, p in enumerate(parts)]


def _join(parts, natoms, atomic=False):
    keys = ("energy", "force", "virial") + (("atom_energy",) if atomic else ())
    if not parts:
        empty = {"energy": np.zeros(0), "force": np.zeros((0, natoms, 3)), "virial": np.zeros((0, 9)),
                 "atom_energy": np.zeros((0, natoms))}
        return {key: empty[key] for key in keys}
    return {key: np.concatenate([p[key] for p in parts]) for key in keys}


def _labels(info, frames, reader):
    """The labels (per frame and per atom) and cells (None when non-periodic) of the sorted frames ``frames``."""
    keys = info.labels() + info.atom_labels()
    n = len(frames)
    blocks = list(_blocks(reader, info, frames, labels=keys, chunk=max(n, 1)))
    out = {}
    for key in keys:
        value = np.concatenate([b.labels[key] for b in blocks])
        out[key] = value.reshape(n, 9) if key == "virial" else value
    cells = np.concatenate([b.cells for b in blocks]).reshape(n, 3, 3) if info.periodic and n else None
    return out, cells


def frames_to_test(nframes, numb_test, rng=None):
    """The frames of a system that are tested, in the order tested.

    Without ``rng``: the first ``numb_test`` (0: all).  With ``rng`` (a
    :class:`numpy.random.RandomState`): the first ``numb_test`` of a permutation of every frame
    drawn by ``rng.shuffle``, as DeePMD-kit's ``dp test --shuffle-test`` draws it (its generator,
    seeded with ``--rand-seed`` modulo 2**32, shuffles each system's frames in turn), so the same
    seed tests the same frames in the same order.
    """
    n = nframes if numb_test == 0 else min(nframes, int(numb_test))
    order = np.arange(nframes, dtype=np.int64)
    if rng is not None:
        rng.shuffle(order)
    return order[:n]


def _chunked_errors(pred, labels, natoms, periodic, cells=None):
    """``dp test``'s per-system errors: chunks of :data:`CHUNK_ATOMS` atoms, merged with weights."""
    n = np.size(pred["energy"])
    step = max(1, CHUNK_ATOMS // max(1, natoms))
    chunks = []
    for a in range(0, n, step):
        sl = slice(a, min(a + step, n))
        chunks.append(system_errors({k: v[sl] for k, v in pred.items()},
                                    {k: v[sl] for k, v in labels.items()}, natoms, periodic,
                                    None if cells is None else cells[sl]))
    return merge(chunks, per_system=True)


def _collective(comm, fn):
    """``fn()`` on every rank; on failure anywhere, every rank raises the first failing rank's error.

    Returns the list of every rank's result on rank 0, None elsewhere.  One process: ``[fn()]``,
    its exception as raised.
    """
    if comm.size == 1:
        return [fn()]
    try:
        out, error = fn(), None
    except DPCompressError as exc:
        out, error = None, (type(exc).__name__, str(exc))
    gathered = comm.gather((out, error), root=0)
    first = None
    if comm.rank == 0:
        first = next((err for _, err in gathered if err is not None), None)
    first = comm.bcast(first, root=0)
    if first is not None:
        cls = {"InputError": InputError, "DataFormatError": DataFormatError}.get(first[0], DPCompressError)
        raise cls(first[1])
    return [o for o, _ in gathered] if comm.rank == 0 else None


def run_test(model, systems, *, numb_test=0, against=None, n_threads=None, comm=None, progress=True,
             shuffle=False, seed=None, fmt=None, atomic=False):
    """Evaluate ``model`` (and ``against``) on the labelled ``systems``; rank 0 gets the result.

    Parameters
    ----------
    model, against : str
        Model files (``.dpc``, ``.dp``/``.yaml``, ``nep.txt``); ``against`` is the original model
        the compressed one is compared with, or None.
    systems : list of str
        Folders (searched for ``deepmd/npy`` systems), ``deepmd/hdf5`` files, and files of the
        other formats :func:`~dpcompress.data.discover_systems` reads.
    numb_test : int
        Frames per system (the first ones); 0: all (``dp test -n``).
    shuffle : bool
        Test the first ``numb_test`` frames of a random permutation of each system's frames
        (:func:`frames_to_test`; ``dp test --shuffle-test``).
    seed : int or None
        Seed of the permutations (``dp test -r``); None: drawn afresh (by rank 0).
    fmt : str or None
        Data format of every path (``--format``); None: told from the names.
    atomic : bool
        Also the atomic energies' errors against the ``atom_ener.npy`` labels (``dp test -a``);
        every system must have them.
    n_threads : int or None
        Kernel threads per rank (None: the node's cores divided among its ranks).
    comm : mpi4py communicator or None
        Frames are split over its ranks.
    progress : bool
        A progress bar on rank 0.

    Returns
    -------
    TestResult or None
        On rank 0; None on other ranks.

    Raises
    ------
    DataFormatError, InputError, ModelFormatError
        On every rank when any rank fails.
    """
    from ..scan.mpi_comm import SerialComm

    comm = SerialComm() if comm is None else comm
    if isinstance(numb_test, bool) or not isinstance(numb_test, (int, np.integer)) or numb_test < 0:
        raise InputError(f"-n must be a non-negative integer (0: every frame), got {numb_test!r}")
    if n_threads is None and comm.size > 1:
        from .._ext.threads import threads_per_rank

        n_threads = threads_per_rank(comm)

    def setup():
        found = discover_systems(systems, labels=True, fmt=fmt)
        missing = [info.name for info in found if atomic and "atom_ener" not in info.atom_labels()]
        if missing:
            raise DataFormatError(f"{missing[0]}: -a/--atomic needs the atomic energy labels atom_ener.npy in every set "
                                  f"(shape (nframes, natoms), eV)")
        pots = [Potential(model, n_threads=n_threads)] + ([Potential(against, n_threads=n_threads)] if against else [])
        for info in found:  # a model that needs fparam/aparam the data lack: refused before any work
            for pot in pots:
                param_widths(info, pot)
        return found, pots

    found, pots = None, None
    try:
        found, pots = setup()
        error = None
    except DPCompressError as exc:
        error = exc
    _collective(comm, lambda: _raise(error))
    rng = None
    if shuffle:
        if seed is None:  # one permutation for every rank: rank 0 draws the seed
            seed = comm.bcast(int(np.random.SeedSequence().generate_state(1)[0]) if comm.rank == 0 else None, root=0)
        rng = np.random.RandomState(int(seed) % 2**32)
    tested = [frames_to_test(info.nframes, numb_test, rng) for info in found]
    mine = []
    for frames in tested:
        ordered = np.sort(frames)
        n = ordered.size
        mine.append(ordered[n * comm.rank // comm.size: n * (comm.rank + 1) // comm.size])
    bar = FrameProgress(sum(m.size for m in mine), progress and comm.rank == 0,
                        "test" if comm.size == 1 else f"test (rank 0 of {comm.size})")
    result = TestResult(str(model), against=None if against is None else str(against))
    with FrameReader() as reader:
        try:
            for info, frames, own in zip(found, tested, mine):
                parts = _collective(comm, lambda: _evaluate_frames(info, own, pots, reader, bar, atomic))
                if comm.rank == 0:
                    result.systems.append(_system_result(info, frames, parts, reader))
        finally:
            bar.close()
    for pot in pots:
        pot.close()
    return result if comm.rank == 0 else None


def _raise(error):
    if error is not None:
        raise error


def _system_result(info, frames, parts, reader):
    """Rank 0: join the ranks' predictions, read the labels, put both in the tested order, form the errors."""
    preds = [_join([p[k] for p in parts if np.size(p[k]["energy"])], info.natoms, "atom_energy" in parts[0][k])
             for k in range(len(parts[0]))]
    labels, cells = _labels(info, np.sort(frames), reader)
    # predictions and labels are in sorted frame order; the tested order is ``frames``
    back = np.argsort(np.argsort(frames, kind="stable"), kind="stable")
    if not np.array_equal(back, np.arange(back.size)):
        preds = [{k: v[back] for k, v in p.items()} for p in preds]
        labels = {k: v[back] for k, v in labels.items()}
        cells = None if cells is None else cells[back]
    res = SystemResult(system_label(info), info.natoms, info.periodic, preds[0], labels,
                       _chunked_errors(preds[0], labels, info.natoms, info.periodic, cells), cells=cells,
                       frames=np.asarray(frames))
    if len(preds) > 1:
        res.original = preds[1]
        res.original_errors = _chunked_errors(preds[1], labels, info.natoms, info.periodic, cells)
        res.differences = differences(preds[0], preds[1], info.natoms, info.periodic)
    return res
