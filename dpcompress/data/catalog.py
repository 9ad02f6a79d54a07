r"""What a training system holds, read from its files' headers only: atoms, types, sets, frame counts.

A *system* is a folder (``deepmd/npy``) or an HDF5 group (``deepmd/hdf5``) holding

``type.raw``            one integer type per atom
``type_map.raw``        optional, element names
``nopbc``               optional marker: non-periodic, no ``box.npy``
``set.*/coord.npy``     (nframes, natoms*3), Å, **not wrapped** into the cell
``set.*/box.npy``       (nframes, 9), rows = cell vectors, Å
``set.*/real_atom_types.npy``  (nframes, natoms), optional (mixed-type format)
``set.*/energy.npy``    (nframes,), eV                 optional label
``set.*/force.npy``     (nframes, natoms*3), eV/Å      optional label
``set.*/virial.npy``    (nframes, 9), eV               optional label
``set.*/atom_ener.npy`` (nframes, natoms), eV          optional per-atom label (``dpcompress test -a``)
``set.*/atom_pref.npy`` (nframes, natoms)              optional force weights (``dp test``'s weighted force)
``set.*/fparam.npy``    (nframes, numb_fparam)         optional frame parameters of a model that takes them
``set.*/aparam.npy``    (nframes, natoms*numb_aparam)  optional atomic parameters (widths: the model's, checked when read)

Frames of all ``set.*`` follow each other in sorted set order.  Opening a system
(:func:`open_npy_system`, :func:`open_hdf5_systems`) reads ``type.raw`` and the arrays'
headers, checks every shape against ``type.raw`` and the set's ``coord.npy``, and returns a
:class:`SystemInfo`; the frames are read later, in ranges, by :class:`~.frames.FrameReader`
(a rank of the MPI scan reads only its own frames).
"""

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..core.errors import DataFormatError
from .checks import frames_in, npy_header, parse_types

#: Optional per-frame labels of a set.
LABEL_KEYS = ("energy", "force", "virial")
#: Optional per-atom labels of a set (only ``dpcompress test`` reads them; :meth:`SystemInfo.atom_labels`).
ATOM_LABEL_KEYS = ("atom_ener", "atom_pref")
#: Optional frame/atomic parameters of a set (``dpcompress test`` passes them to models with
#: ``numb_fparam`` / ``numb_aparam``); their widths are the model's, checked when they are read.
PARAM_KEYS = ("fparam", "aparam")


def frame_width(key, natoms):
    """Numbers per frame of the per-set array ``key``."""
    return {"coord": 3 * natoms, "box": 9, "real_atom_types": natoms, "energy": 1, "force": 3 * natoms,
            "virial": 9, "atom_ener": natoms, "atom_pref": natoms}[key]


@dataclass(frozen=True)
class ArrayRef:
    """Where one per-frame array of a set is stored.

    Attributes
    ----------
    where : str
        Named in errors: the ``.npy`` path, or ``file.h5:/group/set.000/coord.npy``.
    path : str
        The ``.npy`` file, or the HDF5 file (or the file an in-memory array was parsed from).
    key : str or None
        HDF5 dataset name; None for a ``.npy`` file.
    data : ndarray of float64, shape (nframes, width), or None
        The frames themselves, for a format parsed into memory (extxyz, OUTCAR, ... see
        :mod:`.formats`); None for arrays read from disk.
    """

    where: str
    path: str
    key: Optional[str] = None
    data: Optional[np.ndarray] = field(default=None, repr=False, compare=False)


@dataclass
class SetInfo:
    """One ``set.*`` of a system: its frame count and where its arrays are (``arrays[key]``)."""

    where: str  # set folder, or "file.h5:/group/set.000"
    nframes: int
    arrays: Dict[str, ArrayRef] = field(default_factory=dict)


@dataclass
class SystemInfo:
    """A system as found on disk; frames are read later (:class:`~.frames.FrameReader`).

    Attributes
    ----------
    name : str
        The folder, or ``file.h5:/group``.
    kind : str
        ``"npy"``, ``"hdf5"``, or the name of a format parsed into memory (``"extxyz"``, ...).
    natoms : int
    types : ndarray of int64, shape (natoms,)
        ``type.raw``: local type indices (all 0 in the mixed-type format, whose types are per frame).
    type_map : tuple of str or None
        ``type_map.raw``.
    periodic : bool
    sets : list of SetInfo
    to_global : ndarray of int64 or None
        Local type index -> global type index, set by :func:`~.type_maps.resolve_type_map`.
    """

    name: str
    kind: str
    natoms: int
    types: np.ndarray
    type_map: Optional[Tuple[str, ...]]
    periodic: bool
    sets: List[SetInfo] = field(default_factory=list)
    to_global: Optional[np.ndarray] = None

    @property
    def nframes(self):
        return sum(s.nframes for s in self.sets)

    @property
    def mixed(self):
        """Per-frame atom types (``real_atom_types.npy``)."""
        return any("real_atom_types" in s.arrays for s in self.sets)

    def labels(self):
        """The labels every set holds (a label missing from one set is not available)."""
        return tuple(k for k in LABEL_KEYS if all(k in s.arrays for s in self.sets))

    def atom_labels(self):
        """The per-atom labels (``atom_ener``, ``atom_pref``) every set holds."""
        return tuple(k for k in ATOM_LABEL_KEYS if all(k in s.arrays for s in self.sets))

    def params(self):
        """The frame/atomic parameters (``fparam``, ``aparam``) every set holds."""
        return tuple(k for k in PARAM_KEYS if all(k in s.arrays for s in self.sets))


def _check_param(shape, dtype, where, nframes):
    """A parameter array holds whole frames of some width (the model's width is checked on reading)."""
    size = int(np.prod(shape, dtype=np.int64))
    if dtype.kind not in "fiu":
        raise DataFormatError(f"{where}: expected a numeric array, found dtype {dtype}")
    if len(shape) == 0 or size == 0 or size % nframes or (len(shape) >= 2 and shape[0] != nframes):
        raise DataFormatError(f"{where}: shape {tuple(shape)} does not hold {nframes} frames (the set's coord.npy)")


def _check_type_map(type_map, types, where):
    if len(set(type_map)) != len(type_map):
        raise DataFormatError(f"{where}: an element is listed twice in {list(type_map)}")
    if types.max() >= len(type_map):
        raise DataFormatError(f"{where}: atom type {types.max()} but type_map.raw lists only {len(type_map)} elements")


def _check_system(info):
    if not info.sets:
        raise DataFormatError(f"{info.name}: no set.* folders with frames")
    if info.mixed and any("real_atom_types" not in s.arrays for s in info.sets):
        raise DataFormatError(f"{info.name}: real_atom_types.npy present in some sets only")


def open_npy_system(path, labels=False):
    """Open one ``deepmd/npy`` system folder (headers only).

    Parameters
    ----------
    path : str or os.PathLike
    labels : bool
        Also find and check ``energy.npy``, ``force.npy``, ``virial.npy``.

    Returns
    -------
    SystemInfo

    Raises
    ------
    DataFormatError
        No ``type.raw``, a missing ``coord.npy`` or ``box.npy``, a file that is not a complete
        numeric ``.npy`` array, shapes that disagree (the message names the file).
    """
    path = os.fspath(path)
    tfile = os.path.join(path, "type.raw")
    if not os.path.isfile(tfile):
        raise DataFormatError(f"{path}: not a deepmd/npy system (no type.raw)")
    try:
        with open(tfile) as fh:
            types = parse_types(fh.read().split(), tfile)
        type_map = None
        mfile = os.path.join(path, "type_map.raw")
        if os.path.isfile(mfile):
            with open(mfile) as fh:
                type_map = tuple(fh.read().split())
            _check_type_map(type_map, types, mfile)
        set_names = sorted(os.listdir(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{getattr(exc, 'filename', None) or tfile}: cannot read ({exc})") from None
    periodic = not os.path.isfile(os.path.join(path, "nopbc"))
    info = SystemInfo(path, "npy", types.size, types, type_map, periodic)
    for sdir in set_names:
        full = os.path.join(path, sdir)
        if not sdir.startswith("set.") or not os.path.isdir(full):
            continue

        def ref(key):
            f = os.path.join(full, key + ".npy")
            return ArrayRef(f, f) if os.path.isfile(f) else None

        coord = ref("coord")
        if coord is None:
            raise DataFormatError(f"{full}: missing coord.npy")
        st = SetInfo(full, frames_in(*npy_header(coord.path), coord.where, frame_width("coord", types.size)))
        st.arrays["coord"] = coord
        keys = (("box",) if periodic else ()) + ("real_atom_types",) + (LABEL_KEYS + ATOM_LABEL_KEYS if labels else ())
        for key in keys:
            r = ref(key)
            if r is None:
                if key == "box":
                    raise DataFormatError(f"{full}: missing box.npy (add an empty 'nopbc' file for non-periodic data)")
                continue
            frames_in(*npy_header(r.path), r.where, frame_width(key, types.size), st.nframes)
            st.arrays[key] = r
        for key in PARAM_KEYS if labels else ():
            r = ref(key)
            if r is not None:
                _check_param(*npy_header(r.path), r.where, st.nframes)
                st.arrays[key] = r
        info.sets.append(st)
    _check_system(info)
    return info


def open_hdf5_systems(path, labels=False):
    """Open every system (group holding ``type.raw``) of a ``deepmd/hdf5`` file (headers only).

    Systems come in sorted group order (the root group first when it is a system).  See
    :func:`open_npy_system` for ``labels`` and the errors.
    """
    import h5py

    path = os.fspath(path)
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
                out.append(_hdf5_system(fh, path, gname, labels))
    except DataFormatError:
        raise
    except Exception as exc:  # h5py errors on damaged files surface on access
        raise DataFormatError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    if not out:
        raise DataFormatError(f"{path}: no deepmd/hdf5 system (no group with type.raw)")
    return out


def _hdf5_system(fh, path, gname, labels):
    g = fh[gname] if gname else fh
    where = f"{path}:/{gname}"
    types = parse_types(np.asarray(g["type.raw"][()]).ravel().tolist(), f"{where}/type.raw")
    type_map = None
    if "type_map.raw" in g:
        raw = np.asarray(g["type_map.raw"][()]).ravel()
        type_map = tuple(x.decode() if isinstance(x, bytes) else str(x) for x in raw)
        _check_type_map(type_map, types, f"{where}/type_map.raw")
    periodic = "nopbc" not in g
    info = SystemInfo(where, "hdf5", types.size, types, type_map, periodic)
    for sname in sorted(k for k in g.keys() if k.startswith("set.")):
        sg = g[sname]
        swhere = f"{where.rstrip('/')}/{sname}"

        def ref(key):
            if key + ".npy" not in sg:
                return None
            ds = sg[key + ".npy"]
            return ArrayRef(f"{swhere}/{key}.npy", path, ds.name), ds

        found = ref("coord")
        if found is None:
            raise DataFormatError(f"{swhere}: missing coord.npy")
        coord, ds = found
        st = SetInfo(swhere, frames_in(ds.shape, ds.dtype, coord.where, frame_width("coord", types.size)))
        st.arrays["coord"] = coord
        keys = (("box",) if periodic else ()) + ("real_atom_types",) + (LABEL_KEYS + ATOM_LABEL_KEYS if labels else ())
        for key in keys:
            found = ref(key)
            if found is None:
                if key == "box":
                    raise DataFormatError(f"{swhere}: missing box.npy (add a 'nopbc' entry for non-periodic data)")
                continue
            r, ds = found
            frames_in(ds.shape, ds.dtype, r.where, frame_width(key, types.size), st.nframes)
            st.arrays[key] = r
        for key in PARAM_KEYS if labels else ():
            found = ref(key)
            if found is not None:
                r, ds = found
                _check_param(ds.shape, ds.dtype, r.where, st.nframes)
                st.arrays[key] = r
        info.sets.append(st)
    _check_system(info)
    return info
