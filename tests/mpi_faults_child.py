"""Child of tests/test_mpi_faults.py, run as ``mpiexec -n 2 python -m mpi4py mpi_faults_child.py OUT``.

Runs every fault scenario in turn on the same communicator and writes, per rank, what each one
raised (class, message) to ``OUT/rank<r>.json`` after every scenario, so that a scenario that hangs
leaves the earlier ones' results behind; numeric results go to ``OUT/rank<r>.npz`` at the end.
"""

import json
import os
import sys
import warnings

import numpy as np
from mpi4py import MPI

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import DATA, TINY  # noqa: E402

from dpcompress import Potential, compress  # noqa: E402
from dpcompress.nep import read_nep  # noqa: E402
from dpcompress.parallel.domain import owners  # noqa: E402

comm = MPI.COMM_WORLD
rank = comm.rank
out = sys.argv[1]
errors, arrays = {}, {}
NEP = os.path.join(DATA, "nep", "PbTe_NEP4_example")


def water():
    f = np.load(os.path.join(TINY, "test_frames.npz"))
    return f["coord"][0].astype(float).reshape(-1, 3), f["box"][0].astype(float).reshape(3, 3), f["atype"].astype(int)


def coincident_pair(coords, cell):
    """Two atoms owned by rank 1 whose places in rank 1's reordered frame differ from their indices."""
    mine = np.flatnonzero(owners(coords, cell, 2) == 1)
    i, j = (int(k) for k in mine[np.flatnonzero(mine != np.arange(len(mine)))[-2:]])
    return i, j


def scenario(name, fn):
    """Run one scenario; record the exception it raised on this rank (or None)."""
    try:
        fn()
        errors[name] = None
    except Exception as exc:  # noqa: BLE001 - the test compares whatever each rank raised
        errors[name] = [type(exc).__name__, str(exc)]
    with open(os.path.join(out, f"rank{rank}.json"), "w") as fh:
        json.dump(errors, fh)


cm = compress(os.path.join(TINY, "frozen.dp"))
pot = Potential(cm, comm=comm, n_threads=1)
coords, cell, types = water()


def nan_on_rank_1():
    c = coords.copy()
    if rank == 1:
        c[5, 1] = np.nan
    pot.eval(c[None], cell[None], types)


def coincident():
    c = coords.copy()
    i, j = coincident_pair(coords, cell)
    c[i] = c[j]
    pot.eval(c[None], cell[None], types)


def different_frames():
    c = coords.copy()
    if rank == 1:
        c[0, 0] += 1e-3
    pot.eval(c[None], cell[None], types)


def different_frame_counts():
    n = 2 if rank == 0 else 1
    pot.eval(np.repeat(coords[None], n, axis=0), np.repeat(cell[None], n, axis=0), types)


def error_in_one_share():
    share = pot.evaluator.share

    def failing(*args, **kwargs):
        raise RuntimeError("injected failure")

    if rank == 1:
        pot.evaluator.share = failing
    try:
        pot.eval(coords[None], cell[None], types)
    finally:
        pot.evaluator.share = share


def model_missing_on_rank_1():
    Potential(cm if rank == 0 else os.path.join(out, "missing.dpc"), comm=comm, n_threads=1)


def different_models():
    Potential(cm if rank == 0 else read_nep(os.path.join(NEP, "nep.txt")), comm=comm, n_threads=1)


def uncompressed_model():
    Potential(os.path.join(TINY, "frozen.dp"), comm=comm, n_threads=1)


def close_contact():
    c = coords.copy()
    c[1] = c[0] + [0.3, 0.0, 0.0]  # far inside the training set's minimum distance: beyond the fine table
    p = Potential(cm, comm=comm, n_threads=1, check_frequency=-1)
    arrays["close_e"] = p.eval(c[None], cell[None], types)[0]
    arrays["close_table"] = np.array([p.table_overflow["beyond_fine"], p.table_overflow["beyond_table"]])


def sel_overflow():
    """300 O atoms in a 9 Å box: more O neighbors than sel, and contacts beyond the table."""
    x = np.random.default_rng(0).uniform(0, 9.0, size=(300, 3))
    p = Potential(cm, comm=comm, n_threads=1, check_frequency=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arrays["sel_e"] = p.eval(x[None], np.eye(3)[None] * 9.0, np.zeros(300, dtype=int))[0]
    counts = p.last_overflow, p.table_overflow["beyond_fine"], p.table_overflow["beyond_table"]
    arrays["sel_counts"] = np.array(counts)
    errors["sel_warnings"] = sorted(f"{w.category.__name__}: {w.message}" for w in caught)


def nep():
    z = np.load(os.path.join(NEP, "slab001_vacuum_96.npz"))
    p = Potential(os.path.join(NEP, "nep.txt"), comm=comm, n_threads=1)
    assert type(p.evaluator).__name__ == "DecomposedEvaluator"
    got = p.eval(z["positions"][None], z["cell"][None], z["type_index"], atomic=True)
    for k, v in zip(("e", "f", "v", "ae", "av"), got):
        arrays["nep_" + k] = v


def still_works():
    """After all the failures above, the same Potential on the same communicator still evaluates."""
    arrays["after_e"], arrays["after_f"], arrays["after_v"] = pot.eval(coords[None], cell[None], types)


for fn in (nan_on_rank_1, coincident, different_frames, different_frame_counts, error_in_one_share,
           model_missing_on_rank_1, different_models, uncompressed_model, close_contact, sel_overflow, nep,
           still_works):
    scenario(fn.__name__, fn)
np.savez(os.path.join(out, f"rank{rank}.npz"), **arrays)
