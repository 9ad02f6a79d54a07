"""Make the labelled tensor systems and DeePMD-kit's ``dp test`` numbers of tests/test_dp_test_tensor.py.

Run from the repository root with DeePMD-kit 3.2's Python (torch, CPU)::

    CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=1 /path/to/deepmd-venv/bin/python \
        tests/data/dp_test/make_tensor_reference.py

Needs no shared data.  The systems (``systems_tensor``) are the coordinates, cells and types of the
repository's ``systems/water_pbc`` (3 periodic frames, 192 atoms) and ``systems/cluster_nopbc`` (2 frames
of a 36-atom cluster) with *synthetic* labels: DeePMD-kit's own predictions of the tiny models
``tests/data/deepmd/dipole_tiny`` and ``polar_tiny`` (``.dp`` converted to ``.pth``) plus normal noise
(seed 0), so that the errors are of a realistic size and their arithmetic is what is tested:

* ``dipole.npy`` (nframes, 3), ``polarizability.npy`` (nframes, 9): the global tensor + 0.05 N(0, 1);
* ``atomic_dipole.npy``, ``atomic_polarizability.npy``: the atomic tensors of the selected type (O) +
  0.02 N(0, 1), stored as DeePMD-kit accepts both: ``water_pbc`` with the selected atoms only
  (nframes, nsel * ndof), ``cluster_nopbc`` with every atom (nframes, natoms * ndof; zeros for H).

``reference_tensor.json``, per model (``dipole``, ``polar``): DeePMD-kit's errors at full precision
(``global``: ``dp test``; ``atomic``: ``dp test -a``), per system as ``ModelTester.run`` forms them
before it drops the per-system-only ``rmse_sqrtn``, ``rmse_n``, and weighted over the systems
(``merge_weighted_errors``), as ``[error, weight]``; ``log`` / ``atomic_log``: the report lines
``dp --pt test -f systems_tensor.txt -d ...`` printed (``cluster_nopbc`` first), run from the repository root;
``shuffled_r7_n2`` / ``shuffled_r7_n2_atomic``: the errors of ``dp test --shuffle-test -r 7 -n 2`` (``-a``);
``details``: for each detail file it wrote (``DETAIL.out`` for the first system, ``DETAIL.out.1`` for the
second), its line count and first two lines (header and first row).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, HERE)

from make_reference import _log_lines, _version  # noqa: E402

SOURCE = os.path.join(HERE, "systems")
SYSTEMS = os.path.join(HERE, "systems_tensor")
DATAFILE = os.path.join(HERE, "systems_tensor.txt")
NAMES = ["cluster_nopbc", "water_pbc"]
SEED = 7
MODELS = {"dipole": ("dipole_tiny", "dipole", "DeepDipole", 3),
          "polar": ("polar_tiny", "polarizability", "DeepPolar", 9)}


def make_systems(pths):
    from deepmd.infer.deep_dipole import DeepDipole
    from deepmd.infer.deep_polar import DeepPolar

    shutil.rmtree(SYSTEMS, ignore_errors=True)
    rng = np.random.default_rng(0)
    for name in NAMES:
        src, dst = os.path.join(SOURCE, name), os.path.join(SYSTEMS, name)
        os.makedirs(os.path.join(dst, "set.000"))
        for f in ("type.raw", "type_map.raw", "nopbc"):
            if os.path.exists(os.path.join(src, f)):
                shutil.copy(os.path.join(src, f), os.path.join(dst, f))
        for f in ("coord.npy", "box.npy"):
            if os.path.exists(os.path.join(src, "set.000", f)):
                shutil.copy(os.path.join(src, "set.000", f), os.path.join(dst, "set.000", f))
        types = np.loadtxt(os.path.join(dst, "type.raw"), dtype=int).reshape(-1)
        coord = np.load(os.path.join(dst, "set.000", "coord.npy")).astype(float)
        nf = coord.shape[0]
        box = np.load(os.path.join(dst, "set.000", "box.npy")).astype(float) if name == "water_pbc" else None
        for kind, (_, label, cls, ndof) in MODELS.items():
            dp = {"DeepDipole": DeepDipole, "DeepPolar": DeepPolar}[cls](pths[kind])
            sel = np.isin(types, dp.get_sel_type())
            atomic = dp.eval(coord.reshape(nf, -1), box, types, atomic=True).reshape(nf, -1, ndof)
            glob = atomic.sum(axis=1) + 0.05 * rng.standard_normal((nf, ndof))
            atomic_label = (atomic + 0.02 * rng.standard_normal(atomic.shape)) * sel[None, :, None]
            if name == "water_pbc":  # the selected atoms only
                atomic_label = atomic_label[:, sel, :]
            np.save(os.path.join(dst, "set.000", f"{label}.npy"), glob)
            np.save(os.path.join(dst, "set.000", f"atomic_{label}.npy"), atomic_label.reshape(nf, -1))
    with open(DATAFILE, "w") as fh:
        fh.write("".join(os.path.relpath(os.path.join(SYSTEMS, n), REPO) + "\n" for n in NAMES))


def deepmd_errors(pth, atomic, numb_test=float("inf"), seed=None):
    """Per system (every key, per-system-only ones too) and weighted, as ``dp test`` forms them; with
    ``seed``, the frames of ``dp test --shuffle-test -r seed`` (seeded before the model loads)."""
    from deepmd.infer.deep_eval import DeepEval
    from deepmd.infer.model_test import ChunkContext, build_tester, test_chunk_atoms
    from deepmd.utils.data import DeepmdData
    from deepmd.utils import random as dp_random
    from deepmd.utils.weight_avg import merge_weighted_errors

    if seed is not None:
        dp_random.seed(seed % (2**32))
    dp = DeepEval(pth)
    tester = build_tester(dp, atomic=atomic)
    out, errs = {"systems": {}}, []
    for name in NAMES:
        path = os.path.join(SYSTEMS, name)
        data = DeepmdData(path, set_prefix="set", shuffle_test=seed is not None, type_map=dp.get_type_map(),
                          sort_atoms=False)
        tester.add_data_requirements(data)
        chunks = [tester.evaluate_chunk(data, chunk, ChunkContext(path, None, False, 0))
                  for chunk in data.iter_test(chunk_atoms=test_chunk_atoms(), numb_test=numb_test)]
        err = merge_weighted_errors(chunks)
        errs.append({k: v for k, v in err.items() if k not in tester.per_system_only})
        out["systems"][name] = {k: list(v) for k, v in err.items()}
    out["weighted"] = {k: list(v) for k, v in merge_weighted_errors(errs).items()}
    return out


def main():
    dp_bin = os.path.join(os.path.dirname(sys.executable), "dp")
    ref = {"made_by": "tests/data/dp_test/make_tensor_reference.py, DeePMD-kit " + _version(),
           "keys": "[error, weight] of DeePMD-kit's keys: rmse, rmse_sqrtn, rmse_n (units of the labels)"}
    with tempfile.TemporaryDirectory() as tmp:
        pths = {}
        for kind, (folder, *_rest) in MODELS.items():
            pths[kind] = os.path.join(tmp, f"{kind}.pth")
            subprocess.run([dp_bin, "convert-backend", os.path.join(REPO, "tests", "data", "deepmd", folder,
                                                                    "frozen.dp"), pths[kind]], check=True)
        make_systems(pths)
        for kind, (folder, *_rest) in MODELS.items():
            entry = {"model": f"tests/data/deepmd/{folder}/frozen.dp (dp convert-backend to .pth)", "details": {}}
            for atomic in (False, True):
                tag = "atomic" if atomic else "global"
                entry[tag] = deepmd_errors(pths[kind], atomic)
                prefix = os.path.join(tmp, f"{kind}_{tag}")
                run = subprocess.run([dp_bin, "--pt", "test", "-m", pths[kind], "-f", os.path.relpath(DATAFILE, REPO),
                                      "-d", prefix] + (["-a"] if atomic else []),
                                     check=True, capture_output=True, text=True, cwd=REPO)
                entry[f"{tag}_log"] = [line for line in _log_lines(run.stdout + run.stderr)]
                entry[f"{tag}_log_full"] = [line.split("DEEPMD INFO", 1)[1].strip()
                                            for line in (run.stdout + run.stderr).splitlines()
                                            if "DEEPMD INFO" in line and ("RMSE" in line or "unit of error" in line)]
                for suffix in (".out", ".out.1"):
                    with open(prefix + suffix) as fh:
                        lines = fh.read().splitlines()
                    entry["details"][f"{tag}{suffix}"] = {"lines": len(lines), "head": lines[:2]}
            # -f with --shuffle-test -r 7 -n 2 (and -a): the same frames, in the same order
            entry["shuffled_r7_n2"] = deepmd_errors(pths[kind], False, 2, SEED)
            entry["shuffled_r7_n2_atomic"] = deepmd_errors(pths[kind], True, 2, SEED)
            ref[kind] = entry
    with open(os.path.join(HERE, "reference_tensor.json"), "w") as fh:
        json.dump(ref, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
