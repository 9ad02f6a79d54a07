#!/usr/bin/env python
r"""Benchmark: se_e2_a water model, dpcompress vs DeePMD-kit, energy + forces + virial.

One driver job runs every engine as a persistent *worker subprocess* (the engines live in
different virtual environments), one worker per engine x thread count, and alternates calls
between them in rounds.  Thread environment variables are set before any import in each worker.

Engines (``--engines``)

=============  ================================================================================
dpc_cmp        dpcompress compressed: ``compress(frozen.dp)`` (step 0.01, defaults), then
               ``Potential(compressed, n_threads=T).eval(coords, cells, types)``
dpc_ref        dpcompress uncompressed reference: ``Potential(frozen.dp, n_threads=T).eval``
dp_cmp         DeePMD-kit ``DeepPot(compressed.pth).eval(coord, box, atype)``
dp_ref         DeePMD-kit ``DeepPot(frozen.pth).eval(coord, box, atype)``
dp_cmp_lower   DeePMD-kit compressed model's TorchScript ``forward_lower`` (what LAMMPS calls),
               ghost shell + distance-sorted neighbor list built with scipy OUTSIDE the timed
               region, force folding inside it.  Only at the sizes in ``--lower-sizes`` (default:
               12288 atoms, where ``DeepPot.eval`` runs out of memory).
=============  ================================================================================

System: validation frame 0 of ``test_frames.npz`` (192 atoms) replicated n x n x n.

Per size: all workers are started, set up and warmed up, then ``rounds`` rounds; in each round
every worker makes one timed call (the order rotates from round to round; ``--gap`` seconds of
pause between calls lets the previous worker's OpenMP/BLAS threads go to sleep).  Reported:
medians over rounds, and ratios dpc_cmp / dp_cmp taken round by round (same thread count).

FLOP count of one dpcompress compressed step (analytic; N atoms, P real neighbor pairs,
B (atom, block) pairs with padding slots, M = 100 embedding channels, A = 16 axis neurons,
fitting layers n_in -> n_out = 1600->240->240->240->1)::

    F = N * sum_layers 2 n_in n_out              fitting net forward (GEMM)
      + N * sum_layers 2 n_in n_out              fitting net backward, dx = (dphi * g) W^T
      + N * 2*4*M*A                              D = T^T T_<
      + N * 2 * 2*4*M*A                          dE/dT = T_< dD^T + [T dD]_<
      + P * M * (2*5 + 4*2)                      forward kernel: quintic Horner + 4 multiply-adds
      + P * M * (20 + 5*2 + 8)                   backward kernel: value+derivative Horner,
                                                 5 multiply-adds, 4-term dot
      + B * M * (2*5 + 4*2)                      padding rows (one row per padded block)
      + P * 2 * 100                              env matrix (+ derivative), ~100 flops per pass

(activations, biases, the neighbor list and the force scatter are not counted).  The dgemm rate
is measured in the same worker right before and after its timed rounds: numpy
``(N x 1600) @ (1600 x 240)`` with the same thread count, median of 5.

Peak memory: one fresh process per (engine, size) at 1 thread that loads the model (dpcompress
compressed: the saved ``.dpc`` file) and evaluates 3 times; max RSS from ``os.wait4``.

Compression time: ``compress(frozen.dp)`` in-process (after imports), median of 3, for
n_threads None (all cores) and 1; and one wall-clock run of ``dp --pt compress``.

Usage (from the repository root)::

    python benchmarks/bench_se_e2_a.py [frozen.dp] --out benchmarks/results/se_e2_a.json

Everything imports lazily so that thread settings reach numpy/BLAS/torch before they load.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

from machine_load import HZ, busy_ticks, wait_quiet  # benchmarks/ is sys.path[0]

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_MODEL = os.path.normpath(os.path.join(REPO, "..", "shared", "fixtures", "deepmd", "se_e2_a", "frozen.dp"))
ENGINES = ("dpc_cmp", "dpc_ref", "dp_cmp", "dp_ref", "dp_cmp_lower", "dp_cmp_native")
LABEL = {
    "dpc_cmp": "dpcompress compressed",
    "dpc_ref": "dpcompress uncompressed",
    "dp_cmp": "DeePMD-kit compressed (DeepPot.eval)",
    "dp_ref": "DeePMD-kit uncompressed (DeepPot.eval)",
    "dp_cmp_lower": "DeePMD-kit compressed (forward_lower)",
    "dp_cmp_native": "DeePMD-kit compressed (DeepPot.eval, native nlist)",
}
GIB = 1 << 30


# ----------------------------------------------------------------------------------------------
# shared helpers (numpy imported lazily)
# ----------------------------------------------------------------------------------------------


def thread_env(n_threads, base=None):
    env = dict(os.environ if base is None else base)
    t = str(n_threads)
    env.update(
        OMP_NUM_THREADS=t,
        OPENBLAS_NUM_THREADS=t,
        MKL_NUM_THREADS=t,
        DP_INTRA_OP_PARALLELISM_THREADS=t,
        DP_INTER_OP_PARALLELISM_THREADS="1",
    )
    return env


def build_system(frames_path, rep, frame=0):
    """Frame ``frame`` replicated rep x rep x rep: coords (N, 3), cell (3, 3), types (N,)."""
    import numpy as np

    f = np.load(frames_path, allow_pickle=True)
    x = f["coord"][frame].astype(np.float64).reshape(-1, 3)
    box = f["box"][frame].astype(np.float64).reshape(3, 3)
    types = np.asarray(f["atype"], dtype=np.int64).reshape(-1)
    shifts = np.array([[i, j, k] for i in range(rep) for j in range(rep) for k in range(rep)], dtype=np.float64) @ box
    coords = (shifts[:, None, :] + x[None, :, :]).reshape(-1, 3)
    return coords, box * rep, np.tile(types, rep**3)


def set_rlimit(gib):
    if gib and gib > 0:
        import resource

        lim = int(gib * GIB)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))


def proc_status():
    """VmRSS / VmHWM / VmPeak of this process in MiB."""
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "VmPeak"):
                    out[k] = int(v.split()[0]) / 1024.0
    except OSError:
        pass
    return out


def short_error(exc):
    text = f"{type(exc).__name__}: {exc}"
    lines = [ln for ln in text.splitlines() if ln.strip()]
    # keep the informative head and tail of long TorchScript tracebacks
    if len(lines) > 6:
        lines = lines[:2] + ["..."] + lines[-3:]
    return "\n".join(lines)[:2000]


def is_oom(text):
    t = (text or "").lower()
    return any(s in t for s in ("can't allocate memory", "out of memory", "memoryerror", "cannot allocate memory",
                                "unable to allocate", "std::bad_alloc"))


# ----------------------------------------------------------------------------------------------
# engines (run inside workers)
# ----------------------------------------------------------------------------------------------


class DpcEngine:
    def __init__(self, compressed, model_path, n_threads, dpc_file=None):
        from dpcompress import Potential

        self.n_threads = n_threads
        self.compress_seconds = None
        if compressed:
            if dpc_file:
                self.pot = Potential(dpc_file, n_threads=n_threads)
            else:
                from dpcompress import compress

                t0 = time.perf_counter()
                model = compress(model_path, n_threads=n_threads)
                self.compress_seconds = time.perf_counter() - t0
                self.pot = Potential(model, n_threads=n_threads)
        else:
            self.pot = Potential(model_path, n_threads=n_threads)

    def set_system(self, coords, cell, types):
        self.coords, self.cell, self.types = coords[None], cell.reshape(1, 9), types

    def call(self):
        e, f, v = self.pot.eval(self.coords, self.cell, self.types)
        return float(e.ravel()[0]), f[0], v[0]


class DeepmdEngine:
    def __init__(self, model_path, n_threads, nlist_backend="auto"):
        import torch

        torch.set_num_threads(n_threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
        from deepmd.infer import DeepPot

        self.dp = DeepPot(model_path, nlist_backend=nlist_backend)
        builder = getattr(self.dp.deep_eval, "_nlist_builder", None)
        self.nlist_builder = "native (dense all-pairs)" if builder is None else type(builder).__name__

    def set_system(self, coords, cell, types):
        self.coords, self.cell, self.types = coords.reshape(1, -1), cell.reshape(1, 9), types

    def call(self):
        e, f, v = self.dp.eval(self.coords, self.cell, self.types)
        return float(e.ravel()[0]), f.reshape(-1, 3), v.reshape(9)


class DeepmdLowerEngine(DeepmdEngine):
    """TorchScript ``forward_lower`` with a ghost shell and neighbor list built outside the timed call."""

    def set_system(self, coords, cell, types):
        import numpy as np
        from scipy.spatial import cKDTree

        self.module = self.dp.deep_eval.dp.model["Default"]
        rcut = float(self.dp.get_rcut())
        n = len(types)
        inv = np.linalg.inv(cell)
        frac = coords @ inv
        frac -= np.floor(frac)
        # face distances h_k = V / |a_j x a_l|: an image is a ghost if it lies within rcut of the cell
        vol = abs(np.linalg.det(cell))
        h = np.array([vol / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)])
        if np.any(h < rcut):
            raise RuntimeError("cell thinner than rcut: the one-shell ghost construction below does not apply")
        margin = rcut / h
        ext_f, ext_map = [frac], [np.arange(n)]
        for s in [(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1) if (i, j, k) != (0, 0, 0)]:
            img = frac + np.array(s, dtype=np.float64)
            keep = np.all((img > -margin) & (img < 1.0 + margin), axis=1)
            ext_f.append(img[keep])
            ext_map.append(np.flatnonzero(keep))
        ext = np.concatenate(ext_f) @ cell
        mapping = np.concatenate(ext_map)
        tree = cKDTree(ext)
        lists = tree.query_ball_point(ext[:n], r=rcut)
        width = max(len(x) for x in lists) - 1
        nlist = -np.ones((n, width), dtype=np.int64)
        for i, js in enumerate(lists):
            js = np.array([j for j in js if j != i], dtype=np.int64)
            d = np.linalg.norm(ext[js] - ext[i], axis=1)
            js = js[np.lexsort((js, d))]
            nlist[i, : len(js)] = js
        self.nall = len(ext)
        self.natoms = n
        self.ext_coord = ext.reshape(1, -1)
        self.ext_atype = types[mapping].reshape(1, -1)
        self.nlist = nlist[None]
        self.mapping = mapping
        self.mapping_1 = mapping.reshape(1, -1)

    def call(self):
        import numpy as np
        import torch

        out = self.module.forward_lower(
            torch.from_numpy(self.ext_coord),
            torch.from_numpy(self.ext_atype),
            torch.from_numpy(self.nlist),
            torch.from_numpy(self.mapping_1),
        )
        e = float(out["energy"].detach().numpy().ravel()[0])
        fe = out["extended_force"].detach().numpy().reshape(-1, 3)
        f = np.zeros((self.natoms, 3))
        np.add.at(f, self.mapping, fe)
        v = out["virial"].detach().numpy().reshape(9)
        return e, f, v


def make_engine(name, args, n_threads, use_dpc_file=False):
    if name == "dpc_cmp":
        # timing workers compress in-process; the memory probe loads the saved .dpc file
        return DpcEngine(True, args.model, n_threads, dpc_file=args.dpc_file if use_dpc_file else None)
    if name == "dpc_ref":
        return DpcEngine(False, args.model, n_threads)
    if name in ("dp_cmp", "dp_ref"):
        return DeepmdEngine(args.dp_compressed if name == "dp_cmp" else args.dp_frozen, n_threads)
    if name == "dp_cmp_lower":
        return DeepmdLowerEngine(args.dp_compressed, n_threads)
    if name == "dp_cmp_native":
        return DeepmdEngine(args.dp_compressed, n_threads, nlist_backend="native")
    raise ValueError(name)


# ----------------------------------------------------------------------------------------------
# dpcompress-only measurements: neighbor counts, FLOP count, dgemm rate, stage profile
# ----------------------------------------------------------------------------------------------


def flop_count(engine, coords, cell, types):
    """Analytic FLOPs of one dpcompress compressed step (see the module docstring)."""
    import numpy as np
    from dpcompress.neighbors import build_neighbor_list

    model = engine.pot.model
    d = model.descriptor
    nl = build_neighbor_list(coords, cell, types, d.rcut, list(d.sel), n_threads=engine.n_threads)
    M, A, N = d.n_channels, d.axis_neuron, len(types)
    pairs = int(nl.counts.sum())
    sel = np.asarray(d.sel)
    padded_blocks = int(np.sum(nl.counts < sel[None, :]))
    per_type = {}
    for t in np.unique(types):
        net = model.fitting.network(int(t))
        per_type[int(t)] = sum(2 * layer.n_in * layer.n_out for layer in net.layers)
    counts_t = {int(t): int(np.sum(types == t)) for t in np.unique(types)}
    fit = sum(per_type[t] * counts_t[t] for t in per_type)
    terms = {
        "fitting_forward": fit,
        "fitting_backward_dx": fit,
        "descriptor_D": N * 2 * 4 * M * A,
        "descriptor_grad_dT": N * 2 * 2 * 4 * M * A,
        "forward_kernel_pairs": pairs * M * (2 * 5 + 4 * 2),
        "backward_kernel_pairs": pairs * M * (20 + 5 * 2 + 8),
        "forward_kernel_padding": padded_blocks * M * (2 * 5 + 4 * 2),
        "env_matrix": pairs * 2 * 100,
    }
    return dict(
        natoms=N,
        real_pairs=pairs,
        mean_neighbors=pairs / N,
        max_neighbors=int(nl.counts.sum(axis=1).max()),
        per_block_mean=[float(x) for x in nl.counts.mean(axis=0)],
        padded_blocks=padded_blocks,
        n_overflow=nl.n_overflow,
        M=M,
        A=A,
        fitting_layers=[[layer.n_in, layer.n_out] for layer in model.fitting.network(0).layers],
        terms=terms,
        total=int(sum(terms.values())),
    )


def dgemm_rate(natoms, n_threads, reps=5):
    import numpy as np

    from dpcompress._ext.threads import blas_threads

    rng = np.random.default_rng(0)
    a = rng.standard_normal((natoms, 1600))
    b = rng.standard_normal((1600, 240))
    times = []
    with blas_threads(n_threads):
        a @ b
        for _ in range(reps):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
    med = float(np.median(times))
    flops = 2.0 * natoms * 1600 * 240
    return dict(shape=[natoms, 1600, 240], times=times, median=med, gflops=flops / med / 1e9)


def stage_profile(engine, coords, cell, types, reps=5):
    """Median seconds of each stage of a compressed step, the single kernels called one after another
    (what the model runtime does per chunk, fused), beside the whole ``Potential.eval``."""
    import numpy as np

    import dpcompress._ext.se_a_tab as sc
    from dpcompress._ext.fitting_net import fitting_forward_backward, pack_fitting
    from dpcompress._ext.threads import blas_threads
    from dpcompress.descriptors import unit_of
    from dpcompress.evaluators.exact.fitting import atomic_energy_masks
    from dpcompress.neighbors import build_neighbor_list

    pot, T = engine.pot, engine.n_threads
    model = pot.model
    packed = sc.tables_from_view(unit_of(model.descriptor).pack(model.descriptor, model.pair_exclude_types).kernel_view())
    fitting = pack_fitting(model.fitting)
    d = model.descriptor
    A = d.axis_neuron
    types = np.ascontiguousarray(types, dtype=np.int64)
    stages = {k: [] for k in ("neighbor_list", "forward_kernel", "descriptor_D", "fitting_net", "descriptor_grad_dT",
                              "backward_kernel", "scatter", "sum_of_stages", "Potential.eval")}
    with blas_threads(T):
        for _ in range(reps + 1):
            t = [time.perf_counter()]
            nl = build_neighbor_list(coords, cell, types, d.rcut, list(d.sel), n_threads=T)
            t.append(time.perf_counter())
            Tm = sc.se_a_tab_forward(packed, types, nl.vectors, nl.counts, T, False)
            t.append(time.perf_counter())
            D = sc.descriptor_from_T(Tm, A, T)
            t.append(time.perf_counter())
            fit_mask, keep_mask = atomic_energy_masks(model, types)
            e_fit, dD = fitting_forward_backward(fitting, types, D, T)
            t.append(time.perf_counter())
            dT = sc.descriptor_gradient_to_T(Tm, dD * (fit_mask * keep_mask)[:, None], A, T)
            t.append(time.perf_counter())
            pg = sc.se_a_tab_backward(packed, types, nl.vectors, nl.counts, dT, T)
            t.append(time.perf_counter())
            sc.scatter_pair_gradients(nl.index, nl.vectors, pg)
            t.append(time.perf_counter())
            t0 = time.perf_counter()
            pot.eval(coords[None], cell.reshape(1, 9), types)
            t1 = time.perf_counter()
            for k, name in enumerate(list(stages)[:7]):
                stages[name].append(t[k + 1] - t[k])
            stages["sum_of_stages"].append(t[-1] - t[0])
            stages["Potential.eval"].append(t1 - t0)
    return {k: float(np.median(v[1:])) for k, v in stages.items()}


# ----------------------------------------------------------------------------------------------
# worker: persistent, driven over stdin/stdout (JSON lines)
# ----------------------------------------------------------------------------------------------


def worker_main(args):
    set_rlimit(args.rlimit_gb)
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library prints go to stderr, never into the protocol
    engine, init_error = None, None
    t0 = time.perf_counter()
    try:
        engine = make_engine(args.worker, args, args.threads)
    except Exception as exc:  # noqa: BLE001 - reported to the driver
        init_error = short_error(exc)
    proto.write(json.dumps(dict(ready=True, load_seconds=time.perf_counter() - t0, error=init_error,
                                compress_seconds=getattr(engine, "compress_seconds", None),
                                nlist_builder=getattr(engine, "nlist_builder", None), status=proc_status())) + "\n")
    system = None
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        rep = {}
        try:
            if op == "quit":
                break
            if engine is None:
                rep = dict(error=init_error)
            elif op == "setup":
                coords, cell, types = build_system(args.frames, req["rep"])
                system = (coords, cell, types)
                engine.set_system(coords, cell, types)
                rep["natoms"] = len(types)
                rep["nall"] = getattr(engine, "nall", None)
            elif op == "call":
                t0 = time.perf_counter()
                e, f, v = engine.call()
                rep["t"] = time.perf_counter() - t0
                if req.get("results"):
                    rep.update(energy=e, force=f.ravel().tolist(), virial=v.ravel().tolist())
            elif op == "dgemm":
                rep = dgemm_rate(len(system[2]), args.threads)
            elif op == "flops":
                rep = flop_count(engine, *system)
            elif op == "profile":
                rep = stage_profile(engine, *system, reps=req.get("reps", 5))
            elif op == "status":
                rep = proc_status()
        except Exception as exc:  # noqa: BLE001
            import gc

            rep = dict(error=short_error(exc))
            gc.collect()
        rep["status"] = proc_status()
        proto.write(json.dumps(rep) + "\n")
    proto.close()


class CpuMeter:
    """CPU used by *other* processes while one worker runs: (machine busy - worker - driver) / wall, in cores.

    Jiffy resolution (10 ms): meaningful for calls of >= ~0.1 s, indicative below.
    """

    def __init__(self, pid):
        self.pid = pid

    def __enter__(self):
        self.b0, self.w0, self.d0, self.t0 = busy_ticks(), busy_ticks(self.pid), os.times(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        b1, w1, d1, t1 = busy_ticks(), busy_ticks(self.pid), os.times(), time.perf_counter()
        self.foreign = None
        if None not in (self.b0, b1, self.w0, w1) and t1 > self.t0:
            own = (d1.user + d1.system) - (self.d0.user + self.d0.system)
            self.foreign = max(0.0, ((b1 - self.b0) - (w1 - self.w0)) / HZ - own) / (t1 - self.t0)
        return False


class Worker:
    def __init__(self, engine, threads, args, logdir):
        self.engine, self.threads = engine, threads
        self.key = f"{engine}@{threads}"
        py = args.dpc_python if engine.startswith("dpc") else args.dp_python
        env = thread_env(threads)
        worker_env(env, engine, args)
        cmd = [py, os.path.abspath(__file__), *common_args(args), "--worker", engine, "--threads", str(threads)]
        cmd += ["--rlimit-gb", str(args.rlimit_gb)]
        self.log = open(os.path.join(logdir, f"worker_{engine}_{threads}.log"), "a")
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env,
                                  text=True, bufsize=1, cwd=args.dpc_src)
        self.hello = self._read()

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            return dict(error=f"worker {self.key} exited (rc={self.p.poll()}); see its log", dead=True)
        return json.loads(line)

    def ask(self, **req):
        if self.p.poll() is not None:
            return dict(error=f"worker {self.key} is dead (rc={self.p.returncode})", dead=True)
        with CpuMeter(self.p.pid) as meter:
            try:
                self.p.stdin.write(json.dumps(req) + "\n")
                self.p.stdin.flush()
            except BrokenPipeError:
                return dict(error=f"worker {self.key}: broken pipe", dead=True)
            rep = self._read()
        rep["foreign_cores"] = meter.foreign
        return rep

    def close(self):
        try:
            if self.p.poll() is None:
                self.p.stdin.write(json.dumps(dict(op="quit")) + "\n")
                self.p.stdin.flush()
                self.p.wait(timeout=60)
        except Exception:  # noqa: BLE001
            self.p.kill()
            self.p.wait()
        self.log.close()


def worker_env(env, engine, args):
    """PYTHONPATH of a worker: the dpcompress snapshot, or the extra DeePMD-kit path (vesin overlay)."""
    extra = args.dpc_src if engine.startswith("dpc") else args.dp_pythonpath
    env.pop("PYTHONPATH", None)
    if extra:
        env["PYTHONPATH"] = extra
    return env


def common_args(args):
    out = [args.model, "--frames", args.frames, "--dp-frozen", args.dp_frozen,
           "--dp-compressed", args.dp_compressed]
    if getattr(args, "dpc_file", None):
        out += ["--dpc-file", args.dpc_file]
    return out


# ----------------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------------


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if n == 0:
        return None
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_size(args, rep, logdir):
    import numpy as np

    rounds = args.rounds.get(rep, 3) if isinstance(args.rounds, dict) else args.rounds
    engines = [e for e in args.engines if e != "dp_cmp_lower" or rep in args.lower_sizes]
    res = dict(rep=rep, rounds=rounds, engines={}, loadavg=[])
    workers = []
    for T in args.threads:
        for e in engines:
            log(f"rep {rep}: starting {e}@{T}")
            w = Worker(e, T, args, logdir)
            workers.append(w)
            r = res["engines"][w.key] = dict(engine=e, threads=T, label=LABEL[e], times=[], warmup=[], hello=w.hello)
            if w.hello.get("error"):
                r["error"] = w.hello["error"]
                log(f"  {w.key}: failed to start: {r['error'][:300]}")
                continue
            s = w.ask(op="setup", rep=rep)
            if s.get("error"):
                r["error"] = s["error"]
                log(f"  {w.key}: setup failed: {r['error'][:300]}")
                continue
            res["natoms"] = s["natoms"]
            r["nall"] = s.get("nall")
            # warm-up (the first call also returns the results, for the cross-check)
            nwarm = args.warmup_dp if e.startswith("dp_") else (args.warmup_dpc_ref if e == "dpc_ref" else args.warmup_dpc)
            if e == "dpc_ref" and rep >= 4:
                nwarm = 1
            for k in range(nwarm):
                c = w.ask(op="call", results=(k == 0))
                if c.get("error"):
                    r["error"] = c["error"]
                    r["oom"] = is_oom(c["error"])
                    log(f"  {w.key}: error during warm-up: {c['error'].splitlines()[0][:200]}")
                    break
                r["warmup"].append(c["t"])
                if k == 0:
                    r["first"] = dict(energy=c["energy"], force=c["force"], virial=c["virial"])
                    r["status_after_first"] = c.get("status")
                if e == "dpc_ref" and c["t"] > args.max_ref_call:
                    r["skipped"] = f"one call took {c['t']:.1f} s > {args.max_ref_call} s: no timed rounds"
                    break
            log(f"  {w.key}: warm-up {['%.3f' % x for x in r['warmup']]}")
            if e == "dpc_cmp" and "error" not in r:
                r["flops"] = w.ask(op="flops")
                r["dgemm_before"] = w.ask(op="dgemm")
    active = [w for w in workers if "error" not in res["engines"][w.key] and "skipped" not in res["engines"][w.key]]
    for rnd in range(rounds):
        res["loadavg"].append(os.getloadavg())
        order = active[rnd % len(active):] + active[: rnd % len(active)] if active else []
        line = []
        for w in order:
            waited, pre = wait_quiet(args.quiet, args.max_wait, args.gap)
            c = w.ask(op="call")
            r = res["engines"][w.key]
            r.setdefault("pre_load", []).append(pre)
            r.setdefault("waited", []).append(waited)
            r.setdefault("foreign_cores", []).append(c.get("foreign_cores"))
            if c.get("error"):
                r.setdefault("round_errors", []).append(c["error"])
                r["times"].append(None)
            else:
                r["times"].append(c["t"])
                fc = c.get("foreign_cores")
                line.append(f"{w.key}={c['t']:.3f}" + (f"[{fc:.2f}]" if fc is not None and fc >= 0.1 else ""))
        # keep round order aligned: times[i] belongs to round i for every worker
        log(f"rep {rep} round {rnd + 1}/{rounds}: " + " ".join(line))
    for w in workers:
        r = res["engines"][w.key]
        if w.engine == "dpc_cmp" and "error" not in r:
            r["dgemm_after"] = w.ask(op="dgemm")
            if args.profile:
                r["profile"] = w.ask(op="profile", reps=args.profile_reps)
        st = w.ask(op="status")
        r["status_end"] = st.get("status")
    for w in workers:
        w.close()
    # summaries
    natoms = res.get("natoms")
    for key, r in res["engines"].items():
        ts = [t for t in r["times"] if t is not None]
        if ts:
            r["median"] = median(ts)
            r["min"] = min(ts)
            r["us_per_atom"] = r["median"] / natoms * 1e6
            fcs = [f for f in r.get("foreign_cores", []) if f is not None]
            r["foreign_cores_median"] = median(fcs) if fcs else None
            quiet = [t for t, f in zip(r["times"], r.get("foreign_cores", [])) if t is not None and f is not None
                     and f < args.quiet]
            r["quiet_calls"] = len(quiet)
            r["quiet_median"] = median(quiet) if len(quiet) >= 3 else None
        elif r.get("skipped") and r["warmup"]:
            r["median"] = r["warmup"][0]
            r["us_per_atom"] = r["median"] / natoms * 1e6
            r["single_call"] = True
    # cross-check against dpc_cmp at the same thread count (first call)
    ref = None
    for key, r in res["engines"].items():
        if r["engine"] == "dpc_cmp" and "first" in r:
            ref = r["first"]
            break
    res["check"] = {}
    if ref is not None:
        f0 = np.asarray(ref["force"])
        for key, r in res["engines"].items():
            if "first" in r:
                res["check"][key] = dict(
                    dE_per_atom=abs(r["first"]["energy"] - ref["energy"]) / natoms,
                    max_dF=float(np.max(np.abs(np.asarray(r["first"]["force"]) - f0))),
                    max_dV=float(np.max(np.abs(np.asarray(r["first"]["virial"]) - np.asarray(ref["virial"])))),
                )
    for r in res["engines"].values():
        r.pop("first", None)
    # round-by-round ratios
    res["ratios"] = {}
    for T in args.threads:
        a = res["engines"].get(f"dpc_cmp@{T}")
        for other in ("dp_cmp", "dp_cmp_lower", "dp_cmp_native", "dp_ref", "dpc_ref"):
            b = res["engines"].get(f"{other}@{T}")
            if not a or not b or not a["times"] or not b["times"]:
                continue
            rr = [x / y for x, y in zip(a["times"], b["times"]) if x is not None and y is not None]
            fa, fb = a.get("foreign_cores", []), b.get("foreign_cores", [])
            rq = [x / y for x, y, f, g in zip(a["times"], b["times"], fa, fb)
                  if x is not None and y is not None and f is not None and g is not None and max(f, g) < args.quiet]
            if rr:
                res["ratios"][f"dpc_cmp/{other}@{T}"] = dict(per_round=rr, median=median(rr), min=min(rr), max=max(rr),
                                                              quiet_rounds=len(rq),
                                                              quiet_median=median(rq) if len(rq) >= 3 else None)
        if a and "flops" in a and a.get("median"):
            fl = a["flops"]["total"]
            dg = [x["gflops"] for x in (a.get("dgemm_before"), a.get("dgemm_after")) if x and "gflops" in x]
            t_step = a["quiet_median"] if a.get("quiet_median") is not None else a["median"]
            rate = fl / t_step / 1e9
            res.setdefault("flop_rate", {})[str(T)] = dict(
                gflop_per_step=fl / 1e9, gflops=rate, dgemm_gflops=dg, step_seconds=t_step,
                step_time_used="quiet median" if a.get("quiet_median") is not None else "median of all rounds",
                percent_of_dgemm=100.0 * rate / max(dg) if dg else None,
                percent_of_dgemm_mean=100.0 * rate / (sum(dg) / len(dg)) if dg else None)
    return res


def memprobe_main(args):
    """Child process: load, evaluate 3 times, report."""
    set_rlimit(args.rlimit_gb)
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    out = dict(engine=args.memprobe, rep=args.rep, calls=[])
    try:
        t0 = time.perf_counter()
        eng = make_engine(args.memprobe, args, 1, use_dpc_file=True)
        out["load_seconds"] = time.perf_counter() - t0
        out["after_load"] = proc_status()
        coords, cell, types = build_system(args.frames, args.rep)
        eng.set_system(coords, cell, types)
        out["natoms"] = len(types)
        out["after_setup"] = proc_status()
        for _ in range(3):
            t0 = time.perf_counter()
            eng.call()
            out["calls"].append(time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001
        out["error"] = short_error(exc)
        out["oom"] = is_oom(out["error"])
    out["end"] = proc_status()
    proto.write(json.dumps(out) + "\n")
    proto.close()


def run_memprobe(args, engine, rep, logdir):
    py = args.dpc_python if engine.startswith("dpc") else args.dp_python
    env = thread_env(1)
    worker_env(env, engine, args)
    cmd = [py, os.path.abspath(__file__), *common_args(args), "--memprobe", engine, "--rep", str(rep),
           "--rlimit-gb", str(args.rlimit_gb)]
    with open(os.path.join(logdir, f"memprobe_{engine}_{rep}.log"), "w") as lg:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=lg, env=env, text=True, cwd=args.dpc_src)
        text = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
    try:
        out = json.loads(text.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = dict(engine=engine, rep=rep, error=f"probe died, rc={p.returncode}; see {lg.name}")
    out.update(max_rss_mib=ru.ru_maxrss / 1024.0, rc=p.returncode, wall_seconds=wall)
    return out


def compress_timing_main(args):
    """Child process (dpcompress venv): in-process compress() timing, and save the .dpc."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    import numpy as np

    from dpcompress import compress
    from dpcompress import load_model

    out = {}
    for label, nt in (("n_threads=None (all cores)", None), ("n_threads=1", 1)):
        ts = []
        for _ in range(args.compress_reps):
            t0 = time.perf_counter()
            model = compress(args.model, n_threads=nt)
            ts.append(time.perf_counter() - t0)
        out[label] = dict(times=ts, median=float(np.median(ts)))
    t0 = time.perf_counter()
    base = load_model(args.model)
    out["load_model_seconds"] = time.perf_counter() - t0
    ts = []
    for _ in range(args.compress_reps):
        t0 = time.perf_counter()
        model = compress(base)
        ts.append(time.perf_counter() - t0)
    out["from loaded DPModel, n_threads=None"] = dict(times=ts, median=float(np.median(ts)))
    out["max_table_error"] = model.compression.get("max_table_error")
    if args.dpc_file:
        model.save(args.dpc_file)
        out["dpc_file_bytes"] = os.path.getsize(args.dpc_file)
    out["status"] = proc_status()
    proto.write(json.dumps(out) + "\n")
    proto.close()


def run_compress_timing(args, logdir):
    env = thread_env(os.cpu_count() or 1)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(k, None)
    worker_env(env, "dpc", args)
    cmd = [args.dpc_python, os.path.abspath(__file__), *common_args(args), "--compress-timing",
           "--compress-reps", str(args.compress_reps)]
    with open(os.path.join(logdir, "compress_timing.log"), "w") as lg:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=lg, env=env, text=True, cwd=args.dpc_src)
    try:
        out = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = dict(error=f"compress timing failed rc={p.returncode}")
    # DeePMD-kit's own compression, one wall-clock run (includes interpreter start and torch import)
    dp = os.path.join(os.path.dirname(args.dp_python), "dp")
    tmp = tempfile.mkdtemp(prefix="dpc_bench_dp_")
    ncpu = os.cpu_count() or 1
    env = thread_env(ncpu)
    with open(os.path.join(logdir, "dp_compress.log"), "w") as lg:
        t0 = time.perf_counter()
        r = subprocess.run([dp, "--pt", "compress", "-i", args.dp_frozen, "-o", os.path.join(tmp, "compressed.pth")],
                           stdout=lg, stderr=subprocess.STDOUT, env=env, cwd=tmp)
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        r2 = subprocess.run([args.dp_python, "-c", "import torch, deepmd.pt.entrypoints.main"], stdout=lg,
                            stderr=subprocess.STDOUT, env=env, cwd=tmp)
        startup = time.perf_counter() - t0
    out["dp --pt compress"] = dict(wall_seconds=wall, rc=r.returncode, threads=ncpu,
                                   startup_import_seconds=startup if r2.returncode == 0 else None)
    try:
        os.remove(os.path.join(tmp, "compressed.pth"))
        os.rmdir(tmp)
    except OSError:
        pass
    return out


def make_snapshot(args, tmp, logdir):
    """Build the dpcompress to benchmark into ``tmp/src`` and return its path.

    ``--snapshot REF`` (default HEAD): ``git archive REF`` of the repository, extensions built in place
    there, so that edits other people make in the working tree while the benchmark runs cannot
    change what is measured.  ``--snapshot worktree``: the working tree as it is (already built).
    """
    info = dict(ref=args.snapshot)
    try:
        info["worktree_head"] = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True,
                                               text=True).stdout.strip()
        st = subprocess.run(["git", "-C", REPO, "status", "--porcelain"], capture_output=True, text=True).stdout
        info["worktree_dirty_files"] = len([ln for ln in st.splitlines() if ln.strip()])
    except OSError:
        pass
    if args.snapshot == "worktree":
        info["path"] = REPO
        return REPO, info
    src = os.path.join(tmp, "src")
    os.makedirs(src)
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", args.snapshot], capture_output=True, text=True,
                            check=True).stdout.strip()
    archive = subprocess.run(["git", "-C", REPO, "archive", "--format=tar", commit], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", src], input=archive.stdout, check=True)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    t0 = time.perf_counter()
    with open(os.path.join(logdir, "snapshot_build.log"), "w") as lg:
        subprocess.run([args.dpc_python, "setup.py", "build_ext", "--inplace"], cwd=src, env=env, stdout=lg,
                       stderr=subprocess.STDOUT, check=True)
    with open(os.path.join(logdir, "snapshot_build.log")) as lg:
        flags = sorted({w for ln in lg for w in ln.split() if w.startswith(("-O", "-fopenmp", "-march", "-ffp", "-fno-math"))})
    info.update(commit=commit, path=src, build_seconds=time.perf_counter() - t0, compile_flags_seen=flags)
    return src, info


def machine_info(args):
    info = dict(platform=platform.platform(), python=sys.version.split()[0], hostname=platform.node(),
                cpu_count=os.cpu_count())
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "L2 cache", "L3 cache", "Hypervisor vendor"):
                info[k.strip()] = v.strip()
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            info["MemTotal"] = fh.readline().split(":")[1].strip()
    except OSError:
        pass
    for key, py in (("dpc_env", args.dpc_python), ("dp_env", args.dp_python)):
        code = ("import numpy, sys, json; d={'numpy': numpy.__version__};\n"
                "try:\n import torch; d['torch']=torch.__version__\nexcept Exception: pass\n"
                "try:\n import deepmd; d['deepmd']=deepmd.__version__\nexcept Exception: pass\n"
                "try:\n from threadpoolctl import threadpool_info; d['blas']=[(x['internal_api'], x.get('version'), x.get('architecture')) for x in threadpool_info()]\nexcept Exception: pass\n"
                "print(json.dumps(d))")
        env = worker_env(dict(os.environ), "dpc" if key == "dpc_env" else "dp", args)
        r = subprocess.run([py, "-c", code], capture_output=True, text=True, env=env, cwd=args.dpc_src)
        try:
            info[key] = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            info[key] = r.stderr[-500:]
    return info


def fmt_t(r):
    if r is None:
        return "—"
    if r.get("error"):
        return "OOM" if r.get("oom") or is_oom(r["error"]) else "error"
    if r.get("median") is None:
        return "—"
    s = f"{r['median']:.4g} s ({r['us_per_atom']:.0f})"
    if r.get("single_call"):
        s += " ¹"
    return s


def markdown(results, args):
    out = []
    out.append("### Time per call (energy + forces + virial), median s (µs/atom)\n")
    cols = [e for e in ENGINES if e in args.engines]
    out.append("| atoms | threads | " + " | ".join(LABEL[e] for e in cols)
               + " | dpc_cmp / dp_cmp (per-round median [min–max]) | dpc_cmp / dp_cmp_lower |")
    out.append("|" + "---|" * (len(cols) + 4))
    for size in results["timing"]:
        n = size.get("natoms", 192 * size["rep"] ** 3)
        for T in args.threads:
            cells = [fmt_t(size["engines"].get(f"{e}@{T}")) for e in cols]
            ratios = []
            for o in ("dp_cmp", "dp_cmp_lower"):
                q = size["ratios"].get(f"dpc_cmp/{o}@{T}")
                txt = f"{q['median']:.3f} [{q['min']:.3f}–{q['max']:.3f}]" if q else "—"
                if q and q.get("quiet_median") is not None:
                    txt += f"; quiet {q['quiet_median']:.3f} ({q['quiet_rounds']} rounds)"
                ratios.append(txt)
            out.append(f"| {n} | {T} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    out.append("\n¹ one call only (longer than --max-ref-call).  Rounds: "
               + ", ".join(f"{s.get('natoms')}: {s['rounds']}" for s in results["timing"]) + ".\n")
    out.append("### Noise: CPU used by other processes during the timed calls\n")
    out.append(f"Cores used by other processes during each call (machine busy time minus the worker's own), median; "
               f"calls with < {args.quiet} cores are 'quiet'; 'quiet median' = median time over quiet calls (>= 3 needed).\n")
    out.append("| atoms | threads | " + " | ".join(f"{e}: foreign cores, quiet n/N, quiet median s" for e in cols) + " |")
    out.append("|" + "---|" * (len(cols) + 2))
    for size in results["timing"]:
        for T in args.threads:
            cells = []
            for e in cols:
                r = size["engines"].get(f"{e}@{T}")
                if not r or r.get("foreign_cores_median") is None:
                    cells.append("—")
                    continue
                qm = r.get("quiet_median")
                cells.append(f"{r['foreign_cores_median']:.2f}, {r['quiet_calls']}/{len([t for t in r['times'] if t is not None])}, "
                             + (f"{qm:.4g}" if qm is not None else "—"))
            out.append(f"| {size.get('natoms')} | {T} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("### dpcompress compressed: FLOP rate\n")
    out.append("| atoms | threads | real pairs/atom | GFLOP/step | step GFLOP/s | dgemm GFLOP/s (before, after) | % of dgemm (best) |")
    out.append("|---|---|---|---|---|---|---|")
    for size in results["timing"]:
        for T in args.threads:
            fr = size.get("flop_rate", {}).get(str(T))
            a = size["engines"].get(f"dpc_cmp@{T}", {})
            if not fr:
                continue
            dg = ", ".join(f"{x:.1f}" for x in fr["dgemm_gflops"])
            out.append(f"| {size.get('natoms')} | {T} | {a['flops']['mean_neighbors']:.1f} | {fr['gflop_per_step']:.3f} | "
                       f"{fr['gflops']:.1f} | {dg} | {fr['percent_of_dgemm']:.0f} % |")
    prof = [(s.get("natoms"), T, s["engines"][f"dpc_cmp@{T}"].get("profile")) for s in results["timing"]
            for T in args.threads if f"dpc_cmp@{T}" in s["engines"]]
    prof = [p for p in prof if p[2] and "error" not in p[2]]
    if prof:
        out.append("\n### dpcompress compressed: stage breakdown (median s, stages run one after another)\n")
        keys = ["neighbor_list", "forward_kernel", "descriptor_D", "fitting_net", "descriptor_grad_dT",
                "backward_kernel", "scatter", "sum_of_stages", "Potential.eval"]
        out.append("| atoms | threads | " + " | ".join(keys) + " |")
        out.append("|" + "---|" * (len(keys) + 2))
        for n, T, p in prof:
            out.append(f"| {n} | {T} | " + " | ".join(f"{p[k]:.4f}" for k in keys) + " |")
    if results.get("memory"):
        out.append("\n### Peak memory (1 thread, load + 3 evaluations, max RSS)\n")
        out.append("| engine | atoms | max RSS MiB | RSS after load MiB | note |")
        out.append("|---|---|---|---|---|")
        for m in results["memory"]:
            note = ""
            if m.get("error"):
                note = ("OOM: " if m.get("oom") else "error: ") + m["error"].splitlines()[-1][:160]
            out.append(f"| {LABEL.get(m['engine'], m['engine'])} | {m.get('natoms', 192 * m['rep'] ** 3)} | "
                       f"{m['max_rss_mib']:.0f} | {m.get('after_load', {}).get('VmRSS', float('nan')):.0f} | {note} |")
    c = results.get("compression")
    if c:
        out.append("\n### Compression time\n")
        out.append("| what | median s (runs) |")
        out.append("|---|---|")
        for k, v in c.items():
            if isinstance(v, dict) and "median" in v:
                out.append(f"| dpcompress `compress(frozen.dp)`, {k} | {v['median']:.3f} ({', '.join('%.3f' % x for x in v['times'])}) |")
        d = c.get("dp --pt compress")
        if d:
            out.append(f"| `dp --pt compress` wall clock (1 run, {d['threads']} threads, incl. interpreter start; "
                       f"bare `import torch, deepmd` takes {d.get('startup_import_seconds') or float('nan'):.1f} s) | {d['wall_seconds']:.1f} |")
    return "\n".join(out) + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help="uncompressed DeePMD-kit .dp model")
    p.add_argument("--frames", default=None, help="test_frames.npz (default: next to the model)")
    p.add_argument("--dp-frozen", default=os.environ.get("DEEPMD_ANCHOR_MODELS", "anchor/models") + "/frozen.pth")
    p.add_argument("--dp-compressed", default=os.environ.get("DEEPMD_ANCHOR_MODELS", "anchor/models") + "/compressed.pth")
    p.add_argument("--dpc-python", default=sys.executable, help="python of the dpcompress environment")
    p.add_argument("--dp-python", default=os.environ.get("DEEPMD_PYTHON", "anchor/venv/bin/python"), help="python of the DeePMD-kit environment")
    p.add_argument("--dp-pythonpath", default=None,
                   help="extra PYTHONPATH of the DeePMD-kit workers (e.g. a folder with vesin + vesin-torch)")
    p.add_argument("--snapshot", default="HEAD",
                   help="git revision of dpcompress to benchmark (archived and built in a temporary folder), "
                        "or 'worktree' for the working tree as it is")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder (snapshot, .dpc)")
    p.add_argument("--reps", type=int, nargs="*", default=[1, 2, 4], help="replications n (n^3 x 192 atoms); none: no timing")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    p.add_argument("--lower-sizes", type=int, nargs="*", default=[1, 2, 4], help="reps at which dp_cmp_lower runs")
    p.add_argument("--rounds", default="1:15,2:9,4:3", help="rounds per rep, 'rep:rounds,...' or one number")
    p.add_argument("--warmup-dp", type=int, default=4)
    p.add_argument("--warmup-dpc", type=int, default=3)
    p.add_argument("--warmup-dpc-ref", type=int, default=2)
    p.add_argument("--gap", type=float, default=0.25,
                   help="before each timed call, pause in slices of this many seconds until the machine is quiet")
    p.add_argument("--max-wait", type=float, default=3.0, help="longest pause (s) waiting for a quiet machine")
    p.add_argument("--max-ref-call", type=float, default=60.0, help="dpc_ref: no rounds when one call exceeds this (s)")
    p.add_argument("--quiet", type=float, default=0.15,
                   help="a call is 'quiet' when other processes used less than this many cores during it")
    p.add_argument("--rlimit-gb", type=float, default=20.0, help="RLIMIT_AS of every worker, GiB (0: none)")
    p.add_argument("--no-profile", dest="profile", action="store_false")
    p.add_argument("--profile-reps", type=int, default=5)
    p.add_argument("--memory", nargs="*", default=None,
                   help="memory probes 'engine:rep' (default: all engines at 1 and 2, dpc_cmp/dpc_ref/dp_cmp/"
                        "dp_cmp_lower at 4); pass nothing to skip")
    p.add_argument("--no-compress-timing", dest="compress_timing", action="store_false")
    p.add_argument("--compress-reps", type=int, default=3)
    p.add_argument("--out", default=os.path.join(HERE, "results", "se_e2_a.json"))
    # internal
    p.add_argument("--worker", choices=ENGINES)
    p.add_argument("--memprobe", choices=ENGINES)
    p.add_argument("--compress-timing", dest="compress_timing_child", action="store_true")
    p.add_argument("--rep", type=int, default=1)
    p.add_argument("--dpc-file", default=None)
    p.add_argument("--dpc-src", default=REPO)
    args = p.parse_args(argv)
    args.model = os.path.abspath(args.model)
    if args.frames is None:
        args.frames = os.path.join(os.path.dirname(args.model), "test_frames.npz")
    args.frames = os.path.abspath(args.frames)
    if "," in args.rounds or ":" in args.rounds:
        args.rounds = {int(a): int(b) for a, b in (x.split(":") for x in args.rounds.split(","))}
    else:
        args.rounds = int(args.rounds)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        args.threads = args.threads[0]
        return worker_main(args)
    if args.memprobe:
        return memprobe_main(args)
    if args.compress_timing_child:
        return compress_timing_main(args)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    logdir = os.path.splitext(os.path.abspath(args.out))[0] + "_logs"
    os.makedirs(logdir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="dpc_bench_")
    args.dpc_file = os.path.join(tmp, "compressed.dpc")
    log(f"dpcompress snapshot: {args.snapshot}")
    args.dpc_src, snap = make_snapshot(args, tmp, logdir)
    log(f"  {snap}")
    results = dict(
        snapshot=snap,
        meta=dict(started=time.strftime("%Y-%m-%d %H:%M:%S"), argv=sys.argv, model=args.model, frames=args.frames,
                  dp_frozen=args.dp_frozen, dp_compressed=args.dp_compressed, threads=args.threads, reps=args.reps,
                  rounds=args.rounds, gap=args.gap, rlimit_gb=args.rlimit_gb, loadavg_start=os.getloadavg(),
                  machine=machine_info(args)),
        timing=[],
    )

    def save():
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)

    # compression first: it also writes the .dpc that the memory probe loads
    if args.compress_timing:
        log("compression timing")
        results["compression"] = run_compress_timing(args, logdir)
        log(f"  {json.dumps({k: v.get('median', v) if isinstance(v, dict) else v for k, v in results['compression'].items() if k != 'status'})}")
        save()
    if not os.path.exists(args.dpc_file):
        env = worker_env(dict(os.environ), "dpc", args)
        subprocess.run([args.dpc_python, "-c", "import sys; from dpcompress.compress import compress; "
                        "compress(sys.argv[1]).save(sys.argv[2])", args.model, args.dpc_file], env=env, check=True,
                       cwd=args.dpc_src)

    for rep in args.reps:
        log(f"timing rep {rep}")
        results["timing"].append(run_size(args, rep, logdir))
        save()

    if args.memory is None:
        probes = [(e, r) for r in (1, 2) for e in ENGINES]
        probes += [("dpc_cmp", 4), ("dp_cmp", 4), ("dp_cmp_lower", 4), ("dpc_ref", 4)]
        probes = [(e, r) for e, r in probes if e in args.engines]
    else:
        probes = [(x.split(":")[0], int(x.split(":")[1])) for x in args.memory]
    results["memory"] = []
    for e, r in probes:
        log(f"memory probe {e} rep {r}")
        m = run_memprobe(args, e, r, logdir)
        log(f"  max RSS {m['max_rss_mib']:.0f} MiB" + (f"  ERROR {m['error'].splitlines()[-1][:150]}" if m.get("error") else ""))
        results["memory"].append(m)
        save()
    results["meta"]["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    results["meta"]["loadavg_end"] = os.getloadavg()
    save()
    md = markdown(results, args)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as fh:
        fh.write(md)
    print(md)
    if not args.keep_tmp:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
