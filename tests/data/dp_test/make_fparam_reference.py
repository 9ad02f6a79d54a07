"""Make the fparam/aparam systems and DeePMD-kit's ``dp test`` numbers of tests/test_dp_test_fparam.py.

Run from the repository root with DeePMD-kit 3.2's Python (torch, CPU)::

    CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=1 /path/to/deepmd-venv/bin/python \
        tests/data/dp_test/make_fparam_reference.py

Needs no shared data: the systems are the repository's ``systems/water_pbc`` (3 periodic frames,
192 atoms) and ``systems/cluster_nopbc`` (2 frames of a 36-atom cluster) with *synthetic* parameters
added (float32, as DeePMD-kit's data usually are), written under ``systems_fparam``:

* ``water_fparam``, ``cluster_fparam``: ``fparam.npy`` (nframes, 1) = 0.95 + 0.2 f and ``aparam.npy``
  (nframes, natoms) = 0.25 cos(0.13 i + 0.4 f) + (0.15 O, -0.05 H), f the frame, i the atom;
* ``water_aparam_only``: ``water_pbc`` with that ``aparam.npy`` and no ``fparam.npy`` (a model with
  ``default_fparam`` uses its default there; one without refuses it).

``reference_fparam.json``: DeePMD-kit's errors (the code ``dp test`` runs, at full precision:
``make_reference.deepmd_errors``) of ``tests/data/deepmd/se_e2_a_fparam_tiny/frozen.dp`` on
``water_fparam`` and ``cluster_fparam`` (key ``fparam``), of ``se_e2_a_fparam_default_tiny`` on all three
(key ``default``), each converted to ``.pth`` by ``dp convert-backend``; and the report lines
``dp --pt test -f`` (the two systems, in that order) printed for the first (``fparam_log``), which also checks the
printed numbers against the full-precision ones.
"""

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
sys.path.insert(0, HERE)

from make_reference import _log_lines, _version, deepmd_errors  # noqa: E402

SOURCE = os.path.join(HERE, "systems")
SYSTEMS = os.path.join(HERE, "systems_fparam")
MODELS = {"fparam": "se_e2_a_fparam_tiny", "default": "se_e2_a_fparam_default_tiny"}
WITH_FPARAM = ["cluster_fparam", "water_fparam"]
ALL = ["cluster_fparam", "water_aparam_only", "water_fparam"]


def params(nframes, types):
    f = np.arange(nframes, dtype=float)[:, None]
    i = np.arange(types.size, dtype=float)[None, :]
    fparam = (0.95 + 0.2 * f).astype(np.float32)
    aparam = (0.25 * np.cos(0.13 * i + 0.4 * f) + np.where(types == 0, 0.15, -0.05)[None, :]).astype(np.float32)
    return fparam, aparam


def make_systems():
    shutil.rmtree(SYSTEMS, ignore_errors=True)
    for name, src, with_fparam in (("water_fparam", "water_pbc", True), ("cluster_fparam", "cluster_nopbc", True),
                                   ("water_aparam_only", "water_pbc", False)):
        dst = os.path.join(SYSTEMS, name)
        shutil.copytree(os.path.join(SOURCE, src), dst)
        for extra in ("atom_ener.npy", "atom_pref.npy"):  # not needed here: keep the fixture small
            path = os.path.join(dst, "set.000", extra)
            if os.path.exists(path):
                os.remove(path)
        types = np.loadtxt(os.path.join(dst, "type.raw"), dtype=int).reshape(-1)
        nframes = np.load(os.path.join(dst, "set.000", "energy.npy")).size
        fparam, aparam = params(nframes, types)
        if with_fparam:
            np.save(os.path.join(dst, "set.000", "fparam.npy"), fparam)
        np.save(os.path.join(dst, "set.000", "aparam.npy"), aparam)


def main():
    make_systems()
    dp_bin = os.path.join(os.path.dirname(sys.executable), "dp")
    ref = {"made_by": "tests/data/dp_test/make_fparam_reference.py, DeePMD-kit " + _version(),
           "keys": "[error, weight] of DeePMD-kit's keys (eV, eV/Å), as reference.json"}
    with tempfile.TemporaryDirectory() as tmp:
        for key, folder in MODELS.items():
            pth = os.path.join(tmp, f"{key}.pth")
            subprocess.run([dp_bin, "convert-backend", os.path.join(REPO, "tests", "data", "deepmd", folder,
                                                                    "frozen.dp"), pth], check=True)
            names = WITH_FPARAM if key == "fparam" else ALL
            ref[key] = dict(deepmd_errors(pth, float("inf"), SYSTEMS, names=names),
                            model=f"tests/data/deepmd/{folder}/frozen.dp (dp convert-backend to .pth)")
            if key == "fparam":
                listing = os.path.join(tmp, "systems.txt")
                with open(listing, "w") as fh:
                    fh.write("".join(os.path.relpath(os.path.join(SYSTEMS, n), REPO) + "\n" for n in names))
                run = subprocess.run([dp_bin, "--pt", "test", "-m", pth, "-f", listing], check=True,
                                     capture_output=True, text=True, cwd=REPO)
                ref["fparam_log"] = _log_lines(run.stdout + run.stderr)
    printed = {}
    for line in ref["fparam_log"]:
        m = re.match(r"Force\s+RMSE\s*: ([-+0-9.e]+)", line)
        if m:
            printed.setdefault("rmse_f", []).append(float(m.group(1)))
    exact = [ref["fparam"]["systems"][n]["rmse_f"][0] for n in WITH_FPARAM] + [ref["fparam"]["weighted"]["rmse_f"][0]]
    assert len(printed.get("rmse_f", [])) >= 1 and all(
        any(abs(p - e) <= 1e-6 * abs(e) for e in exact) for p in printed["rmse_f"]), (printed, exact)
    with open(os.path.join(HERE, "reference_fparam.json"), "w") as fh:
        json.dump(ref, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
