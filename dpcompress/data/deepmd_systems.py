"""Read DeePMD-kit training systems without dpdata.

A *system* is a directory (``deepmd/npy``) or an HDF5 group (``deepmd/hdf5``) holding

``type.raw``            one integer type per atom
``type_map.raw``        optional, element names
``nopbc``               optional marker: non-periodic, no ``box.npy``
``set.*/coord.npy``     (nframes, natoms*3), Å, **not wrapped** into the cell
``set.*/box.npy``       (nframes, 9), rows = cell vectors, Å
``set.*/energy.npy``    (nframes,), eV                 optional
``set.*/force.npy``     (nframes, natoms*3), eV/Å      optional
``set.*/virial.npy``    (nframes, 9), eV               optional
``set.*/real_atom_types.npy``  (nframes, natoms)       optional (mixed-type format)

Frames of all ``set.*`` are concatenated in sorted set order.  Arrays are read
with ``allow_pickle=False``; every shape is checked against ``type.raw``.
"""

import glob
import os
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..core.errors import DataFormatError

MAX_TYPES = 512


@dataclass
class System:
    """One training system.

    Attributes
    ----------
    name : str
    atom_types : ndarray of int64, shape (natoms,) or (nframes, natoms)
    coords : ndarray of float64, shape (nframes, natoms, 3)
    cells : ndarray of float64, shape (nframes, 3, 3), or None when non-periodic
    type_map : tuple of str or None
    energy, force, virial : ndarray or None
        Labels, shapes (nframes,), (nframes, natoms, 3), (nframes, 3, 3).
    """

    name: str
    atom_types: np.ndarray
    coords: np.ndarray
    cells: Optional[np.ndarray]
    type_map: Optional[Tuple[str, ...]] = None
    energy: Optional[np.ndarray] = None
    force: Optional[np.ndarray] = None
    virial: Optional[np.ndarray] = None

    @property
    def nframes(self):
        return self.coords.shape[0]

    @property
    def natoms(self):
        return self.coords.shape[1]

    @property
    def periodic(self):
        return self.cells is not None

    def frame_types(self, frame):
        """Atom types of one frame."""
        return self.atom_types if self.atom_types.ndim == 1 else self.atom_types[frame]


def _parse_types(text, where):
    try:
        types = np.array([int(t) for t in text.split()], dtype=np.int64)
    except ValueError:
        raise DataFormatError(f"{where}: expected whitespace-separated integers") from None
    if types.size == 0:
        raise DataFormatError(f"{where}: no atoms")
    if types.min() < 0 or types.max() >= MAX_TYPES:
        raise DataFormatError(f"{where}: atom types must lie in [0, {MAX_TYPES}), found {types.min()}..{types.max()}")
    return types


def _shaped(arr, where, nframes, width):
    """Reshape a per-set array to (nframes, width), checking its size."""
    if arr.dtype.kind not in "fiu":
        raise DataFormatError(f"{where}: expected a numeric array, found dtype {arr.dtype}")
    if nframes is None:
        if arr.ndim == 0 or arr.size % width:
            raise DataFormatError(f"{where}: size {arr.size} is not a multiple of {width}")
        nframes = arr.size // width
    if arr.size != nframes * width:
        raise DataFormatError(f"{where}: shape {arr.shape}, expected ({nframes}, {width})")
    out = arr.reshape(nframes, width).astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise DataFormatError(f"{where}: contains NaN or inf")
    return out


def _assemble(name, types, type_map, nopbc, sets):
    """Build a System from per-set dicts of raw arrays (``sets``: list of (where, {key: array})) ."""
    natoms = types.size
    coords, cells, labels = [], [], {"energy": [], "force": [], "virial": []}
    real_types = []
    for where, arrays in sets:
        if "coord" not in arrays:
            raise DataFormatError(f"{where}: missing coord.npy")
        c = _shaped(arrays["coord"], f"{where}/coord.npy", None, 3 * natoms)
        nf = c.shape[0]
        coords.append(c.reshape(nf, natoms, 3))
        if not nopbc:
            if "box" not in arrays:
                raise DataFormatError(f"{where}: missing box.npy (add an empty 'nopbc' file for non-periodic data)")
            cells.append(_shaped(arrays["box"], f"{where}/box.npy", nf, 9).reshape(nf, 3, 3))
        for key, width in (("energy", 1), ("force", 3 * natoms), ("virial", 9)):
            labels[key].append(_shaped(arrays[key], f"{where}/{key}.npy", nf, width) if key in arrays else None)
        if "real_atom_types" in arrays:
            rt = _shaped(arrays["real_atom_types"], f"{where}/real_atom_types.npy", nf, natoms).astype(np.int64)
            real_types.append(rt)
    if not coords:
        raise DataFormatError(f"{name}: no set.* folders with frames")
    nf_total = sum(c.shape[0] for c in coords)

    def join(key, shape):
        parts = labels[key]
        if any(p is None for p in parts):
            return None
        return np.concatenate(parts).reshape((nf_total,) + shape)

    atom_types = types
    if real_types:
        if len(real_types) != len(coords):
            raise DataFormatError(f"{name}: real_atom_types.npy present in some sets only")
        atom_types = np.concatenate(real_types)
    if type_map is not None:
        ntypes = len(type_map)
        if atom_types.max() >= ntypes:
            raise DataFormatError(f"{name}: atom type {atom_types.max()} but type_map.raw lists only {ntypes} elements")
    return System(
        name=name,
        atom_types=atom_types,
        coords=np.concatenate(coords),
        cells=None if nopbc else np.concatenate(cells),
        type_map=type_map,
        energy=join("energy", ()),
        force=join("force", (natoms, 3)),
        virial=join("virial", (3, 3)),
    )


def read_npy_system(path):
    """Read one ``deepmd/npy`` system directory.

    Raises
    ------
    DataFormatError
        Missing ``type.raw`` or ``coord.npy``, inconsistent shapes, pickled or non-numeric arrays.
    """
    path = os.fspath(path)
    tfile = os.path.join(path, "type.raw")
    if not os.path.isfile(tfile):
        raise DataFormatError(f"{path}: not a deepmd/npy system (no type.raw)")
    with open(tfile) as fh:
        types = _parse_types(fh.read(), tfile)
    type_map = None
    mfile = os.path.join(path, "type_map.raw")
    if os.path.isfile(mfile):
        with open(mfile) as fh:
            type_map = tuple(fh.read().split())
    nopbc = os.path.isfile(os.path.join(path, "nopbc"))
    sets = []
    for sdir in sorted(glob.glob(os.path.join(path, "set.*"))):
        if not os.path.isdir(sdir):
            continue
        arrays = {}
        for key in ("coord", "box", "energy", "force", "virial", "real_atom_types"):
            f = os.path.join(sdir, key + ".npy")
            if os.path.isfile(f):
                try:
                    arrays[key] = np.load(f, allow_pickle=False)
                except ValueError as exc:
                    raise DataFormatError(f"{f}: cannot read ({exc})") from None
                except OSError as exc:
                    raise DataFormatError(f"{f}: cannot read ({exc})") from None
        sets.append((sdir, arrays))
    return _assemble(path, types, type_map, nopbc, sets)


def read_hdf5_systems(path):
    """Read every system (group holding ``type.raw``) of a ``deepmd/hdf5`` file."""
    import h5py

    path = os.fspath(path)
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot open as HDF5 ({exc})") from None
    systems = []
    with fh:
        groups = []
        fh.visititems(lambda name, obj: groups.append(name) if isinstance(obj, h5py.Group) and "type.raw" in obj else None)
        if "type.raw" in fh:
            groups.insert(0, "")
        for gname in sorted(groups):
            g = fh[gname] if gname else fh
            where = f"{path}:{gname or '/'}"
            types = _parse_types(" ".join(str(int(x)) for x in np.asarray(g["type.raw"][()]).ravel()), f"{where}/type.raw")
            type_map = None
            if "type_map.raw" in g:
                type_map = tuple(x.decode() if isinstance(x, bytes) else str(x) for x in np.asarray(g["type_map.raw"][()]).ravel())
            nopbc = "nopbc" in g
            sets = []
            for sname in sorted(k for k in g.keys() if k.startswith("set.")):
                sg = g[sname]
                arrays = {key: np.asarray(sg[key + ".npy"][()]) for key in ("coord", "box", "energy", "force", "virial", "real_atom_types") if key + ".npy" in sg}
                sets.append((f"{where}/{sname}", arrays))
            systems.append(_assemble(where, types, type_map, nopbc, sets))
    if not systems:
        raise DataFormatError(f"{path}: no deepmd/hdf5 system (no group with type.raw)")
    return systems


def find_systems(root):
    """All ``deepmd/npy`` system directories at or below ``root`` (sorted)."""
    root = os.fspath(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if "type.raw" in filenames:
            found.append(dirpath)
            dirnames[:] = []  # a system's set.* folders hold no systems
    return sorted(found)


def read_systems(paths):
    """Read systems from directories (searched recursively) and ``.h5``/``.hdf5`` files."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    systems = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            dirs = find_systems(p)
            if not dirs:
                raise DataFormatError(f"{p}: no deepmd/npy system found (no type.raw below it)")
            systems.extend(read_npy_system(d) for d in dirs)
        elif os.path.isfile(p):
            systems.extend(read_hdf5_systems(p))
        else:
            raise DataFormatError(f"{p}: no such file or directory")
    return systems
