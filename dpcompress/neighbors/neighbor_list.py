r"""Per-type, nearest-first neighbor lists (DeePMD-kit's ``nlist`` layout).

Pipeline of :func:`build_neighbor_list`:

1. validate the inputs (:class:`~dpcompress.errors.InputError` names the
   argument, and the atom where one is at fault);
2. bins for a cell list (:func:`_cell_list_bins`);
3. in C (``src_c/dpc_neighbors.c``, OpenMP over centre atoms): candidates from
   the bins around each atom, pair vectors from the caller's coordinates,
   :math:`\mathbf r_{ij} = (\mathbf r_j - \mathbf r_i) + \mathbf s`,
   :math:`\mathbf s = (S_0 \mathbf a_0 + S_1 \mathbf a_1) + S_2 \mathbf a_2`,
   the strict cut :math:`d^2 = (x^2 + y^2) + z^2 < r_c^2`, per-block ordering
   and the ``sel`` cut; the twin is
   :func:`dpcompress.reference.neighbors.cell_list_neighbors` (exhaustive
   search), equal bit for bit.

Periodic images are separate neighbors: in a cell smaller than ``2 rcut`` one
atom can appear several times in a row, and an atom can neighbor itself
through an image (``j == i``, ``S != 0``).
"""

import operator
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..threads import effective_n_threads

# Two atoms closer than this make the descriptor singular (1/r); refuse them.
COINCIDENCE_TOLERANCE = 1e-8
# A cell with |det| below this fraction of |a0||a1||a2| is treated as singular.
SINGULAR_CELL_TOLERANCE = 1e-12


@dataclass(frozen=True)
class NeighborList:
    """Neighbors of every atom of one frame, in DeePMD-kit's slot layout.

    The ``nnei = sum(sel)`` slots of an atom are split into consecutive blocks,
    one per neighbor type (or a single block for mixed-type descriptors).
    Inside a block the real neighbors come first, nearest first (ties broken by
    neighbor index, then by image), followed by padding.

    Attributes
    ----------
    index : ndarray of int64, shape (natoms, nnei)
        Index of the neighbor's atom in the input frame (periodic images fold
        back to their atom), ``-1`` on padding slots.
    vectors : ndarray of float64, shape (natoms, nnei, 3)
        ``r_ij = r_j + shift - r_i`` in Å; zero on padding slots.
    counts : ndarray of int64, shape (natoms, nblocks)
        Number of real neighbors in each block; they fill the block's first slots.
    overflow : ndarray of int64, shape (natoms, nblocks)
        Neighbors inside ``rcut`` that did not fit into ``sel`` and were dropped
        (the farthest ones).  Non-zero means the model's ``sel`` is too small.
    sel : tuple of int
        Block sizes.
    rcut : float
        Cutoff radius in Å.
    """

    index: np.ndarray
    vectors: np.ndarray
    counts: np.ndarray
    overflow: np.ndarray
    sel: tuple
    rcut: float

    @property
    def offsets(self):
        """Start slot of each block, ``cumsum([0] + sel)``."""
        return np.concatenate([[0], np.cumsum(self.sel)]).astype(np.int64)

    @property
    def n_overflow(self):
        """Total number of dropped neighbors."""
        return int(self.overflow.sum())


def _first_bad(mask):
    """Index of the first True of a boolean mask over atoms."""
    return int(np.flatnonzero(mask)[0])


def _check_coords(coords):
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
        k = _first_bad(bad)
        raise InputError(f"coords of atom {k} are not finite: {coords[k].tolist()}")
    return coords


def _check_sel(sel, mixed_types):
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


def _check_types(atom_types, natoms, ntypes):
    types = np.asarray(atom_types)
    if types.dtype.kind not in "iu":
        raise InputError(f"atom_types must be an integer array, got dtype {types.dtype}")
    if types.shape != (natoms,):
        raise InputError(f"atom_types must have shape ({natoms},) to match coords, got {types.shape}")
    types = np.ascontiguousarray(types, dtype=np.int64)
    bad = (types < 0) if ntypes is None else (types < 0) | (types >= ntypes)
    if bad.any():
        k = _first_bad(bad)
        allowed = ">= 0" if ntypes is None else f"in [0, {ntypes}) (ntypes = len(sel))"
        raise InputError(f"atom_types[{k}] = {int(types[k])} for atom {k} is out of range: must be {allowed}")
    return types


def _check_rcut(rcut):
    try:
        value = float(rcut)
    except (TypeError, ValueError):
        raise InputError(f"rcut must be a positive number, got {rcut!r}") from None
    if not np.isfinite(value) or value <= 0.0:
        raise InputError(f"rcut must be a positive finite number, got {rcut!r}")
    return value


def _check_cell(cell):
    arr = np.asarray(cell)
    if arr.dtype.kind not in "fiu":
        raise InputError(f"cell must be a real numeric (3, 3) array or None, got dtype {arr.dtype}")
    if arr.shape not in ((3, 3), (9,)):
        raise InputError(f"cell must have shape (3, 3) (rows = cell vectors) or (9,), got {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float64).reshape(3, 3)
    if not np.isfinite(arr).all():
        raise InputError(f"cell is not finite: {arr.tolist()}")
    scale = float(np.prod(np.linalg.norm(arr, axis=1)))
    det = float(np.linalg.det(arr))
    if not abs(det) > SINGULAR_CELL_TOLERANCE * scale:
        raise InputError(
            f"cell is singular or degenerate (det = {det:.3g}, |a0||a1||a2| = {scale:.3g}); "
            f"pass cell=None for a non-periodic system: {arr.tolist()}"
        )
    return arr


# Bins beyond this many per atom only cost memory and empty-bin visits.
MAX_BINS_PER_ATOM = 2


def _cell_list_bins(coords, cell, search):
    r"""Bin coordinates, wrapped positions, wraps, bin counts and reach of the C cell list.

    Periodic: :math:`\mathbf f = \mathbf r\,A^{-1}`, :math:`\mathbf n =
    \lfloor \mathbf f \rfloor`, bins on :math:`\mathbf f - \mathbf n \in [0, 1]`;
    the plane spacing :math:`h_c = |\det A| / |\mathbf a_{c+1} \times
    \mathbf a_{c+2}|` sets ``nbins[c] = max(1, floor(h_c / search))`` bins of
    height at least ``search``.  Cluster: the bounding box, :math:`h_c` its
    length (at least ``search``).  ``reach[c] = floor(search nbins[c] / h_c) + 1``
    bins either side (``src_c/dpc_neighbors.h`` gives the argument).  When the
    bins outnumber ``MAX_BINS_PER_ATOM`` per atom the largest count is halved
    until they do not (a sparse cluster would otherwise allocate a huge grid);
    the reach follows, so no pair is missed.
    """
    natoms = coords.shape[0]
    if cell is None:
        lo = coords.min(axis=0)
        h = np.maximum(coords.max(axis=0) - lo, search)
        frac = (coords - lo) / h
        wrap, wrapped = None, coords
    else:
        frac = coords @ np.linalg.inv(cell)
        if np.abs(frac).max() > 2.0**40:
            k = int(np.argmax(np.abs(frac).max(axis=1)))
            raise InputError(f"coords of atom {k} lie more than 2^40 cells away from the cell; wrap them first")
        n = np.floor(frac)
        frac = frac - n
        wrap = n.astype(np.int64)
        wrapped = frac @ cell
        volume = abs(np.linalg.det(cell))
        h = np.array([volume / np.linalg.norm(np.cross(cell[(c + 1) % 3], cell[(c + 2) % 3])) for c in range(3)])
    nbins = [max(1, int(min(h[c] / search, 2.0**20))) for c in range(3)]
    while nbins[0] * nbins[1] * nbins[2] > max(27, MAX_BINS_PER_ATOM * natoms):
        c = int(np.argmax(nbins))
        nbins[c] = max(1, nbins[c] // 2)
    reach = [int(np.floor(search * nbins[c] / h[c])) + 1 for c in range(3)]
    return frac, wrapped, wrap, nbins, reach


def _pair_vectors(coords, cell, i, j, S):
    """Pair vectors and squared lengths, evaluated in a fixed order.

    ``r_ij = (r_j - r_i) + ((S0 a0 + S1 a1) + S2 a2)`` and
    ``d2 = (x*x + y*y) + z*z``.  Element-wise, one Cartesian component at a
    time, rather than ``S @ cell``: a BLAS product may sum in another order
    (or fuse), and the brute-force oracle must reproduce these bits; working
    on contiguous 1-D columns is also ~3x faster than on (npairs, 3) arrays.
    """
    S0, S1, S2 = np.ascontiguousarray(S.T, dtype=np.float64)
    D = np.empty((len(i), 3), dtype=np.float64)
    d2 = None
    for c in range(3):
        column = coords[:, c]
        shift = (S0 * cell[0, c] + S1 * cell[1, c]) + S2 * cell[2, c]
        x = (np.take(column, j) - np.take(column, i)) + shift
        D[:, c] = x
        d2 = x * x if d2 is None else d2 + x * x
    return D, d2


def build_neighbor_list(coords, cell, atom_types, rcut, sel, *, mixed_types=False, n_threads=None, n_centers=None):
    r"""Build the per-type, nearest-first neighbor list of one frame.

    Parameters
    ----------
    coords : array_like of float, shape (natoms, 3)
        Cartesian positions in Å.  Periodic positions need not be wrapped.
    cell : array_like of float, shape (3, 3) or (9,), or None
        Rows are the cell vectors :math:`\mathbf a_0, \mathbf a_1, \mathbf a_2`
        (periodic in all three directions); None for an isolated cluster.
        Orthorhombic and triclinic cells of any size, smaller than ``2 rcut``
        included, are supported.
    atom_types : array_like of int, shape (natoms,)
        In ``[0, len(sel))``; with ``mixed_types`` any non-negative integer.
    rcut : float
        Cutoff radius in Å; a pair is a neighbor when :math:`d^2 < r_c^2`
        (strict), :math:`d^2 = (x^2 + y^2) + z^2` of
        :math:`\mathbf r_{ij} = (\mathbf r_j - \mathbf r_i) + \sum_k S_k \mathbf a_k`.
    sel : sequence of int
        Slots per neighbor type (block ``b`` holds neighbors of type ``b``);
        with ``mixed_types`` a single entry.
    mixed_types : bool, keyword-only
        One block of ``sel[0]`` slots for all neighbors, whatever their type.
    n_threads : int or None, keyword-only
        Threads of the cell-list kernel (see
        :func:`dpcompress.threads.effective_n_threads`); the result does not
        depend on it.
    n_centers : int or None, keyword-only
        Rows only for the first ``n_centers`` atoms; the others (ghosts of a
        domain decomposition) are neighbors only.  None: every atom.

    Returns
    -------
    NeighborList
        Inside a block, neighbors ordered by :math:`(d^2, j, x, y, z)`
        ascending, the nearest ``sel[b]`` kept, the rest counted in
        ``overflow``.

    Raises
    ------
    InputError
        Bad shapes or dtypes, zero atoms, a non-finite coordinate (names the
        atom), a type out of range (names the atom), ``rcut <= 0``, a bad
        ``sel``, a non-finite or singular cell, or two atoms (or an atom and
        an image) closer than 1e-8 Å (names both).
    """
    from .._ext import neighbors as _kernel

    coords = _check_coords(coords)
    natoms = coords.shape[0]
    sel = _check_sel(sel, mixed_types)
    types = _check_types(atom_types, natoms, None if mixed_types else len(sel))
    rcut = _check_rcut(rcut)
    if cell is not None:
        cell = _check_cell(cell)
    n_threads = effective_n_threads(n_threads)
    if n_centers is not None and not (isinstance(n_centers, (int, np.integer)) and 0 <= n_centers <= natoms):
        raise InputError(f"n_centers must be an integer in [0, {natoms}], got {n_centers!r}")

    # The search radius covers the rounding of frac and of the wrapped
    # positions (relative to the coordinates' size); the exact cut
    # d2 < rcut^2 is applied in C on vectors formed from the caller's coords.
    search = rcut + 1e-6 * max(rcut, 1.0) + 1e-12 * float(np.abs(coords).max())
    frac, wrapped, wrap, nbins, reach = _cell_list_bins(coords, cell, search)
    index, vectors, counts, overflow, bad = _kernel.cell_list_neighbors(
        coords, cell, frac, wrapped, wrap, nbins, reach, rcut, search, COINCIDENCE_TOLERANCE, types,
        np.asarray(sel, dtype=np.int64), bool(mixed_types), n_threads, n_centers
    )
    if bad is not None:
        i, j, S, d2 = bad
        where = "" if not any(S) else f" (periodic image shifted by {S} cells)"
        raise InputError(
            f"atoms {i} and {j}{where} coincide: distance {np.sqrt(d2):.3g} Å "
            f"< {COINCIDENCE_TOLERANCE:g} Å; the descriptor is singular there"
        )
    return NeighborList(index, vectors, counts, overflow, sel, rcut)
