"""Domain decomposition: each rank's share (owned atoms + ghosts within rcut) sums to the serial result.

The shares are computed here for every rank of a virtual communicator in one
process (``rank_contribution``); ``test_under_mpiexec`` runs the real thing
with ``mpiexec -n 2`` and ``-n 4`` when mpi4py and an MPI launcher are installed.
"""

import os
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

from conftest import REPO, TINY
from dpcompress import Potential
from dpcompress.compress import compress
from dpcompress.evaluate.frame import make_plan
from dpcompress.parallel.domain import local_system, rank_contribution, rank_grid, unpack


@pytest.fixture(scope="module")
def compressed():
    return compress(os.path.join(TINY, "frozen.dp"))


def water(triclinic=True):
    f = np.load(os.path.join(TINY, "test_frames.npz"))
    coords, cell = f["coord"][0].astype(float), f["box"][0].astype(float)
    if triclinic:  # shear the cell (and the atoms with it): a genuinely triclinic frame
        shear = np.array([[1.0, 0.0, 0.0], [0.15, 1.0, 0.0], [-0.1, 0.2, 1.0]])
        coords, cell = coords @ shear, cell @ shear
    return coords, cell, f["atype"].astype(np.int64)


def cluster():
    coords, cell, types = water(False)
    keep = np.linalg.norm(coords - coords[0], axis=1) < 7.0
    return coords[keep], None, types[keep]


def decomposed(model, coords, cell, types, size):
    plan = make_plan(model)
    total = sum(rank_contribution(plan, coords, cell, types, r, size, model.rcut)[0] for r in range(size))
    return unpack(total, len(types))


def test_rank_grid():
    assert rank_grid(1, [10, 10, 10]) == (1, 1, 1)
    assert sorted(rank_grid(4, [10, 10, 10])) == [1, 2, 2]
    assert rank_grid(2, [30, 10, 10]) == (2, 1, 1)
    assert rank_grid(8, [10, 10, 10]) == (2, 2, 2)


@pytest.mark.parametrize("size", [2, 3, 4, 8])
def test_owned_atoms_partition_and_ghosts_cover_rcut(size):
    coords, cell, _ = water()
    owners = np.zeros(len(coords), dtype=int)
    for r in range(size):
        local, origin, n_owned = local_system(coords, cell, r, size, 6.0)
        owners[origin[:n_owned]] += 1
        # every neighbor of an owned atom within rcut is present locally, at its image position
        d = np.linalg.norm(local[:n_owned, None] - local[None], axis=-1)
        counts_local = (d < 6.0).sum(axis=1) - 1
        frac = np.linalg.solve(cell.T, (coords[origin[:n_owned], None] - coords[None]).reshape(-1, 3).T).T
        n_img = 0
        for s in np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1])).T.reshape(-1, 3):
            dd = np.linalg.norm((frac - np.round(frac) + s) @ cell, axis=1)
            n_img += (dd < 6.0).reshape(n_owned, -1).sum(axis=1) if n_owned else 0
        np.testing.assert_array_equal(counts_local, np.asarray(n_img) - 1)
    np.testing.assert_array_equal(owners, 1)


@pytest.mark.parametrize("system", ["triclinic", "cluster"])
@pytest.mark.parametrize("size", [1, 2, 4])
def test_decomposed_equals_serial(compressed, system, size):
    coords, cell, types = water() if system == "triclinic" else cluster()
    serial = Potential(compressed).eval(coords[None], None if cell is None else cell[None], types, atomic=True)
    r = decomposed(compressed, coords, cell, types, size)
    e, f, v, ae, av = serial
    assert abs(r["energy"] - e[0, 0]) <= 1e-10 * abs(e[0, 0])
    np.testing.assert_allclose(r["force"], f[0], rtol=0, atol=1e-10 * np.abs(f).max())
    np.testing.assert_allclose(r["virial"].ravel(), v[0], rtol=0, atol=1e-10 * np.abs(v).max())
    np.testing.assert_allclose(r["atom_energy"], ae[0, :, 0], rtol=1e-10)
    np.testing.assert_allclose(r["atom_virial"].reshape(-1, 9), av[0], rtol=0, atol=1e-10 * np.abs(av).max())


def test_a_rank_without_atoms(compressed):
    """Two molecules far apart along x, 4 ranks split along x: the middle ranks own nothing."""
    coords = np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0], [30.0, 0, 0], [30.96, 0, 0], [29.76, 0.93, 0]])
    types = np.array([0, 1, 1, 0, 1, 1])
    owned = [local_system(coords, None, r, 4, 6.0)[2] for r in range(4)]
    assert 0 in owned and sum(owned) == 6
    serial = Potential(compressed).eval(coords[None], None, types)
    r = decomposed(compressed, coords, None, types, 4)
    assert abs(r["energy"] - serial[0][0, 0]) <= 1e-10 * abs(serial[0][0, 0])
    np.testing.assert_allclose(r["force"], serial[1][0], atol=1e-12)


MPI_SCRIPT = """
import sys, numpy as np
from mpi4py import MPI
sys.path.insert(0, {tests!r})
from test_domain_decomposition import water, cluster
from dpcompress import Potential
from dpcompress.compress import compress
comm = MPI.COMM_WORLD
cm = compress({model!r})
out = {{}}
for name, (c, cell, t) in (("triclinic", water()), ("cluster", cluster())):
    e, f, v = Potential(cm, comm=comm, n_threads=1).eval(c[None], None if cell is None else cell[None], t)
    out[name + "_e"], out[name + "_f"], out[name + "_v"] = e, f, v
if comm.rank == 0:
    np.savez(sys.argv[1], **out)
"""


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [2, 4])
def test_under_mpiexec(compressed, tmp_path, ranks):
    pytest.importorskip("mpi4py", reason="mpi4py not installed (pip install 'dpcompress[mpi]')")
    mpiexec = os.path.join(sysconfig.get_path("scripts"), "mpiexec")
    if not os.path.exists(mpiexec):
        pytest.skip("no mpiexec next to this Python (pip install mpich)")
    script = tmp_path / "run.py"
    script.write_text(MPI_SCRIPT.format(tests=os.path.join(REPO, "tests"), model=os.path.join(TINY, "frozen.dp")))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    out = tmp_path / "out.npz"
    proc = subprocess.run(
        [mpiexec, "-n", str(ranks), sys.executable, "-m", "mpi4py", str(script), str(out)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(out)
    for name, (c, cell, t) in (("triclinic", water()), ("cluster", cluster())):
        e, f, v = Potential(compressed).eval(c[None], None if cell is None else cell[None], t)
        assert abs(got[name + "_e"][0, 0] - e[0, 0]) <= 1e-10 * abs(e[0, 0])
        np.testing.assert_allclose(got[name + "_f"], f, rtol=0, atol=1e-10 * np.abs(f).max())
        np.testing.assert_allclose(got[name + "_v"], v, rtol=0, atol=1e-10 * np.abs(v).max())
