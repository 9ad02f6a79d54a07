"""``dpcompress test`` of dipole and polarizability models against DeePMD-kit's ``dp test`` itself.

Reference: ``tests/data/dp_test/reference_tensor.json`` (made by ``make_tensor_reference.py``):
DeePMD-kit 3.2.0's errors, at full precision, of the tiny ``dipole_tiny`` / ``polar_tiny`` models on
``systems_tensor`` (``cluster_nopbc`` with every atom's atomic labels, ``water_pbc`` with the selected
atoms' only), with and without ``-a``, its printed report and the first lines of its detail files.
Tolerance: 1e-10 relative on every error (our exact evaluator and the compressed tables agree with
DeePMD-kit's tensors to ~1e-15 absolute, docs/tensor-models.md; the errors are ~1e-2).  The MAE, which
``dp test`` does not report, is checked against a numpy twin on the labels read with numpy.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

from conftest import REPO
from dpcompress import compress, save_model
from dpcompress.cli import main

HERE = os.path.join(REPO, "tests", "data", "dp_test")
SYSTEMS = os.path.join(HERE, "systems_tensor")
NAMES = ["cluster_nopbc", "water_pbc"]  # as systems_tensor.txt lists them
ORDER = [os.path.relpath(os.path.join(SYSTEMS, n), REPO) for n in NAMES]
MODELS = {"dipole": ("dipole_tiny", "dipole", 3), "polar": ("polar_tiny", "polarizability", 9)}
RTOL = 1e-10
#: our --json names of DeePMD-kit's keys (per system; the weighted average has "rmse" only)
JSON_KEYS = {"rmse": "rmse", "rmse_sqrtn": "rmse_per_sqrt_natoms", "rmse_n": "rmse_per_natoms"}


def _model(kind):
    return os.path.join(REPO, "tests", "data", "deepmd", MODELS[kind][0], "frozen.dp")


@pytest.fixture(scope="module")
def reference():
    with open(os.path.join(HERE, "reference_tensor.json")) as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def compressed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tensor_dpc")
    out = {}
    for kind in MODELS:
        out[kind] = str(folder / f"{kind}.dpc")
        save_model(compress(_model(kind)), out[kind])
    return out


def _run(tmp_path, monkeypatch, capsys, model, *extra):
    monkeypatch.chdir(REPO)  # relative system paths, as dp test was run
    rc = main(["test", "-m", model, "-s", *ORDER, "--no-progress", "-d", str(tmp_path / "detail"),
               "--json", str(tmp_path / "t.json"), *extra])
    assert rc == 0
    printed = capsys.readouterr().out
    with open(tmp_path / "t.json") as fh:
        return json.load(fh), printed


@pytest.mark.parametrize("atomic", [False, True], ids=["global", "atomic"])
@pytest.mark.parametrize("variant", ["exact", "compressed"])
@pytest.mark.parametrize("kind", list(MODELS))
def test_errors_and_details_equal_dp_test(tmp_path, monkeypatch, capsys, reference, compressed, kind, variant, atomic):
    model = _model(kind) if variant == "exact" else compressed[kind]
    doc, printed = _run(tmp_path, monkeypatch, capsys, model, *(["-a"] if atomic else []))
    tag = "atomic" if atomic else "global"
    theirs = reference[kind][tag]
    q = ("atomic_" if atomic else "") + MODELS[kind][1]
    assert doc["kind"] == kind and doc["atomic"] is atomic
    for name, rel in zip(NAMES, ORDER):
        ours = doc["systems"][rel]
        expected = theirs["systems"][name]
        assert {f"{q}_{JSON_KEYS[k]}" for k in expected} | {f"{q}_mae", "nframes"} == set(ours)
        for key, (value, _weight) in expected.items():
            np.testing.assert_allclose(ours[f"{q}_{JSON_KEYS[key]}"], value, rtol=RTOL, atol=0, err_msg=f"{name} {key}")
    assert set(theirs["weighted"]) == {"rmse"}
    np.testing.assert_allclose(doc["weighted"][f"{q}_rmse"], theirs["weighted"]["rmse"][0], rtol=RTOL, atol=0)
    assert doc["weighted"]["nframes"] == 5
    # the printed report: dp test's lines, its numbers to the 7 digits printed
    ours_lines = [line for line in printed.splitlines() if "RMSE" in line or "unit of error" in line]
    dp_lines = reference[kind][f"{tag}_log_full"]
    assert [re.sub(r":.*", "", line) for line in ours_lines] == [re.sub(r":.*", "", line) for line in dp_lines]
    for a, b in zip(ours_lines, dp_lines):
        if ":" in b:
            assert float(a.split(":")[1]) == pytest.approx(float(b.split(":")[1]), rel=2e-6)
    # detail files: DETAIL.out (first system), DETAIL.out.1 (second): line counts, header, first row
    for suffix in (".out", ".out.1"):
        with open(tmp_path / f"detail{suffix}") as fh:
            lines = fh.read().splitlines()
        expected = reference[kind]["details"][f"{tag}{suffix}"]
        assert len(lines) == expected["lines"]
        assert lines[0] == expected["head"][0]
        np.testing.assert_allclose(np.array(lines[1].split(), float), np.array(expected["head"][1].split(), float),
                                   rtol=RTOL, atol=1e-13)


@pytest.mark.parametrize("atomic", [False, True], ids=["global", "atomic"])
def test_mae_numpy_twin(tmp_path, monkeypatch, capsys, atomic):
    """The MAE (ours only) is mean |prediction - label| over the labels as read by numpy."""
    doc, _ = _run(tmp_path, monkeypatch, capsys, _model("dipole"), *(["-a"] if atomic else []))
    total, count = 0.0, 0
    for suffix, rel in zip((".out", ".out.1"), ORDER):
        table = np.loadtxt(tmp_path / f"detail{suffix}", ndmin=2)
        half = table.shape[1] // 2
        name = os.path.basename(rel)
        stem = "atomic_dipole" if atomic else "dipole"
        label = np.load(os.path.join(SYSTEMS, name, "set.000", f"{stem}.npy"))
        if atomic and name == "cluster_nopbc":  # stored for every atom: keep O (type 0), the selected type
            types = np.loadtxt(os.path.join(SYSTEMS, name, "type.raw"), dtype=int)
            label = label.reshape(label.shape[0], -1, 3)[:, types == 0, :]
        np.testing.assert_array_equal(table[:, :half], label.reshape(table.shape[0], -1))  # savetxt is exact
        diff = table[:, half:] - table[:, :half]
        key = ("atomic_" if atomic else "") + "dipole_mae"
        np.testing.assert_allclose(doc["systems"][rel][key], np.mean(np.abs(diff)), rtol=1e-12)
        total, count = total + np.sum(np.abs(diff)), count + diff.size
    np.testing.assert_allclose(doc["weighted"][("atomic_" if atomic else "") + "dipole_mae"], total / count, rtol=1e-12)


def _copy_system(tmp_path, name="water_pbc"):
    dst = tmp_path / name
    shutil.copytree(os.path.join(SYSTEMS, name), dst)
    return dst


def test_missing_labels_exit_2(tmp_path, capsys):
    sys_ = _copy_system(tmp_path)
    os.remove(sys_ / "set.000" / "dipole.npy")
    assert main(["test", "-m", _model("dipole"), "-s", str(sys_), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no dipole.npy" in err and "(nframes, 3)" in err and "set.000" in err
    assert len(err.strip().splitlines()) == 1
    # -a reads the atomic labels, under either name; absent: named with both shapes DeePMD-kit accepts
    assert main(["test", "-m", _model("polar"), "-s", str(sys_), "-a", "--no-progress"]) == 0
    os.remove(sys_ / "set.000" / "atomic_polarizability.npy")
    assert main(["test", "-m", _model("polar"), "-s", str(sys_), "-a", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "atom_polarizability.npy or atomic_polarizability.npy" in err and "(nframes, 576)" in err
    assert "(nframes, 1728)" in err


def test_bad_label_shape_exit_2(tmp_path, capsys):
    sys_ = _copy_system(tmp_path)
    np.save(sys_ / "set.000" / "dipole.npy", np.zeros((3, 4)))
    assert main(["test", "-m", _model("dipole"), "-s", str(sys_), "--no-progress"]) == 2
    assert "dipole.npy: shape (3, 4), expected (3, 3)" in capsys.readouterr().err


@pytest.mark.parametrize("kind", list(MODELS))
def test_against_original(tmp_path, monkeypatch, capsys, reference, compressed, kind):
    """--against: the compressed model beside the model it was made from, both against dp test's numbers."""
    doc, printed = _run(tmp_path, monkeypatch, capsys, compressed[kind], "--against", _model(kind))
    q = MODELS[kind][1]
    theirs = reference[kind]["global"]
    for name, rel in zip(NAMES, ORDER):
        for key, (value, _weight) in theirs["systems"][name].items():
            np.testing.assert_allclose(doc["against"]["systems"][rel][f"{q}_{JSON_KEYS[key]}"], value, rtol=RTOL)
        diff = doc["against"]["differences"][rel]
        assert 0 <= diff[f"{q}_rms"] <= diff[f"{q}_max"] < 1e-12  # tables vs exact nets (docs/tensor-models.md)
    np.testing.assert_allclose(doc["against"]["weighted"][f"{q}_rmse"], theirs["weighted"]["rmse"][0], rtol=RTOL)
    assert doc["against"]["differences_weighted"][f"{q}_max"] == max(
        d[f"{q}_max"] for d in doc["against"]["differences"].values())
    assert printed.count("# original model") == 3 and printed.count("max |d") == 3


def test_against_other_kind_and_plot_refused(tmp_path, capsys):
    system = os.path.join(SYSTEMS, "water_pbc")
    energy = os.path.join(REPO, "tests", "data", "deepmd", "se_e2_a_tiny", "frozen.dp")
    for against, what in ((energy, "an energy model"), (_model("polar"), "a 'polar' model")):
        assert main(["test", "-m", _model("dipole"), "-s", system, "--no-progress", "--against", against]) == 2
        err = capsys.readouterr().err
        assert f"--against {against}: {what}" in err and len(err.strip().splitlines()) == 1
    plot = tmp_path / "p.png"
    assert main(["test", "-m", _model("dipole"), "-s", system, "--no-progress", "--plot", str(plot)]) == 2
    assert "--plot draws energy and force parity plots" in capsys.readouterr().err
    assert not plot.exists()


@pytest.mark.parametrize("atomic", [False, True], ids=["global", "atomic"])
@pytest.mark.parametrize("kind", list(MODELS))
def test_shuffled_frames_as_dp_test(tmp_path, monkeypatch, capsys, reference, compressed, kind, atomic):
    """-f --shuffle-test -r 7 -n 2: dp test's frames (the errors of those frames equal its own)."""
    monkeypatch.chdir(REPO)
    rc = main(["test", "-m", compressed[kind], "-f", os.path.relpath(os.path.join(HERE, "systems_tensor.txt"), REPO),
               "--shuffle-test", "-r", "7", "-n", "2", "--no-progress", "--json", str(tmp_path / "t.json"),
               *(["-a"] if atomic else [])])
    assert rc == 0
    with open(tmp_path / "t.json") as fh:
        doc = json.load(fh)
    theirs = reference[kind]["shuffled_r7_n2_atomic" if atomic else "shuffled_r7_n2"]
    q = ("atomic_" if atomic else "") + MODELS[kind][1]
    for name, rel in zip(NAMES, ORDER):
        assert doc["systems"][rel]["nframes"] == 2
        for key, (value, _weight) in theirs["systems"][name].items():
            np.testing.assert_allclose(doc["systems"][rel][f"{q}_{JSON_KEYS[key]}"], value, rtol=RTOL, atol=0)
    np.testing.assert_allclose(doc["weighted"][f"{q}_rmse"], theirs["weighted"]["rmse"][0], rtol=RTOL, atol=0)


def test_atom_label_name_preferred(tmp_path, capsys):
    """``atom_dipole.npy`` is read before ``atomic_dipole.npy`` (dp test's order)."""
    sys_ = _copy_system(tmp_path)
    label = np.load(sys_ / "set.000" / "atomic_dipole.npy")
    np.save(sys_ / "set.000" / "atom_dipole.npy", label + 1.0)  # off by 1: an RMSE near 1
    doc = tmp_path / "t.json"
    assert main(["test", "-m", _model("dipole"), "-s", str(sys_), "-a", "--no-progress", "--json", str(doc)]) == 0
    with_atom = json.loads(doc.read_text())
    os.remove(sys_ / "set.000" / "atom_dipole.npy")
    assert main(["test", "-m", _model("dipole"), "-s", str(sys_), "-a", "--no-progress", "--json", str(doc)]) == 0
    with_atomic = json.loads(doc.read_text())
    assert with_atom["weighted"]["atomic_dipole_rmse"] > 0.5 > with_atomic["weighted"]["atomic_dipole_rmse"]


@pytest.mark.mpi
def test_mpi_same_output(tmp_path):
    """Under mpiexec a tensor model is tested by rank 0: the report and files of one process."""
    pytest.importorskip("mpi4py", reason="mpi4py not installed (pip install 'dpcompress[mpi]')")
    exe = os.path.join(sysconfig.get_path("scripts"), "mpiexec")
    if not os.path.exists(exe):
        pytest.skip(f"no mpiexec next to this Python ({exe}): pip install mpich")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    outputs = {}
    for ranks in (1, 2):
        folder = tmp_path / f"r{ranks}"
        folder.mkdir()
        cmd = [sys.executable, "-m", "dpcompress", "test", "-m", _model("polar"), "-s", SYSTEMS, "-a", "-d",
               str(folder / "detail"), "--json", str(folder / "out.json"), "--no-progress"]
        proc = subprocess.run([exe, "-n", str(ranks), *cmd], capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr
        outputs[ranks] = (proc.stdout, {p.name: p.read_bytes() for p in sorted(folder.iterdir())})
    assert outputs[1] == outputs[2]
    assert sorted(outputs[1][1]) == ["detail.out", "detail.out.1", "out.json"]


def test_frame_and_atomic_parameters(tmp_path, capsys):
    """A dipole model with fparam/aparam reads fparam.npy / aparam.npy (dp test passes none to tensor models):
    the RMSE equals the one of DeepDipole.eval with those arrays, computed with numpy."""
    from dpcompress import DeepDipole

    sys_ = _copy_system(tmp_path)
    model = os.path.join(REPO, "tests", "data", "deepmd", "dipole_fparam_tiny", "frozen.dp")
    assert main(["test", "-m", model, "-s", str(sys_), "--no-progress"]) == 2
    assert "fparam.npy" in capsys.readouterr().err
    params = os.path.join(HERE, "systems_fparam", "water_fparam", "set.000")  # the same frames' parameters
    for name in ("fparam.npy", "aparam.npy"):
        shutil.copy(os.path.join(params, name), sys_ / "set.000" / name)
    doc = tmp_path / "t.json"
    assert main(["test", "-m", model, "-s", str(sys_), "--no-progress", "--json", str(doc)]) == 0
    got = json.loads(doc.read_text())["weighted"]["dipole_rmse"]
    s = sys_ / "set.000"
    coords, box = np.load(s / "coord.npy").astype(float), np.load(s / "box.npy").astype(float)
    types = np.loadtxt(sys_ / "type.raw", dtype=int)
    pred = DeepDipole(model).eval(coords, box, types, atomic=False, fparam=np.load(s / "fparam.npy").astype(float),
                                  aparam=np.load(s / "aparam.npy").astype(float))
    diff = pred - np.load(s / "dipole.npy")
    np.testing.assert_allclose(got, np.sqrt(np.mean(diff * diff)), rtol=1e-10)


def test_other_formats_refused(tmp_path, capsys):
    """Tensor labels are read from deepmd/npy systems only: another format stops with exit 2, naming it."""
    ase_io = pytest.importorskip("ase.io", reason="ase not installed")
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.zeros((3, 3)))
    path = str(tmp_path / "w.xyz")
    ase_io.write(path, [atoms], format="extxyz")
    assert main(["test", "-m", _model("dipole"), "-s", path, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "w.xyz" in err and "reads deepmd/npy systems" in err
