"""Guards of the evaluation path (issue 13): fork safety, lattice reduction and bounded neighbor
search, finite outputs, frames without atoms, coordinates too far away to be precise."""

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from conftest import REPO, TINY, random_rotation
from dpcompress import Potential, compress, load_model, save_model
from dpcompress.core.errors import InputError, NumericalError
from dpcompress.core.lattice import reduce_cell
from dpcompress.core.warnings import CoordinatePrecisionWarning, NeighborOverflowWarning
from dpcompress.neighbors import find_candidates
from dpcompress.neighbors.candidates import MAX_SCREENED_PER_ATOM
from dpcompress.reference.runtime import compute as twin

WATER3 = (np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]]), np.diag([5.0, 5.0, 5.0]), np.array([0, 1, 1]))


@pytest.fixture(scope="module")
def compressed():
    return compress(os.path.join(TINY, "frozen.dp"))


@pytest.fixture(scope="module")
def pot(compressed):
    return Potential(compressed, n_threads=2)


@pytest.fixture(scope="module")
def dpc_file(compressed, tmp_path_factory):
    path = tmp_path_factory.mktemp("guards") / "tiny.dpc"
    save_model(compressed, str(path))
    return str(path)


def frame(k=0):
    z = np.load(os.path.join(TINY, "test_frames.npz"))
    return z["coord"][k].astype(float), z["box"][k].astype(float), z["atype"].astype(np.int64)


# ---------------------------------------------------------------------------------------- fork

FORK_SCRIPT = textwrap.dedent("""
    import json, multiprocessing as mp, os, sys, warnings
    import numpy as np
    from dpcompress import Potential
    from dpcompress._ext import openmp_info, threads

    path, frames = sys.argv[1], np.load(sys.argv[2])
    x, box, t = frames["coord"][:1].astype(float), frames["box"][:1].astype(float), frames["atype"]
    pot = Potential(path, n_threads=2)
    e, f, v = pot.eval(x, box, t)  # the parent's OpenMP pool now exists

    def child(k):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            out = pot.eval(x, box, t)                      # made in the parent with n_threads=2
            again = Potential(path, n_threads=2).eval(x, box, t)
        fork_warnings = [w for w in seen if w.category.__name__ == "ForkThreadsWarning"]
        return dict(pid=os.getpid(), same=all(np.array_equal(a, b) for a, b in zip(out + again, (e, f, v) * 2)),
                    threads_used=openmp_info.threads_used(2), forked=threads.in_forked_child(),
                    warnings=len(fork_warnings))

    with mp.get_context("fork").Pool(2) as pool:
        result = pool.map(child, [0, 1, 2, 3], chunksize=1)
    print(json.dumps(dict(children=result, parent_threads=openmp_info.threads_used(2))))
""")


def test_fork_pool_after_two_thread_eval(dpc_file, tmp_path):
    """libgomp's pool does not survive fork: children run one thread, get the parent's numbers, warn once."""
    script = tmp_path / "fork_pool.py"
    script.write_text(FORK_SCRIPT)
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen([sys.executable, str(script), dpc_file, os.path.join(TINY, "test_frames.npz")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the pool's workers too
        proc.communicate()
        pytest.fail("a fork-context Pool hung after a 2-thread evaluation in the parent")
    assert proc.returncode == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert res["parent_threads"] == 2
    for c in res["children"]:
        assert c["same"] and c["forked"] and c["threads_used"] == 1
    per_process = {}
    for c in res["children"]:
        per_process[c["pid"]] = per_process.get(c["pid"], 0) + c["warnings"]
    assert set(per_process.values()) == {1}  # explicit n_threads=2: one warning per child process


# ----------------------------------------------------------------------------- lattice reduction

def sheared(cell, k):
    """The same lattice written with b + k a and c + k^2 a + k b (exact in float64 for k <= 1000)."""
    out = cell.copy()
    out[1] = cell[1] + k * cell[0]
    out[2] = cell[2] + k * k * cell[0] + k * cell[1]
    return out


def test_reduction_is_identity_on_reduced_cells():
    hexagonal = np.array([[3.0, 0, 0], [-1.5, 1.5 * np.sqrt(3), 0], [0, 0, 5.0]])
    for cell in (np.diag([4.0, 5.0, 6.0]), hexagonal, frame()[1]):
        r = reduce_cell(cell)
        assert r.cell is cell and not r.changed


def test_reduction_exact_and_idempotent():
    rng = np.random.default_rng(7)
    for _ in range(50):
        a = rng.normal(size=(3, 3)) * 6
        u = np.eye(3, dtype=np.int64)
        for _ in range(4):  # a random product of shears: unimodular, det +1, entries below 2e4
            i, j = rng.choice(3, 2, replace=False)
            u[i] += int(rng.integers(-12, 13)) * u[j]
        r = reduce_cell(u @ a)
        assert round(np.linalg.det(r.transform)) == 1
        m = r.cell @ np.linalg.inv(a)
        assert np.allclose(m, np.round(m), atol=1e-8)  # the same lattice
        assert not reduce_cell(r.cell).changed
        for i in range(3):  # Minkowski's conditions: no combination with coefficients 0, ±1 is shorter
            j, l = [x for x in range(3) if x != i]
            for s, t in itertools.product((-1, 0, 1), repeat=2):
                if s or t:
                    v = r.cell[i] + s * r.cell[j] + t * r.cell[l]
                    assert v @ v >= (1 - 1e-9) * (r.cell[i] @ r.cell[i])
        assert np.allclose(np.sort(np.linalg.norm(r.cell, axis=1)),
                           np.sort(np.linalg.norm(reduce_cell(a).cell, axis=1)), rtol=1e-9)


@pytest.mark.parametrize("k", [10, 1000])  # volume 1e-3 and 1e-9 of |a||b||c|
def test_sheared_cell_same_results_same_work(pot, k):
    x, box, t = frame()
    cell = sheared(box, k)
    ratio = abs(np.linalg.det(cell)) / np.prod(np.linalg.norm(cell, axis=1))
    assert ratio < 2e-3
    plain = find_candidates(x, box, pot.get_rcut())
    skew = find_candidates(x, cell, pot.get_rcut())
    np.testing.assert_array_equal(skew.cell, box)  # reduced back to the plain basis, exactly
    assert skew.index.size == plain.index.size and skew.image_owner.size == plain.image_owner.size
    ref = pot.eval(x[None], box[None], t, atomic=True)
    out = pot.eval(x[None], cell[None], t, atomic=True)
    for a, b in zip(out, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())


def test_generic_equivalent_cell_all_front_ends(pot):
    """A rotated frame in a cell written with a random unimodular basis: the same numbers from the
    runtime, the ASE calculator and the exact evaluator."""
    from ase import Atoms

    from dpcompress.calculators.ase_calculator import DPCompressCalculator

    x, box, t = frame(1)
    rot = random_rotation(np.random.default_rng(3))
    x, box = x @ rot, box @ rot  # cell entries no longer exact multiples of each other
    u = np.array([[1, 0, 0], [7, 1, 0], [-30, 4, 1]])
    cell = u @ box
    assert reduce_cell(cell).changed
    ref = pot.eval(x[None], box[None], t)
    out = pot.eval(x[None], cell[None], t)
    for a, b in zip(out, ref):  # the input cell's own rounding: ~1e-13 of the largest force
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())
    atoms = Atoms(numbers=np.where(t == 0, 8, 1), positions=x, cell=cell, pbc=True)
    atoms.calc = DPCompressCalculator(pot)
    assert abs(atoms.get_potential_energy() - ref[0][0, 0]) <= 1e-12 * abs(ref[0][0, 0])
    np.testing.assert_allclose(atoms.get_forces(), ref[1][0], rtol=0, atol=1e-12 * np.abs(ref[1]).max())
    exact = Potential(os.path.join(TINY, "frozen.dp"))
    for a, b in zip(exact.eval(x[None], cell[None], t), exact.eval(x[None], box[None], t)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())


def test_tiny_cell_correct_or_refused(pot, compressed):
    # one atom in a 1 Å cube, rcut 6 Å: 2197 periodic copies, a few thousand images: runs, equals the
    # exhaustive numpy twin
    x, cell, t = np.zeros((1, 3)), np.eye(3), np.array([0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeighborOverflowWarning)
        e, f, v, ae, av = pot.eval(x[None], cell[None], t, atomic=True)
    te, tf, tv, _ = twin(compressed, x, cell, t)
    np.testing.assert_allclose(ae[0, :, 0], te, rtol=1e-12)
    np.testing.assert_allclose(f[0], tf, atol=1e-12)
    # 192 atoms in the same cube (192 atoms/Å^3): refused, naming the cell and the count
    xw, _, tw = frame()
    with pytest.raises(InputError, match=r"frame 0: cell too small for rcut = 6 Å: 192 atoms.*2197 periodic copies"
                                         r".*6\.48e\+05 atoms and images.*limit is 262144"):
        pot.eval(xw[None], np.eye(3)[None], tw)
    # a flat cell that no reduction rescues: refused the same way, at once
    flat = np.array([[12.0, 0, 0], [0, 12.0, 0], [12.0, 12.0, 0.012]])
    with pytest.raises(InputError, match="cell too small"):
        pot.eval(xw[None], flat[None], tw)
    assert MAX_SCREENED_PER_ATOM == 2**18


# ------------------------------------------------------------------------------ finite outputs

def test_nan_weight_names_frame_and_atom():
    model = load_model(os.path.join(TINY, "frozen.dp"))
    model.fitting.networks[1].layers[-1].b[0] = np.nan  # hydrogen's energy: NaN, its forces finite
    x, cell, t = WATER3
    pot = Potential(model)
    with pytest.raises(NumericalError, match=r"frame 0: .*non-finite result at atom 1 .*2 atoms affected"):
        pot.eval(x[None], cell[None], t)
    assert issubclass(NumericalError, FloatingPointError)


def test_overflowing_compressed_model_raises(compressed):
    import copy

    model = copy.deepcopy(compressed)
    last = model.fitting.networks[1].layers[-1]
    last.w[:] = 1e308  # finite weights (the model opens), infinite energies
    with pytest.raises(NumericalError, match=r"frame 0: .*non-finite result at atom \d+"):
        Potential(model).eval(WATER3[0][None], WATER3[1][None], WATER3[2])


def test_non_finite_output_names_the_frame(pot, monkeypatch):
    x, cell, t = WATER3
    real = pot.evaluator.evaluate_batch  # Potential.eval hands every frame to it (tests/test_batching.py)

    def poisoned(*args, **kwargs):
        batch = real(*args, **kwargs)
        batch.force[1, 2, 1] = np.inf
        return batch

    monkeypatch.setattr(pot.evaluator, "evaluate_batch", poisoned)
    with pytest.raises(NumericalError, match=r"frame 1: .*atom 2 "):
        pot.eval(np.stack([x, x]), np.stack([cell, cell]), t)


def test_non_finite_inputs_rejected_with_frame_and_atom(pot):
    x, cell, t = WATER3
    xs = np.stack([x, x])
    xs[1, 2, 0] = np.nan
    with pytest.raises(InputError, match=r"frame 1, atom 2"):
        pot.eval(xs, np.stack([cell, cell]), t)
    bad = np.stack([cell, cell])
    bad[1, 2, 2] = np.inf
    with pytest.raises(InputError, match=r"frame 1 is not finite"):
        pot.eval(np.stack([x, x]), bad, t)


# ----------------------------------------------------------------------------------- 0 atoms

def test_zero_atoms(pot):
    from ase import Atoms

    from dpcompress.calculators.ase_calculator import DPCompressCalculator

    cells = np.stack([np.eye(3) * 10.0] * 2)
    e, f, v, ae, av = pot.eval(np.zeros((2, 0)), cells, [], atomic=True)
    assert e.shape == (2, 1) and f.shape == (2, 0, 3) and v.shape == (2, 9)
    assert ae.shape == (2, 0, 1) and av.shape == (2, 0, 9)
    assert not e.any() and not v.any()
    e, f, v = pot.eval(np.zeros((1, 0, 3)), None, np.zeros(0, dtype=int))
    assert e.shape == (1, 1) and f.shape == (1, 0, 3) and not e.any()
    with pytest.raises(InputError, match="empty"):  # coordinates that do not fit no atoms
        pot.eval(np.zeros((1, 9)), cells[:1], [])
    atoms = Atoms(cell=np.eye(3) * 10.0, pbc=True)
    atoms.calc = DPCompressCalculator(pot)
    assert atoms.get_potential_energy() == 0.0
    assert atoms.get_forces().shape == (0, 3) and not atoms.get_stress().any()


# ---------------------------------------------------------------------------- far coordinates

def test_far_coordinates_warn_once(pot):
    x, _, t = WATER3
    xs = np.stack([x, x + 2.0**41])
    with pytest.warns(CoordinatePrecisionWarning, match=r"frame 1, atom 0 .* 0\.00049 Å apart") as seen:
        e, f, v = pot.eval(xs, None, t)
    assert len([w for w in seen if w.category is CoordinatePrecisionWarning]) == 1
    assert np.isfinite(e).all() and abs(e[1, 0] - e[0, 0]) < 0.1  # computed, less precisely
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoordinatePrecisionWarning)
        pot.eval((x + 1e9)[None], None, t)  # 1e9 Å: 1e-7 Å apart, silent
