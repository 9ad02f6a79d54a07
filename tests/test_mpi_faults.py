"""MPI faults under ``Potential(..., comm=)``: every rank ends with the same clear error, never a hang.

One ``mpiexec -n 2`` run of ``tests/mpi_faults_child.py`` plays every scenario on one communicator
(a NaN on one rank only, coincident atoms in one rank's domain, different frames, an exception in
one rank's share, a model missing on one rank, different models) and the cases that must agree with
the serial result (table and sel overflow counts, NEP).  The run has a timeout: a hang fails the
tests whose scenarios did not finish, it does not hang the suite.  Skipped when mpi4py or mpiexec is
missing, like the other MPI tests.
"""

import json
import os
import re
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import DATA, REPO, TINY, mpiexec_or_skip
from dpcompress import Potential, compress
from dpcompress.parallel.agreement import _rebuild, digest
from dpcompress.parallel.domain import owners

TIMEOUT = 120
CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_faults_child.py")
NEP = os.path.join(DATA, "nep", "PbTe_NEP4_example")


@pytest.fixture(scope="module")
def compressed():
    return compress(os.path.join(TINY, "frozen.dp"))


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """What each of the 2 ranks raised per scenario, and their numeric results."""
    mpiexec = mpiexec_or_skip()
    out = tmp_path_factory.mktemp("mpi_faults")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    # a session of its own, so that a hang ends with every process of the run (mpiexec's ranks too)
    proc = subprocess.Popen([mpiexec, "-n", "2", sys.executable, "-m", "mpi4py", CHILD, str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=TIMEOUT)
        hung = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate()
        hung = True
    runs = []
    for r in range(2):
        path = out / f"rank{r}.json"
        errors = json.loads(path.read_text()) if path.exists() else {}
        npz = out / f"rank{r}.npz"
        runs.append((errors, dict(np.load(npz)) if npz.exists() else {}))
    return dict(runs=runs, hung=hung, returncode=proc.returncode, stderr=stderr)


def outcome(ranks, name):
    """Each rank's (class, message) of scenario ``name``; fails when a rank never finished it."""
    got = [errors.get(name, "missing") for errors, _ in ranks["runs"]]
    if "missing" in got:
        why = f"hung (killed after {TIMEOUT} s)" if ranks["hung"] else f"exit status {ranks['returncode']}"
        pytest.fail(f"scenario {name!r} did not finish on every rank: {why}\n{ranks['stderr'][-3000:]}")
    return got


def same_error(ranks, name):
    """The one (class, message) every rank raised in scenario ``name``."""
    got = outcome(ranks, name)
    assert got[0] is not None, f"{name}: no error raised"
    assert got[0] == got[1], f"{name}: the ranks raised different errors: {got}"
    return got[0]


def arrays(ranks, key):
    """Rank 0's array ``key``, after checking that rank 1 returned the very same."""
    a, b = (numeric.get(key) for _, numeric in ranks["runs"])
    assert a is not None and b is not None, f"{key} missing: {ranks['stderr'][-3000:]}"
    np.testing.assert_array_equal(a, b)
    return a


def water():
    f = np.load(os.path.join(TINY, "test_frames.npz"))
    return f["coord"][0].astype(float).reshape(-1, 3), f["box"][0].astype(float).reshape(3, 3), f["atype"].astype(int)


pytestmark = pytest.mark.mpi


def test_nan_on_one_rank_raises_on_every_rank(ranks):
    """Rank 1's copy of the frame has a NaN: it fails its argument checks alone, yet both end."""
    kind, msg = same_error(ranks, "nan_on_rank_1")
    assert kind == "InputError"
    assert "atom 5" in msg and "rank 1 of 2" in msg


def test_coincident_atoms_named_by_global_index(ranks):
    """Two atoms of rank 1's domain at one place: named by the frame's indices, not rank 1's order."""
    coords, cell, _ = water()
    mine = np.flatnonzero(owners(coords, cell, 2) == 1)  # rank 1's atoms, its centers 0, 1, ... in this order
    local = np.flatnonzero(mine != np.arange(len(mine)))[-2:]  # the pair's places there (mpi_faults_child.py)
    kind, msg = same_error(ranks, "coincident")
    assert kind == "InputError" and msg.startswith("frame 0: ") and "coincide" in msg and "rank 1 of 2" in msg
    named = {int(k) for k in re.search(r"atoms (\d+) and (\d+)", msg).groups()}
    assert named == {int(g) for g in mine[local]} and named.isdisjoint(local)


@pytest.mark.parametrize("name", ["different_frames", "different_frame_counts"])
def test_different_frames_raise_on_every_rank(ranks, name):
    kind, msg = same_error(ranks, name)
    assert kind == "InputError"
    assert "different frames: rank 1 differs from rank 0" in msg


def test_an_exception_in_one_ranks_share(ranks):
    """Any exception of one rank's own work (not only dpcompress's errors) is agreed on."""
    assert same_error(ranks, "error_in_one_share") == ["RuntimeError", "injected failure (reported by rank 1 of 2)"]


def test_construction_errors_agreed(ranks):
    kind, msg = same_error(ranks, "model_missing_on_rank_1")
    assert kind == "ModelFormatError" and "missing.dpc" in msg and "rank 1 of 2" in msg
    kind, msg = same_error(ranks, "different_models")
    assert kind == "InputError" and "different models: rank 1 differs from rank 0" in msg
    kind, msg = same_error(ranks, "uncompressed_model")  # exact models refuse comm, as before
    assert kind == "UnsupportedModelError" and "compress the model first" in msg


def test_table_overflow_counts_equal_serial(ranks, compressed):
    """A close contact beyond the fine table: the same counts at 2 ranks as serially (not zero)."""
    assert outcome(ranks, "close_contact") == [None, None]
    coords, cell, types = water()
    coords[1] = coords[0] + [0.3, 0.0, 0.0]
    p = Potential(compressed, n_threads=1, check_frequency=-1)
    e = p.eval(coords[None], cell[None], types)[0]
    serial = [p.table_overflow["beyond_fine"], p.table_overflow["beyond_table"]]
    assert serial[0] > 0
    assert arrays(ranks, "close_table").tolist() == serial
    assert abs(arrays(ranks, "close_e")[0, 0] - e[0, 0]) <= 1e-10 * abs(e[0, 0])


def test_sel_and_table_overflow_warnings_equal_serial(ranks, compressed):
    """300 O atoms in 9 Å: the dropped-neighbor total, the worst center and the table counts are the serial ones."""
    assert outcome(ranks, "sel_overflow") == [None, None]
    x = np.random.default_rng(0).uniform(0, 9.0, size=(300, 3))
    p = Potential(compressed, n_threads=1, check_frequency=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = p.eval(x[None], np.eye(3)[None] * 9.0, np.zeros(300, dtype=int))[0]
    counts = [p.last_overflow, p.table_overflow["beyond_fine"], p.table_overflow["beyond_table"]]
    assert counts[0] > 0 and counts[1] > 0
    assert arrays(ranks, "sel_counts").tolist() == counts
    assert outcome(ranks, "sel_warnings") == [sorted(f"{w.category.__name__}: {w.message}" for w in caught)] * 2
    assert abs(arrays(ranks, "sel_e")[0, 0] - e[0, 0]) <= 1e-10 * abs(e[0, 0])


def test_nep_decomposes_and_equals_serial(ranks):
    """NEP under comm runs decomposed (each rank its own atoms) and gives the serial result."""
    assert outcome(ranks, "nep") == [None, None]
    z = np.load(os.path.join(NEP, "slab001_vacuum_96.npz"))
    serial = Potential(os.path.join(NEP, "nep.txt"), n_threads=1).eval(z["positions"][None], z["cell"][None],
                                                                        z["type_index"], atomic=True)
    for k, ref in zip(("e", "f", "v", "ae", "av"), serial):
        np.testing.assert_allclose(arrays(ranks, "nep_" + k), ref, rtol=0, atol=1e-12 * np.abs(ref).max(), err_msg=k)


def test_still_works_after_failures(ranks, compressed):
    """After every failure above, the same Potential on the same communicator evaluates correctly."""
    assert outcome(ranks, "still_works") == [None, None]
    coords, cell, types = water()
    e, f, v = Potential(compressed, n_threads=1).eval(coords[None], cell[None], types)
    assert abs(arrays(ranks, "after_e")[0, 0] - e[0, 0]) <= 1e-10 * abs(e[0, 0])
    np.testing.assert_allclose(arrays(ranks, "after_f"), f, rtol=0, atol=1e-10 * np.abs(f).max())
    np.testing.assert_allclose(arrays(ranks, "after_v"), v, rtol=0, atol=1e-10 * np.abs(v).max())
    assert ranks["returncode"] == 0, ranks["stderr"][-3000:]


# ------------------------------------------------------------------ no MPI needed


def test_digest_tells_frames_apart():
    coords, cell, types = water()
    d = digest(coords, cell, types)
    assert 0 <= d < 2**62 and d == digest(coords.copy(), cell.copy(), types.copy())
    moved = coords.copy()
    moved[7, 2] = np.nextafter(moved[7, 2], np.inf)  # one ulp
    assert len({d, digest(moved, cell, types), digest(coords, None, types), digest(coords[None], cell, types),
                digest(coords, cell, types.astype(np.int32))}) == 5


def test_rebuilt_errors_keep_class_and_message():
    from dpcompress.core.errors import InputError

    exc = _rebuild("dpcompress.core.errors", "InputError", "atoms 1 and 2 coincide")
    assert type(exc) is InputError and str(exc) == "atoms 1 and 2 coincide"
    assert type(_rebuild("builtins", "MemoryError", "m")) is MemoryError
    # a class not loaded here, or one whose constructor wants other arguments: a RuntimeError naming it
    assert str(_rebuild("no.such.module", "Error", "m")) == "Error: m"
    assert type(_rebuild("builtins", "UnicodeDecodeError", "m")) is RuntimeError
