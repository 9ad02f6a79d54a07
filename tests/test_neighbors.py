"""Neighbor list: C kernel vs numpy twin, fast path vs brute-force oracle, input errors."""

import numpy as np
import pytest

from dpcompress._ext import neighbors as kernel
from dpcompress.core.errors import InputError
from dpcompress.neighbors import NeighborList, build_neighbor_list, find_candidates
from dpcompress.neighbors.candidates import cell_list_bins, search_radius
from dpcompress.reference import neighbors as twin
from dpcompress.reference.neighbors import brute_force_neighbor_list


def assert_bitwise_equal(a, b):
    """Equal arrays down to the bit (signed zeros included)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a.view(np.uint8), b.view(np.uint8))


def assert_same_list(nl, ref):
    assert isinstance(nl, NeighborList)
    assert nl.sel == ref.sel and nl.rcut == ref.rcut
    assert_bitwise_equal(nl.index, ref.index)
    assert_bitwise_equal(nl.vectors, ref.vectors)
    assert_bitwise_equal(nl.counts, ref.counts)
    assert_bitwise_equal(nl.overflow, ref.overflow)


def random_cell(rng, lengths=(7.0, 10.0)):
    """A random triclinic cell, rows well away from degenerate."""
    cell = np.diag(rng.uniform(*lengths, 3))
    cell[1, 0], cell[2, 0], cell[2, 1] = rng.uniform(-0.3, 0.3, 3) * cell[0, 0]
    return cell @ np.linalg.qr(rng.normal(size=(3, 3)))[0]  # arbitrary orientation


def random_atoms(rng, natoms, cell, frac_range=(0.0, 1.0), min_dist=0.7):
    """Positions at least ``min_dist`` apart (periodically), fractional coords in frac_range."""
    frac = np.empty((0, 3))
    while len(frac) < natoms:
        f = rng.uniform(*frac_range, 3)
        if len(frac):
            delta = frac - f
            delta -= np.round(delta)
            if np.min(np.linalg.norm(delta @ cell, axis=1)) < min_dist:
                continue
        frac = np.vstack([frac, f])
    return frac @ cell


def check_list_invariants(nl, coords, cell, rcut):
    """Layout facts that hold for every neighbor list."""
    offsets = nl.offsets
    for b in range(len(nl.sel)):
        block_idx = nl.index[:, offsets[b] : offsets[b + 1]]
        block_vec = nl.vectors[:, offsets[b] : offsets[b + 1]]
        slot = np.arange(nl.sel[b])
        real = slot[None, :] < nl.counts[:, b : b + 1]
        assert np.array_equal(block_idx >= 0, real)
        assert np.all(block_vec[~real] == 0.0)
        d = np.linalg.norm(block_vec, axis=-1)
        assert np.all(d[real] < rcut)
        # nearest first
        dd = np.where(real, d, np.finfo(np.float64).max)
        assert np.all(np.diff(dd, axis=1)[real[:, 1:]] >= 0)
    # every vector is r_j - r_i plus a lattice vector
    i, s = np.nonzero(nl.index >= 0)
    lattice = nl.vectors[i, s] - (coords[nl.index[i, s]] - coords[i])
    if cell is None:
        assert np.allclose(lattice, 0.0, atol=1e-12)
    else:
        S = lattice @ np.linalg.inv(cell)
        assert np.allclose(S, np.round(S), atol=1e-8)


# ---------------------------------------------------------------- fast path vs oracle

RCUT = 6.0


def periodic_case(kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "triclinic":
        cell = random_cell(rng)
        coords = random_atoms(rng, 24, cell)
    elif kind == "orthorhombic":
        cell = np.diag(rng.uniform(8.0, 12.0, 3))
        coords = random_atoms(rng, 24, cell)
    elif kind == "small":  # cell far below 2 rcut: many images of every atom, self-images
        cell = np.diag([3.0, 3.2, 3.5]) + np.array([[0, 0, 0], [0.4, 0, 0], [0.3, -0.5, 0]])
        coords = random_atoms(rng, 3, cell)
    elif kind == "unwrapped":  # fractional coordinates in [-2, 3)
        cell = random_cell(rng)
        coords = random_atoms(rng, 20, cell, frac_range=(-2.0, 3.0))
    types = rng.integers(0, 2, len(coords))
    return coords, cell, types


@pytest.mark.parametrize(
    "kind,seed",
    [("triclinic", s) for s in range(4)]
    + [("orthorhombic", 0), ("small", 0), ("small", 1), ("unwrapped", 0), ("unwrapped", 1)],
)
def test_periodic_matches_brute_force(kind, seed):
    coords, cell, types = periodic_case(kind, seed)
    big = [400, 400]
    nl = build_neighbor_list(coords, cell, types, RCUT, big)
    ref = brute_force_neighbor_list(coords, cell, types, RCUT, big)
    assert_same_list(nl, ref)
    assert nl.n_overflow == 0 and nl.counts.sum() > 0
    check_list_invariants(nl, coords, cell, RCUT)
    if kind == "small":
        assert np.any(nl.index[0] == 0)  # an atom neighbors its own images
        assert np.max(np.bincount(nl.index[0][nl.index[0] >= 0])) > 5  # many images of one atom

    # small sel: the kept neighbors are the head of the full list, the rest is overflow
    small = [3, 5]
    cut = build_neighbor_list(coords, cell, types, RCUT, small)
    assert_same_list(cut, brute_force_neighbor_list(coords, cell, types, RCUT, small))
    assert cut.n_overflow > 0
    for b, (o_big, o_small) in enumerate(zip(nl.offsets[:-1], cut.offsets[:-1])):
        assert np.array_equal(cut.counts[:, b], np.minimum(nl.counts[:, b], small[b]))
        assert np.array_equal(cut.overflow[:, b], nl.counts[:, b] - cut.counts[:, b])
        assert np.array_equal(cut.index[:, o_small : o_small + small[b]], nl.index[:, o_big : o_big + small[b]])
        assert_bitwise_equal(cut.vectors[:, o_small : o_small + small[b]], nl.vectors[:, o_big : o_big + small[b]])

    # mixed types: one block, the union of the type blocks sorted by distance
    mixed = build_neighbor_list(coords, cell, types, RCUT, [800], mixed_types=True)
    assert_same_list(mixed, brute_force_neighbor_list(coords, cell, types, RCUT, [800], mixed_types=True))
    assert np.array_equal(mixed.counts[:, 0], nl.counts.sum(axis=1))
    check_list_invariants(mixed, coords, cell, RCUT)


def test_matches_ase_pair_count():
    """An independent implementation agrees on the pairs within rcut."""
    neighborlist = pytest.importorskip("ase.neighborlist")
    from ase import Atoms

    coords, cell, types = periodic_case("small", 3)
    nl = build_neighbor_list(coords, cell, types, RCUT, [500, 500])
    i, d = neighborlist.neighbor_list("id", Atoms(positions=coords, cell=cell, pbc=True), RCUT)
    assert np.array_equal(np.bincount(i, minlength=len(coords)), nl.counts.sum(axis=1))
    ours = np.sort(np.linalg.norm(nl.vectors[nl.index >= 0], axis=-1))
    assert np.allclose(ours, np.sort(d), atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_cluster_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    coords = random_atoms(rng, 30, np.eye(3) * 9.0) - 20.0
    types = rng.integers(0, 3, len(coords))
    for sel, mixed in (([60, 60, 60], False), ([2, 4, 3], False), ([10], True)):
        nl = build_neighbor_list(coords, None, types, RCUT, sel, mixed_types=mixed)
        assert_same_list(nl, brute_force_neighbor_list(coords, None, types, RCUT, sel, mixed_types=mixed))
        check_list_invariants(nl, coords, None, RCUT)
        assert not np.any(nl.index == np.arange(len(coords))[:, None])  # no self neighbor


def test_cutoff_is_strict_and_ties_break_by_index():
    # atoms 1 and 2 both exactly 2 Å from atom 0, atom 3 exactly at rcut
    coords = np.array([[0.0, 0, 0], [0, 2.0, 0], [2.0, 0, 0], [0, 0, 4.0]])
    nl = build_neighbor_list(coords, None, [0, 0, 0, 0], 4.0, [3])
    assert nl.index[0].tolist() == [1, 2, -1]
    assert nl.vectors[0, :2].tolist() == [[0, 2.0, 0], [2.0, 0, 0]]
    nl = build_neighbor_list(coords, None, [0, 0, 0, 0], np.nextafter(4.0, 5.0), [3])
    assert nl.index[0].tolist() == [1, 2, 3]


def test_long_flat_cluster():
    # vesin 0.6.2's non-periodic mode crashes the process (SIGFPE) on this one
    coords = np.array([[0.0, 0, 0], [6e5, 0, 0], [1.0, 0, 0]])
    nl = build_neighbor_list(coords, None, [0, 0, 0], 6.0, [4])
    assert nl.counts[:, 0].tolist() == [1, 0, 1]
    assert nl.index[0, 0] == 2 and nl.index[2, 0] == 0


def test_thread_count_does_not_change_result():
    rng = np.random.default_rng(7)
    cell = random_cell(rng, (14.0, 16.0))
    coords = random_atoms(rng, 300, cell, frac_range=(-1.0, 2.0), min_dist=0.9)
    types = rng.integers(0, 2, len(coords))
    lists = [build_neighbor_list(coords, cell, types, RCUT, [40, 40], n_threads=n) for n in (1, 2)]
    assert lists[0].n_overflow > 0
    assert_same_list(lists[0], lists[1])


def test_single_atom():
    nl = build_neighbor_list([[1.0, 2.0, 3.0]], None, [0], RCUT, [4, 4])
    assert nl.index.tolist() == [[-1] * 8]
    assert np.all(nl.vectors == 0.0) and nl.counts.tolist() == [[0, 0]] and nl.overflow.tolist() == [[0, 0]]

    # in a 3 Å cube with rcut 6 the atom sees its own images: |T| < 2 over integer T != 0
    nl = build_neighbor_list([[0.4, 0.5, 0.6]], np.eye(3) * 3.0, [0], RCUT, [40])
    assert nl.counts.tolist() == [[26]] and nl.overflow.tolist() == [[0]]
    assert np.all(nl.index[0, :26] == 0)
    d = np.linalg.norm(nl.vectors[0, :26], axis=1)
    assert np.allclose(d[:6], 3.0) and np.allclose(d[6:18], 3.0 * np.sqrt(2)) and np.allclose(d[18:], 3.0 * np.sqrt(3))
    # equal distances ordered by vector: the six face images from -x to +z
    assert np.array_equal(nl.vectors[0, :6], [[-3, 0, 0], [0, -3, 0], [0, 0, -3], [0, 0, 3], [0, 3, 0], [3, 0, 0]])


def test_cell_as_flat_nine_and_list_inputs():
    coords, cell, types = periodic_case("orthorhombic", 1)
    a = build_neighbor_list(coords, cell, types, RCUT, [50, 50])
    b = build_neighbor_list(coords.tolist(), cell.reshape(9).tolist(), types.tolist(), int(RCUT), (50, 50))
    assert_same_list(a, b)


# ---------------------------------------------------------------- bad inputs


def raises(match, *args, **kwargs):
    with pytest.raises(InputError, match=match):
        build_neighbor_list(*args, **kwargs)


def test_bad_inputs():
    coords = np.array([[0.0, 0, 0], [1.5, 0, 0], [0, 1.5, 0]])
    cell = np.eye(3) * 10.0
    types = np.array([0, 1, 0])
    bad = coords.copy()
    bad[2, 1] = np.nan
    raises(r"coords of atom 2 are not finite", bad, cell, types, RCUT, [4, 4])
    raises(r"atom_types\[1\] = 2 for atom 1 is out of range", coords, cell, [0, 2, 0], RCUT, [4, 4])
    raises(r"atom_types\[0\] = -1", coords, None, [-1, 0, 0], RCUT, [4], mixed_types=True)
    raises(r"atom_types must be an integer", coords, cell, [0.0, 1.0, 0.0], RCUT, [4, 4])
    raises(r"atom_types must have shape \(3,\)", coords, cell, [0, 1], RCUT, [4, 4])
    raises(r"cell is singular", coords, np.array([[1.0, 0, 0], [0, 1, 0], [1, 1, 0]]), types, RCUT, [4, 4])
    raises(r"cell is singular", coords, np.zeros((3, 3)), types, RCUT, [4, 4])
    raises(r"cell must have shape", coords, np.eye(2), types, RCUT, [4, 4])
    raises(r"cell is not finite", coords, np.diag([1.0, np.inf, 1.0]), types, RCUT, [4, 4])
    raises(r"coords must have shape \(natoms, 3\)", coords[:, :2], cell, types, RCUT, [4, 4])
    raises(r"coords must have shape \(natoms, 3\)", coords.reshape(-1), cell, types, RCUT, [4, 4])
    raises(r"zero atoms", np.zeros((0, 3)), cell, np.zeros(0, np.int64), RCUT, [4, 4])
    raises(r"rcut must be a positive", coords, cell, types, 0.0, [4, 4])
    raises(r"rcut must be a positive", coords, cell, types, np.nan, [4, 4])
    raises(r"sel entries must be non-negative", coords, cell, types, RCUT, [4, -1])
    raises(r"sel must hold integers", coords, cell, types, RCUT, [4.5, 4])
    raises(r"sel is empty", coords, cell, types, RCUT, [])
    raises(r"single block", coords, cell, types, RCUT, [4, 4], mixed_types=True)
    raises(r"n_threads", coords, cell, types, RCUT, [4, 4], n_threads=0)


def test_overlapping_atoms():
    coords = np.array([[0.0, 0, 0], [1.5, 0, 0], [1.5, 0, 1e-9]])
    raises(r"atoms 1 and 2 coincide", coords, None, [0, 0, 0], RCUT, [4])
    # atom 1 sits on a periodic image of atom 0
    coords = np.array([[0.0, 0, 0], [10.0, 0, 0], [5.0, 5, 5]])
    message = r"atoms 0 and 1 \(periodic image shifted by \[-1, 0, 0\] cells\) coincide"
    raises(message, coords, np.eye(3) * 10.0, [0, 0, 0], RCUT, [4])


# ---------------------------------------------------------------- compiled candidates and rows vs twins


def _twin_inputs(xyz, box, rcut=RCUT, n_centers=None):
    search = search_radius(xyz, rcut)
    frac, wrapped, wrap, nbins, reach, _ = cell_list_bins(xyz, box, search)
    return (frac, wrapped, box, nbins, reach, search, len(xyz) if n_centers is None else n_centers), wrap


def test_cell_candidates_and_rows_equal_twins_many_bins():
    """Several bins per axis (reach 1), unwrapped atoms, and a sparse 3-D cluster whose bin grid is capped:
    the compiled candidates (images and CSR) and rows equal their numpy twins bit for bit."""
    rng = np.random.default_rng(11)
    cell = random_cell(rng, (22.0, 26.0))
    coords = random_atoms(rng, 400, cell, frac_range=(-0.5, 1.5), min_dist=1.0)
    sparse = rng.uniform(-3e3, 3e3, (40, 3))
    for xyz, box in ((coords, cell), (sparse, None)):
        types = rng.integers(0, 2, len(xyz)).astype(np.int32)
        args, wrap = _twin_inputs(xyz, box)
        nbins = args[3]
        if box is not None:
            assert min(nbins) >= 3
        else:
            assert np.prod(nbins) <= max(27, 2 * len(xyz))
        got, want = kernel.cell_candidates(*args, n_threads=2), twin.cell_candidates(*args)
        for g, w in zip(got, want):
            assert_bitwise_equal(g, w)
        owner, image_lattice, offsets, index = got
        lattice = None if wrap is None else wrap.astype(np.int32)
        frame = (xyz, types, len(xyz), offsets, index, RCUT, [60, 60], False)
        extra = dict(cell=box, lattice=lattice, image_owner=owner, image_lattice=image_lattice)
        rows, rows_twin = kernel.neighbor_rows(*frame, n_threads=2, **extra), twin.neighbor_rows(*frame, **extra)
        for g, w in zip(rows[:4], rows_twin[:4]):
            assert_bitwise_equal(g, w)
        assert rows[4] is None and rows_twin[4] is None


def test_rows_report_first_coincident_pair():
    cell = np.eye(3) * 5.0
    # atom 3 sits on atom 1's image one cell along +x; atoms 0 and 2 coincide exactly
    coords = np.array([[1.0, 1.0, 1.0], [0.5, 2.0, 2.0], [1.0, 1.0, 1.0], [5.5, 2.0, 2.0]])
    types = np.zeros(4, dtype=np.int32)
    c = find_candidates(coords, cell, RCUT)
    frame = (coords, types, 4, c.offsets, c.index, RCUT, [100], True)
    extra = dict(cell=cell, lattice=c.lattice, image_owner=c.image_owner, image_lattice=c.image_lattice)
    for n_threads in (1, 2):
        got = kernel.neighbor_rows(*frame, n_threads=n_threads, **extra)[4]
        assert got == twin.neighbor_rows(*frame, **extra)[4] == (0, 2, [0, 0, 0], 0.0)
    with pytest.raises(InputError, match="atoms 0 and 2 coincide"):
        build_neighbor_list(coords, cell, types, RCUT, [100])
    # without atom 2: atom 3 (now 2) shifted one cell back lands on atom 1
    with pytest.raises(InputError, match=r"atoms 1 and 2 \(periodic image shifted by \[-1, 0, 0\] cells\)"):
        build_neighbor_list(coords[[0, 1, 3]], cell, types[:3], RCUT, [100])


def test_centers_only_rows_equal_the_full_list_head():
    """Atoms past n_centers (another rank's) are neighbors but get no row."""
    coords, cell, types = periodic_case("triclinic", 2)
    full = build_neighbor_list(coords, cell, types, RCUT, [60, 60])
    for nc in (0, 1, len(coords) // 2):
        part = build_neighbor_list(coords, cell, types, RCUT, [60, 60], n_centers=nc)
        for a, b in ((part.index, full.index[:nc]), (part.vectors, full.vectors[:nc]),
                     (part.counts, full.counts[:nc]), (part.overflow, full.overflow[:nc])):
            assert_bitwise_equal(a, b)
        args, _ = _twin_inputs(coords, cell, n_centers=nc)
        for g, w in zip(kernel.cell_candidates(*args), twin.cell_candidates(*args)):
            assert_bitwise_equal(g, w)
    with pytest.raises(InputError, match="n_centers"):
        build_neighbor_list(coords, cell, types, RCUT, [60, 60], n_centers=len(coords) + 1)


@pytest.mark.parametrize("mixed", [False, True])
def test_lattice_ties_and_empty_blocks(mixed):
    """Atoms on a grid: many exactly equal distances, broken by index then by vector; sel 0 blocks."""
    rng = np.random.default_rng(3)
    grid = np.array([[x, y, z] for x in range(3) for y in range(3) for z in range(3)], dtype=float) * 1.5
    cell = np.eye(3) * 4.5  # the grid's own period: neighbors are images of grid points
    types = rng.integers(0, 3, len(grid))
    for sel in ([[200]] if mixed else [[80, 80, 80], [5, 0, 7], [0, 0, 3]]):
        nl = build_neighbor_list(grid, cell, types, RCUT, sel, mixed_types=mixed, n_threads=2)
        assert_same_list(nl, brute_force_neighbor_list(grid, cell, types, RCUT, sel, mixed_types=mixed))
        d = np.linalg.norm(nl.vectors[0, : nl.counts[0, 0]], axis=1)
        assert np.sum(np.isclose(d[:-1], d[1:])) >= min(10, len(d) - 1)  # ties were there to break
        if not mixed and sel[1] == 0:
            assert np.all(nl.counts[:, 1] == 0) and np.all(nl.overflow[:, 1] > 0)
