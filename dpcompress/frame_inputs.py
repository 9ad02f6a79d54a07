"""Validation of the arrays users pass to :meth:`Potential.eval` (DeePMD-kit's conventions).

Everything is checked here, in Python, before any compiled kernel runs, and
every problem raises :class:`~dpcompress.errors.InputError` naming the argument,
the frame and the atom.
"""

import numpy as np

from .errors import InputError

# A cell whose volume is below this fraction of |a||b||c| is treated as singular.
SINGULAR_CELL_RTOL = 1e-10


def as_atom_types(atom_types, type_map, nframes_hint=None):
    """Validate atom types: ints in ``[0, ntypes)`` or element names of ``type_map``.

    Returns
    -------
    ndarray of int64, shape (natoms,) or (nframes, natoms)
    """
    ntypes = len(type_map)
    arr = np.asarray(atom_types)
    if arr.size == 0:
        raise InputError("atom_types is empty: a frame needs at least one atom")
    if arr.dtype.kind in "US":
        lookup = {name: k for k, name in enumerate(type_map)}
        flat = arr.ravel()
        out = np.empty(flat.shape, dtype=np.int64)
        for k, name in enumerate(flat):
            if str(name) not in lookup:
                raise InputError(
                    f"atom_types: element {str(name)!r} of atom {k % arr.shape[-1]} is not in the model's type_map {list(type_map)}"
                )
            out[k] = lookup[str(name)]
        return out.reshape(arr.shape)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InputError("atom_types must be integers (type indices) or element names")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iub":
        raise InputError(f"atom_types must be integers or element names, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.ndim not in (1, 2):
        raise InputError(f"atom_types must have shape (natoms,) or (nframes, natoms), got {arr.shape}")
    bad = np.nonzero((arr < 0) | (arr >= ntypes))
    if bad[0].size:
        at = bad[-1][0]
        raise InputError(
            f"atom_types: atom {at} has type {arr[tuple(b[0] for b in bad)]}, outside [0, {ntypes}) "
            f"(the model's type_map is {list(type_map)})"
        )
    return arr


def as_coords(coords, natoms):
    """Validate coordinates; returns float64 (nframes, natoms, 3)."""
    try:
        arr = np.asarray(coords, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"coords must be a numeric array ({exc})") from None
    if arr.size == 0 or arr.size % (3 * natoms) != 0:
        raise InputError(f"coords has shape {arr.shape}; expected (nframes, {natoms}*3) or (nframes, {natoms}, 3) for {natoms} atoms")
    if arr.ndim == 3 and arr.shape[1:] != (natoms, 3):
        raise InputError(f"coords has shape {arr.shape}; expected (nframes, {natoms}, 3)")
    if arr.ndim == 2 and arr.shape[1] not in (3 * natoms, 3):
        raise InputError(f"coords has shape {arr.shape}; expected (nframes, {3 * natoms}) or ({natoms}, 3)")
    if arr.ndim == 2 and arr.shape[1] == 3 and arr.shape[0] != natoms:
        raise InputError(f"coords has shape {arr.shape}; expected (nframes, {3 * natoms}) or ({natoms}, 3)")
    if arr.ndim > 3:
        raise InputError(f"coords has {arr.ndim} dimensions; expected at most 3")
    arr = arr.reshape(-1, natoms, 3)
    bad = np.nonzero(~np.isfinite(arr))
    if bad[0].size:
        raise InputError(f"coords: frame {bad[0][0]}, atom {bad[1][0]} has a non-finite coordinate {arr[bad[0][0], bad[1][0]]}")
    return arr


def as_cells(cells, nframes):
    """Validate cells (rows = cell vectors, Å); returns (nframes, 3, 3) float64 or None."""
    if cells is None:
        return None
    try:
        arr = np.asarray(cells, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"cells must be a numeric array or None ({exc})") from None
    if arr.size == 9 and nframes > 1:
        arr = np.broadcast_to(arr.reshape(1, 3, 3), (nframes, 3, 3))
    if arr.size != 9 * nframes:
        raise InputError(f"cells has shape {arr.shape}; expected (nframes={nframes}, 9) or (nframes, 3, 3), or None for non-periodic")
    arr = np.array(arr.reshape(nframes, 3, 3))
    for f in range(nframes):
        cell = arr[f]
        if not np.all(np.isfinite(cell)):
            raise InputError(f"cells: frame {f} has a non-finite entry")
        scale = np.prod(np.linalg.norm(cell, axis=1))
        vol = abs(np.linalg.det(cell))
        if scale == 0 or vol <= SINGULAR_CELL_RTOL * scale:
            raise InputError(f"cells: frame {f} is singular (volume {vol:.3g} Å^3); rows must be three independent cell vectors")
    return arr
