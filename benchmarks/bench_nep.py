"""NEP speed: dpcompress (analytic and tabulated C kernels) vs calorine's CPUNEP, same process, same run.

One call = energy + forces + virial of one frame with the neighbour list rebuilt, for every engine:

* calorine 4.1 ``CPUNEP.calculate(atoms, ['energy', 'forces', 'stress'])`` after a 1e-9 Å move of one
  atom (NEP_CPU rebuilds its neighbour list on every call; single-threaded: the extension is not
  linked to OpenMP), also timed as its bare ``NEPY.get_potential_forces_and_virials()`` core;
* dpcompress ``Potential(model, n_threads).eval(...)`` (the C model runtime; what the ASE calculator
  calls): candidates, rows and kernel in one call, analytic and tabulated (quintic tables, default
  0.01 Å step), 1 and 2 threads.

Rounds: every engine makes one timed call per round, in an order rotated round by round; before
each round the driver waits (up to ``--max-wait`` s) for the machine to go quiet and it records the
CPU that *other* processes used during the round (``foreign``, in cores, from /proc/stat minus this
process).  Reported: medians over rounds, µs per atom per step; ``vs calorine`` = median of the
per-round ratios calorine / engine.  OpenBLAS/MKL/OMP pools are pinned to 1 thread before numpy is
imported (idle OpenBLAS threads spin and steal the second core); dpcompress gets its thread count
per call.  The first call of every engine is checked against calorine (energy, forces, virial).

    python benchmarks/bench_nep.py [--sizes 1000 10000] [--threads 1 2] [--rounds 7] [--out nep.json]

calorine is optional (``pip install calorine``; never a dpcompress dependency); without it only the
dpcompress columns are filled.
"""

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from machine_load import HZ, busy_ticks, wait_quiet  # noqa: E402  (benchmarks/ is sys.path[0])

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, REPO)

FIX = os.environ.get("NEP_FIXTURES", os.path.join(REPO, "..", "shared", "fixtures", "nep"))
CASES = {
    "PbTe_NEP4_example": ("PbTe", "rocksalt", 6.46),
    "Si_2022_NEP4_5body": ("Si", "diamond", 5.431),
    "BaTiO3_NEP4_zbl": ("BaTiO3", "perovskite", 4.0),
}


def structure(name, natoms):
    """Cubic supercell of ~natoms atoms, rattled by 0.05 Å (seed 1)."""
    from ase import Atoms
    from ase.build import bulk

    formula, kind, a = CASES[name]
    if kind == "perovskite":
        unit = Atoms("BaTiO3", scaled_positions=[[0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]],
                     cell=[a, a, a], pbc=True)
    else:
        unit = bulk(formula, kind, a=a, cubic=True)
    k = max(1, round((natoms / len(unit)) ** (1 / 3)))
    atoms = unit.repeat((k, k, k))
    atoms.rattle(0.05, seed=1)
    return atoms


class Foreign:
    """CPU used by other processes (cores) between start() and stop(), from /proc/stat minus this process.
    Jiffy resolution (10 ms): meaningful over a whole round, not over one short call."""

    def start(self):
        self.b0, self.d0, self.t0 = busy_ticks(), os.times(), time.perf_counter()

    def stop(self):
        b1, d1, t1 = busy_ticks(), os.times(), time.perf_counter()
        own = (d1.user + d1.system) - (self.d0.user + self.d0.system)
        return max(0.0, (b1 - self.b0) / HZ - own) / (t1 - self.t0)


def machine():
    info = {"python": platform.python_version(), "numpy": np.__version__, "nproc": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import calorine

        info["calorine"] = calorine.__version__
    except ImportError:
        info["calorine"] = None
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "-uno"], capture_output=True, text=True).stdout.strip()
        info["dpcompress_git"] = rev + (" + uncommitted changes" if dirty else "")
    except OSError:
        pass
    return info


def loadavg():
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def run_case(name, n, args, log):
    from dpcompress import Potential
    from dpcompress.nep import build_tables, read_nep

    path = os.path.join(FIX, name, "nep.txt")
    model = read_nep(path)
    tab_model = read_nep(path)
    tab_model.tables = build_tables(tab_model)
    atoms = structure(name, n)
    N = len(atoms)
    types = np.array([model.elements.index(s) for s in atoms.get_chemical_symbols()])
    pos, cell = atoms.positions.copy(), atoms.cell[:].copy()

    engines = {}  # key -> callable returning (energy, forces, virial 3x3) and filling stage times
    cal = None
    if not args.no_calorine:
        try:
            from calorine.calculators import CPUNEP
        except ImportError:
            CPUNEP = None
        if CPUNEP is not None:
            cal_atoms = atoms.copy()
            cal = CPUNEP(path)
            cal_atoms.calc = cal
            step = [-1e-9]  # moves alternate -1e-9, +1e-9: odd calls (the check) see the original positions
            cal_atoms.positions[0, 0] += 1e-9

            def calorine_call():
                cal_atoms.positions[0, 0] += step[0]  # a real change: CPUNEP recomputes
                step[0] = -step[0]
                cal.calculate(cal_atoms, ["energy", "forces", "stress"])
                r = cal.results
                w = -np.asarray(r["stress"])[[0, 5, 4, 5, 1, 3, 4, 3, 2]].reshape(3, 3) * cal_atoms.get_volume()
                return r["energy"], r["forces"], w

            def nepy_call():  # calorine's core: NEP_CPU neighbour list + energies, forces, virials
                cal.nepy.get_potential_forces_and_virials()

            engines["calorine"] = calorine_call
            engines["calorine NEPY core"] = nepy_call

    for label, m in (("analytic", model), ("tabulated", tab_model)):
        for t in args.threads:
            pot = Potential(m, n_threads=t)

            def call(pot=pot):
                e, f, v = pot.eval(pos[None], cell.reshape(1, 9), types)
                return e[0, 0], f[0], v[0].reshape(3, 3)

            engines[f"{label} {t}"] = call

    # warm-up + cross-check against calorine (or against analytic 1 thread)
    ref_key = "calorine" if "calorine" in engines else f"analytic {args.threads[0]}"
    ref = engines[ref_key]()
    check = {}
    for key, fn in engines.items():
        out = fn()
        if key == ref_key or out is None:
            continue
        e, f, w = out
        check[key] = {"dE_per_atom": float(abs(e - ref[0])) / N, "max_dF": float(np.abs(f - ref[1]).max()),
                      "max_dW_per_atom": float(np.abs(w - ref[2]).max()) / N}
    times = {k: [] for k in engines}
    foreign, fg = [], Foreign()
    split = {}  # the runtime computes neighbours and kernel in one call: no stage split
    keys = list(engines)
    t_case = time.perf_counter()
    for rnd in range(args.rounds):
        wait_quiet(args.quiet, args.max_wait)
        order = keys[rnd % len(keys):] + keys[: rnd % len(keys)]
        fg.start()
        for key in order:
            t0 = time.perf_counter()
            engines[key]()
            times[key].append(time.perf_counter() - t0)
        foreign.append(fg.stop())
        if time.perf_counter() - t_case > args.case_budget:
            log(f"  {name} {N}: stopped after {rnd + 1} rounds (case budget {args.case_budget} s)")
            break
    us = lambda x: x / N * 1e6  # noqa: E731
    res = {"model": name, "atoms": N, "check_vs": ref_key, "check": check, "foreign_cores_per_round": foreign,
           "engines": {}}
    for key in keys:
        row = {"us_per_atom_step": us(statistics.median(times[key])), "min": us(min(times[key])),
               "rounds": len(times[key]), "raw_s": times[key]}
        if key in split:
            for s in ("neighbors", "kernel"):
                row[s] = us(statistics.median(split[key][s]))
        if "calorine" in times and key != "calorine":
            row["vs_calorine"] = statistics.median(c / x for c, x in zip(times["calorine"], times[key]))
        res["engines"][key] = row
    return res


def markdown(results):
    lines = ["| model | atoms | engine | threads | µs/atom-step | neighbour list | kernel | vs calorine | rounds; foreign cores (median / max) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        fc = r["foreign_cores_per_round"]
        for key, row in r["engines"].items():
            engine, _, thr = key.rpartition(" ") if not key.startswith("calorine") else (key, "", "1")
            nl = f"{row['neighbors']:.1f}" if "neighbors" in row else ""
            k = f"{row['kernel']:.1f}" if "kernel" in row else ""
            vs = f"{row['vs_calorine']:.2f}×" if "vs_calorine" in row and not key.startswith("calorine") else ""
            lines.append(f"| {r['model']} | {r['atoms']} | {engine} | {thr} | {row['us_per_atom_step']:.1f} | {nl} | {k} | {vs} | "
                         f"{row['rounds']}; {statistics.median(fc):.2f} / {max(fc):.2f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--models", nargs="+", default=list(CASES))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--quiet", type=float, default=0.3, help="wait before a round until others use < this many cores")
    ap.add_argument("--max-wait", type=float, default=2.0, help="longest wait for quiet before a round, s")
    ap.add_argument("--case-budget", type=float, default=60.0, help="stop a model/size after this many s of rounds")
    ap.add_argument("--no-calorine", action="store_true")
    ap.add_argument("--out", default=None, help="write all results (raw times included) as JSON")
    args = ap.parse_args()
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    meta = machine()
    meta.update(start=time.strftime("%Y-%m-%d %H:%M:%S %Z"), loadavg_start=loadavg(), args=vars(args))
    log(f"# {meta}")
    results = []
    for name in args.models:
        for n in args.sizes:
            t0 = time.perf_counter()
            results.append(run_case(name, n, args, log))
            chk = {k: {q: float(f"{v:.1e}") for q, v in c.items()} for k, c in results[-1]["check"].items()}
            log(f"  {name} ~{n}: {time.perf_counter() - t0:.0f} s; vs {results[-1]['check_vs']}: {chk}")
    meta.update(end=time.strftime("%Y-%m-%d %H:%M:%S %Z"), loadavg_end=loadavg())
    print(f"machine: {meta.get('cpu')}, {meta['nproc']} CPUs; {meta['start']} – {meta['end']}; load average "
          f"(1/5/15 min) at start {meta['loadavg_start']}, at end {meta['loadavg_end']}; dpcompress {meta.get('dpcompress_git')}; "
          f"calorine {meta['calorine']}, numpy {meta['numpy']}, Python {meta['python']}")
    print(markdown(results))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"meta": meta, "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
