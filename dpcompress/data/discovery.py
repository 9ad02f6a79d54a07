"""Finding the training systems below a list of folders and files."""

import os

from ..core.errors import DataFormatError
from .catalog import open_hdf5_systems, open_npy_system
from .formats import HDF5, NAME_PATTERNS, NPY, format_from_name, is_deepmd, normalize_format, open_foreign_systems

#: File names (lower case) taken for ``deepmd/hdf5`` files while walking a folder.
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


def discover_systems(paths, labels=False, fmt=None):
    """Every system at or below ``paths``, in a fixed order: the one entry point of every reader.

    Without ``fmt`` (or with ``deepmd/npy`` / ``deepmd/hdf5``) directories are walked top-down
    (a folder's HDF5 files, then its subfolders, each in sorted order); a folder holding
    ``type.raw`` is a ``deepmd/npy`` system (its subfolders are not searched), a file ending in
    ``.h5``, ``.hdf5`` or ``.hdf`` is a ``deepmd/hdf5`` file.  A file named directly is read in
    the format its name tells (:func:`~.formats.format_from_name`: extxyz, OUTCAR,
    vasprun.xml), else as ``deepmd/hdf5``.  Only headers of deepmd files are read, not the
    frames; other formats are parsed into memory (:mod:`.formats`).

    With another ``fmt`` (``extxyz``, ``vasp/outcar``, ``vasp/xml``, or any dpdata format) each
    file is read in that format; a folder is searched for the files whose names say that
    format (``*.xyz``, ``OUTCAR*``, ...) or, for a format with no such name, handed to dpdata
    as it is (``deepmd/raw``, ``abacus/scf``, ... read folders).

    Parameters
    ----------
    paths : str, os.PathLike, or a list of them
    labels : bool
        Also find and check the label arrays (energy, force, virial).
    fmt : str, optional
        Format of every path (:mod:`.formats`); None: told from the names.

    Returns
    -------
    list of SystemInfo

    Raises
    ------
    DataFormatError
        A path that does not exist, a folder with no system, a missing or unreadable file,
        inconsistent shapes (the message names the file).
    InputError
        The format needs a package that is not installed (the message names the extra).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    fmt = normalize_format(fmt)
    systems = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isfile(p):
            kind = fmt or format_from_name(p)
            if kind is None:  # a name that says nothing: deepmd/hdf5 if the file is one
                if not _is_hdf5(p):
                    raise DataFormatError(
                        f"{p}: the format cannot be told from the file name and it is not HDF5; give --format "
                        "(deepmd/hdf5, extxyz, vasp/outcar, vasp/xml, or a dpdata format)"
                    )
                kind = HDF5
            if kind == NPY:
                raise DataFormatError(f"{p}: a file, but deepmd/npy systems are folders (holding type.raw)")
            systems.extend(open_hdf5_systems(p, labels) if kind == HDF5 else open_foreign_systems(p, kind, labels))
            continue
        if not os.path.isdir(p):
            raise DataFormatError(f"{p}: no such file or directory")
        if is_deepmd(fmt):
            systems.extend(_walk_deepmd(p, labels))
        else:
            systems.extend(_walk_foreign(p, fmt, labels))
    return systems


#: The first bytes of every HDF5 file.
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _is_hdf5(path):
    """The HDF5 signature at offset 0 (or, after a user block, where h5py finds it)."""
    try:
        with open(path, "rb") as fh:
            if fh.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return True
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read ({exc.strerror})") from None
    import h5py

    try:
        return bool(h5py.is_hdf5(path))
    except Exception:  # unreadable as HDF5 in any way: not HDF5
        return False


def _walk_deepmd(p, labels):
    systems = []
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
        raise DataFormatError(
            f"{p}: no deepmd/npy system (no type.raw) or deepmd/hdf5 file below it "
            "(for other formats give --format, e.g. extxyz, vasp/outcar)"
        )
    return systems


def _walk_foreign(p, fmt, labels):
    """The files below folder ``p`` whose names say ``fmt``; a folder itself for other formats (dpdata's)."""
    named = any(fmt == f for _, f in NAME_PATTERNS)
    if not named:
        return open_foreign_systems(p, fmt, labels)
    systems = []
    for dirpath, dirnames, filenames in os.walk(p):
        dirnames.sort()
        for fname in sorted(filenames):
            if format_from_name(fname) == fmt:
                systems.extend(open_foreign_systems(os.path.join(dirpath, fname), fmt, labels))
    if not systems:
        raise DataFormatError(f"{p}: no {fmt} file below it (files are recognised by name: {_patterns(fmt)})")
    return systems


def _patterns(fmt):
    return ", ".join(p for pats, f in NAME_PATTERNS for p in pats if f == fmt)


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
