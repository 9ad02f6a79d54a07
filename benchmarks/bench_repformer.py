"""Time the C repformer stack (``src_c/dpc_repformer.c``) on a 1,536-atom water box.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/bench_repformer.py [--repeat 3]

(PYTHONPATH selects the checkout whose build is timed: run from another checkout with its path).

The box is the 2x2x2 supercell of frame 0 of ``tests/data/deepmd/se_e2_a_tiny/test_frames.npz``
with ``tests/data/deepmd/dpa2_tiny``.  Prints, for 1 and 2 threads, the best of ``--repeat`` runs of
each layer's forward and backward (``layer_forward`` / ``layer_backward``, the backward recomputing
the forward) and of the whole stack (``repformer_stack``: embedding, layers, backward, using the
forward intermediates cached in the stack workspace).
"""

import argparse
import os
import time

import numpy as np

from dpcompress import load_model
from dpcompress.descriptors.dpa2_tables import tabulate_repinit
from dpcompress.evaluators.exact import dpa2 as exact_dpa2
from dpcompress.evaluators.exact.repformer_layer import layer_forward
from dpcompress.reference import repformer_stack as twin
import dpcompress._ext.repformer_kernel as K

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data", "deepmd")


def box():
    with np.load(os.path.join(DATA, "se_e2_a_tiny", "test_frames.npz")) as f:
        c = f["coord"][0].reshape(-1, 3)
        cell = f["box"][0].reshape(3, 3)
        t = f["atype"].astype(np.int64)
    shifts = [np.array([a, b, d]) for a in range(2) for b in range(2) for d in range(2)]
    return np.concatenate([c + s @ cell for s in shifts]), cell * 2, np.tile(t, 8)


def best(f, repeat):
    """Best wall time and best process CPU time (the CPU time is the steadier on a loaded machine)."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        f()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    model = load_model(os.path.join(DATA, "dpa2_tiny", "frozen.dp"))
    coords, cell, types = box()
    calls = []

    def recording(layer, g1, g2, h2, idx, m, sw, *rest):
        calls.append((layer, g1, g2, h2, idx, m, sw))
        return layer_forward(layer, g1, g2, h2, idx, m, sw, *rest)

    original = exact_dpa2.layer_forward
    exact_dpa2.layer_forward = recording
    try:
        exact_dpa2.descriptors(model, coords, cell, types)
    finally:
        exact_dpa2.layer_forward = original
    act = model.descriptor.activation
    m = calls[0][5]
    print(f"{len(types)} atoms, J = {m.shape[1]}, real slots {m.mean():.2f}")
    grid = dict(stride0=0.01, stride1=0.1, extrapolate=5, order=5, n_threads=1)
    desc = tabulate_repinit(model.descriptor, model.min_nbor_dist, grid)
    index, vectors, rf_real, _ = exact_dpa2.neighbor_lists(desc, coords, cell, types)
    D0, P, idx, m, sw = twin.stack_inputs(desc, types, index, vectors, rf_real)
    dg1 = np.random.default_rng(0).normal(size=(len(types), desc.layers[0].g1_dim))
    for nt in (1, 2):
        for k, (layer, g1, g2, h2, idx_l, m_l, sw_l) in enumerate(calls):
            fwd = best(lambda: K.layer_forward(layer, act, g1, g2, h2, idx_l, m_l, sw_l, n_threads=nt), args.repeat)
            adj = (np.ones_like(g1), np.ones_like(g2), np.ones_like(h2))
            bwd = best(lambda: K.layer_backward(layer, act, g1, g2, h2, idx_l, m_l, sw_l, *adj, n_threads=nt),
                       args.repeat)
            print(f"threads {nt} layer {k} (g2 update {bool(layer.update_chnnl_2)}): forward {fwd[0]:.3f} s "
                  f"(cpu {fwd[1]:.3f} s), backward {bwd[0]:.3f} s (cpu {bwd[1]:.3f} s)")
        st = best(lambda: K.repformer_stack(desc, D0, types, P, idx, m, sw, dg1, n_threads=nt), args.repeat)
        print(f"threads {nt} stack forward + backward: {st[0]:.3f} s (cpu {st[1]:.3f} s)")


if __name__ == "__main__":
    main()
