"""Finding the training systems below a list of folders and files."""

import os

from ..core.errors import DataFormatError
from .catalog import open_hdf5_systems, open_npy_system

#: File names (lower case) taken for ``deepmd/hdf5`` files while walking a folder.
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


def discover_systems(paths, labels=False):
    """Every ``deepmd/npy`` and ``deepmd/hdf5`` system at or below ``paths``, in a fixed order.

    Directories are walked top-down (a folder's HDF5 files, then its subfolders, each in
    sorted order); a folder holding ``type.raw`` is a system (its subfolders are not
    searched), a file ending in ``.h5``, ``.hdf5`` or ``.hdf`` is a ``deepmd/hdf5`` file.  A
    file named directly is read as ``deepmd/hdf5`` whatever its name.  Only headers are read,
    not the frames.

    Parameters
    ----------
    paths : str, os.PathLike, or a list of them
    labels : bool
        Also find and check the label arrays (energy, force, virial).

    Returns
    -------
    list of SystemInfo

    Raises
    ------
    DataFormatError
        A path that does not exist, a folder with no system, a missing or unreadable file,
        inconsistent shapes (the message names the file).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    systems = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isfile(p):
            systems.extend(open_hdf5_systems(p, labels))
            continue
        if not os.path.isdir(p):
            raise DataFormatError(f"{p}: no such file or directory")
        found = 0

        def unreadable(exc):
            raise DataFormatError(f"{exc.filename}: cannot list the folder ({exc.strerror})")

        for dirpath, dirnames, filenames in os.walk(p, onerror=unreadable):
            dirnames.sort()
            if "type.raw" in filenames:
                systems.append(open_npy_system(dirpath, labels))
                found += 1
                dirnames[:] = []  # a system's set.* folders hold no systems
                continue
            for fname in sorted(filenames):
                if fname.lower().endswith(HDF5_SUFFIXES):
                    systems.extend(open_hdf5_systems(os.path.join(dirpath, fname), labels))
                    found += 1
        if not found:
            raise DataFormatError(f"{p}: no deepmd/npy system (no type.raw) or deepmd/hdf5 file below it")
    return systems


def find_systems(root):
    """All ``deepmd/npy`` system folders at or below ``root`` (sorted); nothing is read."""
    root = os.fspath(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if "type.raw" in filenames:
            found.append(dirpath)
            dirnames[:] = []
    return sorted(found)
