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
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .._ext import neighbors as _kernel
from ..core.errors import InputError
from ..core.inputs import check_cell, check_cutoff, check_positions
from .._ext.threads import effective_n_threads

#: Bins beyond this many per atom only cost memory and empty-bin visits.
MAX_BINS_PER_ATOM = 2
#: Coordinates further than this many cells from the cell are refused (the lattice shifts are int32).
MAX_CELLS_AWAY = 2**30


@dataclass(frozen=True)
class Candidates:
    """A frame as the runtime reads it (``dpc_frame`` of ``src_c/dpc_model.h``).

    Attributes
    ----------
    x : ndarray, float64 (natoms, 3)
        The caller's coordinates.
    cell : ndarray (3, 3) or None
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
    would otherwise allocate a huge grid); the reach follows, so no pair is missed.
    """
    natoms = coords.shape[0]
    if cell is None:
        lo = coords.min(axis=0)
        h = np.maximum(coords.max(axis=0) - lo, search)
        frac = (coords - lo) / h
        wrap, wrapped = None, coords
    else:
        frac = coords @ np.linalg.inv(cell)
        if np.abs(frac).max() > MAX_CELLS_AWAY:
            k = int(np.argmax(np.abs(frac).max(axis=1)))
            raise InputError(f"coords of atom {k} lie more than 2^30 cells away from the cell; wrap them first")
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


def search_radius(coords, rcut):
    """The screening radius: a hair above ``rcut``, for the rounding of the wrapped positions."""
    return rcut + 1e-6 * max(rcut, 1.0) + 1e-12 * float(np.abs(coords).max())


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
    """
    coords = check_positions(coords)
    rcut = check_cutoff(rcut)
    cell = None if cell is None else check_cell(cell)
    natoms = coords.shape[0]
    n_centers = natoms if n_centers is None else int(n_centers)
    if not 0 <= n_centers <= natoms:
        raise InputError(f"n_centers must be an integer in [0, {natoms}], got {n_centers!r}")
    search = search_radius(coords, rcut)
    frac, wrapped, wrap, nbins, reach = cell_list_bins(coords, cell, search)
    owner, image_lattice, offsets, index = _kernel.cell_candidates(
        frac, wrapped, cell, nbins, reach, search, n_centers, effective_n_threads(n_threads)
    )
    lattice = None if wrap is None else np.ascontiguousarray(wrap, dtype=np.int32)
    return Candidates(coords, cell, lattice, owner, image_lattice, offsets, index)
