"""Domain decomposition: each rank's share (its owned atoms as centers, every other atom and image
as a neighbor) sums to the serial result.

The shares are computed here for every rank of a virtual communicator in one process
(``DecomposedEvaluator.share``); ``test_under_mpiexec`` runs the real thing with ``mpiexec -n 2``
and ``-n 4`` (MPI errors agreed on collectively included).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, TINY, mpiexec_or_skip
from dpcompress import Potential
from dpcompress import compress
from dpcompress.evaluators.decomposed import DecomposedEvaluator, combine
from dpcompress.evaluators.runtime import RuntimeEvaluator
from dpcompress.modelfile import model_bytes
from dpcompress.parallel.domain import owners, rank_grid


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
    ev = DecomposedEvaluator(RuntimeEvaluator(model_bytes(model)), comm=None)
    shares = [ev.share(coords, cell, types, r, size) for r in range(size)]
    r = combine(sum(b for b, _ in shares), [w for _, w in shares], len(types))
    return dict(energy=r.energy, force=r.force, virial=r.virial, atom_energy=r.atom_energy, atom_virial=r.atom_virial)


def test_rank_grid():
    assert rank_grid(1, [10, 10, 10]) == (1, 1, 1)
    assert sorted(rank_grid(4, [10, 10, 10])) == [1, 2, 2]
    assert rank_grid(2, [30, 10, 10]) == (2, 1, 1)
    assert rank_grid(8, [10, 10, 10]) == (2, 2, 2)


@pytest.mark.parametrize("size", [2, 3, 4, 8])
def test_every_atom_has_one_owner(size):
    coords, cell, _ = water()
    own = owners(coords, cell, size)
    assert own.min() >= 0 and own.max() < size
    assert len(np.unique(own)) == size  # 192 atoms: every rank owns some


def test_decomposed_per_atom_energies_equal_serial_bitwise(compressed):
    """Each center sees the serial runtime's neighbors in the serial order (ties by the frame's index)."""
    coords, cell, types = water()
    serial = Potential(compressed, n_threads=1).eval(coords[None], cell[None], types, atomic=True)
    r = decomposed(compressed, coords, cell, types, 4)
    np.testing.assert_array_equal(r["atom_energy"], serial[3][0, :, 0])


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
    owned = np.bincount(owners(coords, None, 4), minlength=4)
    assert 0 in owned and owned.sum() == 6
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
from dpcompress import compress
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
    mpiexec = mpiexec_or_skip()
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
