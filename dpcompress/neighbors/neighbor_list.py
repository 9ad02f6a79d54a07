r"""Per-type, nearest-first neighbor lists (DeePMD-kit's ``nlist`` layout) for the exact evaluator
and the training-set scan.

The rows come from the same C code as the model runtime's (``src_c/dpc_rows.c``): candidates
(:mod:`.candidates`), pair vectors from the caller's coordinates
:math:`\mathbf r_{ij} = (\mathbf r_j - \mathbf r_i) + \mathbf s`, the strict cut
:math:`d^2 = (x^2 + y^2) + z^2 < r_c^2`, per-block ordering and the ``sel`` cut; the numpy twin is
:func:`dpcompress.reference.neighbors.brute_force_neighbor_list` (an exhaustive search), equal bit for bit.

Periodic images are separate neighbors: in a cell smaller than ``2 rcut`` one atom can appear
several times in a row, and an atom can neighbor itself through an image (``j == i``, ``S != 0``).
"""

from dataclasses import dataclass

import numpy as np

from .._ext import neighbors as _kernel
from ..core.errors import InputError
from ..core.inputs import check_cutoff, check_positions, check_sel, check_type_indices
from .._ext.threads import effective_n_threads
from .candidates import find_candidates

#: Two atoms closer than this (Å) make the descriptor singular (1/r); they are refused.
COINCIDENCE_TOLERANCE = _kernel.COINCIDENCE_TOLERANCE


@dataclass(frozen=True)
class NeighborList:
    """Neighbors of every atom of one frame, in DeePMD-kit's slot layout.

    The ``nnei = sum(sel)`` slots of an atom are split into consecutive blocks, one per neighbor
    type (or a single block for mixed-type descriptors).  Inside a block the real neighbors come
    first, nearest first (ties broken by neighbor index, then by image), followed by padding.

    Attributes
    ----------
    index : ndarray of int64, shape (natoms, nnei)
        Index of the neighbor's atom in the input frame (periodic images fold back to their
        atom), ``-1`` on padding slots.
    vectors : ndarray of float64, shape (natoms, nnei, 3)
        ``r_ij = r_j + shift - r_i`` in Å; zero on padding slots.
    counts : ndarray of int64, shape (natoms, nblocks)
        Number of real neighbors in each block; they fill the block's first slots.
    overflow : ndarray of int64, shape (natoms, nblocks)
        Neighbors inside ``rcut`` that did not fit into ``sel`` and were dropped (the farthest).
    sel : tuple of int
    rcut : float
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


def coincidence_message(i, j, S, d2):
    """The error text for atoms (or an atom and an image) that coincide."""
    where = "" if not any(S) else f" (periodic image shifted by {list(S)} cells)"
    return (f"atoms {i} and {j}{where} coincide: distance {np.sqrt(d2):.3g} Å "
            f"< {COINCIDENCE_TOLERANCE:g} Å; the descriptor is singular there")


def build_neighbor_list(coords, cell, atom_types, rcut, sel, *, mixed_types=False, n_threads=None, n_centers=None):
    r"""Build the per-type, nearest-first neighbor list of one frame.

    Parameters
    ----------
    coords : array_like of float, shape (natoms, 3)
        Cartesian positions in Å.  Periodic positions need not be wrapped.
    cell : array_like of float, shape (3, 3) or (9,), or None
        Rows are the cell vectors (periodic in all three directions); None for an isolated
        cluster.  Orthorhombic and triclinic cells of any size, smaller than ``2 rcut`` included.
    atom_types : array_like of int, shape (natoms,)
        In ``[0, len(sel))``; with ``mixed_types`` any non-negative integer.
    rcut : float
        Cutoff radius in Å; a pair is a neighbor when :math:`d^2 < r_c^2` (strict).
    sel : sequence of int
        Slots per neighbor type (block ``b`` holds neighbors of type ``b``); with
        ``mixed_types`` a single entry.
    mixed_types : bool, keyword-only
        One block of ``sel[0]`` slots for all neighbors, whatever their type.
    n_threads : int or None, keyword-only
        Threads of the compiled search; the result does not depend on it.
    n_centers : int or None, keyword-only
        Rows only for the first ``n_centers`` atoms; the others are neighbors only.

    Returns
    -------
    NeighborList
        Inside a block, neighbors ordered by :math:`(d^2, j, x, y, z)` ascending, the nearest
        ``sel[b]`` kept, the rest counted in ``overflow``.

    Raises
    ------
    InputError
        Bad shapes or dtypes, zero atoms, a non-finite coordinate (names the atom), a type out of
        range (names the atom), ``rcut <= 0``, a bad ``sel``, a non-finite or singular cell, or
        two atoms (or an atom and an image) closer than 1e-8 Å (names both).
    """
    coords = check_positions(coords)
    natoms = coords.shape[0]
    sel = check_sel(sel, mixed_types)
    types = check_type_indices(atom_types, natoms, None if mixed_types else len(sel))
    if mixed_types and types.max() >= 2**31:
        raise InputError("atom_types must be below 2^31")
    rcut = check_cutoff(rcut)
    n_threads = effective_n_threads(n_threads)
    if n_centers is not None and not (isinstance(n_centers, (int, np.integer)) and 0 <= n_centers <= natoms):
        raise InputError(f"n_centers must be an integer in [0, {natoms}], got {n_centers!r}")
    ncenter = natoms if n_centers is None else int(n_centers)
    cand = find_candidates(coords, cell, rcut, n_centers=ncenter, n_threads=n_threads)
    index, vectors, counts, overflow, bad = _kernel.neighbor_rows(
        cand.x, types.astype(np.int32), ncenter, cand.offsets, cand.index, rcut, np.asarray(sel, dtype=np.int64),
        bool(mixed_types), cell=cand.cell, lattice=cand.lattice, image_owner=cand.image_owner,
        image_lattice=cand.image_lattice, n_threads=n_threads,
    )
    if bad is not None:
        raise InputError(coincidence_message(*bad))
    return NeighborList(index, vectors, counts, overflow, sel, rcut)
