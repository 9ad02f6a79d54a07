r"""Per-type, nearest-first neighbor lists (DeePMD-kit's ``nlist`` layout).

Pipeline of :func:`build_neighbor_list`:

1. validate the inputs (:class:`~dpcompress.errors.InputError` names the
   argument, and the atom where one is at fault);
2. candidate pairs ``(i, j, S)`` from vesin's cell list, with a cutoff a hair
   above ``rcut`` so that rounding inside vesin cannot lose a pair;
3. pair vectors re-evaluated here from the caller's coordinates,
   :math:`\mathbf r_{ij} = (\mathbf r_j - \mathbf r_i) + \mathbf s`,
   :math:`\mathbf s = (S_0 \mathbf a_0 + S_1 \mathbf a_1) + S_2 \mathbf a_2`,
   and the strict cut :math:`d^2 = (x^2 + y^2) + z^2 < r_c^2` applied to them, so
   the result depends on these formulas only, not on vesin's internals;
4. per-block ordering and the ``sel`` cut in C (``src_c/dpc_neighbors.c``),
   twin of :func:`dpcompress.reference.neighbors.select_neighbors`.

Periodic images are separate neighbors: in a cell smaller than ``2 rcut`` one
atom can appear several times in a row, and an atom can neighbor itself
through an image (``j == i``, ``S != 0``).
"""

import operator
import threading
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


_VESIN = threading.local()


def _vesin_calculator(cutoff, n_threads):
    """A vesin calculator for ``cutoff`` on ``n_threads`` threads, kept per Python thread.

    Reusing one keeps vesin's internal buffers warm (~30 ms saved per call on
    12k atoms).  Per thread because vesin's ctypes calls release the GIL and a
    calculator is not safe to share; ``compute(copy=True)`` hands back copies,
    so a reused calculator never aliases a previous result.  Its Verlet
    ``skin`` stays 0: no caching of pairs between calls.
    """
    import vesin

    key = (cutoff, n_threads)
    calculator = getattr(_VESIN, "calculator", None)
    if calculator is None or getattr(_VESIN, "key", None) != key:
        calculator = vesin.NeighborList(cutoff=cutoff, full_list=True, n_threads=n_threads)
        _VESIN.calculator, _VESIN.key = calculator, key
    return calculator


def _candidate_pairs(coords, cell, cutoff, n_threads):
    """Pairs ``(i, j, S)`` with ``|r_j + S.cell - r_i| < cutoff`` (maybe a few more), from vesin.

    ``i, j`` are int64; ``S`` is integer (int32 or int64), shape (npairs, 3).
    The pair order is vesin's and may change with ``n_threads``; nothing
    downstream depends on it.

    Periodic: positions are wrapped into the cell here (``r = w + n.cell``), so
    vesin sees small coordinates and small int32 shifts whatever the input; the
    shifts are translated back to the original positions, ``S = S_w + n_i - n_j``.
    Non-periodic: the cluster is put in an orthorhombic box wider than its
    extent plus ``2 cutoff`` and run as periodic; no image can then be within
    the cutoff.  (vesin 0.6.2's own non-periodic mode dies with SIGFPE on
    clusters a few 1e5 Å long and flat in the other directions.)
    """
    calculator = _vesin_calculator(cutoff, n_threads)
    if cell is None:
        lo = coords.min(axis=0)
        points = coords - lo
        box = np.diag(points.max(axis=0) + 2.0 * cutoff + 1.0)
        i, j, S = calculator.compute(points, box, True, "ijS")
        inside = ~np.any(S != 0, axis=1)
        if not inside.all():  # impossible by construction; belt and braces
            i, j, S = i[inside], j[inside], S[inside]
    else:
        frac = coords @ np.linalg.inv(cell)
        if np.abs(frac).max() > 2.0**40:
            k = int(np.argmax(np.abs(frac).max(axis=1)))
            raise InputError(f"coords of atom {k} lie more than 2^40 cells away from the cell; wrap them first")
        n = np.floor(frac)
        i, j, S = calculator.compute(coords - n @ cell, cell, True, "ijS")
        if n.any():
            n = n.astype(np.int64)
            S = S.astype(np.int64)
            for c in range(3):
                S[:, c] += np.take(n[:, c], i.view(np.int64)) - np.take(n[:, c], j.view(np.int64))
    # vesin's indices are uint64 below 2^63: reinterpret, don't copy.
    return i.view(np.int64), j.view(np.int64), S


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


def build_neighbor_list(coords, cell, atom_types, rcut, sel, *, mixed_types=False, n_threads=None):
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
        Threads of vesin's cell list and of the selection kernel (see
        :func:`dpcompress.threads.effective_n_threads`); the result does not
        depend on it.

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

    # The skin only widens vesin's search; the exact cut is applied below on
    # our own vectors, which can differ from vesin's by a few ulp.
    i, j, S = _candidate_pairs(coords, cell, rcut + 1e-6 * max(rcut, 1.0), n_threads)
    D, d2 = _pair_vectors(coords, np.zeros((3, 3)) if cell is None else cell, i, j, S)

    close = d2 < COINCIDENCE_TOLERANCE**2
    if close.any():
        # report the lowest (i, j) so the message does not depend on vesin's pair order
        bad = np.flatnonzero(close)
        p = bad[np.lexsort((j[bad], i[bad]))[0]]
        where = "" if not S[p].any() else f" (periodic image shifted by {S[p].tolist()} cells)"
        raise InputError(
            f"atoms {int(i[p])} and {int(j[p])}{where} coincide: distance {np.sqrt(d2[p]):.3g} Å "
            f"< {COINCIDENCE_TOLERANCE:g} Å; the descriptor is singular there"
        )

    keep = d2 < rcut * rcut
    if not keep.all():  # usually only the skin's few pairs go; skip the copy otherwise
        i, j, D = i[keep], j[keep], D[keep]
    index, vectors, counts, overflow = _kernel.select_neighbors(
        i, j, D, types, np.asarray(sel, dtype=np.int64), bool(mixed_types), n_threads
    )
    return NeighborList(index, vectors, counts, overflow, sel, rcut)
