"""Many small frames in one ``Potential.eval`` call against a loop of single-frame calls.

The frames: ``--frames`` water molecules (3 atoms), each rattled by 0.1 Å (seed 0), in a cubic
periodic box of ``--box`` Å (or no cell with ``--box 0``); the model: the tiny se_e2_a water fixture
(``tests/data/deepmd/se_e2_a_tiny/frozen.dp``) compressed with the defaults.  Timed, in rounds
(median reported):

* ``loop``:  ``for f in range(n): pot.eval(coords[f:f+1], cells[f:f+1], types)``
* ``batch``: ``pot.eval(coords, cells, types)``: the frames in one call

and the results of the two are checked bit for bit.  To compare against another commit (the loop
inside ``eval`` before batching), run the same script with that commit's package first on
``PYTHONPATH``::

    python benchmarks/bench_small_frames.py [--frames 1000] [--threads 1] [--rounds 5]
    PYTHONPATH=/path/to/other/checkout python benchmarks/bench_small_frames.py

Prints one JSON object: µs per frame of each and their ratio.
"""

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL = os.path.join(REPO, "tests", "data", "deepmd", "se_e2_a_tiny", "frozen.dp")


def molecules(n, box, seed=0):
    """``n`` water molecules (O, H, H), rattled by 0.1 Å, inside a cubic box of side ``box``."""
    rng = np.random.default_rng(seed)
    water = np.array([[0.0, 0.0, 0.0], [0.9572, 0.0, 0.0], [-0.2400, 0.9266, 0.0]])
    centre = (box if box > 0 else 10.0) / 2
    coords = water[None] + centre + rng.normal(scale=0.1, size=(n, 3, 3))
    cells = np.tile(np.eye(3) * box, (n, 1, 1)) if box > 0 else None
    return coords, cells, np.array([0, 1, 1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--box", type=float, default=20.0, help="cubic cell side, Å; 0: no cell [20]")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)

    import dpcompress

    pot = dpcompress.Potential(dpcompress.compress(MODEL), n_threads=args.threads)
    coords, cells, types = molecules(args.frames, args.box)

    def one_call():
        return pot.eval(coords, cells, types)

    def loop():
        out = [pot.eval(coords[f:f + 1], None if cells is None else cells[f:f + 1], types) for f in range(args.frames)]
        return tuple(np.concatenate([o[k] for o in out]) for k in range(3))

    batch_out, loop_out = one_call(), loop()  # warm-up, and the check
    identical = all(np.array_equal(a, b) for a, b in zip(batch_out, loop_out))
    times = {"loop": [], "batch": []}
    for _ in range(args.rounds):
        for name, fn in (("loop", loop), ("batch", one_call)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    us = {k: 1e6 * statistics.median(v) / args.frames for k, v in times.items()}
    print(json.dumps({
        "dpcompress": os.path.dirname(dpcompress.__file__),
        "frames": args.frames, "atoms_per_frame": 3, "box": args.box, "threads": args.threads,
        "rounds": args.rounds,
        "loop_us_per_frame": round(us["loop"], 2),
        "batch_us_per_frame": round(us["batch"], 2),
        "loop_over_batch": round(us["loop"] / us["batch"], 2),
        "bitwise_identical": identical,
    }, indent=1))


if __name__ == "__main__":
    main()
