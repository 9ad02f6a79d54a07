r"""Neighbor lists on the device, in DeePMD-kit's per-type layout (kernels: ``src_c/cuda/neighbors.cu``).

The result is the CPU list of :func:`dpcompress.neighbors.build_neighbor_list`
bit for bit (same vectors, same order inside every block, same counts and
overflow): the kernel evaluates :math:`\mathbf r_{ij} = (\mathbf r_j - \mathbf r_i) +
((S_0\mathbf a_0 + S_1\mathbf a_1) + S_2\mathbf a_2)` and :math:`d^2 = (x^2 + y^2) + z^2`
with the same roundings and cuts at :math:`d^2 < r_c^2`.

Steps (no host round trip: the bin counts come from the cell, which is on the host)

1. ``dpc_cell_candidates_bin_*``: bin the atoms (periodic: wrapped fractional
   coordinates; open: a spatial hash);
2. stable sort of the atoms by bin, bin starts by ``searchsorted``;
3. ``dpc_neighbor_rows``: one warp per center atom scans its stencil bins and keeps
   the ``sel`` nearest of every block (the C ``dpc_neighbor_rows`` with the
   stencil scan of ``dpc_cell_candidates`` folded in).

Errors found on the device (a non-finite coordinate, an atom 2^40 cells away, two
coinciding atoms) are recorded in a 3-word error array and raised as
:class:`~dpcompress.InputError` when the results are read back
(:func:`raise_device_errors`).
"""

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..neighbors.neighbor_list import COINCIDENCE_TOLERANCE

NO_ERROR = np.uint64(0xFFFFFFFFFFFFFFFF)

#: candidate scratch per warp: max(2 nnei, nnei + 32) entries (pruned to sel when full)
SCRATCH_FACTOR = 2


@dataclass
class DeviceNeighborList:
    """Device arrays of one neighbor list, with the cell list that built it (reused by the force gather)."""

    index: Any  # (natoms, nnei) int64, -1 on padding
    vectors: Any  # (natoms, nnei, 3) float64
    counts: Any  # (natoms, nblocks) int64
    overflow: Any  # (natoms, nblocks) int64
    sel: tuple
    rcut: float
    grid_args: tuple  # the DPC_GRID_PARAMS arguments of the kernels

    @property
    def nnei(self):
        return int(sum(self.sel))


def new_error_words(be):
    """Device array of the 3 error words: first non-finite atom, first far atom, first coincident pair."""
    return be.xp.full(3, NO_ERROR, dtype=np.uint64)


def raise_device_errors(err_host, natoms):
    """Raise InputError for the first problem recorded in the error words (host copy), if any."""
    err = np.asarray(err_host, dtype=np.uint64)
    if err[0] != NO_ERROR:
        raise InputError(f"coords of atom {int(err[0])} are not finite")
    if err[1] != NO_ERROR:
        raise InputError(f"coords of atom {int(err[1])} lie more than 2^40 cells away from the cell; wrap them first")
    if err[2] != NO_ERROR:
        i, j = divmod(int(err[2]), natoms)
        raise InputError(
            f"atoms {i} and {j} coincide: distance < {COINCIDENCE_TOLERANCE:g} Å; the descriptor is singular there"
        )


def _periodic_bins(cell, rs, natoms):
    """Bins per axis and stencil reach for a periodic cell (rows = cell vectors)."""
    a = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    vol = abs(float(np.linalg.det(a)))
    heights = [vol / float(np.linalg.norm(np.cross(a[(k + 1) % 3], a[(k + 2) % 3]))) for k in range(3)]
    nb = [max(1, int(math.floor(h / rs))) for h in heights]
    # sparse systems: do not let the bin array grow far beyond the atom count
    while nb[0] * nb[1] * nb[2] > 4 * natoms + 64:
        k = int(np.argmax(nb))
        nb[k] = max(1, nb[k] // 2)
    reach = [max(1, int(math.ceil(rs * n / h))) for n, h in zip(nb, heights)]
    return nb, reach


def build(be, coords, cell, types, rcut, sel, err, workspace=None, sel_offsets=None):
    """Per-type nearest-first neighbor list of one frame, on the device.

    Parameters
    ----------
    be : backend (:mod:`dpcompress.gpu.backend`)
    coords : device array (natoms, 3) float64, C-contiguous
    cell : ndarray (3, 3) on the host (rows = cell vectors), or None (open system)
    types : device array (natoms,) int64
    rcut : float
    sel : tuple of int
    err : device error words (:func:`new_error_words`), updated
    workspace : dict or None
        Scratch buffers kept between calls (per descriptor part).
    sel_offsets : device array or None
        ``cumsum([0] + sel)`` as int64 on the device (uploaded here when None).
    """
    xp = be.xp
    natoms = int(coords.shape[0])
    nblocks = len(sel)
    nnei = int(sum(sel))
    rs = rcut + 1e-6 * max(rcut, 1.0)  # a hair above rcut, like the CPU cell list's search radius: a superset of the pairs inside rcut
    bin_of = xp.empty(natoms, dtype=np.int64)
    home = xp.empty((natoms, 3), dtype=np.int64)
    grid1 = (natoms + be.block - 1) // be.block
    if cell is None:
        hash_size = 2 * natoms + 1
        be.launch("neighbors", "dpc_cell_candidates_bin_open", grid1,
                  (np.int64(natoms), coords, np.float64(1.0 / rs), np.int64(hash_size), bin_of, home, err))
        nbins, periodic = hash_size, 0
        cell9 = be.asarray(np.zeros(9))
        nb, reach = [hash_size, 1, 1], [1, 1, 1]
    else:
        cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
        nb, reach = _periodic_bins(cell, rs, natoms)
        inv = be.asarray(np.ascontiguousarray(np.linalg.inv(cell)).ravel())
        be.launch("neighbors", "dpc_cell_candidates_bin_periodic", grid1,
                  (np.int64(natoms), coords, inv, np.int64(nb[0]), np.int64(nb[1]), np.int64(nb[2]), bin_of, home, err))
        nbins, periodic = nb[0] * nb[1] * nb[2], 1
        cell9 = be.asarray(cell.ravel())
    cell_atoms = be.argsort(bin_of)
    cell_start = xp.searchsorted(bin_of[cell_atoms], xp.arange(nbins + 1, dtype=np.int64)).astype(np.int64)
    grid_args = (np.int32(periodic), cell9, np.int64(nb[0]), np.int64(nb[1]), np.int64(nb[2]),
                 np.int64(reach[0]), np.int64(reach[1]), np.int64(reach[2]), bin_of, home, cell_atoms, cell_start)

    warps_per_block = be.block // 32
    grid = min((natoms + warps_per_block - 1) // warps_per_block, be.max_blocks)
    nwarps = grid * warps_per_block
    cap = max(SCRATCH_FACTOR * nnei, nnei + 32)
    ws = workspace if workspace is not None else {}
    key = (nwarps, cap, nblocks)
    if ws.get("key") != key:
        ws["key"] = key
        ws["scratch"] = xp.empty(nwarps * 2 * 6 * cap, dtype=np.float64)
        ws["bcount"] = xp.zeros(nwarps * nblocks, dtype=np.uint64)  # every warp leaves its counters at 0
    index = xp.empty((natoms, nnei), dtype=np.int64)
    vectors = xp.empty((natoms, nnei, 3), dtype=np.float64)
    counts = xp.empty((natoms, nblocks), dtype=np.int64)
    overflow = xp.empty((natoms, nblocks), dtype=np.int64)
    if sel_offsets is None:
        sel_offsets = be.asarray(np.concatenate([[0], np.cumsum(sel)]).astype(np.int64))
    be.launch("neighbors", "dpc_neighbor_rows", grid, (
        np.int64(natoms), coords, types, np.int64(nblocks), np.int32(0), sel_offsets,
        np.float64(rcut * rcut), np.float64(COINCIDENCE_TOLERANCE**2), *grid_args,
        np.int64(cap), ws["scratch"], ws["bcount"], index, vectors, counts, overflow, err,
    ))
    return DeviceNeighborList(index, vectors, counts, overflow, tuple(sel), float(rcut), grid_args)
