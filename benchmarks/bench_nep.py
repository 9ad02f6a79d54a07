"""NEP speed: dpcompress (analytic and tabulated C kernels) vs calorine's CPUNEP.

µs per atom-step (one call = energy + forces + virial, neighbor list rebuilt every
call, as calorine does), median of ``--repeat`` calls after a warm-up, for
1 000- and ~10 000-atom rattled crystals of the fixture models, 1 and 2 threads.
calorine is optional (``pip install calorine``; never a dpcompress dependency).

    python benchmarks/bench_nep.py [--sizes 1000 10000] [--threads 1 2] [--repeat 5]
"""

import argparse
import os
import statistics
import time

import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

FIX = os.environ.get("NEP_FIXTURES", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "fixtures", "nep"))
CASES = {
    "PbTe_NEP4_example": ("PbTe", "rocksalt", 6.46, 8),
    "Si_2022_NEP4_5body": ("Si", "diamond", 5.431, 8),
    "BaTiO3_NEP4_zbl": ("BaTiO3", "perovskite", 4.0, 5),
}


def structure(name, natoms):
    from ase.build import bulk
    from ase import Atoms

    formula, kind, a, per_cell = CASES[name]
    if kind == "perovskite":
        unit = Atoms("BaTiO3", scaled_positions=[[0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]],
                     cell=[a, a, a], pbc=True)
    else:
        unit = bulk(formula, kind, a=a, cubic=True)
    k = max(1, round((natoms / len(unit)) ** (1 / 3)))
    atoms = unit.repeat((k, k, k))
    atoms.rattle(0.05, seed=1)
    return atoms


def timeit(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--models", nargs="+", default=list(CASES))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from dpcompress.nep import build_tables, read_nep
    from dpcompress.nep.evaluator import NEPEvaluator

    try:
        from calorine.calculators import CPUNEP
    except ImportError:
        CPUNEP = None
    print("| model | atoms | calorine CPUNEP (1 thr) | analytic 1 thr | tabulated 1 thr | analytic 2 thr | tabulated 2 thr | tab speed-up vs calorine (1 thr) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models:
        path = os.path.join(FIX, name, "nep.txt")
        m = read_nep(path)
        mt = read_nep(path)
        mt.tables = build_tables(mt)
        for n in args.sizes:
            atoms = structure(name, n)
            N = len(atoms)
            types = np.array([m.elements.index(s) for s in atoms.get_chemical_symbols()])
            pos, cell = atoms.positions, atoms.cell[:]
            row = {}
            if CPUNEP is not None:
                at = atoms.copy()
                at.calc = CPUNEP(path)

                def cal():
                    at.positions[0, 0] += 1e-9
                    at.get_potential_energy(), at.get_forces(), at.get_stress()

                row["cal"] = timeit(cal, args.repeat) / N * 1e6
            for label, model in (("an", m), ("tab", mt)):
                ev = NEPEvaluator(model)
                for t in args.threads:
                    row[f"{label}{t}"] = timeit(lambda: ev.evaluate(pos, cell, types, t), args.repeat) / N * 1e6
            fmt = lambda k: f"{row[k]:.1f}" if k in row else "—"
            sp = f"{row['cal'] / row['tab1']:.2f}×" if "cal" in row and "tab1" in row else "—"
            print(f"| {name} | {N} | {fmt('cal')} | {fmt('an1')} | {fmt('tab1')} | {fmt('an2')} | {fmt('tab2')} | {sp} |", flush=True)


if __name__ == "__main__":
    main()
