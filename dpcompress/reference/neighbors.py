r"""Numpy twins of the neighbor search: candidates (``src_c/dpc_neighbors.c``), rows
(``src_c/dpc_rows.c``), and an exhaustive (brute-force) search as the independent oracle.

:func:`brute_force_neighbor_list` builds the whole neighbor list by looping over every atom pair
and every lattice image that can be within reach; it is :math:`O(N^2 \cdot n_\text{images})` and
exists only to check :func:`dpcompress.neighbors.build_neighbor_list` in the tests (bit for bit).
:func:`neighbor_rows` and :func:`cell_candidates` take and return what the compiled functions of
:mod:`dpcompress._ext.neighbors` do.

Both follow the definitions of :mod:`dpcompress.neighbors.neighbor_list`:

* pair vector :math:`\mathbf r_{ij} = (\mathbf r_j - \mathbf r_i) + \mathbf s`,
  with the lattice shift :math:`\mathbf s = (S_0 \mathbf a_0 + S_1 \mathbf a_1) + S_2 \mathbf a_2`
  (integer :math:`S`, cell rows :math:`\mathbf a_k`), evaluated in exactly this order;
* squared distance :math:`d^2 = (x^2 + y^2) + z^2`; a pair is a neighbor when
  :math:`d^2 < r_c^2` and it is not the atom itself (:math:`j = i, S = 0`);
* inside a block, neighbors are ordered by :math:`(d^2, j, x, y, z)` ascending.
"""

import itertools

import numpy as np

from ..core.lattice import reduce_cell
from ..neighbors import NeighborList


def _squared_norm(D):
    # The C kernel's evaluation order: (x*x + y*y) + z*z.
    return (D[:, 0] * D[:, 0] + D[:, 1] * D[:, 1]) + D[:, 2] * D[:, 2]


def _image_range(cell, rcut):
    """Images needed along each cell vector for positions wrapped into the cell.

    The distance between the two lattice planes spanned by ``a_i, a_j`` is
    ``h_k = V / |a_i x a_j|``; a vector whose fractional coordinate k is ``f``
    is at least ``|f| h_k`` long.  Wrapped positions differ by less than one
    cell in every fractional coordinate, hence ``n_k = ceil(rcut / h_k) + 1``.
    """
    volume = abs(np.linalg.det(cell))
    n = []
    for k in range(3):
        spacing = volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))
        n.append(int(np.ceil(rcut / spacing)) + 1)
    return n


def brute_force_neighbor_list(coords, cell, atom_types, rcut, sel, mixed_types=False):
    """Neighbor list by exhaustive search over atoms and lattice images (tests only).

    Same contract as :func:`dpcompress.neighbors.build_neighbor_list` but no
    input validation and no cell list: for every centre atom it forms the pair
    vector to every atom in every image of the range given by the plane
    spacings, keeps those with :math:`d^2 < r_c^2`, and orders them per block.

    Unwrapped coordinates are handled by wrapping ``r = w + n . cell`` with
    integer ``n = floor(frac(r))``; an image ``T`` of the wrapped positions is
    the shift ``S = T + n_i - n_j`` of the original ones, and the pair vector is
    then evaluated from the original coordinates, as the fast path does.  The
    cell is reduced first (:func:`dpcompress.core.lattice.reduce_cell`), as the
    fast path reduces it: same lattice, the shifts ``S`` refer to the reduced
    rows.

    Parameters
    ----------
    coords : array_like, shape (natoms, 3)
    cell : array_like, shape (3, 3), or None
        Rows are the cell vectors; None for an isolated cluster.
    atom_types : array_like of int, shape (natoms,)
    rcut : float
    sel : sequence of int
    mixed_types : bool

    Returns
    -------
    NeighborList
    """
    return _exhaustive_search(coords, cell, atom_types, rcut, sel, mixed_types)[0]


def _exhaustive_search(coords, cell, atom_types, rcut, sel, mixed_types, coincide=0.0, n_centers=None):
    coords = np.asarray(coords, dtype=np.float64)
    atom_types = np.asarray(atom_types, dtype=np.int64)
    sel = [int(s) for s in sel]
    natoms, nblocks = len(coords), len(sel)
    ncenter = natoms if n_centers is None else int(n_centers)
    offsets = np.concatenate([[0], np.cumsum(sel)]).astype(np.int64)
    rcut2 = float(rcut) * float(rcut)

    if cell is None:
        cell = np.zeros((3, 3))
        images = np.zeros((1, 3), dtype=np.int64)
        wrap = np.zeros((natoms, 3), dtype=np.int64)
    else:
        cell = reduce_cell(np.asarray(cell, dtype=np.float64).reshape(3, 3)).cell
        nmax = _image_range(cell, rcut)
        images = np.array(list(itertools.product(*(range(-n, n + 1) for n in nmax))), dtype=np.int64)
        wrap = np.floor(coords @ np.linalg.inv(cell)).astype(np.int64)

    index = np.full((ncenter, offsets[-1]), -1, dtype=np.int64)
    vectors = np.zeros((ncenter, offsets[-1], 3), dtype=np.float64)
    counts = np.zeros((ncenter, nblocks), dtype=np.int64)
    overflow = np.zeros((ncenter, nblocks), dtype=np.int64)
    jj = np.tile(np.arange(natoms), len(images))
    bad = None
    for i in range(ncenter):
        S = (images[:, None, :] + wrap[i] - wrap[None, :, :]).reshape(-1, 3).astype(np.float64)
        shift = (S[:, 0:1] * cell[0] + S[:, 1:2] * cell[1]) + S[:, 2:3] * cell[2]
        D = (coords[jj] - coords[i]) + shift
        d2 = _squared_norm(D)
        is_self = (jj == i) & np.all(S == 0, axis=1)
        hit = (d2 < rcut2) & ~is_self
        close = np.flatnonzero(hit & (d2 < coincide * coincide))
        if bad is None and len(close):
            first = close[np.lexsort((S[close, 2], S[close, 1], S[close, 0], jj[close]))[0]]
            bad = (i, int(jj[first]), S[first].astype(np.int64).tolist(), float(d2[first]))
        j, D, d2 = jj[hit], D[hit], d2[hit]
        block = np.zeros_like(j) if mixed_types else atom_types[j]
        _fill_blocks(i, j, D, d2, block, sel, offsets, index, vectors, counts, overflow)
    return NeighborList(index, vectors, counts, overflow, tuple(sel), float(rcut)), bad


def _fill_blocks(i, j, D, d2, block, sel, offsets, index, vectors, counts, overflow):
    """Row ``i``: per block, the ``sel[b]`` nearest neighbors by (d2, j, D) (the C side's order)."""
    for b in range(len(sel)):
        mine = block == b
        order = np.lexsort((D[mine, 2], D[mine, 1], D[mine, 0], j[mine], d2[mine]))
        kept = order[: sel[b]]
        slots = slice(offsets[b], offsets[b] + len(kept))
        index[i, slots] = j[mine][kept]
        vectors[i, slots] = D[mine][kept]
        counts[i, b] = len(kept)
        overflow[i, b] = len(order) - len(kept)


def _floor_div(u, n):
    return u // n  # Python's floor division: the C side's floor_div


def search_radius(coords, rcut):
    """Twin of :func:`dpcompress._ext.neighbors.search_radius`: ``rcut + 1e-6 max(rcut, 1) + 1e-12 max|x|``."""
    return rcut + 1e-6 * max(rcut, 1.0) + 1e-12 * float(np.abs(coords).max())


def cell_list_bins(coords, cell, search, max_bins_per_atom=2):
    """Twin of :func:`dpcompress._ext.neighbors.cell_list_bins` (``dpc_cell_list_bins``).

    Returns frac, wrapped, wrap (None for a cluster), nbins, reach and the screened count; the
    inverse cell here is LAPACK's, the C one the adjugate's, so frac may differ in the last bits.
    """
    coords = np.asarray(coords, dtype=np.float64)
    natoms = len(coords)
    if cell is None:
        lo = coords.min(axis=0)
        h = np.maximum(coords.max(axis=0) - lo, search)
        frac, wrap, wrapped = (coords - lo) / h, None, coords.copy()
    else:
        cell = np.asarray(cell, dtype=np.float64)
        f = coords @ np.linalg.inv(cell)
        n = np.floor(f)
        frac, wrap = f - n, n.astype(np.int32)
        wrapped = frac @ cell
        volume = abs(np.linalg.det(cell))
        h = np.array([volume / np.linalg.norm(np.cross(cell[(c + 1) % 3], cell[(c + 2) % 3])) for c in range(3)])
    nbins = [max(1, int(min(h[c] / search, 2.0**20))) for c in range(3)]
    while nbins[0] * nbins[1] * nbins[2] > max(27, max_bins_per_atom * natoms):
        c = int(np.argmax(nbins))
        nbins[c] = max(1, nbins[c] // 2)
    reach = [int(np.floor(search * nbins[c] / h[c])) + 1 for c in range(3)]
    visited = [2 * r + 1 if cell is not None else min(2 * r + 1, b) for r, b in zip(reach, nbins)]
    screened = natoms * np.prod([v / b for v, b in zip(visited, nbins)])
    return frac, wrapped, wrap, nbins, reach, float(screened)


def cell_candidates(frac, wrapped, cell, nbins, reach, search, n_centers, n_threads=1):
    """Twin of :func:`dpcompress._ext.neighbors.cell_candidates`: images and CSR candidates.

    Images: every atom of every extended bin outside the base grid, bins taken in (u0, u1, u2)
    order; candidates of a center: the atoms and images of the bins within reach, bins by offset
    (d0, d1, d2), atoms in index order, kept when their wrapped-space distance is below ``search``.
    """
    frac = np.asarray(frac, dtype=np.float64)
    wrapped = np.asarray(wrapped, dtype=np.float64)
    natoms = len(frac)
    periodic = cell is not None
    nbins, reach = [int(v) for v in nbins], [int(v) for v in reach]
    ext = [n + 2 * r if periodic else n for n, r in zip(nbins, reach)]
    coord = np.minimum(np.maximum((frac * nbins).astype(np.int64), 0), np.array(nbins) - 1)
    coord = np.where(frac * nbins <= 0, 0, coord)
    bin_of = (coord[:, 0] * nbins[1] + coord[:, 1]) * nbins[2] + coord[:, 2]
    members = [list(np.flatnonzero(bin_of == b)) for b in range(nbins[0] * nbins[1] * nbins[2])]

    def base_bin(v):
        w = [v[k] - _floor_div(v[k], nbins[k]) * nbins[k] for k in range(3)]
        return (w[0] * nbins[1] + w[1]) * nbins[2] + w[2]

    image_base, owner, lattice = {}, [], []
    if periodic:
        for u in itertools.product(*(range(e) for e in ext)):
            v = [u[k] - reach[k] for k in range(3)]
            if all(0 <= v[k] < nbins[k] for k in range(3)):
                continue
            image_base[tuple(v)] = len(owner)
            for j in members[base_bin(v)]:
                owner.append(j)
                lattice.append([_floor_div(v[k], nbins[k]) for k in range(3)])
    cell = None if cell is None else np.asarray(cell, dtype=np.float64).reshape(3, 3)
    index, offsets = [], [0]
    for a in range(n_centers):
        for d in itertools.product(*(range(-r, r + 1) for r in reach)):
            v = [int(coord[a, k]) + d[k] for k in range(3)]
            q = [_floor_div(v[k], nbins[k]) for k in range(3)]
            if not periodic and any(q):
                continue
            shift = (((q[0] * cell[0] + q[1] * cell[1]) + q[2] * cell[2]) if periodic else np.zeros(3))
            for m, j in enumerate(members[base_bin(v)]):
                s = wrapped[j] + shift - wrapped[a]
                if s @ s >= search * search:
                    continue
                cand = natoms + image_base[tuple(v)] + m if any(q) else j
                if cand != a:
                    index.append(cand)
        offsets.append(len(index))
    return (np.array(owner, dtype=np.int32), np.array(lattice, dtype=np.int32).reshape(-1, 3),
            np.array(offsets, dtype=np.int64), np.array(index, dtype=np.int32))


def neighbor_rows(x, types, nlocal, offsets, index, rcut, sel, mixed, *, cell=None, lattice=None, image_owner=None,
                  image_lattice=None, n_threads=1):
    """Twin of :func:`dpcompress._ext.neighbors.neighbor_rows` (``dpc_neighbor_rows``).

    Per center: each candidate's target atom (the owner of an image) and lattice shift
    ``S = q + n_i - n_t``, the vector ``(x_t - x_i) + ((S0 a0 + S1 a1) + S2 a2)``, the strict cut,
    the order ``(d2, t, x, y, z)``, blocks by type (or one), the sel cut.
    """
    x = np.asarray(x, dtype=np.float64)
    types = np.asarray(types, dtype=np.int64)
    natoms = len(x)
    sel = [int(s) for s in np.ravel(sel)]
    so = np.concatenate([[0], np.cumsum(sel)]).astype(np.int64)
    cell0 = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64).reshape(3, 3)
    lat = None if (cell is None or lattice is None) else np.asarray(lattice, dtype=np.int64).reshape(-1, 3)
    owner = np.zeros(0, dtype=np.int64) if image_owner is None else np.asarray(image_owner, dtype=np.int64)
    qimg = np.zeros((0, 3), dtype=np.int64) if image_lattice is None else np.asarray(image_lattice, dtype=np.int64).reshape(-1, 3)
    out_index = np.full((nlocal, so[-1]), -1, dtype=np.int64)
    out_vec = np.zeros((nlocal, so[-1], 3))
    counts = np.zeros((nlocal, len(sel)), dtype=np.int64)
    overflow = np.zeros((nlocal, len(sel)), dtype=np.int64)
    bad = None
    for i in range(nlocal):
        cand = np.asarray(index[offsets[i] : offsets[i + 1]], dtype=np.int64)
        img = cand >= natoms
        t = cand.copy()
        t[img] = owner[cand[img] - natoms]
        S = np.zeros((len(cand), 3), dtype=np.int64)
        S[img] = qimg[cand[img] - natoms]
        if lat is not None:
            S = S + lat[i] - lat[t]
        S = S.astype(np.float64)
        shift = (S[:, 0:1] * cell0[0] + S[:, 1:2] * cell0[1]) + S[:, 2:3] * cell0[2]
        D = (x[t] - x[i]) + shift
        d2 = _squared_norm(D)
        keep = (d2 < rcut * rcut) & ~((t == i) & np.all(S == 0, axis=1))
        close = np.flatnonzero(keep & (d2 < 1e-16))
        if bad is None and len(close):
            k = close[np.lexsort((S[close, 2], S[close, 1], S[close, 0], t[close]))[0]]
            bad = (i, int(t[k]), S[k].astype(np.int64).tolist(), float(d2[k]))
        t, D, d2 = t[keep], D[keep], d2[keep]
        block = np.zeros_like(t) if mixed else types[t]
        _fill_blocks(i, t, D, d2, block, sel, so, out_index, out_vec, counts, overflow)
    return out_index, out_vec, counts, overflow, bad
