"""Make the systems and DeePMD-kit's ``dp test`` reference numbers of tests/test_dp_test.py.

Run from the repository root with DeePMD-kit 3.2's Python (torch, CPU)::

    CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=1 /path/to/deepmd-venv/bin/python \
        tests/data/dp_test/make_reference.py --water /path/to/water-data/valid/data_3

1. ``systems``: two small ``deepmd/npy`` systems cut from the water validation system ``data_3``
   (DeePMD-kit's examples/water; float32 as shipped): ``water_pbc``, its frames 0-2 (192 atoms, periodic)
   with the shipped energy and force labels and a *synthetic* ``virial.npy`` (normal numbers, seed 0:
   the data set has no virial labels, and the virial metrics need some); ``cluster_nopbc``, atoms 0-11
   (O) and 64-87 (H) of its frames 3-4 as a non-periodic cluster, with the shipped forces of those
   atoms and the frame energy scaled by 36/192 as labels (synthetic too: only the arithmetic of the
   metrics is tested with them).
2. ``reference.json``: DeePMD-kit's own errors for ``tests/data/deepmd/se_e2_a_tiny/frozen.dp``
   (converted with ``dp convert-backend`` to ``.pth``), by the code ``dp test`` runs
   (``deepmd.infer.model_test.build_tester(...).run`` per system and
   ``deepmd.utils.weight_avg.merge_weighted_errors`` over them), at full precision, for all frames
   and for ``-n 2``; also the numbers ``dp --pt test`` prints (7 digits; checked against the
   former here).
3. ``detail.*``: the detail files of ``dp --pt test -s systems -d detail`` (``.f.out``: its first lines).
4. ``systems.txt`` (the two systems, the non-periodic one first) and what ``dp --pt test -f systems.txt
   --shuffle-test -r 7 -n 2 -d shuffled`` gives: ``reference.json["shuffled_r7_n2"]`` (its errors by
   the code it runs, seeded the same way) and the detail files ``shuffled.*`` (the label columns
   tell which frames it drew, in which order; ``shuffled.f.out``: its first lines).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
MODEL = os.path.join(REPO, "tests", "data", "deepmd", "se_e2_a_tiny", "frozen.dp")
SYSTEMS = os.path.join(HERE, "systems")


def make_systems(water):
    src = os.path.join(water, "set.000")
    load = {k: np.load(os.path.join(src, f"{k}.npy")) for k in ("coord", "box", "energy", "force")}
    types = np.loadtxt(os.path.join(water, "type.raw"), dtype=int)
    type_map = open(os.path.join(water, "type_map.raw")).read().split()
    shutil.rmtree(SYSTEMS, ignore_errors=True)

    def write(name, arrays, atom_types, periodic):
        folder = os.path.join(SYSTEMS, name)
        os.makedirs(os.path.join(folder, "set.000"))
        np.savetxt(os.path.join(folder, "type.raw"), atom_types, fmt="%d")
        with open(os.path.join(folder, "type_map.raw"), "w") as fh:
            fh.write("\n".join(type_map) + "\n")
        if not periodic:
            open(os.path.join(folder, "nopbc"), "w").close()
        for key, value in arrays.items():
            np.save(os.path.join(folder, "set.000", f"{key}.npy"), value)

    frames = slice(0, 3)
    rng = np.random.default_rng(0)
    virial = rng.normal(size=(3, 9)).astype(np.float32)
    # synthetic per-atom labels: atomic energies near E/N, force weights in [0.5, 2)
    atom_ener = (load["energy"][frames, None] / 192 + 0.05 * rng.normal(size=(3, 192))).astype(np.float32)
    atom_pref = rng.uniform(0.5, 2.0, size=(3, 192)).astype(np.float32)
    write("water_pbc", {"coord": load["coord"][frames], "box": load["box"][frames], "energy": load["energy"][frames],
                        "force": load["force"][frames], "virial": virial, "atom_ener": atom_ener,
                        "atom_pref": atom_pref}, types, True)
    atoms = np.r_[0:12, 64:88]
    frames = slice(3, 5)
    coord = load["coord"][frames].reshape(2, -1, 3)[:, atoms].reshape(2, -1)
    force = load["force"][frames].reshape(2, -1, 3)[:, atoms].reshape(2, -1)
    energy = (load["energy"][frames] * np.float32(36 / 192)).astype(np.float32)
    atom_ener = (energy[:, None] / 36 + 0.05 * rng.normal(size=(2, 36))).astype(np.float32)
    write("cluster_nopbc", {"coord": coord, "energy": energy, "force": force, "atom_ener": atom_ener}, types[atoms],
          False)


DATAFILE = os.path.join(HERE, "systems.txt")
SEED = 7


def deepmd_errors(pth, numb_test, root=SYSTEMS, names=None, seed=None, atomic=False):
    """DeePMD-kit's errors, per system (``names`` in that order; default sorted) and weighted;
    with ``seed``, shuffled as ``dp test --shuffle-test -r seed`` does (seeded before the model loads);
    with ``atomic`` (``-a``), each system's errors as ``tester.run`` forms them before it drops the
    per-system-only ones (the atomic energy's ``mae_ae``, ``rmse_ae``, which it prints)."""
    from deepmd.infer.deep_eval import DeepEval
    from deepmd.infer.model_test import ChunkContext, build_tester, test_chunk_atoms
    from deepmd.utils import random as dp_random
    from deepmd.utils.data import DeepmdData
    from deepmd.utils.weight_avg import merge_weighted_errors

    if seed is not None:
        dp_random.seed(seed % (2**32))
    dp = DeepEval(pth)
    tester = build_tester(dp, atomic=atomic)
    out, errs = {"systems": {}}, []
    for name in names or sorted(os.listdir(root)):
        path = os.path.join(root, name)
        data = DeepmdData(path, set_prefix="set", shuffle_test=seed is not None, type_map=dp.get_type_map(),
                          sort_atoms=False)
        if atomic:  # ModelTester.run's steps, keeping every key
            tester.add_data_requirements(data)
            chunks = [tester.evaluate_chunk(data, chunk, ChunkContext(path, None, False, 0))
                      for chunk in data.iter_test(chunk_atoms=test_chunk_atoms(), numb_test=numb_test)]
            err = merge_weighted_errors(chunks)
            errs.append({k: v for k, v in err.items() if k not in tester.per_system_only})
        else:
            err = tester.run(data, path, numb_test, None)
            errs.append(err)
        out["systems"][name] = {k: list(v) for k, v in err.items()}
    out["weighted"] = {k: list(v) for k, v in merge_weighted_errors(errs).items()}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--water", required=True, help="the water validation system data_3 (deepmd/npy)")
    ap.add_argument("--fixture", default=None,
                    help="the shared se_e2_a fixture folder: also write reference_fixture.json, DeePMD-kit's errors "
                         "of its frozen.dp on ../water-data/valid (the test marked slow)")
    args = ap.parse_args()
    if args.fixture:
        with tempfile.TemporaryDirectory() as tmp:
            pth = os.path.join(tmp, "frozen.pth")
            subprocess.run([os.path.join(os.path.dirname(sys.executable), "dp"), "convert-backend",
                            os.path.join(args.fixture, "frozen.dp"), pth], check=True)
            valid = os.path.join(os.path.dirname(os.path.abspath(args.fixture)), "water-data", "valid")
            ref = {"model": "shared fixtures deepmd/se_e2_a/frozen.dp (dp convert-backend to .pth)",
                   "data": "shared fixtures deepmd/water-data/valid (system data_3, 20 frames)",
                   "made_by": "tests/data/dp_test/make_reference.py --fixture, DeePMD-kit " + _version(),
                   "all": deepmd_errors(pth, float("inf"), valid)}
        with open(os.path.join(HERE, "reference_fixture.json"), "w") as fh:
            json.dump(ref, fh, indent=1)
            fh.write("\n")
    make_systems(args.water)
    dp_bin = os.path.join(os.path.dirname(sys.executable), "dp")
    with tempfile.TemporaryDirectory() as tmp:
        pth = os.path.join(tmp, "frozen.pth")
        subprocess.run([dp_bin, "convert-backend", MODEL, pth], check=True)
        ref = {"model": "tests/data/deepmd/se_e2_a_tiny/frozen.dp (dp convert-backend to .pth)",
               "made_by": "tests/data/dp_test/make_reference.py, DeePMD-kit " + _version(),
               "keys": "[error, weight] of DeePMD-kit's keys: mae_e, rmse_e, mae_ea, rmse_ea, mae_f, rmse_f, "
                       "mae_v, rmse_v, mae_va, rmse_va (eV, eV/Å)",
               "all": deepmd_errors(pth, float("inf")), "n2": deepmd_errors(pth, 2)}
        # run from the repository root with a relative -s: the detail headers name the systems by it
        run = subprocess.run([dp_bin, "--pt", "test", "-m", pth, "-s", os.path.relpath(SYSTEMS, REPO),
                              "-d", os.path.join(tmp, "detail")], check=True, capture_output=True, text=True, cwd=REPO)
        log = run.stdout + run.stderr
        weighted_block = log.split("weighted average of errors", 1)[1]
        labels = {"Energy MAE": "mae_e", "Energy RMSE": "rmse_e", "Energy MAE/Natoms": "mae_ea",
                  "Energy RMSE/Natoms": "rmse_ea", "Force  MAE": "mae_f", "Force  RMSE": "rmse_f",
                  "Virial MAE": "mae_v", "Virial RMSE": "rmse_v", "Virial MAE/Natoms": "mae_va",
                  "Virial RMSE/Natoms": "rmse_va"}
        ref["printed_weighted"] = {labels[m.group(1).strip()]: float(m.group(2)) for m in
                                   re.finditer(r"INFO\s+(\w[\w /]*?)\s*: ([-+0-9.e]+) eV", weighted_block)
                                   if m.group(1).strip() in labels}
        _keep_details(tmp, "detail")
        # -f: a list of systems, the non-periodic one first; shuffled with a seed
        names = ["cluster_nopbc", "water_pbc"]
        with open(DATAFILE, "w") as fh:
            fh.write("".join(os.path.relpath(os.path.join(SYSTEMS, n), REPO) + "\n" for n in names))
        subprocess.run([dp_bin, "--pt", "test", "-m", pth, "-f", os.path.relpath(DATAFILE, REPO), "--shuffle-test",
                        "-r", str(SEED), "-n", "2", "-d", os.path.join(tmp, "shuffled")], check=True, capture_output=True,
                       cwd=REPO)
        _keep_details(tmp, "shuffled")
        ref["shuffled_r7_n2"] = deepmd_errors(pth, 2, names=names, seed=SEED)
        # -a: the atomic energies against atom_ener.npy; what dp test prints, and at full precision
        run = subprocess.run([dp_bin, "--pt", "test", "-m", pth, "-s", os.path.relpath(SYSTEMS, REPO), "-a"],
                             check=True, capture_output=True, text=True, cwd=REPO)
        ref["atomic"] = deepmd_errors(pth, float("inf"), atomic=True)
        ref["dp_test_atomic_log"] = _log_lines(run.stdout + run.stderr)
        ref["dp_test_log"] = _log_lines(log)
    # the printed numbers (7 digits) agree with the full-precision ones
    assert len(ref["printed_weighted"]) == 10
    for key, value in ref["printed_weighted"].items():
        exact = ref["all"]["weighted"][key][0]
        assert abs(value - exact) <= 1e-6 * abs(exact), (key, value, exact)
    with open(os.path.join(HERE, "reference.json"), "w") as fh:
        json.dump(ref, fh, indent=1)
        fh.write("\n")


def _log_lines(log):
    """The report lines of dp test's log (systems, frame counts, errors)."""
    return [line.split("DEEPMD INFO", 1)[1].strip() for line in log.splitlines()
            if "DEEPMD INFO" in line and re.search(r"MAE|RMSE|testing system|number of", line)]


def _keep_details(tmp, prefix):
    """Copy dp test's detail files ``prefix.*`` here (``.f.out``: its first four lines, as ``.f.out.head``)."""
    for suffix in (".e.out", ".e_peratom.out", ".v.out", ".v_peratom.out", ".s.out"):
        shutil.copy(os.path.join(tmp, prefix + suffix), os.path.join(HERE, prefix + suffix))
    with open(os.path.join(tmp, prefix + ".f.out")) as fh:
        head = [next(fh) for _ in range(4)]
    with open(os.path.join(HERE, prefix + ".f.out.head"), "w") as fh:
        fh.writelines(head)


def _version():
    import deepmd

    return deepmd.__version__


if __name__ == "__main__":
    main()
