"""One workload of ``Potential.eval`` to count instructions under callgrind (1 thread).

Wall time on a shared VM moves by ±30 % between calls; the instruction count of a step is
repeatable to the instruction, so small changes in cheap steps are compared that way::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python benchmarks/count_instructions.py --tree . --case se_e3 --evals 2
    # instructions per eval = (total at --evals 2  -  total at --evals 1)

``--tree`` is the checkout to import (``.`` or a second worktree at an older commit, built in
place).  Cases: ``water3`` (3-atom water, ``--model`` a frozen .dp), a descriptor folder of the
shared fixtures (``se_e2_a``, ``se_e2_r``, ``se_e3``, …: its test frame replicated 2×2×2), or
``nep_pbte`` (PbTe NEP4, 8-atom cell replicated 5×5×5 = 1000 atoms).
"""

import argparse
import os
import sys
import tempfile
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.environ.get("DPCOMPRESS_SHARED_FIXTURES", os.path.join(HERE, "..", "..", "shared", "fixtures"))


def _replicate(coords, cell, types, n):
    shifts = np.array([[i, j, k] for i in range(n) for j in range(n) for k in range(n)]) @ cell
    return ((coords[None] + shifts[:, None]).reshape(1, -1, 3), (cell * n).reshape(1, 9), np.tile(types, n**3))


def workload(dpcompress, case, model, fixtures):
    """(potential source, eval arguments) of one case."""
    if case == "water3":
        coords = np.array([[[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]])
        return dpcompress.compress(model), (coords, (np.eye(3) * 10).reshape(1, 9), np.array([0, 1, 1]))
    if case == "nep_pbte":
        folder = os.path.join(fixtures, "nep", "PbTe_NEP4_example")
        out = os.path.join(tempfile.mkdtemp(), "pbte.dpc")
        dpcompress.save_model(dpcompress.compress_nep(os.path.join(folder, "nep.txt")), out)
        z = np.load(os.path.join(folder, "crystal_conv8.npz"), allow_pickle=False)
        return out, _replicate(z["positions"], z["cell"], z["type_index"], 5)
    folder = os.path.join(fixtures, "deepmd", case)
    z = np.load(os.path.join(folder, "test_frames.npz"), allow_pickle=False)
    frame = (z["coord"][0].reshape(-1, 3), z["box"][0].reshape(3, 3), z["atype"])
    return dpcompress.compress(os.path.join(folder, "frozen.dp")), _replicate(*frame, 2)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tree", default=".", help="checkout to import dpcompress from")
    p.add_argument("--case", required=True)
    p.add_argument("--model", help="frozen .dp for --case water3")
    p.add_argument("--evals", type=int, default=1, help="counted evaluations after two warm-up calls")
    p.add_argument("--fixtures", default=FIXTURES)
    a = p.parse_args()
    sys.path.insert(0, os.path.abspath(a.tree))
    warnings.simplefilter("ignore")
    import dpcompress

    source, args = workload(dpcompress, a.case, a.model, a.fixtures)
    pot = dpcompress.Potential(source, n_threads=1)
    for _ in range(2 + a.evals):
        pot.eval(*args)


if __name__ == "__main__":
    main()
