"""Training-set scan throughput (frames/s) at 1, 2, 4 MPI ranks.

The water training set (``water-data/train``: 320 frames of 192 atoms in 3
systems) is replicated into a temporary folder until it holds at least
``--frames`` frames (only ``type.raw``, ``type_map.raw``, ``coord.npy`` and
``box.npy`` are copied), then ``mpiexec -n R python -m dpcompress.scan DIR
--rcut 6 --rcut-smth 0.5`` runs for each rank count (and once as a plain
process, ``--no-mpi``).  For each run it reports

* ``scan s`` and ``frames/s``: the scan itself (from listing the data to the
  merged result; rank 0's log line ``scanned N frames in T s``);
* ``wall s``: the whole command, MPI start-up and imports included;
* ``CPU s``: user + system time of all the run's processes; ``frames/CPU-s``
  is the throughput per core actually used, the figure least disturbed by
  other jobs on a shared machine;
* the load average before the run (other jobs on the machine).

Every run must write the same JSON bytes; the script checks it.

Run from the repository root (about 1–2 min on 2 cores)::

    python benchmarks/bench_scan.py [--frames 10000] [--ranks 1 2 4] [--repeat 1]
"""

import argparse
import hashlib
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TRAIN = os.path.join(os.path.dirname(REPO), "shared", "fixtures", "deepmd", "water-data", "train")


def replicate(train, dest, min_frames):
    """Copies of the training systems under ``dest`` until >= ``min_frames`` frames; returns the frame count.

    The systems are those the scan finds (:func:`dpcompress.data.discover_systems`, the package's reader).
    """
    from dpcompress.data import discover_systems

    systems = discover_systems(train)
    if any(s.kind != "npy" for s in systems):
        raise SystemExit(f"{train}: only deepmd/npy systems can be replicated")
    per_copy = sum(s.nframes for s in systems)
    copies = -(-min_frames // per_copy)
    for k in range(copies):
        for s in systems:
            out = os.path.join(dest, f"copy{k:03d}", os.path.relpath(s.name, train))
            os.makedirs(out)
            for f in ("type.raw", "type_map.raw"):
                if os.path.exists(os.path.join(s.name, f)):
                    shutil.copy(os.path.join(s.name, f), out)
            for st in s.sets:
                sdir = os.path.join(out, os.path.basename(st.where))
                os.makedirs(sdir)
                for key in ("coord", "box"):
                    shutil.copy(st.arrays[key].path, sdir)
    return copies * per_copy


def run_once(ranks, data, out, mpi=True):
    scan = [sys.executable, "-m", "dpcompress.scan", data, "--rcut", "6", "--rcut-smth", "0.5", "-o", out,
            "--log-interval", "1e9"]
    if mpi:
        cmd = [os.path.join(sysconfig.get_path("scripts"), "mpiexec"), "-n", str(ranks)] + scan
    else:
        cmd = scan + ["--no-mpi"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    load = os.getloadavg()[0]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    m = re.search(r"scanned (\d+) frames in ([0-9.]+) s", proc.stderr)
    frames, scan_s = int(m.group(1)), float(m.group(2))
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    with open(out, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    return dict(frames=frames, scan_s=scan_s, wall_s=wall, cpu_s=cpu, load=load, sha256=digest)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", default=DEFAULT_TRAIN, help="the water training set (deepmd/npy)")
    p.add_argument("--frames", type=int, default=10000, help="replicate to at least this many frames [10000]")
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--repeat", type=int, default=1, help="runs per rank count (the median is shown) [1]")
    p.add_argument("--no-serial", action="store_true", help="skip the plain-process (--no-mpi) run")
    args = p.parse_args(argv)
    if not os.path.isdir(args.train):
        raise SystemExit(f"{args.train}: not found (the shared water-data fixture)")
    with tempfile.TemporaryDirectory(prefix="bench_scan_") as tmp:
        data = os.path.join(tmp, "data")
        nframes = replicate(args.train, data, args.frames)
        print(f"# {nframes} frames x 192 atoms ({args.train} replicated), rcut 6 Å, {os.cpu_count()} cores", flush=True)
        configs = ([("plain", 1, False)] if not args.no_serial else []) + [(f"mpiexec -n {r}", r, True) for r in args.ranks]
        rows, digests = [], set()
        for label, ranks, mpi in configs:
            runs = [run_once(ranks, data, os.path.join(tmp, f"scan_{ranks}_{mpi}_{k}.json"), mpi) for k in range(args.repeat)]
            digests.update(r["sha256"] for r in runs)
            med = {k: statistics.median(r[k] for r in runs) for k in ("scan_s", "wall_s", "cpu_s", "load")}
            rows.append((label, runs[0]["frames"], med))
            print(f"{label:>14}: scan {med['scan_s']:.2f} s = {runs[0]['frames'] / med['scan_s']:.0f} frames/s; "
                  f"wall {med['wall_s']:.2f} s; CPU {med['cpu_s']:.2f} s = {runs[0]['frames'] / med['cpu_s']:.0f} frames/CPU-s; "
                  f"load before {med['load']:.2f}", flush=True)
    print()
    print("| run | frames | scan s | frames/s | wall s | CPU s | frames/CPU-s | load avg before |")
    print("|---|---|---|---|---|---|---|---|")
    for label, frames, med in rows:
        print(f"| `{label}` | {frames} | {med['scan_s']:.2f} | {frames / med['scan_s']:.0f} | {med['wall_s']:.2f} | "
              f"{med['cpu_s']:.2f} | {frames / med['cpu_s']:.0f} | {med['load']:.2f} |")
    print(f"\nJSON identical across all runs: {len(digests) == 1}")
    return 0 if len(digests) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
