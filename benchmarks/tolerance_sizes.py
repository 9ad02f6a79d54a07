"""Table size against force error: ``--tolerance`` (per-table strides) next to the uniform ``-s``.

Usage::

    python benchmarks/tolerance_sizes.py FIXTURE_DIR [--calibrate DATA ...] [--tolerances 1e-4 1e-6 ...]

FIXTURE_DIR holds ``frozen.dp``, ``test_frames.npz`` and ``test_frames_stress.npz`` (e.g.
``tests/data/deepmd/se_e2_a_tiny`` or the shared ``fixtures/deepmd/se_e2_a``).  Per tolerance it
compresses with :func:`dpcompress.tolerance.compress_to_tolerance`, calibrated on ``--calibrate``
(deepmd/npy systems; default: the test frames), and prints the tables' bytes and the max |ΔF|
against the exact model on the test frames and on the stress frames inside the table range; then
the largest uniform step (log bisection, 8 steps) whose model meets the same tolerance on the same
frames, and its bytes.
"""

import argparse
import os
import time
import warnings

import numpy as np

from dpcompress import Potential, compress, load_model
from dpcompress.core.warnings import TableAccuracyWarning
from dpcompress.data import read_systems
from dpcompress.descriptors import iter_tables
from dpcompress.tolerance import compress_to_tolerance


def frames_of(path):
    d = np.load(path)
    return [(d["coord"].astype(np.float64), d["box"].astype(np.float64), d["atype"])]


def table_bytes(model):
    return sum(t.coef.nbytes for t in iter_tables(model.descriptor))


def in_range(model, frames, ref):
    """The frames with no neighbor beyond ``model``'s tables, and their reference forces."""
    coords, box, types = frames[0]
    pot = Potential(model, overflow="ignore")
    keep = []
    for k in range(len(coords)):
        pot.eval(coords[k : k + 1], box[k : k + 1], types)
        if pot.table_overflow["beyond_table"] == 0:
            keep.append(k)
    return [(coords[keep], box[keep], types)], ref[keep]


def max_df(model, refs, frames):
    pot = Potential(model, overflow="ignore")
    return max(float(np.max(np.abs(pot.eval(c, b, t)[1] - r))) for (c, b, t), r in zip(frames, refs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("fixture")
    ap.add_argument("--calibrate", nargs="+", default=None)
    ap.add_argument("--tolerances", nargs="+", type=float, default=[1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10])
    a = ap.parse_args()
    model = load_model(os.path.join(a.fixture, "frozen.dp"))
    exact = Potential(model)
    test = frames_of(os.path.join(a.fixture, "test_frames.npz"))
    stress_all = frames_of(os.path.join(a.fixture, "test_frames_stress.npz"))
    calib = read_systems(a.calibrate) if a.calibrate else test
    test_ref = exact.eval(*test[0])[1]
    stress_ref = exact.eval(*stress_all[0])[1]
    default = compress(model)
    print(f"uniform -s 0.01: {table_bytes(default)} bytes")
    print("| TOL (eV/Å) | --tolerance: bytes | max ΔF test | max ΔF stress (in range, n) | uniform -s meeting TOL | its bytes | ratio | s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for tol in a.tolerances:
        t0 = time.perf_counter()
        m = compress_to_tolerance(model, tol, calib)
        dt = time.perf_counter() - t0
        stress, sref = in_range(m, stress_all, stress_ref)
        frames = test + stress
        refs = [test_ref, sref]
        e_test, e_stress = max_df(m, refs[:1], frames[:1]), max_df(m, refs[1:], frames[1:])
        good, bad = 1e-4, 0.64
        for _ in range(8):
            s = float(np.sqrt(good * bad))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TableAccuracyWarning)
                ok = max_df(compress(model, step=s), refs, frames) <= tol
            good, bad = (s, bad) if ok else (good, s)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TableAccuracyWarning)
            ub = table_bytes(compress(model, step=good))
        print(f"| {tol:.0e} | {table_bytes(m)} | {e_test:.1e} | {e_stress:.1e} ({len(stress[0][0])}) | {good:.4f} | {ub} | "
              f"{table_bytes(m) / ub:.2f} | {dt:.1f} |", flush=True)


if __name__ == "__main__":
    main()
