#!/usr/bin/env python
r"""Benchmark: a compressed dipole model, dpcompress ``DeepDipole`` vs DeePMD-kit's ``DeepDipole``, same run.

One call = the atomic dipoles of one frame (``eval(coords, cells, types)``, atomic=True, DeePMD-kit's
default), neighbor list included.  System: frame 0 of ``tests/data/deepmd/se_e2_a_tiny/test_frames.npz``
(192 water atoms) replicated ``--rep`` (default 2) times per axis: 1536 atoms.  Model:
``tests/data/deepmd/dipole_tiny/frozen.dp`` (se_e2_a, sel [46, 92], neuron [4, 8, 16], fitting [16, 16]).

Engines, each a persistent worker subprocess with OMP/OPENBLAS/MKL_NUM_THREADS =
DP_INTRA_OP_PARALLELISM_THREADS = T and DP_INTER_OP_PARALLELISM_THREADS = 1 set before any import:

=========  ==========================================================================================
dpc_cmp    dpcompress ``DeepDipole(compress(frozen.dp), n_threads=T)`` (defaults, compressed in the worker)
dpc_ref    dpcompress exact ``DeepDipole(frozen.dp, n_threads=T)``
dp_cmp     DeePMD-kit ``DeepDipole(<models>/compressed.pth)`` (``torch.set_num_threads(T)``)
=========  ==========================================================================================

The DeePMD-kit model is made with (DeePMD-kit 3.2.0 venv, defaults)::

    dp convert-backend tests/data/deepmd/dipole_tiny/frozen.dp frozen.pth
    dp --pt compress -i frozen.pth -o compressed.pth

Each worker makes ``--warmup`` calls (the first returns the dipoles, cross-checked against dpc_cmp), then
``--rounds`` rounds of one timed call per worker (order rotated every round; before each call the driver
waits up to ``--max-wait`` s for the machine to go quiet and records the CPU other processes used during
the call).  Reported: median seconds per engine, and dpc_cmp / dp_cmp taken round by round (median of
the per-round ratios).

Usage (repository root, dpcompress environment's python)::

    python benchmarks/bench_tensor.py --models DIR --dp-python <deepmd-env>/bin/python [--threads 1] [--rounds 9]
"""

import argparse
import json
import os
import subprocess
import sys
import time

from bench_descriptors import build_system  # benchmarks/ is sys.path[0]
from machine_load import HZ, busy_ticks, wait_quiet

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DATA = os.path.join(REPO, "tests", "data", "deepmd")
ENGINES = ("dpc_cmp", "dpc_ref", "dp_cmp")


def worker_main(a):
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library prints go to stderr
    hello, t0 = {}, time.perf_counter()
    model = os.path.join(DATA, "dipole_tiny", "frozen.dp")
    if a.worker.startswith("dpc"):
        import dpcompress

        if a.worker == "dpc_cmp":
            model = dpcompress.compress(model)
        dp = dpcompress.DeepDipole(model, n_threads=a.threads)
    else:
        import torch

        torch.set_num_threads(a.threads)
        from deepmd.infer.deep_dipole import DeepDipole

        dp = DeepDipole(os.path.join(a.models, "compressed.pth"))
        b = getattr(dp.deep_eval, "_nlist_builder", None)
        hello["nlist_builder"] = "native (dense all-pairs)" if b is None else type(b).__name__
    hello["load_seconds"] = time.perf_counter() - t0
    proto.write(json.dumps(hello) + "\n")
    x, c, t = build_system(os.path.join(DATA, "se_e2_a_tiny", "test_frames.npz"), a.rep)
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "quit":
            break
        t0 = time.perf_counter()
        d = dp.eval(x.reshape(1, -1), c.reshape(1, 9), t)
        rep = dict(t=time.perf_counter() - t0, natoms=len(t))
        if req.get("results"):
            rep["atomic"] = d.reshape(-1).tolist()
        proto.write(json.dumps(rep) + "\n")


class Worker:
    def __init__(self, engine, a, log):
        self.key = engine
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        t = str(a.threads)
        env.update(OMP_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t, MKL_NUM_THREADS=t, DP_INTRA_OP_PARALLELISM_THREADS=t,
                   DP_INTER_OP_PARALLELISM_THREADS="1", CUDA_VISIBLE_DEVICES="")
        py = a.dp_python if engine == "dp_cmp" else a.dpc_python
        if engine != "dp_cmp":
            env["PYTHONPATH"] = REPO
        cmd = [py, os.path.abspath(__file__), "--worker", engine, "--threads", t, "--rep", str(a.rep),
               "--models", a.models]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env, text=True,
                                  bufsize=1, cwd=REPO)
        self.hello = json.loads(self.p.stdout.readline())

    def call(self, results=False):
        b0, w0, d0, t0 = busy_ticks(), busy_ticks(self.p.pid), os.times(), time.perf_counter()
        self.p.stdin.write(json.dumps(dict(op="call", results=results)) + "\n")
        self.p.stdin.flush()
        rep = json.loads(self.p.stdout.readline())
        b1, w1, d1, t1 = busy_ticks(), busy_ticks(self.p.pid), os.times(), time.perf_counter()
        if None not in (b0, b1, w0, w1):
            own = (d1.user + d1.system) - (d0.user + d0.system)
            rep["foreign"] = max(0.0, ((b1 - b0) - (w1 - w0)) / HZ - own) / (t1 - t0)
        return rep

    def close(self):
        self.p.stdin.write('{"op": "quit"}\n')
        self.p.stdin.flush()
        self.p.wait(timeout=60)


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rep", type=int, default=2)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--quiet", type=float, default=0.15)
    p.add_argument("--max-wait", type=float, default=3.0)
    p.add_argument("--models", required=True, help="folder with DeePMD-kit's compressed.pth of dipole_tiny")
    p.add_argument("--dpc-python", default=sys.executable)
    p.add_argument("--dp-python", default=os.environ.get("DEEPMD_PYTHON", "python"))
    p.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    p.add_argument("--out", default=os.path.join(HERE, "results", "tensor.json"))
    p.add_argument("--worker", choices=ENGINES)
    a = p.parse_args()
    if a.worker:
        return worker_main(a)
    import numpy as np

    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    res = dict(started=time.strftime("%Y-%m-%d %H:%M:%S %Z"), argv=sys.argv, threads=a.threads, engines={})
    with open(os.path.splitext(a.out)[0] + "_workers.log", "a") as log:
        workers = [Worker(e, a, log) for e in a.engines]
        first = {}
        for w in workers:
            warm = [w.call(results=(k == 0)) for k in range(a.warmup)]
            first[w.key] = np.array(warm[0]["atomic"])
            res["engines"][w.key] = dict(hello=w.hello, warmup=[r["t"] for r in warm], times=[], foreign=[],
                                         natoms=warm[0]["natoms"])
            print(f"{w.key}: load {w.hello['load_seconds']:.1f} s, warm-up {[round(r['t'], 3) for r in warm]} "
                  f"{w.hello.get('nlist_builder', '')}", flush=True)
        for rnd in range(a.rounds):
            k = rnd % len(workers)
            for w in workers[k:] + workers[:k]:
                wait_quiet(a.quiet, a.max_wait)
                r = w.call()
                res["engines"][w.key]["times"].append(r["t"])
                res["engines"][w.key]["foreign"].append(r.get("foreign"))
            print(f"round {rnd + 1}: " + " ".join(f"{key}={e['times'][-1]:.4f}" for key, e in res["engines"].items()),
                  flush=True)
        for w in workers:
            w.close()
    ref = first.get("dpc_cmp")
    for key, e in res["engines"].items():
        e["median"] = median(e["times"])
        e["us_per_atom"] = e["median"] / e["natoms"] * 1e6
        if ref is not None:
            e["max_abs_vs_dpc_cmp"] = float(np.max(np.abs(first[key] - ref)))
    if "dpc_cmp" in res["engines"] and "dp_cmp" in res["engines"]:
        per = [x / y for x, y in zip(res["engines"]["dpc_cmp"]["times"], res["engines"]["dp_cmp"]["times"])]
        res["ratio_dpc_cmp_over_dp_cmp"] = dict(per_round=per, median=median(per), min=min(per), max=max(per))
    with open(a.out, "w") as fh:
        json.dump(res, fh, indent=1)
    for key, e in res["engines"].items():
        print(f"{key}: median {e['median']:.4f} s ({e['us_per_atom']:.1f} µs/atom), max |dipole - dpc_cmp| "
              f"{e.get('max_abs_vs_dpc_cmp', float('nan')):.2e}, "
              f"others' CPU {median([f for f in e['foreign'] if f is not None] or [0]):.2f}")
    if "ratio_dpc_cmp_over_dp_cmp" in res:
        q = res["ratio_dpc_cmp_over_dp_cmp"]
        print(f"dpc_cmp / dp_cmp: median {q['median']:.3f} [{q['min']:.3f}-{q['max']:.3f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
