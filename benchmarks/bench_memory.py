"""Peak memory of one compressed step: a fresh process per frame size, ``/usr/bin/time -v``, 1 thread.

For each size the same script runs twice in fresh processes: once only importing dpcompress and
opening the model (the baseline: interpreter, libraries, the memory-mapped model), once also
building the frame (the 192-atom water frame of the water fixture replicated) and evaluating it.
The difference of the two peaks (maximum resident set size) divided by the atoms is the memory a
step costs per atom above the loaded model.

    python benchmarks/bench_memory.py --model ../shared/fixtures/deepmd/se_e2_a/frozen.dp \
        --frames ../shared/fixtures/deepmd/se_e2_a/test_frames.npz --reps 4x4x4 8x8x8 18x18x17

Prints one line per size (atoms, baseline MiB, peak MiB, bytes per atom, step seconds).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

WORKER = r"""
import sys, time, numpy as np
import dpcompress
dpc, frames, reps, evaluate = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3].split("x")], sys.argv[4] == "1"
pot = dpcompress.Potential(dpc, n_threads=1)
if evaluate:
    z = np.load(frames)
    coords, cell, types = z["coord"][0].reshape(-1, 3).astype(float), z["box"][0].reshape(3, 3).astype(float), z["atype"]
    grid = np.array([[i, j, k] for i in range(reps[0]) for j in range(reps[1]) for k in range(reps[2])], dtype=float)
    big = (coords[None] + (grid @ cell)[:, None]).reshape(1, -1, 3)
    del grid
    types = np.tile(types, len(big[0]) // len(types))
    box = (cell * np.array(reps)[:, None]).reshape(1, 9)
    t0 = time.perf_counter()
    e, f, v = pot.eval(big, box, types)
    print(f"natoms {len(types)} step {time.perf_counter() - t0:.3f} energy_per_atom {e[0, 0] / len(types):.12f}")
"""


def peak_rss(cmd, env):
    """(peak resident set size in bytes, stdout) of a command run under /usr/bin/time -v."""
    out = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(out.stderr[-3000:])
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
    return kb * 1024, out.stdout


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="DeePMD-kit .dp model (compressed here) or a .dpc")
    p.add_argument("--frames", required=True, help="npz with coord, box, atype (frame 0 is replicated)")
    p.add_argument("--reps", nargs="+", default=["4x4x4", "8x8x8", "18x18x17"], help="replications, e.g. 8x8x8")
    args = p.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        dpc = args.model
        if not dpc.endswith(".dpc"):
            import dpcompress

            dpc = os.path.join(tmp, "model.dpc")
            dpcompress.save_model(dpcompress.compress(args.model), dpc)
        script = os.path.join(tmp, "worker.py")
        with open(script, "w") as fh:
            fh.write(WORKER)
        print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}  model {args.model}  1 thread; peak RSS via /usr/bin/time -v")
        print(f"{'atoms':>9} {'baseline MiB':>13} {'peak MiB':>9} {'bytes/atom':>11} {'step s':>8}")
        for reps in args.reps:
            base, _ = peak_rss([sys.executable, script, dpc, args.frames, reps, "0"], env)
            peak, out = peak_rss([sys.executable, script, dpc, args.frames, reps, "1"], env)
            natoms = int(re.search(r"natoms (\d+)", out).group(1))
            step = float(re.search(r"step ([\d.]+)", out).group(1))
            print(f"{natoms:9d} {base / 2**20:13.1f} {peak / 2**20:9.1f} {(peak - base) / natoms:11.0f} {step:8.2f}", flush=True)


if __name__ == "__main__":
    main()
