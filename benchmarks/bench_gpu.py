#!/usr/bin/env python
r"""Benchmark: the compressed se_e2_a water step on a CUDA GPU (``Potential(..., device="gpu")``).

Needs a CUDA GPU and CuPy; without them it exits with status 2 and says what is missing.

System: frame 0 of the water fixture's ``test_frames.npz`` (192 atoms, 64 waters) replicated
n x n x n; the default sizes n = 4, 8, 18 give 12 288, 98 304 and 1 119 744 atoms.  Model:
``compress(frozen.dp, step=0.01)`` (quintic, the defaults).

Per size
--------
* step time: median over ``--repeats`` steps after ``--warmup`` steps (the first also compiles
  the kernels with NVRTC), CUDA events around ``GpuEvaluator.evaluate`` (everything up to the
  results on the device), and separately the read-back of energy, forces and virial;
* atom-steps/s = natoms / step time;
* peak GPU memory: the CuPy memory pool's high-water mark over the timed steps (the pool keeps
  what it allocated; it is emptied before each size), and ``cudaMemGetInfo``'s used bytes;
* per stage (neighbors, forward, fitting, backward, gather): median time from CUDA events, and for
  the fused kernels the achieved FP64 FLOP/s and DRAM bytes/s against the device's FP64 (FMA
  pipe, not tensor-core) peak and its HBM bandwidth, both the datasheet numbers (from the
  device's clocks) and the measured ceilings (a device-to-device copy, a cuBLAS DGEMM).

Stages and their kernels (each named after its C twin, docs/gpu.md)::

    neighbors  dpc_cell_candidates_bin_periodic, dpc_neighbor_rows
    forward    dpc_se_a_tab_forward<NCOEF,CPL>
    fitting    dpc_descriptor_from_T, cuBLAS GEMMs, dpc_descriptor_gradient_to_T
    backward   dpc_se_a_tab_backward<NCOEF,G>
    gather     dpc_scatter_pair_gradients

Counts (P real neighbor pairs, N atoms, B padded (atom, block) pairs, nnei slots, M channels,
ncoef = 6 coefficients; one multiply-add = 2 FLOP)::

    forward   FLOP  = P M (2 (ncoef-1) + 8) + B M (2 (ncoef-1) + 8) + 60 P       (Horner, 4 FMAs, env row)
              bytes = 24 N nnei (vectors) + 8 N nblocks (counts) + 32 N M (T)      (minimal DRAM traffic)
    backward  FLOP  = P M (4 (ncoef-1) + 10 + 8) + 150 P                         (value+derivative, 5 sums)
              bytes = 24 N nnei + 32 N M (dT) + 24 N nnei (pair gradients)
    gather    bytes = N nnei (8 + 24 + 24) + P (8 + 24 + 24) + 96 N                (own slots, reverse slots, out)
    fitting   FLOP  = 2 N sum_layers 2 n_in n_out + N (2 4 M A + 2 2 4 M A)      (forward + backward GEMMs, D, dE/dT)

The coefficient reads (P M ncoef 8 bytes) hit L2/L1 (the tables are a few MB); they are
reported as "table bytes" next to the DRAM estimate, since they bound the fused kernels.

Usage (on the GPU machine, from the repository root)::

    python benchmarks/bench_gpu.py [frozen.dp] [--sizes 4,8,18] [--out benchmarks/results/gpu.json]
"""

import argparse
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_MODEL = os.path.normpath(os.path.join(REPO, "..", "shared", "fixtures", "deepmd", "se_e2_a", "frozen.dp"))
STAGES = ("neighbors", "forward", "fitting", "backward", "gather")
#: the CUDA kernels timed in each stage (the report names them, so a result says what it measured)
STAGE_KERNELS = {
    "neighbors": ("dpc_cell_candidates_bin_periodic", "dpc_neighbor_rows"),
    "forward": ("dpc_se_a_tab_forward",),
    "fitting": ("dpc_descriptor_from_T", "cuBLAS dgemm", "dpc_descriptor_gradient_to_T"),
    "backward": ("dpc_se_a_tab_backward",),
    "gather": ("dpc_scatter_pair_gradients",),
}
#: FP64 FMA units per SM by compute capability (datasheets: A100 32, H100/H200 64)
FP64_FMA_PER_SM = {(8, 0): 32, (9, 0): 64, (10, 0): 64}


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Compressed se_e2_a water step on a CUDA GPU: step time, atom-steps/s, peak memory, "
        "achieved FLOP/s and bytes/s of the fused kernels.",
    )
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help="DeePMD-kit water se_e2_a frozen.dp (default: shared fixture)")
    p.add_argument("--frames", default=None, help="test_frames.npz (default: next to the model)")
    p.add_argument("--sizes", default="4,8,18", help="replications n (n^3 x 192 atoms), comma separated")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--chunk", type=int, default=None, help="atoms per fitting-net chunk")
    p.add_argument("--out", default=None, help="write all numbers as JSON here")
    return p.parse_args(argv)


def replicate(coords, cell, types, n):
    import numpy as np

    shifts = np.array([[a, b, c] for a in range(n) for b in range(n) for c in range(n)], dtype=np.float64) @ cell
    big = (coords[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    return big, cell * n, np.tile(types, n**3)


def peaks(cupy):
    """Datasheet FP64 (FMA pipe) FLOP/s and HBM bytes/s from the device's properties."""
    dev = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(dev.id)
    cc = (int(props["major"]), int(props["minor"]))
    sms = int(props["multiProcessorCount"])
    rt = cupy.cuda.runtime

    def attribute(number, key):
        # cudaDeviceProp lost clockRate/memoryClockRate in CUDA 13; cudaDeviceGetAttribute still has them
        try:
            return float(rt.deviceGetAttribute(number, dev.id))
        except Exception:
            return float(props.get(key, 0) or 0)

    clock_hz = attribute(13, "clockRate") * 1e3  # cudaDevAttrClockRate, kHz
    mem_hz = attribute(36, "memoryClockRate") * 1e3  # cudaDevAttrMemoryClockRate, kHz
    bus_bits = attribute(37, "memoryBusWidth")  # cudaDevAttrGlobalMemoryBusWidth
    fma = FP64_FMA_PER_SM.get(cc)
    flops = None if fma is None or not clock_hz else 2.0 * fma * sms * clock_hz
    bw = 2.0 * mem_hz * bus_bits / 8.0 if mem_hz and bus_bits else None
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return dict(name=name, compute_capability=cc, sms=sms, fp64_peak=flops, hbm_peak=bw,
                memory_bytes=int(props["totalGlobalMem"]))


def measured_ceilings(cupy):
    """A large device-to-device copy (bytes read + written per second) and a cuBLAS DGEMM (FLOP/s)."""
    import numpy as np

    def timed(fn, reps=10):
        fn()
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        times = []
        for _ in range(reps):
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(cupy.cuda.get_elapsed_time(start, end) * 1e-3)
        return float(np.median(times))

    bufs = {"a": cupy.random.random(1 << 28)}  # 2 GiB
    bufs["b"] = cupy.empty_like(bufs["a"])
    t_copy = timed(lambda: bufs["b"].__setitem__(slice(None), bufs["a"]))
    n = 8192
    bufs["x"], bufs["y"] = cupy.random.random((n, n)), cupy.random.random((n, n))
    t_gemm = timed(lambda: cupy.matmul(bufs["x"], bufs["y"]), reps=5)
    bufs.clear()
    cupy.get_default_memory_pool().free_all_blocks()
    return dict(copy_bytes_per_s=2 * 8 * (1 << 28) / t_copy, dgemm_flops=2.0 * n**3 / t_gemm)


def kernel_counts(model, part, nl_counts, natoms):
    """FLOP and byte counts of the fused kernels (module docstring) for one step."""
    import numpy as np

    M, A, ncoef = part.M, part.A, part.ncoef
    nnei, nblocks = part.nnei, part.nblocks
    P = int(nl_counts.sum())
    B = int(np.count_nonzero(np.asarray(nl_counts) < np.asarray(part.sel)[None, :]))
    N = natoms
    horner = 2 * (ncoef - 1)
    layers = [(layer.n_in, layer.n_out) for layer in model.fitting.network(0).layers]
    return dict(
        pairs=P,
        forward=dict(flop=P * M * (horner + 8) + B * M * (horner + 8) + 60 * P,
                     bytes=24 * N * nnei + 8 * N * nblocks + 32 * N * M, table_bytes=8 * P * M * ncoef),
        backward=dict(flop=P * M * (2 * horner + 10 + 8) + 150 * P,
                      bytes=24 * N * nnei + 32 * N * M + 24 * N * nnei, table_bytes=8 * P * M * ncoef),
        gather=dict(flop=0, bytes=N * nnei * 56 + P * 56 + 96 * N, table_bytes=0),
        fitting=dict(flop=2 * N * sum(2 * i * o for i, o in layers) + N * 3 * 8 * M * A,
                     bytes=N * 8 * (4 * M * 3 + 2 * M * A * 2), table_bytes=0),
        neighbors=dict(flop=0, bytes=32 * N * nnei, table_bytes=0),
    )


def main(argv=None):
    args = parse_args(argv)
    import importlib.util

    if importlib.util.find_spec("dpcompress") is None:  # run from a source checkout without installing
        sys.path.insert(0, REPO)
    from dpcompress.gpu import unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        print(f"bench_gpu: needs a CUDA GPU with CuPy: {reason}", file=sys.stderr)
        return 2
    if not os.path.isfile(args.model):
        print(f"bench_gpu: model not found: {args.model}", file=sys.stderr)
        return 2
    import cupy
    import numpy as np

    from dpcompress import compress
    from dpcompress.gpu import neighbor_list as gnl
    from dpcompress.gpu.backend import CupyBackend
    from dpcompress.gpu.se_a_compressed import CHUNK, GpuEvaluator, neighbor_list
    from dpcompress import load_model

    frames_path = args.frames or os.path.join(os.path.dirname(args.model), "test_frames.npz")
    frames = np.load(frames_path)
    coords0 = frames["coord"][0].reshape(-1, 3).astype(np.float64)
    cell0 = frames["box"][0].reshape(3, 3).astype(np.float64)
    types0 = frames["atype"].astype(np.int64)
    model = compress(load_model(args.model), step=0.01)
    dev = peaks(cupy)
    ceilings = measured_ceilings(cupy)
    report = dict(device=dev, measured=ceilings, host=platform.node(), cupy=cupy.__version__, sizes=[])
    pool = cupy.get_default_memory_pool()
    be = CupyBackend()

    for n in [int(s) for s in args.sizes.split(",") if s.strip()]:
        coords, cell, types = replicate(coords0, cell0, types0, n)
        natoms = len(types)
        pool.free_all_blocks()
        ev = GpuEvaluator(model, be, chunk=args.chunk or CHUNK)
        xyz = cupy.asarray(coords)
        for _ in range(max(1, args.warmup)):
            ev.evaluate(xyz, cell, types).to_host(be, atomic=False)
        events = {}

        def timer(name):
            class _T:
                def __enter__(self):
                    self.a = cupy.cuda.Event()
                    self.b = cupy.cuda.Event()
                    self.a.record()

                def __exit__(self, *exc):
                    self.b.record()
                    events.setdefault(name, []).append((self.a, self.b))

            return _T()

        steps, reads, stage_times = [], [], {s: [] for s in STAGES}
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        for _ in range(args.repeats):
            events.clear()
            start.record()
            res = ev.evaluate(xyz, cell, types, timer=timer)
            end.record()
            end.synchronize()
            steps.append(cupy.cuda.get_elapsed_time(start, end) * 1e-3)
            t0 = time.perf_counter()
            res.to_host(be, atomic=False)
            reads.append(time.perf_counter() - t0)
            for name, pairs in events.items():
                stage_times[name].append(sum(cupy.cuda.get_elapsed_time(a, b) for a, b in pairs) * 1e-3)
        peak_pool = pool.total_bytes()
        free, total = cupy.cuda.runtime.memGetInfo()
        part = ev.parts[0]
        nl_dev = neighbor_list(be, part, xyz, cell, ev._types_dev, gnl.new_error_words(be))
        counts = cupy.asnumpy(nl_dev.counts)
        del nl_dev
        work = kernel_counts(model, part, counts, natoms)
        step = float(np.median(steps))
        row = dict(n=n, natoms=natoms, step_s=step, atom_steps_per_s=natoms / step,
                   readback_s=float(np.median(reads)), peak_pool_bytes=int(peak_pool),
                   device_used_bytes=int(total - free), pairs=work["pairs"], stages={})
        for name in STAGES:
            if not stage_times[name]:
                continue
            t = float(np.median(stage_times[name]))
            w = work[name]
            st = dict(kernels=list(STAGE_KERNELS[name]), time_s=t, flop=w["flop"], bytes=w["bytes"],
                      table_bytes=w["table_bytes"], flop_per_s=w["flop"] / t, bytes_per_s=w["bytes"] / t)
            if dev["fp64_peak"]:
                st["fraction_fp64_peak"] = st["flop_per_s"] / dev["fp64_peak"]
            if dev["hbm_peak"]:
                st["fraction_hbm_peak"] = st["bytes_per_s"] / dev["hbm_peak"]
            st["fraction_measured_copy"] = st["bytes_per_s"] / ceilings["copy_bytes_per_s"]
            row["stages"][name] = st
        report["sizes"].append(row)
        del ev, xyz, res
        pool.free_all_blocks()

    gib = float(1 << 30)
    print(f"\n{dev['name']}  (cc {dev['compute_capability']}, {dev['sms']} SMs, {dev['memory_bytes'] / gib:.0f} GiB)")
    if dev["fp64_peak"]:
        print(f"FP64 FMA peak {dev['fp64_peak'] / 1e12:.1f} TFLOP/s (datasheet), cuBLAS DGEMM {ceilings['dgemm_flops'] / 1e12:.1f} TFLOP/s")
    if dev["hbm_peak"]:
        print(f"HBM {dev['hbm_peak'] / 1e12:.2f} TB/s (datasheet), copy {ceilings['copy_bytes_per_s'] / 1e12:.2f} TB/s (measured)")
    print(f"\n{'atoms':>10} {'step ms':>9} {'atom-steps/s':>13} {'peak GiB':>9} {'readback ms':>12}")
    for row in report["sizes"]:
        print(f"{row['natoms']:>10} {row['step_s'] * 1e3:>9.2f} {row['atom_steps_per_s']:>13.3e} "
              f"{row['peak_pool_bytes'] / gib:>9.2f} {row['readback_s'] * 1e3:>12.2f}")
    print(f"\n{'atoms':>10} {'stage':>10} {'ms':>8} {'TFLOP/s':>8} {'%FP64':>6} {'GB/s':>8} {'%HBM':>6}")
    for row in report["sizes"]:
        for name, st in row["stages"].items():
            print(f"{row['natoms']:>10} {name:>10} {st['time_s'] * 1e3:>8.2f} {st['flop_per_s'] / 1e12:>8.2f} "
                  f"{100 * st.get('fraction_fp64_peak', float('nan')):>6.1f} {st['bytes_per_s'] / 1e9:>8.1f} "
                  f"{100 * st.get('fraction_hbm_peak', float('nan')):>6.1f}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=1, default=str)
        print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
