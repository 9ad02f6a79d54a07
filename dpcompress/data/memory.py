"""Systems parsed into memory (extxyz, OUTCAR, vasprun.xml, dpdata's formats) as :class:`SystemInfo`.

A format that is not ``deepmd/npy`` or ``deepmd/hdf5`` is parsed whole into arrays; those
arrays are wrapped here in the same :class:`~.catalog.SystemInfo` / :class:`~.catalog.SetInfo`
a folder gives (one set, each :class:`~.catalog.ArrayRef` holding its frames), so
:class:`~.frames.FrameReader`, :func:`~.systems.load_system`, the type-map resolution and the
MPI scan read them exactly as they read files.
"""

import numpy as np

from ..core.errors import DataFormatError
from .catalog import ArrayRef, SetInfo, SystemInfo
from .checks import MAX_TYPES, check_finite_frames


def first_appearance_types(symbols):
    """Local type map (element names in order of first appearance) and per-atom type indices.

    The order depends on the atoms' order only, never on the parser, so every reader of a file
    (dpdata, ASE, the native extxyz parser) numbers its types the same way.

    Parameters
    ----------
    symbols : sequence of str
        One element name per atom.

    Returns
    -------
    type_map : tuple of str
    types : ndarray of int64, shape (natoms,)
    """
    names = []
    index = {}
    types = np.empty(len(symbols), dtype=np.int64)
    for k, s in enumerate(symbols):
        s = str(s)
        if s not in index:
            index[s] = len(names)
            names.append(s)
        types[k] = index[s]
    return tuple(names), types


def memory_system(name, kind, path, symbols, coords, cells, labels=None):
    """A :class:`~.catalog.SystemInfo` over arrays in memory (every frame has the same atoms).

    Parameters
    ----------
    name : str
        Named in errors (the file, and which of its systems).
    kind : str
        The format (``"extxyz"``, ``"vasp/outcar"``, ...).
    path : str
        The file the arrays were parsed from.
    symbols : sequence of str, length natoms
        Element of each atom.
    coords : array_like, shape (nframes, natoms, 3)
        Å.
    cells : array_like, shape (nframes, 3, 3), or None
        Rows = cell vectors, Å; None for a non-periodic system.
    labels : dict, optional
        ``energy`` (nframes,) eV, ``force`` (nframes, natoms, 3) eV/Å, ``virial`` (nframes, 3, 3)
        eV; a label is given only when every frame has it.

    Raises
    ------
    DataFormatError
        Shapes that disagree, no atoms or frames, too many elements, a NaN or an infinity
        (the message names ``name`` and the frame).
    """
    type_map, types = first_appearance_types(symbols)
    natoms = types.size
    if natoms == 0:
        raise DataFormatError(f"{name}: no atoms")
    if len(type_map) > MAX_TYPES:
        raise DataFormatError(f"{name}: {len(type_map)} elements, at most {MAX_TYPES} are accepted")
    coords = np.asarray(coords, dtype=np.float64)
    nframes = coords.shape[0] if coords.ndim == 3 else 0
    if coords.shape != (nframes, natoms, 3) or nframes == 0:
        raise DataFormatError(f"{name}: coordinates of shape {coords.shape}, expected (nframes, {natoms}, 3)")
    widths = {"coord": (coords, (nframes, natoms, 3))}
    if cells is not None:
        widths["box"] = (np.asarray(cells, dtype=np.float64), (nframes, 3, 3))
    shapes = {"energy": (nframes,), "force": (nframes, natoms, 3), "virial": (nframes, 3, 3)}
    for key, value in (labels or {}).items():
        widths[key] = (np.asarray(value, dtype=np.float64), shapes[key])
    info = SystemInfo(name, kind, natoms, types, type_map, cells is not None)
    st = SetInfo(name, nframes)
    for key, (value, shape) in widths.items():
        if value.size != int(np.prod(shape)):
            raise DataFormatError(f"{name}: {key} of shape {value.shape}, expected {shape}")
        flat = np.ascontiguousarray(value.reshape(nframes, -1))
        check_finite_frames(flat, f"{name} ({key})", 0)
        st.arrays[key] = ArrayRef(f"{name} ({key})", path, None, flat)
    info.sets.append(st)
    return info
