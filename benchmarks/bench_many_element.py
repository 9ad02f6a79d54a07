#!/usr/bin/env python
r"""Many-element benchmark, the parts ``bench_descriptors.py`` does not measure: table bytes and the
stage split of dpcompress's exact (uncompressed) step.

The model is the 5-type se_e2_a model of ``make_many_element_model.py`` (``--models``, default
``$DPC_MANY_ELEMENT_MODELS`` or ``many_element_models``; folder ``se_e2_a_5types``).  The step
times of the engines (dpcompress compressed vs DeePMD-kit compressed, 1 and 2 threads, alternated
rounds) come from the shared driver::

    python benchmarks/bench_descriptors.py --fixtures $M --models $M --descriptors se_e2_a_5types --rep 1 \
        --threads 1 2 --rounds 5 --warmup 2 --dp-python <deepmd-env>/bin/python --out benchmarks/results/many_element.json

This script adds (``--out``, default ``benchmarks/results/many_element_tables_stages.json``):

tables
    dpcompress: ``compress(frozen.dp)`` with the defaults (step 0.01 Å, extrapolate 5, quintic),
    the bytes of every table's coefficients (``iter_tables``) and the size of the written ``.dpc``.
    DeePMD-kit: the tensors of ``compressed.pth`` that ``frozen.pth`` lacks or holds empty (the tabulated
    embeddings and their bounds, read in a DeePMD-kit worker: ``torch.jit.load(...).state_dict()``
    and the scripted module's buffers), and both files' sizes.
stages
    dpcompress's exact evaluator (``Potential(frozen.dp)``, numpy) on the test frame, ``--reps``
    calls per thread count; the stage functions are wrapped with timers in this process only:
    neighbor lists, the embedding nets (values and derivatives, ``per_type_embeddings``), the rest
    of the descriptor forward (environment matrix, :math:`T = \tilde R^\top G`, :math:`D`), the
    fitting net (forward + backward), the descriptor backward (contractions with :math:`G`,
    :math:`G'`) and the remainder (scatter, glue).  "Embedding share" = embedding nets / step;
    "what the tables replace" = embedding nets + the contractions with :math:`G` in both directions.

Usage (dpcompress environment, repository root)::

    python benchmarks/bench_many_element.py --dp-python <deepmd-env>/bin/python [--threads 1 2] [--reps 3]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
NAME = "se_e2_a_5types"
sys.path.insert(0, REPO)  # measure this checkout's package (and its in-place build), not an installed one


def dp_table_bytes(folder):
    """DeePMD-kit worker: tensors (name -> bytes) of compressed.pth not in frozen.pth."""
    import torch

    import deepmd.pt.cxx_op  # noqa: F401  (registers DeePMD-kit's custom ops the scripted model calls)

    def tensors(path):
        """name -> bytes of the scripted module's tensors (parameters and buffers), each storage once."""
        m = torch.jit.load(path, map_location="cpu")
        out, seen = {}, set()
        for k, v in list(m.state_dict().items()) + list(m.named_buffers()):
            if k in out or v.data_ptr() in seen and v.numel():
                continue
            seen.add(v.data_ptr())
            out[k] = v.numel() * v.element_size()
        return out

    frozen = tensors(os.path.join(folder, "frozen.pth"))
    comp = tensors(os.path.join(folder, "compressed.pth"))
    # the tables: tensors compressed.pth adds or enlarges (the frozen model holds them empty)
    extra = {k: b - frozen.get(k, 0) for k, b in comp.items() if b > frozen.get(k, 0)}
    return dict(extra_tensors=len(extra), extra_bytes=sum(extra.values()),
                largest=sorted(extra.items(), key=lambda kv: -kv[1])[:4],
                frozen_tensor_bytes=sum(frozen.values()), compressed_tensor_bytes=sum(comp.values()))


def dpc_tables(folder):
    from dpcompress import compress
    from dpcompress.descriptors import iter_tables
    from dpcompress.modelfile import save_model

    t0 = time.perf_counter()
    m = compress(os.path.join(folder, "frozen.dp"))
    seconds = time.perf_counter() - t0
    tabs = list(iter_tables(m.descriptor))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.dpc")
        save_model(m, path)
        size = os.path.getsize(path)
    return dict(tables=len(tabs), table_bytes=int(sum(t.coef.nbytes for t in tabs)), dpc_file_bytes=size,
                compress_seconds=seconds, nspline=[int(t.nspline) for t in tabs[:1]],
                max_table_error=float(max(t.max_error for t in tabs)))


def exact_stages(folder, threads, reps):
    """Median seconds per stage of the exact step (timers wrapped around the stage functions)."""
    import numpy as np

    import dpcompress.evaluators.exact as ex
    import dpcompress.evaluators.exact.se_e2_a as se
    from dpcompress import Potential

    f = np.load(os.path.join(folder, "test_frames.npz"))
    x, box, types = f["coord"][0].reshape(-1, 3), f["box"][0].reshape(3, 3), np.asarray(f["atype"])
    acc = {}

    def timed(mod, name, key):
        fn = getattr(mod, name)

        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                acc[key] = acc.get(key, 0.0) + time.perf_counter() - t0
        setattr(mod, name, wrapper)
        return fn

    originals = [(ex.ExactEvaluator, "_neighbor_lists", timed(ex.ExactEvaluator, "_neighbor_lists", "neighbor_list")),
                 (se, "per_type_embeddings", timed(se, "per_type_embeddings", "embedding_nets")),
                 (se, "descriptor_forward", timed(se, "descriptor_forward", "descriptor_forward_total")),
                 (ex, "fitting_forward_backward", timed(ex, "fitting_forward_backward", "fitting_net")),
                 (se, "descriptor_backward", timed(se, "descriptor_backward", "descriptor_backward"))]
    # the contraction T = R~^T G (forward) is timed by re-running it on the cached arrays: see below
    out = {}
    try:
        for T in threads:
            pot = Potential(os.path.join(folder, "frozen.dp"), n_threads=T)
            rows = []
            for k in range(reps + 1):
                acc.clear()
                t0 = time.perf_counter()
                pot.eval(x[None], box.reshape(1, 9), types)
                step = time.perf_counter() - t0
                r = dict(acc, step=step)
                r["descriptor_forward_rest"] = r.pop("descriptor_forward_total") - r["embedding_nets"]
                r["rest"] = step - sum(r[s] for s in ("neighbor_list", "embedding_nets", "descriptor_forward_rest",
                                                      "fitting_net", "descriptor_backward"))
                if k:
                    rows.append(r)
            med = {s: float(np.median([r[s] for r in rows])) for s in rows[0]}
            med["embedding_share"] = med["embedding_nets"] / med["step"]
            med["embedding_and_contractions_share"] = (med["embedding_nets"] + med["descriptor_forward_rest"]
                                                       + med["descriptor_backward"]) / med["step"]
            out[str(T)] = dict(median=med, calls=rows)
            print(f"exact step, {len(types)} atoms, {T} thread(s): " + ", ".join(f"{s} {v:.3f}" for s, v in med.items()),
                  flush=True)
    finally:
        for mod, name, fn in originals:
            setattr(mod, name, fn)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=os.environ.get("DPC_MANY_ELEMENT_MODELS", "many_element_models"))
    p.add_argument("--dp-python", default=os.environ.get("DEEPMD_PYTHON"))
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", default=os.path.join(HERE, "results", "many_element_tables_stages.json"))
    p.add_argument("--dp-tables-worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    folder = os.path.abspath(os.path.join(a.models, NAME))
    if a.dp_tables_worker:
        print(json.dumps(dp_table_bytes(folder)))
        return
    res = dict(started=time.strftime("%Y-%m-%d %H:%M:%S %Z"), argv=sys.argv, loadavg_start=os.getloadavg(),
               files={n: os.path.getsize(os.path.join(folder, n)) for n in ("frozen.dp", "frozen.pth", "compressed.pth")})
    res["dpcompress_tables"] = dpc_tables(folder)
    print("dpcompress tables:", res["dpcompress_tables"], flush=True)
    if a.dp_python:
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
        env.pop("PYTHONPATH", None)
        r = subprocess.run([a.dp_python, os.path.abspath(__file__), "--dp-tables-worker", "--models", a.models],
                           capture_output=True, text=True, env=env, check=True)
        res["deepmd_tables"] = json.loads(r.stdout.strip().splitlines()[-1])
        print("DeePMD-kit tables:", res["deepmd_tables"], flush=True)
    res["exact_stages"] = exact_stages(folder, a.threads, a.reps)
    res["loadavg_end"] = os.getloadavg()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
