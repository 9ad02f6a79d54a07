"""Single-thread timing of the se_e3 model: compressed vs exact ``Potential.eval``.

Model: the shared ``se_e3`` fixture (water, rcut 3.5 Å, sel [12, 24], neuron [4, 8, 16], fitting
[120, 120, 120]); frame 0 of its ``test_frames.npz`` replicated ``--rep`` times along each cell
vector (2 → 1536 atoms).  Energy + forces + virial, 1 thread (OpenMP and BLAS); calls of the two
engines alternate, medians of ``--reps`` calls after one warm-up call each.  Also times the fused
kernels alone (forward, backward) and the neighbor list.

Run from the repository root:  python benchmarks/bench_se_e3.py [--rep 2] [--reps 5]
"""

import argparse
import os
import sys
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from dpcompress import Potential  # noqa: E402
from dpcompress import compress  # noqa: E402
from dpcompress import load_model  # noqa: E402

DEFAULT = os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "fixtures", "deepmd", "se_e3")


def replicate(coord, box, types, n):
    shifts = np.array([[i, j, k] for i in range(n) for j in range(n) for k in range(n)], dtype=float) @ box
    return (coord[None] + shifts[:, None]).reshape(-1, 3), box * n, np.tile(types, n**3)


def median_time(fn, reps):
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return float(np.median(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default=DEFAULT)
    ap.add_argument("--rep", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    model = load_model(os.path.join(args.folder, "frozen.dp"))
    t = time.perf_counter()
    cm = compress(model, n_threads=1)
    t_compress = time.perf_counter() - t
    f = np.load(os.path.join(args.folder, "test_frames.npz"))
    coord, box, types = replicate(f["coord"][0].astype(float), f["box"][0].astype(float), f["atype"].astype(np.int64), args.rep)
    c, b = coord[None], box.reshape(1, 9)
    exact, comp = Potential(model, n_threads=1), Potential(cm, n_threads=1)
    e0, f0, _ = exact.eval(c, b, types)
    e1, f1, _ = comp.eval(c, b, types)
    times = {"exact": [], "compressed": []}
    for _ in range(args.reps):  # alternate, so that load from other jobs hits both alike
        for name, pot in (("exact", exact), ("compressed", comp)):
            t = time.perf_counter()
            pot.eval(c, b, types)
            times[name].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) for k, v in times.items()}

    from dpcompress._ext.se_t_tab import se_t_tab_backward, se_t_tab_forward, tables_from_view
    from dpcompress.descriptors import unit_of
    from dpcompress.neighbors import build_neighbor_list

    d = cm.descriptor
    p = tables_from_view(unit_of(d).pack(d, cm.pair_exclude_types).kernel_view())
    nl = build_neighbor_list(coord, box, types, cm.rcut, list(cm.descriptor.sel), n_threads=1)
    D = se_t_tab_forward(p, types, nl.vectors, nl.counts, 1)
    t_nl = median_time(lambda: build_neighbor_list(coord, box, types, cm.rcut, list(cm.descriptor.sel), n_threads=1), args.reps)
    t_fw = median_time(lambda: se_t_tab_forward(p, types, nl.vectors, nl.counts, 1), args.reps)
    t_bw = median_time(lambda: se_t_tab_backward(p, types, nl.vectors, nl.counts, D, 1), args.reps)
    n = len(types)
    pairs = sum(int(a * b_) for row in nl.counts for a, b_ in ((row[0], row[0]), (row[0], row[1]), (row[1], row[1])))
    print(f"se_e3 {args.folder}: {n} atoms, {nl.counts.sum() / n:.1f} real neighbors/atom, 1 thread, medians of {args.reps}")
    print(f"compress (tables): {t_compress:.2f} s")
    print(f"exact      Potential.eval: {med['exact']:.3f} s  ({1e6 * med['exact'] / n:.0f} µs/atom)")
    print(f"compressed Potential.eval: {med['compressed']:.4f} s  ({1e6 * med['compressed'] / n:.1f} µs/atom)  "
          f"speedup {med['exact'] / med['compressed']:.1f}x")
    print(f"  neighbor list {t_nl * 1e3:.1f} ms, forward kernel {t_fw * 1e3:.1f} ms, backward kernel {t_bw * 1e3:.1f} ms "
          f"({pairs / n:.0f} ordered neighbor pairs/atom)")
    print(f"compressed vs exact: |dE|/atom {abs(e1 - e0).max() / n:.1e} eV, max|dF| {np.abs(f1 - f0).max():.1e} eV/Å")


if __name__ == "__main__":
    main()
