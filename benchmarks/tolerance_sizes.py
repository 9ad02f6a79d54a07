"""Table size against force error: ``--tolerance`` (per-table strides) next to uniform ``-s`` steps.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/tolerance_sizes.py FIXTURE_DIR [--calibrate DATA ...] [--tolerances 1e-4 1e-6 ...]

FIXTURE_DIR holds ``frozen.dp``, ``test_frames.npz`` and ``test_frames_stress.npz`` (e.g.
``tests/data/deepmd/se_e2_a_tiny`` or the shared ``fixtures/deepmd/se_e2_a``).  One calibration
(:func:`dpcompress.tolerance.prepare_calibration`: the ``--calibrate`` deepmd/npy systems,
default the test frames, and their close contacts, with the exact forces) serves every tolerance.
Per tolerance it compresses with :func:`dpcompress.tolerance.compress_to_tolerance` and prints the
tables' bytes and the max |ΔF| against the exact model on the test frames and on the stress frames
inside the table range; then two uniform steps and their bytes:

* *fair*: the largest uniform ``-s`` meeting TOL as the tolerance defines it, on the calibration
  and contact frames (:func:`dpcompress.tolerance.largest_uniform_step`);
* *oracle*: the largest uniform ``-s`` meeting TOL on the judged test and stress frames themselves.

Both are log bisections on [0.001, 2.56] (10 compressions).
"""

import argparse
import math
import os
import time
import warnings

import numpy as np

from dpcompress import Potential, compress, load_model
from dpcompress.core.warnings import TableAccuracyWarning
from dpcompress.data import read_systems
from dpcompress.tolerance import cm_size, compress_to_tolerance, largest_uniform_step, prepare_calibration


def frames_of(path):
    d = np.load(path)
    return [(d["coord"].astype(np.float64), d["box"].astype(np.float64), d["atype"])]


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


def uniform(model, step):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TableAccuracyWarning)
        return compress(model, step=step)


def oracle_step(model, tol, frames, refs, lo=1e-3, hi=2.56, steps=10):
    """The largest uniform step meeting ``tol`` on the judged frames (log bisection)."""
    good, bad = lo, hi
    for _ in range(steps):
        s = math.sqrt(good * bad)
        good, bad = (s, bad) if max_df(uniform(model, s), refs, frames) <= tol else (good, s)
    return good


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
    t0 = time.perf_counter()
    cal = prepare_calibration(model, read_systems(a.calibrate) if a.calibrate else test)
    print(f"calibration: {sum(len(c) for c, *_ in cal.frames)} frames + {len(cal.contacts)} contact frames, "
          f"exact forces in {time.perf_counter() - t0:.0f} s; uniform -s 0.01: {cm_size(compress(model))} bytes", flush=True)
    test_ref = exact.eval(*test[0])[1]
    stress_ref = exact.eval(*stress_all[0])[1]
    print("| TOL (eV/Å) | --tolerance: bytes | max ΔF test | max ΔF stress (in range, n) | fair uniform -s | its bytes | "
          "ratio | oracle uniform -s | its bytes | ratio | time (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for tol in a.tolerances:
        t0 = time.perf_counter()
        m = compress_to_tolerance(model, tol, cal)
        dt = time.perf_counter() - t0
        stress, sref = in_range(m, stress_all, stress_ref)
        frames, refs = test + stress, [test_ref, sref]
        e_test, e_stress = max_df(m, refs[:1], frames[:1]), max_df(m, refs[1:], frames[1:])
        fair = largest_uniform_step(model, tol, cal)
        oracle = oracle_step(model, tol, frames, refs)
        fb, ob, b = cm_size(uniform(model, fair)), cm_size(uniform(model, oracle)), cm_size(m)
        print(f"| {tol:.0e} | {b} | {e_test:.1e} | {e_stress:.1e} ({len(stress[0][0])}) | {fair:.4f} | {fb} | {b / fb:.2f} | "
              f"{oracle:.4f} | {ob} | {b / ob:.2f} | {dt:.0f} |", flush=True)


if __name__ == "__main__":
    main()
