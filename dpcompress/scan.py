r"""Training-set scan: neighbor distances, neighbor counts and table input ranges, over MPI ranks.

Command line (``dpcompress scan`` is the same)::

    python -m dpcompress.scan DIR [DIR ...] [-m MODEL] [--rcut R] [--rcut-smth RS]
                              [--type-map T [T ...]] [-o scan.json]
    mpiexec -n 8 python -m dpcompress.scan DIR ...          # or srun, mpirun

``DIR`` is searched recursively for ``deepmd/npy`` systems (folders holding
``type.raw``) and ``deepmd/hdf5`` files (``*.h5``, ``*.hdf5``); a system folder
or an HDF5 file may be named directly.  Without mpi4py, or with ``--no-mpi``,
it runs as one plain process.

What it computes, over every frame (all ``set.*`` folders), for the cutoff
``rcut`` (``--rcut``, else the model's):

``min_nbor_dist``
    The smallest distance between two atoms or an atom and a periodic image
    (``null`` if no pair lies within ``rcut``); ``min_nbor_dist_by_type`` per
    type pair.  What DeePMD-kit stores in a model and what
    ``dpcompress compress --scan`` uses for the table range.
``max_nbor_size``
    Per neighbor type, the largest number of neighbors of that type within
    ``rcut`` (distance :math:`d^2 < r_c^2`) of any atom: DeePMD-kit's
    ``neighbor_stat``, a suggestion for ``sel``.  ``max_nbor_size_mixed`` is
    the largest total (for mixed-type descriptors); ``mean_nbor_size`` the
    mean over all atoms; the ``*_by_center`` matrices are ``[center][neighbor]``.
``s_min``, ``s_max``
    Per (center type, neighbor type), the range of :math:`s = \mathrm{sw}(r)/r`
    over the pairs within ``rcut`` (needs ``rcut_smth``).  :math:`s` falls
    with :math:`r`, so ``s_max`` is :math:`s` at the closest pair and ``s_min``
    at the farthest one inside ``rcut``.
``model.parts[k].x_min``, ``x_max``
    With ``-m MODEL``: per descriptor part (one, or several for a hybrid), at
    the part's own ``rcut``/``rcut_smth``, the range of the normalised table
    input :math:`x = (\mathrm{sw}(r)/(r+p) - \bar R_{c,n})/\sigma_{c,n}` (slot
    of neighbor type ``n`` of center type ``c``; :math:`p` = ``env_protection``),
    for se_e2_a / se_e2_r parts; also the part's ``max_nbor_size`` against its
    ``sel``.
``nframes``, ``natoms``, ``nsystems``, ``natoms_per_type``
    Frames scanned; atoms summed over those frames (atom environments); systems;
    atoms per type summed over frames.

Every statistic is a minimum, a maximum or an integer sum (means are divided
once, at the end), so the JSON file is bit-identical whatever the number of
ranks.  Frames are spread over the ranks in contiguous runs balanced by
frames x atoms (:mod:`dpcompress.parallel.partition`); each rank reads only its
frames (``mmap`` / HDF5 slices).  Rank 0 finds the systems, reports progress
(a tqdm bar when stderr is a terminal and tqdm is installed, else a log line
every ``--log-interval`` seconds) and writes the JSON atomically (temporary
file + ``os.replace``).

Errors: a missing or corrupt file is reported with its name.  Found while
listing the data (on rank 0, before any frame is scanned) every rank exits with
status 2; found on one rank while scanning, that rank prints it and calls
``MPI_Abort``, which ends the whole job at once (never a hang).
"""

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from ._version import __version__
from .core.errors import DataFormatError, DPCompressError, InputError
from .data.scan_file import FORMAT, FORMAT_VERSION, load_scan, scan_min_nbor_dist  # noqa: F401  (part of this module's API)

__all__ = ["main", "run_scan", "discover_systems", "scan_frame", "load_scan", "scan_min_nbor_dist"]

log = logging.getLogger("dpcompress.scan")

CHUNK_FRAMES = 64
#: seconds between progress messages of ranks > 0 to rank 0
PROGRESS_SEND_PERIOD = 0.5
_TAG_PROGRESS = 7301


# ---------------------------------------------------------------------------------------------
# communicators


class SerialComm:
    """The few communicator methods the scan uses, for one plain process."""

    rank = 0
    size = 1

    def bcast(self, obj, root=0):
        return obj

    def gather(self, obj, root=0):
        return [obj]

    def Abort(self, errorcode=1):  # noqa: N802 (MPI spelling)
        os._exit(errorcode)


def launcher_size():
    """Number of processes an MPI launcher says it started (None when not launched by one)."""
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        value = os.environ.get(var)
        if value:
            try:
                return int(value), var
            except ValueError:
                continue
    return None


def get_comm(use_mpi=True):
    """``MPI.COMM_WORLD`` when mpi4py is installed (and ``use_mpi``), else a :class:`SerialComm`.

    Raises
    ------
    InputError
        Started by an MPI launcher with N > 1 processes, but mpi4py is missing or
        sees a world of another size (launcher of a different MPI than mpi4py's).
    """
    launched = launcher_size()
    if not use_mpi:
        return SerialComm()
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as exc:  # not installed, or its MPI library cannot be loaded
        if launched and launched[0] > 1:
            raise InputError(
                f"started by an MPI launcher with {launched[0]} processes ({launched[1]}) but mpi4py cannot be used "
                f"({type(exc).__name__}: {exc}): pip install 'dpcompress[mpi]' (or run one plain process)"
            ) from None
        return SerialComm()
    comm = MPI.COMM_WORLD
    if launched and launched[0] != comm.size:
        raise InputError(
            f"the MPI launcher started {launched[0]} processes ({launched[1]}={launched[0]}) but MPI sees a world of "
            f"{comm.size}: the launcher (mpirun/mpiexec/srun) belongs to another MPI than the one mpi4py uses "
            f"({MPI.Get_library_version().splitlines()[0].strip()}); use that MPI's launcher"
        )
    return comm


# ---------------------------------------------------------------------------------------------
# finding the systems (rank 0)


@dataclass
class SetInfo:
    """One ``set.*`` of a system: where its arrays are and how many frames it holds."""

    where: str  # set folder, or "file.h5:/group/set.000"
    nframes: int
    coord: object  # npy path, or (h5 file, dataset name)
    box: object = None
    real_atom_types: object = None


@dataclass
class SystemInfo:
    """A system as found on disk; frames are read later, by the rank that owns them."""

    name: str
    kind: str  # "npy" or "hdf5"
    natoms: int
    types: np.ndarray  # (natoms,) local type indices (type.raw)
    type_map: Optional[Tuple[str, ...]]
    periodic: bool
    sets: List[SetInfo] = field(default_factory=list)
    to_global: Optional[np.ndarray] = None  # local type index -> global type index

    @property
    def nframes(self):
        return sum(s.nframes for s in self.sets)

    @property
    def mixed(self):
        return any(s.real_atom_types is not None for s in self.sets)


def _parse_types(values, where):
    try:
        types = np.array([int(t) for t in values], dtype=np.int64)
    except (TypeError, ValueError):
        raise DataFormatError(f"{where}: expected whitespace-separated integers") from None
    if types.size == 0:
        raise DataFormatError(f"{where}: no atoms")
    if types.min() < 0:
        raise DataFormatError(f"{where}: negative atom type {types.min()}")
    return types


def _npy_header(path):
    """Shape and dtype of a ``.npy`` file, checking that the file holds the whole array."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read ({exc})") from None
    if magic != b"\x93NUMPY":
        raise DataFormatError(f"{path}: not a .npy file (it does not start with the NumPy magic string; corrupt?)")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # corrupt header, truncated data, object arrays, permissions
        raise DataFormatError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    if not isinstance(arr, np.ndarray):
        raise DataFormatError(f"{path}: not a .npy array")
    shape, dtype = arr.shape, arr.dtype
    del arr
    return shape, dtype


def _frames_of(shape, dtype, where, width, nframes=None):
    """Frames held by an array of ``shape`` with ``width`` numbers per frame (checked)."""
    if dtype.kind not in "fiu":
        raise DataFormatError(f"{where}: expected a numeric array, found dtype {dtype}")
    size = int(np.prod(shape, dtype=np.int64))
    if nframes is None:
        if len(shape) == 0 or size % width:
            raise DataFormatError(f"{where}: shape {tuple(shape)} does not hold whole frames of {width} numbers")
        nframes = size // width
        if len(shape) >= 2 and shape[0] != nframes:
            raise DataFormatError(f"{where}: shape {tuple(shape)}, expected ({nframes}, {width})")
    elif size != nframes * width:
        raise DataFormatError(f"{where}: shape {tuple(shape)}, expected ({nframes}, {width})")
    return nframes


def _npy_system(path):
    tfile = os.path.join(path, "type.raw")
    try:
        with open(tfile) as fh:
            types = _parse_types(fh.read().split(), tfile)
        type_map = None
        mfile = os.path.join(path, "type_map.raw")
        if os.path.isfile(mfile):
            with open(mfile) as fh:
                type_map = tuple(fh.read().split())
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{tfile}: cannot read ({exc})") from None
    periodic = not os.path.isfile(os.path.join(path, "nopbc"))
    info = SystemInfo(path, "npy", types.size, types, type_map, periodic)
    for sdir in sorted(os.listdir(path)):
        full = os.path.join(path, sdir)
        if not sdir.startswith("set.") or not os.path.isdir(full):
            continue
        cfile = os.path.join(full, "coord.npy")
        if not os.path.isfile(cfile):
            raise DataFormatError(f"{full}: missing coord.npy")
        nf = _frames_of(*_npy_header(cfile), cfile, 3 * types.size)
        st = SetInfo(full, nf, cfile)
        if periodic:
            bfile = os.path.join(full, "box.npy")
            if not os.path.isfile(bfile):
                raise DataFormatError(f"{full}: missing box.npy (add an empty 'nopbc' file for non-periodic data)")
            _frames_of(*_npy_header(bfile), bfile, 9, nf)
            st.box = bfile
        rfile = os.path.join(full, "real_atom_types.npy")
        if os.path.isfile(rfile):
            _frames_of(*_npy_header(rfile), rfile, types.size, nf)
            st.real_atom_types = rfile
        info.sets.append(st)
    _check_system(info)
    return info


def _check_system(info):
    if not info.sets:
        raise DataFormatError(f"{info.name}: no set.* folders with frames")
    if info.mixed and any(s.real_atom_types is None for s in info.sets):
        raise DataFormatError(f"{info.name}: real_atom_types.npy present in some sets only")


def _hdf5_systems(path):
    import h5py

    try:
        fh = h5py.File(path, "r")
    except Exception as exc:
        raise DataFormatError(f"{path}: cannot open as HDF5 ({type(exc).__name__}: {exc})") from None
    out = []
    try:
        with fh:
            groups = []
            fh.visititems(lambda name, obj: groups.append(name) if isinstance(obj, h5py.Group) and "type.raw" in obj else None)
            if "type.raw" in fh:
                groups.insert(0, "")
            for gname in sorted(groups):
                g = fh[gname] if gname else fh
                where = f"{path}:/{gname}"
                types = _parse_types(np.asarray(g["type.raw"][()]).ravel().tolist(), f"{where}/type.raw")
                type_map = None
                if "type_map.raw" in g:
                    raw = np.asarray(g["type_map.raw"][()]).ravel()
                    type_map = tuple(x.decode() if isinstance(x, bytes) else str(x) for x in raw)
                periodic = "nopbc" not in g
                info = SystemInfo(where, "hdf5", types.size, types, type_map, periodic)
                for sname in sorted(k for k in g.keys() if k.startswith("set.")):
                    sg = g[sname]
                    swhere = f"{where.rstrip('/')}/{sname}"
                    if "coord.npy" not in sg:
                        raise DataFormatError(f"{swhere}: missing coord.npy")
                    ds = sg["coord.npy"]
                    nf = _frames_of(ds.shape, ds.dtype, f"{swhere}/coord.npy", 3 * types.size)
                    st = SetInfo(swhere, nf, (path, ds.name))
                    if periodic:
                        if "box.npy" not in sg:
                            raise DataFormatError(f"{swhere}: missing box.npy (add a 'nopbc' entry for non-periodic data)")
                        _frames_of(sg["box.npy"].shape, sg["box.npy"].dtype, f"{swhere}/box.npy", 9, nf)
                        st.box = (path, sg["box.npy"].name)
                    if "real_atom_types.npy" in sg:
                        rt = sg["real_atom_types.npy"]
                        _frames_of(rt.shape, rt.dtype, f"{swhere}/real_atom_types.npy", types.size, nf)
                        st.real_atom_types = (path, rt.name)
                    info.sets.append(st)
                _check_system(info)
                out.append(info)
    except DataFormatError:
        raise
    except Exception as exc:  # h5py errors on damaged files surface on access
        raise DataFormatError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    if not out:
        raise DataFormatError(f"{path}: no deepmd/hdf5 system (no group with type.raw)")
    return out


def discover_systems(paths):
    """Every ``deepmd/npy`` and ``deepmd/hdf5`` system at or below ``paths``, in a fixed order.

    Directories are walked top-down (a folder's HDF5 files, then its
    subfolders, each in sorted order); a folder holding ``type.raw`` is a
    system (its subfolders are not searched), a file ending in ``.h5``,
    ``.hdf5`` or ``.hdf`` is a ``deepmd/hdf5`` file.  Only shapes are read, not
    the frames.

    Returns
    -------
    list of SystemInfo

    Raises
    ------
    DataFormatError
        A path that does not exist, a folder with no system, a missing or
        unreadable file, inconsistent shapes (the message names the file).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    systems = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isfile(p):
            systems.extend(_hdf5_systems(p))
            continue
        if not os.path.isdir(p):
            raise DataFormatError(f"{p}: no such file or directory")
        found = 0

        def unreadable(exc):
            raise DataFormatError(f"{exc.filename}: cannot list the folder ({exc.strerror})")

        for dirpath, dirnames, filenames in os.walk(p, onerror=unreadable):
            dirnames.sort()
            if "type.raw" in filenames:
                systems.append(_npy_system(dirpath))
                found += 1
                dirnames[:] = []  # a system's set.* folders hold no systems
                continue
            for fname in sorted(filenames):
                if fname.lower().endswith(HDF5_SUFFIXES):
                    systems.extend(_hdf5_systems(os.path.join(dirpath, fname)))
                    found += 1
        if not found:
            raise DataFormatError(f"{p}: no deepmd/npy system (no type.raw) or deepmd/hdf5 file below it")
    return systems


def resolve_type_map(systems, type_map=None):
    """Global type names and each system's local -> global type index map (set on the systems).

    ``type_map`` (from ``--type-map`` or the model) wins; otherwise the systems'
    ``type_map.raw`` names, in order of first appearance; otherwise (no names
    anywhere) the integer types of ``type.raw`` as they are.

    Returns
    -------
    type_map : tuple of str or None
    ntypes : int
    """
    named = [s for s in systems if s.type_map is not None]
    if type_map is None and named:
        names = []
        for s in named:
            names.extend(n for n in s.type_map if n not in names)
        type_map = tuple(names)
    if type_map is not None:
        type_map = tuple(type_map)
        index = {n: k for k, n in enumerate(type_map)}
        for s in systems:
            if s.type_map is None:
                if s.types.max() >= len(type_map) and not s.mixed:
                    raise DataFormatError(f"{s.name}: atom type {s.types.max()} but the type map {list(type_map)} has {len(type_map)} types")
                s.to_global = np.arange(len(type_map), dtype=np.int64)
                continue
            missing = [n for n in s.type_map if n not in index]
            if missing:
                raise DataFormatError(f"{s.name}: elements {missing} of its type_map.raw are not in the type map {list(type_map)}")
            if s.types.max() >= len(s.type_map):
                raise DataFormatError(f"{s.name}: atom type {s.types.max()} but type_map.raw lists only {len(s.type_map)} elements")
            s.to_global = np.array([index[n] for n in s.type_map], dtype=np.int64)
        return type_map, len(type_map)
    ntypes = max(int(s.types.max()) + 1 for s in systems)
    for s in systems:
        s.to_global = np.arange(ntypes, dtype=np.int64)
    return None, ntypes


# ---------------------------------------------------------------------------------------------
# reading frames (the rank that owns them)


class _Reader:
    """Reads frame ranges of systems; keeps npy memory maps and HDF5 files open while in use."""

    def __init__(self):
        self._h5 = {}

    def close(self):
        for fh in self._h5.values():
            try:
                fh.close()
            except Exception:
                pass
        self._h5.clear()

    def _array(self, src, where, width, nf, a, b):
        """Frames a..b-1 of a (nf, width) array as float64 (nf frames in the file)."""
        try:
            if isinstance(src, tuple):
                path, name = src
                if path not in self._h5:
                    import h5py

                    self._h5[path] = h5py.File(path, "r")
                ds = self._h5[path][name]
                if ds.ndim >= 1 and ds.shape[0] == nf and (ds.ndim >= 2 or width == 1):
                    raw = np.asarray(ds[a:b])
                else:
                    raw = np.asarray(ds[()]).reshape(nf, width)[a:b]
            else:
                mm = np.load(src, mmap_mode="r", allow_pickle=False)
                raw = np.asarray(mm.reshape(nf, width)[a:b])
                del mm
            out = raw.reshape(b - a, width).astype(np.float64)
        except DPCompressError:
            raise
        except Exception as exc:
            raise DataFormatError(f"{where}: cannot read frames {a}..{b - 1} ({type(exc).__name__}: {exc})") from None
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            raise DataFormatError(f"{where}: frame {a + int(np.flatnonzero(bad)[0])} contains NaN or inf")
        return out

    def frames(self, info, start, stop, chunk=CHUNK_FRAMES):
        """Yield ``(frame, coords (natoms, 3), cell (3, 3) or None, global types (natoms,), where)``."""
        offset = 0
        n = info.natoms
        for st in info.sets:
            lo, hi = max(start - offset, 0), min(stop - offset, st.nframes)
            for a in range(lo, hi, chunk):
                b = min(a + chunk, hi)
                cwhere = st.coord if isinstance(st.coord, str) else f"{st.where}/coord.npy"
                coords = self._array(st.coord, cwhere, 3 * n, st.nframes, a, b).reshape(b - a, n, 3)
                cells = None
                if info.periodic:
                    bwhere = st.box if isinstance(st.box, str) else f"{st.where}/box.npy"
                    cells = self._array(st.box, bwhere, 9, st.nframes, a, b).reshape(b - a, 3, 3)
                rtypes = None
                if st.real_atom_types is not None:
                    rwhere = st.real_atom_types if isinstance(st.real_atom_types, str) else f"{st.where}/real_atom_types.npy"
                    rt = self._array(st.real_atom_types, rwhere, n, st.nframes, a, b)
                    rtypes = rt.astype(np.int64)
                    if np.any(rtypes != rt) or rtypes.min() < 0 or rtypes.max() >= len(info.to_global):
                        raise DataFormatError(
                            f"{rwhere}: atom types must be integers in [0, {len(info.to_global)}) (the type map), "
                            f"found {rt.min():g}..{rt.max():g}"
                        )
                base_types = None if rtypes is not None else info.to_global[info.types]
                for k in range(b - a):
                    types = base_types if rtypes is None else info.to_global[rtypes[k]]
                    where = f"{st.where} frame {a + k}"
                    yield offset + a + k, coords[k], None if cells is None else cells[k], types, where
            offset += st.nframes


# ---------------------------------------------------------------------------------------------
# statistics


class Accumulator:
    """Per-rank statistics; merged exactly (min, max, integer sums) across ranks.

    ``cutoffs`` ascending; the last one is the largest.  Arrays indexed
    ``[cutoff][center type][neighbor type]``.
    """

    def __init__(self, ntypes, cutoffs):
        nt, nq = ntypes, len(cutoffs)
        self.ntypes = nt
        self.cutoffs = tuple(float(c) for c in cutoffs)
        self.nframes = 0
        self.natoms = 0
        self.ncenters = np.zeros(nt, dtype=np.int64)
        self.d2min = np.full((nt, nt), np.inf)
        self.d2max = np.full((nq, nt, nt), -np.inf)
        self.cnt_max = np.zeros((nq, nt, nt), dtype=np.int64)
        self.cnt_sum = np.zeros((nq, nt, nt), dtype=np.int64)
        self.tot_max = np.zeros((nq, nt), dtype=np.int64)

    def state(self):
        return {k: v for k, v in vars(self).items()}

    @classmethod
    def merged(cls, states):
        """Combine the states of all ranks (order does not matter: every operation is exact)."""
        first = states[0]
        acc = cls(first["ntypes"], first["cutoffs"])
        for st in states:
            acc.nframes += st["nframes"]
            acc.natoms += st["natoms"]
            acc.ncenters += st["ncenters"]
            acc.d2min = np.minimum(acc.d2min, st["d2min"])
            acc.d2max = np.maximum(acc.d2max, st["d2max"])
            acc.cnt_max = np.maximum(acc.cnt_max, st["cnt_max"])
            acc.cnt_sum += st["cnt_sum"]
            acc.tot_max = np.maximum(acc.tot_max, st["tot_max"])
        return acc


def _valid_cell(cell, where):
    from .neighbors.neighbor_list import _check_cell

    try:
        return _check_cell(cell)
    except InputError as exc:
        raise DataFormatError(f"{where}: {exc}") from None


_VESIN = {}


def _half_pairs(coords, cell, cutoff, n_threads):
    """Pairs ``(i, j, S)``, each unordered pair (or atom-image pair) once, from vesin's half list.

    Periodic positions are wrapped into the cell for vesin (``r = w + n.cell``)
    and the shifts translated back, ``S = S_w + n_i - n_j``, so that the
    pair vectors can be formed from the original coordinates exactly as
    :func:`dpcompress.neighbors.build_neighbor_list` forms them; a cluster is
    put in a box wide enough that no image is within the cutoff.
    """
    import vesin

    key = (cutoff, n_threads)
    calc = _VESIN.get(key)
    if calc is None:
        _VESIN.clear()
        calc = _VESIN[key] = vesin.NeighborList(cutoff=cutoff, full_list=False, n_threads=n_threads)
    if cell is None:
        points = coords - coords.min(axis=0)
        box = np.diag(points.max(axis=0) + 2.0 * cutoff + 1.0)
        i, j, S = calc.compute(points, box, True, "ijS")
        inside = ~np.any(S != 0, axis=1)  # always all True by construction
        return i[inside].view(np.int64), j[inside].view(np.int64), S[inside]
    frac = coords @ np.linalg.inv(cell)
    if np.abs(frac).max() > 2.0**40:
        k = int(np.argmax(np.abs(frac).max(axis=1)))
        raise InputError(f"coords of atom {k} lie more than 2^40 cells away from the cell")
    n = np.floor(frac)
    i, j, S = calc.compute(coords - n @ cell, cell, True, "ijS")
    i, j = i.view(np.int64), j.view(np.int64)
    if n.any():
        n = n.astype(np.int64)
        S = S.astype(np.int64)
        for c in range(3):
            S[:, c] += np.take(n[:, c], i) - np.take(n[:, c], j)
    return i, j, S


def scan_frame(acc, coords, cell, types, where="frame", n_threads=1):
    """Add one frame to ``acc``.

    Pair vectors are formed as in :func:`dpcompress.neighbors.build_neighbor_list`
    (:math:`\\mathbf r_j - \\mathbf r_i + \\sum_k S_k \\mathbf a_k`,
    :math:`d^2 = (x^2 + y^2) + z^2`), so the distances are the ones the
    evaluation kernels see (the reversed pair gives the same :math:`d^2`
    bit for bit); a pair counts when :math:`d^2 < r_c^2`.  Each pair is
    found once and counted for both atoms; an atom and its own periodic image
    count twice (two images, at :math:`\\pm S`), as in a full list.
    """
    from .neighbors.neighbor_list import _pair_vectors

    nt = acc.ntypes
    natoms = coords.shape[0]
    if cell is not None:
        cell = _valid_cell(cell, where)
    rmax = acc.cutoffs[-1]
    try:
        i, j, S = _half_pairs(coords, cell, rmax + 1e-6 * max(rmax, 1.0), n_threads)
    except InputError as exc:
        raise DataFormatError(f"{where}: {exc}") from None
    _, d2 = _pair_vectors(coords, np.zeros((3, 3)) if cell is None else cell, i, j, S)
    ti = types[i]
    tj = types[j]
    acc.nframes += 1
    acc.natoms += natoms
    ncent = np.bincount(types, minlength=nt)
    acc.ncenters += ncent
    present = np.flatnonzero(ncent)
    for q in range(len(acc.cutoffs) - 1, -1, -1):  # largest first: later masks shrink the arrays
        rc2 = acc.cutoffs[q] * acc.cutoffs[q]
        keep = d2 < rc2
        if not keep.all():
            i, j, d2, ti, tj = i[keep], j[keep], d2[keep], ti[keep], tj[keep]
        if d2.size:
            key = np.concatenate([ti * nt + tj, tj * nt + ti])
            both = np.concatenate([d2, d2])
            if q == len(acc.cutoffs) - 1:
                np.minimum.at(acc.d2min.reshape(-1), key, both)
            np.maximum.at(acc.d2max[q].reshape(-1), key, both)
        counts = np.bincount(np.concatenate([i * nt + tj, j * nt + ti]), minlength=natoms * nt).reshape(natoms, nt)
        total = counts.sum(axis=1)
        for c in present:
            rows = counts[types == c]
            np.maximum(acc.cnt_max[q, c], rows.max(axis=0), out=acc.cnt_max[q, c])
            acc.cnt_sum[q, c] += rows.sum(axis=0)
            acc.tot_max[q, c] = max(acc.tot_max[q, c], total[types == c].max())


def _matrix(a, fn=float):
    """Nested lists; non-finite entries become None (JSON null)."""
    return [[fn(x) if np.isfinite(x) else None for x in row] for row in np.asarray(a)]


def _s_of_r2(d2, rcut_smth, rcut, protection=0.0):
    """``sw(r)/(r + protection)`` at ``r = sqrt(d2)``, NaN where ``d2`` is not finite.

    The switch polynomial rounds to a few 1e-17 below zero just inside
    ``rcut``; those values are reported as 0.
    """
    from .core.env_mat import smooth_switch

    d2 = np.asarray(d2, dtype=np.float64)
    ok = np.isfinite(d2)
    r = np.sqrt(np.where(ok, d2, 1.0))
    sw, _ = smooth_switch(r, rcut_smth, rcut)
    return np.where(ok, np.maximum(sw, 0.0) / (r + protection), np.nan)


def _part_info(part, k):
    """What the scan needs of one descriptor part (plain data, sent to every rank)."""
    info = dict(part=k, descriptor=getattr(part, "type_name", type(part).__name__))
    for name in ("rcut", "rcut_smth", "env_protection"):
        value = getattr(part, name, None)
        info[name] = None if value is None else float(value)
    sel = getattr(part, "sel", None)
    info["sel"] = None if sel is None else [int(s) for s in np.ravel(sel)]
    info["mixed_types"] = bool(getattr(part, "mixed_types", False))
    info["avg"] = info["std"] = None
    davg, dstd = getattr(part, "davg", None), getattr(part, "dstd", None)
    if info["descriptor"] in ("se_e2_a", "se_e2_r") and davg is not None and sel is not None and not info["mixed_types"]:
        davg, dstd = np.asarray(davg, dtype=np.float64), np.asarray(dstd, dtype=np.float64)
        offsets = np.concatenate([[0], np.cumsum(info["sel"])])[:-1]
        nt = len(info["sel"])
        avg = np.full((davg.shape[0], nt), np.nan)
        std = np.full((davg.shape[0], nt), np.nan)
        for n in range(nt):
            if info["sel"][n] > 0:  # the radial component of neighbor type n's first slot
                avg[:, n] = davg[:, offsets[n], 0]
                std[:, n] = dstd[:, offsets[n], 0]
        info["avg"], info["std"] = avg, std
    return info


def _model_setup(path):
    from .models import load_model

    model = load_model(path)
    desc = model.descriptor
    parts = getattr(desc, "parts", None) or (desc,)
    return dict(
        file=os.fspath(path),
        type_map=tuple(model.type_map),
        rcut=float(model.rcut),
        rcut_smth=float(next(p.rcut_smth for p in parts if float(p.rcut) == float(model.rcut))),
        parts=[_part_info(p, k) for k, p in enumerate(parts)],
    )


def build_result(acc, setup):
    """The JSON document (a dict) from the merged statistics."""
    nt = acc.ntypes
    cutoffs = acc.cutoffs
    q0 = cutoffs.index(setup["rcut"])
    rcut, rcut_smth = setup["rcut"], setup["rcut_smth"]
    d2min = acc.d2min
    within = d2min < rcut * rcut
    dmin = np.where(within, np.sqrt(np.where(within, d2min, 1.0)), np.inf)
    gmin = float(dmin.min()) if np.isfinite(dmin).any() else None
    ncent = acc.ncenters
    total_centers = int(ncent.sum())

    def means(q):
        by_center = np.where(ncent[:, None] > 0, acc.cnt_sum[q] / np.maximum(ncent, 1)[:, None], np.nan)
        overall = acc.cnt_sum[q].sum(axis=0) / max(total_centers, 1)
        return by_center, overall

    by_center_mean, overall_mean = means(q0)
    have = ncent > 0
    out = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "dpcompress_version": __version__,
        "data": list(setup["paths"]),
        "nsystems": setup["nsystems"],
        "nframes": int(acc.nframes),
        "natoms": int(acc.natoms),
        "natoms_per_type": [int(x) for x in ncent],
        "type_map": None if setup["type_map"] is None else list(setup["type_map"]),
        "ntypes": nt,
        "rcut": rcut,
        "rcut_smth": rcut_smth,
        "min_nbor_dist": gmin,
        "min_nbor_dist_by_type": _matrix(dmin),
        "max_nbor_size": [int(x) for x in acc.cnt_max[q0].max(axis=0)],
        "max_nbor_size_mixed": int(acc.tot_max[q0].max()) if nt else 0,
        "mean_nbor_size": [float(x) for x in overall_mean],
        "mean_nbor_size_mixed": float(acc.cnt_sum[q0].sum() / max(total_centers, 1)),
        "max_nbor_size_by_center": [[int(x) if have[c] else None for x in acc.cnt_max[q0, c]] for c in range(nt)],
        "mean_nbor_size_by_center": _matrix(by_center_mean),
        "s_min": None,
        "s_max": None,
        "model": None,
    }
    if rcut_smth is not None:
        out["s_min"] = _matrix(_s_of_r2(np.where(np.isfinite(acc.d2max[q0]), acc.d2max[q0], np.nan), rcut_smth, rcut))
        out["s_max"] = _matrix(_s_of_r2(np.where(within, d2min, np.nan), rcut_smth, rcut))
    model = setup.get("model")
    if model is not None:
        parts = []
        for p in model["parts"]:
            entry = {k: p[k] for k in ("part", "descriptor", "rcut", "rcut_smth", "env_protection", "sel")}
            q = cutoffs.index(p["rcut"])
            entry["max_nbor_size"] = [int(x) for x in acc.cnt_max[q].max(axis=0)]
            entry["max_nbor_size_mixed"] = int(acc.tot_max[q].max()) if nt else 0
            sel = p["sel"]
            if sel is not None:
                if p["mixed_types"]:
                    entry["sel_sufficient"] = entry["max_nbor_size_mixed"] <= sum(sel)
                else:
                    entry["sel_sufficient"] = bool(len(sel) == nt and all(m <= s for m, s in zip(entry["max_nbor_size"], sel)))
            entry["x_min"] = entry["x_max"] = None
            if p["avg"] is not None and p["rcut_smth"] is not None and p["avg"].shape[0] == nt:
                prot = p["env_protection"] or 0.0
                rc2 = p["rcut"] * p["rcut"]
                near = np.where(d2min < rc2, d2min, np.nan)
                far = np.where(np.isfinite(acc.d2max[q]), acc.d2max[q], np.nan)
                avg, std = p["avg"], p["std"]
                entry["x_min"] = _matrix((_s_of_r2(far, p["rcut_smth"], p["rcut"], prot) - avg) / std)
                entry["x_max"] = _matrix((_s_of_r2(near, p["rcut_smth"], p["rcut"], prot) - avg) / std)
            parts.append(entry)
        out["model"] = {"file": model["file"], "type_map": list(model["type_map"]), "parts": parts}
    return out


# ---------------------------------------------------------------------------------------------
# progress


class _Progress:
    """Whole-job progress shown on rank 0.

    Ranks > 0 send their frame count to rank 0 (non-blocking, at most every
    ``PROGRESS_SEND_PERIOD`` s, and once more when done); rank 0 polls between
    its own frames and, once finished, until every rank has reported done.
    Everyone then meets in a non-blocking barrier polled with short sleeps, so
    that ranks that finish early do not spin on a core the others need.
    """

    def __init__(self, comm, total, interval, show):
        self.comm, self.total, self.interval = comm, int(total), float(interval)
        self.rank, self.size = comm.rank, comm.size
        self.done = 0  # this rank
        self.others = {}  # rank 0: rank -> frames done
        self.finished = set()
        self.reqs = []
        self.t0 = self.t_send = self.t_poll = self.t_log = time.perf_counter()
        self.bar = None
        self.show = show and self.rank == 0
        if self.show and sys.stderr.isatty() and os.environ.get("TQDM_DISABLE") not in ("1", "true", "True"):
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=self.total, unit="frame", mininterval=1.0, dynamic_ncols=True, desc="scan")
            except ImportError:
                self.bar = None
        self.shown = 0

    def global_done(self):
        return self.done + sum(self.others.values())

    def advance(self, n=1):
        self.done += n
        now = time.perf_counter()
        if self.rank:
            if now - self.t_send >= PROGRESS_SEND_PERIOD:
                self.reqs.append(self.comm.isend(self.done, dest=0, tag=_TAG_PROGRESS))
                self.t_send = now
            return
        if self.size > 1 and now - self.t_poll >= 0.1:
            self._poll()
            self.t_poll = now
        self._display(now)

    def _poll(self):
        from mpi4py import MPI

        status = MPI.Status()
        while self.comm.iprobe(source=MPI.ANY_SOURCE, tag=_TAG_PROGRESS, status=status):
            src = status.Get_source()
            msg = self.comm.recv(source=src, tag=_TAG_PROGRESS)
            if isinstance(msg, tuple):  # ("done", frames)
                self.finished.add(src)
                msg = msg[1]
            self.others[src] = msg

    def _display(self, now, final=False):
        if not self.show:
            return
        done = self.global_done()
        if self.bar is not None:
            if done > self.shown:
                self.bar.update(done - self.shown)
                self.shown = done
            return
        if final or now - self.t_log >= self.interval:
            self.t_log = now
            elapsed = now - self.t0
            rate = done / elapsed if elapsed > 0 else 0.0
            eta = (self.total - done) / rate if rate > 0 else float("inf")
            pct = 100.0 * done / self.total if self.total else 100.0
            log.info("%d/%d frames (%.1f %%), %.1f frames/s, %s", done, self.total, pct, rate,
                     "done" if final else f"ETA {eta:.0f} s")

    def finish(self):
        """Wait for every rank to finish (without spinning); rank 0 shows the final count."""
        if self.size > 1:
            from mpi4py import MPI

            if self.rank:
                self.reqs.append(self.comm.isend(("done", self.done), dest=0, tag=_TAG_PROGRESS))
                MPI.Request.waitall(self.reqs)
            else:
                while len(self.finished) < self.size - 1:
                    self._poll()
                    self._display(time.perf_counter())
                    time.sleep(0.005)
            barrier = self.comm.Ibarrier()
            while not barrier.Test():
                time.sleep(0.002)
        if self.bar is not None:
            self._display(time.perf_counter())
            self.bar.close()
        elif self.show and self.total:
            self._display(time.perf_counter(), final=True)


# ---------------------------------------------------------------------------------------------
# driver


class _CollectiveError(DataFormatError):
    """An error every rank knows of (found before the scan); no MPI_Abort needed."""


def _setup(paths, rcut, rcut_smth, type_map, model):
    """Rank 0: find systems, read the model, fix the type map and the cutoffs."""
    msetup = _model_setup(model) if model is not None else None
    if msetup is not None:
        if type_map is not None and tuple(type_map) != msetup["type_map"]:
            raise InputError(f"--type-map {list(type_map)} differs from the model's type map {list(msetup['type_map'])}")
        type_map = msetup["type_map"]
        if rcut is None:
            rcut = msetup["rcut"]
        if rcut_smth is None and float(rcut) == msetup["rcut"]:
            rcut_smth = msetup["rcut_smth"]
    if rcut is None:
        raise InputError("give the cutoff (--rcut) or a model (-m MODEL)")
    rcut = float(rcut)
    if not (np.isfinite(rcut) and rcut > 0):
        raise InputError(f"rcut must be a positive number, got {rcut}")
    if rcut_smth is not None:
        rcut_smth = float(rcut_smth)
        if not (0 <= rcut_smth < rcut):
            raise InputError(f"rcut_smth must lie in [0, rcut) = [0, {rcut}), got {rcut_smth}")
    systems = discover_systems(paths)
    tmap, ntypes = resolve_type_map(systems, type_map)
    cutoffs = sorted({rcut} | ({p["rcut"] for p in msetup["parts"]} if msetup else set()))
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
    )


def run_scan(paths, *, rcut=None, rcut_smth=None, type_map=None, model=None, comm=None, n_threads=1,
             show_progress=True, log_interval=10.0):
    """Scan training data; every rank of ``comm`` takes part and gets the result.

    Parameters
    ----------
    paths : str or list of str
        Folders (searched recursively), system folders, or deepmd/hdf5 files.
    rcut, rcut_smth : float, optional
        Cutoff and switch start, Å; default: the model's.
    type_map : sequence of str, optional
        Global type names (default: the model's, else those of the data).
    model : str or os.PathLike, optional
        DeePMD-kit model (or ``.dpc``): cutoffs, type map, and ``davg``/``dstd`` for the x ranges.
    comm : mpi4py communicator or None
        None: one process.
    n_threads : int
        Threads of the neighbor search per rank.

    Returns
    -------
    dict
        The scan document (what ``main`` writes as JSON), on every rank.
    """
    from .parallel.partition import rank_work, split_frames

    comm = comm or SerialComm()
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if comm.rank == 0:
        try:
            setup = _setup(paths, rcut, rcut_smth, type_map, model)
            payload = ("ok", setup)
        except DPCompressError as exc:
            payload = ("error", str(exc))
    else:
        payload = None
    payload = comm.bcast(payload, root=0)
    if payload[0] == "error":
        raise _CollectiveError(payload[1])
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
    progress = _Progress(comm, total_frames, log_interval, show_progress)
    reader = _Reader()
    t0 = time.perf_counter()
    try:
        for s, start, stop in segments[comm.rank]:
            for _, coords, cell, types, where in reader.frames(systems[s], start, stop):
                scan_frame(acc, coords, cell, types, where, n_threads)
                progress.advance(1)
    finally:
        reader.close()
    elapsed = time.perf_counter() - t0
    progress.finish()
    wall = time.perf_counter() - t0
    states = comm.gather(acc.state(), root=0)
    result = None
    if comm.rank == 0:
        result = build_result(Accumulator.merged(states), setup)
        log.info("scanned %d frames in %.2f s (%.1f frames/s; rank 0 busy %.2f s); min_nbor_dist %s Å, max_nbor_size %s",
                 result["nframes"], wall, result["nframes"] / wall if wall > 0 else 0.0, elapsed,
                 result["min_nbor_dist"], result["max_nbor_size"])
    return comm.bcast(result, root=0)


def write_json(doc, path):
    """Write ``doc`` to ``path`` atomically (temporary file in the same folder, then ``os.replace``)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".scan-", suffix=".json.tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=1, allow_nan=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def build_parser(prog="python -m dpcompress.scan"):
    p = argparse.ArgumentParser(
        prog=prog,
        description="Scan DeePMD-kit training data (deepmd/npy folders, deepmd/hdf5 files): minimum neighbor distance, "
        "neighbor counts per type (a sel suggestion), table input ranges. Runs under mpiexec/srun as well.",
    )
    p.add_argument("paths", nargs="+", metavar="DIR", help="folders searched recursively, system folders or .h5/.hdf5 files")
    p.add_argument("-m", "--model", default=None, help="DeePMD-kit model (.dp/.yaml/.dpc): cutoffs, type map, davg/dstd")
    p.add_argument("--rcut", type=float, default=None, help="cutoff radius, Å (default: the model's)")
    p.add_argument("--rcut-smth", type=float, default=None, help="start of the smooth switch, Å (default: the model's); needed for s ranges")
    p.add_argument("--type-map", nargs="+", default=None, metavar="T", help="element names in type order (default: the model's, else the data's)")
    p.add_argument("-o", "--output", default="scan.json", help="JSON file written by rank 0 [scan.json]")
    p.add_argument("--threads", type=int, default=1, help="threads of the neighbor search per rank [1]")
    p.add_argument("--log-interval", type=float, default=10.0, help="seconds between progress lines when not on a terminal [10]")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, warnings and errors only")
    p.add_argument("--no-mpi", action="store_true", help="do not import mpi4py; run as one plain process")
    return p


def _configure_logging(rank, size, quiet):
    handler = logging.StreamHandler(sys.stderr)
    tag = f" [rank {rank}/{size}]" if size > 1 else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s{tag} %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO if rank == 0 and not quiet else logging.WARNING)
    log.propagate = False
    return handler


def main(argv=None, prog="python -m dpcompress.scan"):
    """Entry point (``python -m dpcompress.scan``, ``dpcompress scan``); returns the exit status.

    Under MPI with more than one rank, an error on one rank is printed by that
    rank, which then calls ``MPI_Abort``: the whole job ends at once.
    """
    args = build_parser(prog).parse_args(argv)
    try:
        comm = get_comm(not args.no_mpi)
    except DPCompressError as exc:
        print(f"dpcompress scan: error: {exc}", file=sys.stderr, flush=True)
        return 2
    rank, size = comm.rank, comm.size
    handler = _configure_logging(rank, size, args.quiet)
    prefix = f"[rank {rank}/{size}] " if size > 1 else ""
    try:
        doc = run_scan(
            args.paths, rcut=args.rcut, rcut_smth=args.rcut_smth, type_map=args.type_map, model=args.model, comm=comm,
            n_threads=args.threads, show_progress=not args.quiet, log_interval=args.log_interval,
        )
        if rank == 0:
            try:
                write_json(doc, args.output)
            except OSError as exc:
                raise InputError(f"{args.output}: cannot write ({exc})") from None
            log.info("wrote %s", args.output)
        return 0
    except _CollectiveError as exc:  # every rank raised it: exit together, no abort
        if rank == 0:
            print(f"dpcompress scan: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except DPCompressError as exc:
        print(f"{prefix}dpcompress scan: error: {exc}", file=sys.stderr, flush=True)
        if size > 1:
            comm.Abort(2)
        return 2
    except BaseException:
        if size > 1:
            print(f"{prefix}dpcompress scan: unexpected error, aborting all ranks:", file=sys.stderr)
            traceback.print_exc()
            sys.stderr.flush()
            comm.Abort(1)
        raise
    finally:
        log.removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
