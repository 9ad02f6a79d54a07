"""Step time of two dpcompress source trees in one job: the current tree against another commit.

Each tree gets persistent worker processes (one per tree and thread count) that import dpcompress
from that tree (built in place: ``python setup.py build_ext --inplace`` there), load every model
once and warm up; then the rounds alternate between the trees case by case, so both see the same
machine.  Reported: median seconds per ``Potential.eval`` call of each tree, and the median over
rounds of the per-round ratio current / other [min–max].

    git worktree add /tmp/dpc_old <commit>; (cd /tmp/dpc_old && python setup.py build_ext --inplace)
    python benchmarks/bench_commits.py --other /tmp/dpc_old --fixtures ../shared/fixtures --rounds 7

Cases: the water se_e2_a model at 192 / 1536 / 12288 atoms (1 and 2 threads), the other descriptors
at 1536 atoms (2 threads), the NEP models at about 1000 atoms (1 thread, tabulated) and a 3-atom
water molecule (1 thread: the Python cost of a small frame).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from machine_load import wait_quiet

WORKER = r"""
import json, os, sys, tempfile, time, warnings
import numpy as np
warnings.simplefilter("ignore")
tree, fixtures = sys.argv[1], sys.argv[2]
sys.path.insert(0, tree)
import dpcompress
cases = json.loads(sys.argv[3])
pots, frames = {}, {}
tmp = tempfile.mkdtemp()
def compressed(path):
    if path.endswith("nep.txt"):
        out = os.path.join(tmp, str(len(pots)) + ".dpc")
        if hasattr(dpcompress, "save_model"):
            dpcompress.save_model(dpcompress.compress_nep(path), out)
        else:
            from dpcompress.nep import compress_nep
            compress_nep(path, out)
        return out
    return dpcompress.compress(path)
for name, c in cases.items():
    pots[name] = dpcompress.Potential(compressed(os.path.join(fixtures, c["model"])), n_threads=c["threads"])
    z = np.load(os.path.join(fixtures, c["frames"])) if c["frames"] else None
    if z is None:
        coords, cell, types = np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]), np.eye(3) * 10, np.array([0, 1, 1])
    elif "positions" in z.files:
        coords, cell, types = z["positions"], z["cell"], z["type_index"]
    else:
        coords, cell, types = z["coord"][0].reshape(-1, 3), z["box"][0].reshape(3, 3), z["atype"]
    n = c["reps"]
    grid = np.array([[i, j, k] for i in range(n[0]) for j in range(n[1]) for k in range(n[2])], dtype=float)
    big = (coords[None] + (grid @ cell)[:, None]).reshape(1, -1, 3)
    frames[name] = (big, (cell * np.array(n)[:, None]).reshape(1, 9), np.tile(types, len(grid)))
    for _ in range(2):
        pots[name].eval(*frames[name])
print("ready", flush=True)
for line in sys.stdin:
    name, calls = line.rstrip("\n").split("\t")
    t0 = time.perf_counter()
    for _ in range(int(calls)):
        e = pots[name].eval(*frames[name])[0][0, 0]
    print(json.dumps({"t": (time.perf_counter() - t0) / int(calls), "e": float(e)}), flush=True)
"""

WATER = "deepmd/se_e2_a/frozen.dp", "deepmd/se_e2_a/test_frames.npz"


def cases():
    out = {}
    for reps, label in (((1, 1, 1), "192"), ((2, 2, 2), "1536"), ((4, 4, 4), "12288")):
        for t in (1, 2):
            out[f"se_e2_a {label} atoms, {t} thr"] = dict(model=WATER[0], frames=WATER[1], reps=reps, threads=t,
                                                         calls={"192": 10, "1536": 2, "12288": 1}[label])
    for d in ("se_e2_r", "se_e3", "se_atten_v2", "hybrid"):
        out[f"{d} 1536 atoms, 2 thr"] = dict(model=f"deepmd/{d}/frozen.dp", frames=f"deepmd/{d}/test_frames.npz",
                                             reps=(2, 2, 2), threads=2, calls=2)
    for model, frame, reps in (("PbTe_NEP4_example", "crystal_conv8", (5, 5, 5)), ("Si_2022_NEP4_5body", "crystal_prim2", (8, 8, 8)),
                               ("BaTiO3_NEP4_zbl", "crystal_cubic5", (4, 4, 4))):
        out[f"NEP {model.split('_')[0]} {frame}, 1 thr"] = dict(model=f"nep/{model}/nep.txt", frames=f"nep/{model}/{frame}.npz",
                                                                  reps=reps, threads=1, calls=3)
    out["water molecule (3 atoms), 1 thr"] = dict(model=WATER[0], frames=None, reps=(1, 1, 1), threads=1, calls=300)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--other", required=True, help="the other source tree (built in place)")
    p.add_argument("--fixtures", required=True, help="folder with deepmd/ and nep/ fixtures")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--quiet", type=float, default=0.3, help="wait until other processes use fewer cores than this")
    p.add_argument("--out", default=None, help="JSON with every timing")
    args = p.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees = {"current": here, "other": os.path.abspath(args.other)}
    all_cases = cases()
    env = dict(os.environ, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="1")
    workers = {}
    for tree, path in trees.items():
        for t in (1, 2):
            sub = {k: v for k, v in all_cases.items() if v["threads"] == t}
            w = subprocess.Popen([sys.executable, "-c", WORKER, path, os.path.abspath(args.fixtures), json.dumps(sub)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
            assert w.stdout.readline().strip() == "ready"
            workers[tree, t] = w
    results = {k: {"current": [], "other": []} for k in all_cases}
    for r in range(args.rounds):
        for name, c in all_cases.items():
            calls = c["calls"]
            for tree in (("current", "other") if r % 2 == 0 else ("other", "current")):
                wait_quiet(args.quiet, 20)
                w = workers[tree, c["threads"]]
                w.stdin.write(f"{name}\t{calls}\n")
                w.stdin.flush()
                results[name][tree].append(json.loads(w.stdout.readline()))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    for w in workers.values():
        w.stdin.close()
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}  current {trees['current']}  other {trees['other']}  rounds {args.rounds}")
    print("| case | current s/call | other s/call | ratio current/other [min–max] | energy equal |")
    print("| --- | --- | --- | --- | --- |")
    for name, rr in results.items():
        a = [x["t"] for x in rr["current"]]
        b = [x["t"] for x in rr["other"]]
        ratios = [x / y for x, y in zip(a, b)]
        same = abs(rr["current"][0]["e"] - rr["other"][0]["e"]) <= 1e-9 * abs(rr["other"][0]["e"])
        print(f"| {name} | {statistics.median(a):.4g} | {statistics.median(b):.4g} | "
              f"**{statistics.median(ratios):.3f}** [{min(ratios):.3f}–{max(ratios):.3f}] | {same} |")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
