"""Whole training systems in memory (:class:`System`), with their labels: for ``dpcompress eval`` and
small data sets.  Read through the same catalog and frame reader as the scan."""

import os
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .catalog import open_hdf5_systems, open_npy_system
from .discovery import discover_systems
from .frames import FrameReader


@dataclass
class System:
    """One training system, every frame in memory.

    Attributes
    ----------
    name : str
        The folder, or ``file.h5:/group``.
    atom_types : ndarray of int64, shape (natoms,) or (nframes, natoms)
        Per frame in the mixed-type format (``real_atom_types.npy``).
    coords : ndarray of float64, shape (nframes, natoms, 3)
    cells : ndarray of float64, shape (nframes, 3, 3), or None when non-periodic
    type_map : tuple of str or None
    energy, force, virial : ndarray or None
        Labels, shapes (nframes,), (nframes, natoms, 3), (nframes, 3, 3); None unless every set has them.
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


def load_system(info, reader=None):
    """Every frame and label of an opened system (:class:`~.catalog.SystemInfo`) as a :class:`System`."""
    labels = info.labels()
    own = reader is None
    reader = FrameReader() if own else reader
    try:
        blocks = list(reader.blocks(info, 0, info.nframes, labels=labels))
    finally:
        if own:
            reader.close()

    def join(get):
        return np.concatenate([get(b) for b in blocks])

    return System(
        name=info.name,
        atom_types=join(lambda b: b.atom_types) if info.mixed else info.types,
        coords=join(lambda b: b.coords),
        cells=join(lambda b: b.cells) if info.periodic else None,
        type_map=info.type_map,
        **{key: join(lambda b, key=key: b.labels[key]) for key in labels},
    )


def read_npy_system(path):
    """Read one ``deepmd/npy`` system folder, every frame and label.

    Raises
    ------
    DataFormatError
        Missing ``type.raw`` or ``coord.npy``, inconsistent shapes, pickled or non-numeric
        arrays, NaN or infinities (the message names the file).
    """
    return load_system(open_npy_system(path, labels=True))


def read_hdf5_systems(path):
    """Read every system (group holding ``type.raw``) of a ``deepmd/hdf5`` file."""
    with FrameReader() as reader:
        return [load_system(info, reader) for info in open_hdf5_systems(path, labels=True)]


def read_systems(paths, fmt=None):
    """Read every system at or below ``paths``, whole, with its labels: the reader of ``eval`` and ``test``.

    Parameters
    ----------
    paths : str, os.PathLike, or a list of them
        Folders (searched recursively for ``deepmd/npy`` systems and ``deepmd/hdf5`` files),
        system folders, or files (``.h5``, ``.xyz``/``.extxyz``, ``OUTCAR*``, ``vasprun*.xml``;
        see :mod:`.formats`).
    fmt : str, optional
        Format of every path (``deepmd/npy``, ``deepmd/hdf5``, ``extxyz``, ``vasp/outcar``,
        ``vasp/xml``, or any dpdata format name); None: told from the names.

    Returns
    -------
    list of System
        In :func:`~.discovery.discover_systems`'s order; ``energy``, ``force``, ``virial`` set
        where every frame of the system has them.

    Raises
    ------
    DataFormatError
        Missing, unreadable or inconsistent data (the message names the file).
    InputError
        ``fmt`` needs a package that is not installed (the message names the extra).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    with FrameReader() as reader:
        return [load_system(info, reader) for info in discover_systems(paths, labels=True, fmt=fmt)]
