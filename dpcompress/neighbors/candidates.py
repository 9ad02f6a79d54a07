r"""Candidate neighbors of a frame, as the model runtime takes them: the caller's atoms, their
periodic images, and a candidate list per center (what LAMMPS hands a pair style).

:func:`find_candidates` bins the atoms (:func:`cell_list_bins`) and runs the C cell list
(``src_c/dpc_neighbors.c``).  A periodic frame gets images of the atoms near the cell's faces:
image :math:`g` is atom ``image_owner[g]`` moved by ``image_lattice[g]`` cells, and the runtime
forms every pair vector from the caller's (unwrapped) coordinates as

.. math::

    \mathbf r_{ij} = (\mathbf r_j - \mathbf r_i) + ((S_0\mathbf a_0 + S_1\mathbf a_1) + S_2\mathbf a_2),
    \qquad S = q_j + n_i - n_j,

with :math:`n_a` = ``lattice[a]`` (:math:`\mathbf r_a = \mathbf w_a + n_a\cdot\text{cell}`, the wrapped
position :math:`\mathbf w_a`) and :math:`q_j` the image's shift.

The cell is the *reduced* cell (:func:`dpcompress.core.lattice.reduce_cell`): the same lattice
written with its shortest, nearly orthogonal vectors, so a sheared cell costs what the plain one
costs; ``cell``, ``lattice`` and the image shifts refer to it.  The work is bounded: a frame whose
search would screen more than :data:`MAX_SCREENED_PER_ATOM` atoms and images around each atom
(:func:`cell_list_bins`) is refused with an error naming the cell and the count.
"""

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .._ext import neighbors as _kernel
from ..core.errors import InputError
from ..core.inputs import check_cell, check_cutoff, check_positions
from ..core.lattice import face_distances, reduce_cell
from .._ext.threads import effective_n_threads

#: The search's limits, defined once in ``src_c/dpc_neighbors.h`` (the batched runtime applies them
#: in C): bins beyond MAX_BINS_PER_ATOM per atom only cost memory and empty-bin visits; coordinates
#: further than MAX_CELLS_AWAY cells from the cell are refused (the lattice shifts are int32);
#: MAX_SCREENED_PER_ATOM is the most atoms and periodic images the cell list may screen around one
#: atom (:func:`cell_list_bins`).  Dense matter needs far fewer: water with a 6 Å cutoff about
#: 650, 0.5 atoms/Å^3 with a 12 Å cutoff at most 190,000.  Above it a frame is refused: its atoms
#: are packed beyond any physical density, or its cell is so small that every atom sees hundreds of
#: thousands of images of the others; the search costs O(atoms x this count).
MAX_BINS_PER_ATOM = _kernel.MAX_BINS_PER_ATOM
MAX_CELLS_AWAY = _kernel.MAX_CELLS_AWAY
MAX_SCREENED_PER_ATOM = _kernel.MAX_SCREENED_PER_ATOM


@dataclass(frozen=True)
class Candidates:
    """A frame as the runtime reads it (``dpc_frame`` of ``src_c/dpc_model.h``).

    Attributes
    ----------
    x : ndarray, float64 (natoms, 3)
        The caller's coordinates.
    cell : ndarray (3, 3) or None
        The reduced cell (the caller's when it is reduced already).
    lattice : ndarray, int32 (natoms, 3), or None
        :math:`n_a` of every atom (periodic).
    image_owner : ndarray, int32 (nimage,)
    image_lattice : ndarray, int32 (nimage, 3)
    offsets : ndarray, int64 (ncenter + 1,)
    index : ndarray, int32
        Candidates of center i: ``index[offsets[i]:offsets[i+1]]``, in [0, natoms + nimage).
    """

    x: np.ndarray
    cell: Optional[np.ndarray]
    lattice: Optional[np.ndarray]
    image_owner: np.ndarray
    image_lattice: np.ndarray
    offsets: np.ndarray
    index: np.ndarray

    @property
    def ncenter(self):
        return self.offsets.shape[0] - 1

    def frame_arrays(self):
        """Keyword arguments of :func:`dpcompress._ext.runtime.compute` for this frame."""
        return dict(offsets=self.offsets, index=self.index, cell=self.cell, lattice=self.lattice,
                    image_owner=self.image_owner, image_lattice=self.image_lattice)


def cell_list_bins(coords, cell, search):
    r"""Bin coordinates, wrapped positions, wraps, bin counts and reach of the C cell list.

    Periodic: :math:`\mathbf f = \mathbf r\,A^{-1}`, :math:`\mathbf n = \lfloor \mathbf f \rfloor`,
    bins on :math:`\mathbf f - \mathbf n \in [0, 1]`; the plane spacing :math:`h_c = |\det A| /
    |\mathbf a_{c+1} \times \mathbf a_{c+2}|` sets ``nbins[c] = max(1, floor(h_c / search))`` bins
    of height at least ``search``.  Cluster: the bounding box, :math:`h_c` its length (at least
    ``search``).  ``reach[c] = floor(search nbins[c] / h_c) + 1`` bins either side
    (``src_c/dpc_neighbors.h`` gives the argument).  When the bins outnumber
    ``MAX_BINS_PER_ATOM`` per atom the largest count is halved until they do not (a sparse cluster
    would otherwise allocate a huge grid); the reach follows, so no pair is missed.  Also the
    atoms and images screened around one atom on average, :math:`M = N \prod_c v_c / n_c` with
    :math:`v_c = 2 r_c + 1` bins visited per axis (a cluster: :math:`\min(2 r_c + 1, n_c)`): the
    search costs :math:`O(N M)`, and :math:`M` depends on the atoms, the cutoff and the lattice only.

    Computed in C (``dpc_cell_list_bins``, which the batched runtime calls for every frame, so
    one rule serves both); its numpy twin is :func:`dpcompress.reference.neighbors.cell_list_bins`.

    Raises
    ------
    InputError
        An atom more than :data:`MAX_CELLS_AWAY` cells from the cell.
    """
    frac, wrapped, wrap, nbins, reach, screened, far = _kernel.cell_list_bins(coords, cell, search)
    if far >= 0:
        raise InputError(f"coords of atom {far} lie more than 2^30 cells away from the cell; wrap them first")
    return frac, wrapped, wrap, nbins, reach, screened


def check_search_work(natoms, cell, rcut, m):
    """Refuse a frame whose search screens ``m`` > :data:`MAX_SCREENED_PER_ATOM` atoms per atom
    (``m`` from :func:`cell_list_bins`).

    Raises
    ------
    InputError
        Naming the (reduced) cell, the atom count, the density, the periodic copies of the cell
        within the cutoff and the count against the limit.
    """
    if m <= MAX_SCREENED_PER_ATOM:
        return m
    if cell is None:
        raise InputError(
            f"{natoms} atoms packed so densely that the neighbor search would screen about {m:.3g} atoms around "
            f"each one (rcut = {rcut:g} Å; the limit is {MAX_SCREENED_PER_ATOM}): check the coordinates' units"
        )
    h = face_distances(cell)
    volume = abs(float(np.linalg.det(cell)))
    copies = math.prod(2 * math.ceil(rcut / h[c]) + 1 for c in range(3))
    raise InputError(
        f"cell too small for rcut = {rcut:g} Å: {natoms} atom{'s' * (natoms != 1)} in a cell of {volume:.3g} Å^3 "
        f"({natoms / volume:.3g} atoms/Å^3; reduced cell vectors {np.round(cell, 6).tolist()} Å, face distances "
        f"{np.round(h, 6).tolist()} Å) put {copies} periodic copies of the cell within the cutoff, and the "
        f"neighbor search would screen about {m:.3g} atoms and images around each atom (the limit is "
        f"{MAX_SCREENED_PER_ATOM}); pass a supercell at a physical density, or check the cell's units"
    )


def search_radius(coords, rcut):
    """The screening radius: a hair above ``rcut``, for the rounding of the wrapped positions:
    ``rcut + 1e-6 max(rcut, 1) + 1e-12 max |coords|`` (``dpc_search_radius``, shared with the
    batched runtime)."""
    return _kernel.search_radius(coords, rcut)


def find_candidates(coords, cell, rcut, *, n_centers=None, n_threads=None):
    """Candidate neighbors within ``rcut`` (a hair more) of the first ``n_centers`` atoms.

    Parameters
    ----------
    coords : array_like, (natoms, 3)
        Positions, Å (periodic ones need not be wrapped).
    cell : array_like (3, 3) or None
        Rows are the cell vectors; None for a cluster.
    rcut : float
    n_centers : int or None
        None: every atom.
    n_threads : int or None

    Returns
    -------
    Candidates

    Raises
    ------
    InputError
        Bad coordinates, cutoff or cell, coordinates more than 2^30 cells away, or a frame above
        :data:`MAX_SCREENED_PER_ATOM` (a cell too small for the cutoff, or atoms packed beyond any
        physical density).
    """
    coords = check_positions(coords)
    rcut = check_cutoff(rcut)
    cell = None if cell is None else reduce_cell(check_cell(cell)).cell
    natoms = coords.shape[0]
    n_centers = natoms if n_centers is None else int(n_centers)
    if not 0 <= n_centers <= natoms:
        raise InputError(f"n_centers must be an integer in [0, {natoms}], got {n_centers!r}")
    return candidates_of_checked(coords, cell, rcut, n_centers, effective_n_threads(n_threads))


def candidates_of_checked(coords, cell, rcut, n_centers, n_threads):
    """:func:`find_candidates` of inputs checked already: the same work, none of the checks.

    For callers that validated a whole batch of frames at once (:meth:`dpcompress.Potential.eval`
    of many frames): ``coords`` C-contiguous float64 (natoms, 3) and finite, ``cell`` a checked
    and *reduced* cell (:func:`~dpcompress.core.lattice.reduce_cell`) or None, ``rcut`` a checked
    cutoff, ``0 <= n_centers <= natoms``, ``n_threads`` a resolved count.  The result is
    :func:`find_candidates`'s, bit for bit (it is the same code).  Also the error path of the
    batched runtime: a frame it refuses is re-run here for the full message.
    """
    natoms = coords.shape[0]
    search = search_radius(coords, rcut)
    frac, wrapped, wrap, nbins, reach, screened = cell_list_bins(coords, cell, search)
    check_search_work(natoms, cell, rcut, screened)
    owner, image_lattice, offsets, index = _kernel.cell_candidates(
        frac, wrapped, cell, nbins, reach, search, n_centers, n_threads
    )
    return Candidates(coords, cell, wrap, owner, image_lattice, offsets, index)
