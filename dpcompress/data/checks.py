"""Checks of training-data files, which are untrusted input.

Every number that sizes an array (atoms, frames, widths) is read from a file, so each one is
checked against the others before an array is sliced.  ``.npy`` files are opened with
``allow_pickle=False``: an object array would run arbitrary code.  Each failure raises
:class:`~dpcompress.core.errors.DataFormatError` naming the file (and the HDF5 key).
"""

import numpy as np

from ..core.errors import DataFormatError

#: Largest accepted atom type + 1; a bound on the per-type arrays a corrupt ``type.raw`` can make us allocate.
MAX_TYPES = 512

NPY_MAGIC = b"\x93NUMPY"


def parse_types(tokens, where):
    """Atom types from the whitespace-separated tokens of a ``type.raw``.

    Parameters
    ----------
    tokens : iterable
        One entry per atom (strings from a text file, or numbers from an HDF5 dataset).
    where : str
        File (and key) named in errors.

    Returns
    -------
    ndarray of int64, shape (natoms,)
        Values in ``[0, MAX_TYPES)``.
    """
    try:
        types = np.array([int(t) for t in tokens], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise DataFormatError(f"{where}: expected whitespace-separated integers") from None
    if types.size == 0:
        raise DataFormatError(f"{where}: no atoms")
    if types.min() < 0:
        raise DataFormatError(f"{where}: negative atom type {types.min()}")
    if types.max() >= MAX_TYPES:
        raise DataFormatError(f"{where}: atom types must lie in [0, {MAX_TYPES}), found {types.max()}")
    return types


def npy_header(path):
    """Shape and dtype of a ``.npy`` file, checking that the file holds the whole array.

    Memory-maps the file (reads no data): numpy checks the header and that the file is long
    enough for the shape it declares.
    """
    try:
        with open(path, "rb") as fh:
            magic = fh.read(len(NPY_MAGIC))
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read ({exc})") from None
    if magic != NPY_MAGIC:
        raise DataFormatError(f"{path}: not a .npy file (it does not start with the NumPy magic string; corrupt?)")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # corrupt header, truncated data, object arrays, permissions
        raise DataFormatError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    if not isinstance(arr, np.ndarray):
        raise DataFormatError(f"{path}: not a .npy array")
    shape, dtype = arr.shape, arr.dtype
    del arr  # closes the map
    return shape, dtype


def frames_in(shape, dtype, where, width, nframes=None):
    r"""Frames held by a per-frame array of ``shape``, ``width`` numbers per frame (checked).

    An array holds :math:`n_f` frames when its size is :math:`n_f \cdot w`; a 2-D or higher
    array must also have :math:`n_f` rows (DeePMD-kit writes ``(nframes, w)``; a flat array is
    accepted for ``w = 1`` and for one frame).

    Parameters
    ----------
    shape : tuple of int
    dtype : numpy.dtype
        Must be numeric (``f``, ``i``, ``u``).
    where : str
        File (and key) named in errors.
    width : int
        Numbers per frame: ``3 natoms`` for coordinates, 9 for a cell, ...
    nframes : int, optional
        Expected frame count (from ``coord.npy`` of the same set); None: inferred.

    Returns
    -------
    int
        The frame count.
    """
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


def check_finite_frames(values, where, first):
    """Raise naming the first frame (row of ``values``) that holds a NaN or an infinity.

    ``first`` is the index, in its set, of the frame in row 0.
    """
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise DataFormatError(f"{where}: frame {first + int(np.flatnonzero(bad)[0])} contains NaN or inf")
