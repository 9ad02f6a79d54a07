"""Validation of what users pass in: the arrays of :meth:`Potential.eval` (DeePMD-kit's
conventions) and of the neighbor search.  The one boundary for user input.

Everything is checked here, in Python, before any compiled kernel runs, and every problem raises
:class:`~dpcompress.core.errors.InputError` naming the argument, the frame and the atom.
"""

import operator
import warnings

import numpy as np

from .errors import InputError
from .warnings import CoordinatePrecisionWarning

#: A cell whose volume is below this fraction of |a||b||c| is singular: the one rule of every front end.
SINGULAR_CELL_RTOL = 1e-10
#: Coordinates beyond this (Å, any component) warn: float64 numbers there are 2^-12 Å (2.4e-4 Å)
#: apart, and the pair vectors the runtime forms from them, :math:`(x_j - x_i) + S\cdot\text{cell}`,
#: are only that precise (a few 1e-4 Å for 2^40 Å ≈ 1.1e12 Å, 1e-3 Å at 2^42 Å).
FAR_COORDINATE = 2.0**40


def check_cell(cell, where="cell", pbc=None):
    """A (3, 3) float64 cell (rows = cell vectors), finite and not singular; else :class:`InputError`.

    With ``pbc`` (3 bools, :func:`as_pbc`) only the rows of the periodic directions must be
    independent: the others are ignored by the evaluation (:func:`dpcompress.core.lattice.vacuum_cell`)
    and may be zero, as ASE writes them for a slab.
    """
    arr = np.asarray(cell)
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{where} must be a real numeric (3, 3) array or None, got dtype {arr.dtype}")
    if arr.shape not in ((3, 3), (9,)):
        raise InputError(f"{where} must have shape (3, 3) (rows = cell vectors) or (9,), got {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float64).reshape(3, 3)
    if not np.isfinite(arr).all():
        raise InputError(f"{where} is not finite: {arr.tolist()}")
    if pbc is not None and not all(pbc):
        _check_periodic_rows(arr, pbc, where)
        return arr
    scale = float(np.prod(np.linalg.norm(arr, axis=1)))
    vol = abs(float(np.linalg.det(arr)))
    if not (scale > 0 and vol > SINGULAR_CELL_RTOL * scale):
        raise InputError(
            f"{where} is singular (volume {vol:.3g} Å^3, |a||b||c| = {scale:.3g}); rows must be three independent "
            "cell vectors (pass None for a non-periodic system)"
        )
    return arr


def _check_periodic_rows(arr, pbc, where):
    """The rows of the periodic directions are linearly independent (a cell of a slab or a wire)."""
    rows = arr[[c for c in range(3) if pbc[c]]]
    if rows.shape[0] == 0:
        return
    norms = np.linalg.norm(rows, axis=1)
    # the area (volume) of the periodic rows, |a| (|a x b|), against the product of their lengths
    size = float(norms[0]) if rows.shape[0] == 1 else float(np.linalg.norm(np.cross(rows[0], rows[1])))
    if not (norms.min() > 0 and size > SINGULAR_CELL_RTOL * float(np.prod(norms))):
        names = [("a", "b", "c")[c] for c in range(3) if pbc[c]]
        raise InputError(
            f"{where}: the cell vectors of the periodic directions ({', '.join(names)}: {rows.tolist()}) are "
            f"{'zero' if rows.shape[0] == 1 else 'parallel or zero'}; pbc={list(map(bool, pbc))} needs them independent"
        )


def as_pbc(pbc, cells):
    """Validate ``pbc`` of :meth:`Potential.eval <dpcompress.Potential.eval>`: a tuple of 3 bools, or None.

    ``None`` keeps DeePMD-kit's contract (periodic in all three directions when ``cells`` is
    given, a cluster when it is None).  A single bool applies to all three directions.

    Returns
    -------
    tuple of 3 bool, or None
        None when every direction is periodic (the plain periodic path) or for ``pbc=None``.
    """
    if pbc is None:
        return None
    if isinstance(pbc, (bool, np.bool_)):
        flags = (bool(pbc),) * 3
    else:
        arr = np.asarray(pbc)
        if arr.shape != (3,) or arr.dtype.kind not in "biu" or not np.isin(arr, (0, 1)).all():
            raise InputError(f"pbc must be a bool or 3 bools (periodic along a, b, c), got {pbc!r}")
        flags = tuple(bool(x) for x in arr)
    if cells is None and any(flags):
        raise InputError(f"pbc={list(flags)} has periodic directions but cells is None; pass the cell")
    return None if all(flags) else flags


def check_positions(coords):
    """(natoms, 3) float64 positions, at least one atom, all finite (names the first bad atom)."""
    coords = np.asarray(coords)
    if coords.dtype.kind not in "fiu":
        raise InputError(f"coords must be a real numeric array of shape (natoms, 3), got dtype {coords.dtype}")
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise InputError(f"coords must have shape (natoms, 3), got {coords.shape}")
    if coords.shape[0] == 0:
        raise InputError("coords holds zero atoms; a frame needs at least one atom")
    coords = np.ascontiguousarray(coords, dtype=np.float64)
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise InputError(f"coords of atom {k} are not finite: {coords[k].tolist()}")
    return coords


def check_sel(sel, mixed_types):
    """``sel`` as a tuple of non-negative ints (one entry with ``mixed_types``)."""
    if isinstance(sel, (str, bytes)) or np.ndim(sel) != 1:
        raise InputError(f"sel must be a 1-D sequence of non-negative integers, got {sel!r}")
    try:
        out = tuple(operator.index(s) for s in sel)
    except TypeError:
        raise InputError(f"sel must hold integers, got {list(sel)!r}") from None
    if len(out) == 0:
        raise InputError("sel is empty; it needs one entry per neighbor type (one entry with mixed_types)")
    if any(s < 0 for s in out):
        raise InputError(f"sel entries must be non-negative, got {list(out)}")
    if mixed_types and len(out) != 1:
        raise InputError(f"mixed_types=True uses a single block: sel must have one entry, got {list(out)}")
    return out


def check_type_indices(atom_types, natoms, ntypes):
    """(natoms,) int64 types in [0, ntypes) (any non-negative int when ``ntypes`` is None)."""
    types = np.asarray(atom_types)
    if types.dtype.kind not in "iu":
        raise InputError(f"atom_types must be an integer array, got dtype {types.dtype}")
    if types.shape != (natoms,):
        raise InputError(f"atom_types must have shape ({natoms},) to match coords, got {types.shape}")
    types = np.ascontiguousarray(types, dtype=np.int64)
    bad = (types < 0) if ntypes is None else (types < 0) | (types >= ntypes)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        allowed = ">= 0" if ntypes is None else f"in [0, {ntypes}) (ntypes = len(sel))"
        raise InputError(f"atom_types[{k}] = {int(types[k])} for atom {k} is out of range: must be {allowed}")
    return types


def check_cutoff(rcut):
    """A positive finite cutoff, Å."""
    try:
        value = float(rcut)
    except (TypeError, ValueError):
        raise InputError(f"rcut must be a positive number, got {rcut!r}") from None
    if not np.isfinite(value) or value <= 0.0:
        raise InputError(f"rcut must be a positive finite number, got {rcut!r}")
    return value


def as_atom_types(atom_types, type_map, nframes_hint=None):
    """Validate atom types: ints in ``[0, ntypes)`` or element names of ``type_map``.

    Returns
    -------
    ndarray of int64, shape (natoms,) or (nframes, natoms)
    """
    ntypes = len(type_map)
    arr = np.asarray(atom_types)
    if arr.size == 0:  # frames without atoms (DeePMD-kit returns zeros for them)
        if arr.ndim not in (1, 2):
            raise InputError(f"atom_types must have shape (natoms,) or (nframes, natoms), got {arr.shape}")
        return np.zeros(arr.shape, dtype=np.int64)
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
    """Validate coordinates; returns float64 (nframes, natoms, 3).

    With ``natoms == 0`` the frames are counted as DeePMD-kit counts them: ``coords.shape[0]``
    (one frame for a 1-D array); every entry must be empty.
    """
    try:
        arr = np.asarray(coords, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"coords must be a numeric array ({exc})") from None
    if natoms == 0:
        if arr.size != 0 or arr.ndim > 3 or (arr.ndim == 3 and arr.shape[2] != 3):
            raise InputError(f"atom_types is empty (0 atoms) but coords has shape {arr.shape}; expected (nframes, 0)")
        return np.zeros((arr.shape[0] if arr.ndim >= 2 else 1, 0, 3))
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


def warn_far_coordinates(xyz, where="coords"):
    r"""Warn once (:class:`CoordinatePrecisionWarning`) when a coordinate exceeds :data:`FAR_COORDINATE`.

    Parameters
    ----------
    xyz : ndarray (nframes, natoms, 3)
        Validated coordinates (:func:`as_coords`).

    Notes
    -----
    One pass of ``max |x|`` per atom: a warning names the first frame and atom, the spacing of
    float64 numbers there (:math:`2^{\lfloor \log_2 |x| \rfloor - 52}` Å) and how many atoms are that
    far.  Periodic frames more than 2^30 cells away are refused later (the lattice shifts are
    int32); wrapping the coordinates into the cell removes both.
    """
    far = np.abs(xyz).max(axis=2) >= FAR_COORDINATE
    if not far.any():
        return
    f, a = (int(v[0]) for v in np.nonzero(far))
    x = float(np.abs(xyz[f, a]).max())
    warnings.warn(
        f"{where}: frame {f}, atom {a} lies at |x| = {x:.3g} Å, where float64 numbers are {np.spacing(x):.2g} Å "
        f"apart: its distances are only that precise ({int(far.sum())} atom positions beyond {FAR_COORDINATE:.3g} Å); "
        "wrap the coordinates into the cell",
        CoordinatePrecisionWarning,
        stacklevel=3,
    )


def as_cells(cells, nframes, pbc=None):
    """Validate cells (rows = cell vectors, Å); returns (nframes, 3, 3) float64 or None.

    ``pbc`` (from :func:`as_pbc`): only the periodic rows need be independent; with no periodic
    direction the cells are validated for shape and finiteness only.
    """
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
        check_cell(arr[f], f"cells: frame {f}", pbc)
    return arr
