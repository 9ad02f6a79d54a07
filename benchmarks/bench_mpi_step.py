"""12288-atom water step: 2 MPI ranks x 1 thread vs 1 rank x 2 threads (domain decomposition).

    python benchmarks/bench_mpi_step.py [frozen.dp] [--reps 5]

Runs ``mpiexec -n 2 python -m mpi4py benchmarks/bench_mpi_step.py --worker`` and a
1-rank worker with 2 threads, alternating, and prints the median step times.
The model defaults to ../shared/fixtures/deepmd/se_e2_a/frozen.dp (compressed in
each worker, step 0.01).
"""

import argparse
import json
import os
import subprocess
import sys
import sysconfig
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_MODEL = os.path.join(REPO, "..", "shared", "fixtures", "deepmd", "se_e2_a", "frozen.dp")


def frame(model_path, rep=4):
    f = np.load(os.path.join(os.path.dirname(model_path), "test_frames.npz"))
    c, box, t = f["coord"][0].astype(float), f["box"][0].astype(float), f["atype"]
    shifts = np.array([[i, j, k] for i in range(rep) for j in range(rep) for k in range(rep)]) @ box
    return (c[None] + shifts[:, None]).reshape(-1, 3), box * rep, np.tile(t, rep**3)


def worker(args):
    from dpcompress import Potential, compress

    comm = None
    if args.mpi:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    pot = Potential(compress(args.model), comm=comm, n_threads=args.threads)
    coords, cell, types = frame(args.model)
    times = []
    for _ in range(args.reps + 1):
        if comm is not None:
            comm.Barrier()
        t0 = time.perf_counter()
        e, f, v = pot.eval(coords[None], cell[None], types)
        times.append(time.perf_counter() - t0)
    if comm is None or comm.rank == 0:
        print(json.dumps(dict(times=times[1:], energy=float(e[0, 0]), natoms=len(types))))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--worker", action="store_true")
    p.add_argument("--mpi", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    mpiexec = os.path.join(sysconfig.get_path("scripts"), "mpiexec")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    runs = {
        "2 ranks x 1 thread": ([mpiexec, "-n", "2", sys.executable, "-m", "mpi4py", __file__, args.model, "--worker", "--mpi", "--threads", "1"], "1"),
        "1 rank x 2 threads": ([sys.executable, __file__, args.model, "--worker", "--threads", "2"], "2"),
    }
    results = {}
    for label, (cmd, omp) in runs.items():
        out = subprocess.run(cmd + ["--reps", str(args.reps)], capture_output=True, text=True, env=dict(env, OMP_NUM_THREADS=omp), check=True)
        results[label] = json.loads(out.stdout.strip().splitlines()[-1])
    e = [r["energy"] for r in results.values()]
    print(f"natoms {results['1 rank x 2 threads']['natoms']}, |ΔE| between runs {abs(e[0] - e[1]):.2e} eV")
    for label, r in results.items():
        t = np.median(r["times"])
        print(f"{label:22s} median {t:.3f} s/step ({1e6 * t / r['natoms']:.0f} µs/atom), times {np.round(r['times'], 3).tolist()}")


if __name__ == "__main__":
    main()
