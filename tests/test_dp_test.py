"""``dpcompress test`` against DeePMD-kit's ``dp test`` itself.

Reference: ``tests/data/dp_test/reference.json``, DeePMD-kit 3.2.0's own errors for the tiny water
model on the two small systems of ``tests/data/dp_test/systems`` (made by
``tests/data/dp_test/make_reference.py`` with the code ``dp test`` runs, at full precision), and the
detail files ``dp --pt test -d`` wrote for them.  Tolerance: 1e-10 relative on every error and
weight: the exact evaluator agrees with DeePMD-kit to ~1e-14 eV/atom and ~1e-14 eV/Å (docs/accuracy.md)
and the compressed tables with the exact model to ~1e-12, far below the model's errors (1e-2).
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

from conftest import REPO, TINY
from dpcompress import compress, save_model
from dpcompress.cli import main
from dpcompress.validation import run_test
from dpcompress.validation.metrics import QUANTITIES

HERE = os.path.join(REPO, "tests", "data", "dp_test")
SYSTEMS = os.path.join(HERE, "systems")
SYSTEMS_REL = os.path.relpath(SYSTEMS, REPO)  # as make_reference.py passed it to dp test
MODEL = os.path.join(TINY, "frozen.dp")
RTOL = 1e-10


@pytest.fixture(scope="module")
def reference():
    with open(os.path.join(HERE, "reference.json")) as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def compressed(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("dp_test") / "tiny.dpc")
    save_model(compress(MODEL), path)
    return path


def _assert_errors_equal(ours, theirs):
    """Our ``{quantity: (mae, rmse, weight)}`` against DeePMD-kit's ``{key: [error, weight]}``."""
    expected_keys = {k for _, mae, rmse in QUANTITIES for k in (mae, rmse) if k in theirs}
    assert set(theirs) == expected_keys  # dp test reports nothing we do not
    assert {q for q, mae, _ in QUANTITIES if mae in theirs} == set(ours)
    for q, mae_key, rmse_key in QUANTITIES:
        if q not in ours:
            continue
        mae, rmse, weight = ours[q]
        np.testing.assert_allclose(mae, theirs[mae_key][0], rtol=RTOL, atol=0, err_msg=mae_key)
        np.testing.assert_allclose(rmse, theirs[rmse_key][0], rtol=RTOL, atol=0, err_msg=rmse_key)
        assert weight == theirs[mae_key][1] == theirs[rmse_key][1]


@pytest.mark.parametrize("which", ["exact", "compressed"])
@pytest.mark.parametrize("numb_test", [0, 2])
def test_errors_equal_deepmd_kits(reference, compressed, which, numb_test):
    model = MODEL if which == "exact" else compressed
    result = run_test(model, [SYSTEMS], numb_test=numb_test, progress=False)
    ref = reference["all" if numb_test == 0 else "n2"]
    assert sorted(os.path.basename(s.name) for s in result.systems) == sorted(ref["systems"])
    for s in result.systems:
        _assert_errors_equal(s.errors, ref["systems"][os.path.basename(s.name)])
    _assert_errors_equal(result.weighted(), ref["weighted"])


def _read_detail(path):
    with open(path) as fh:
        lines = fh.read().splitlines()
    headers = [ln for ln in lines if ln.startswith("#")]
    return headers, np.loadtxt(path, ndmin=2)


def _report_lines(printed):
    """The lines of a printed report that make_reference.py kept of dp test's log."""
    return [line.strip() for line in printed.splitlines()
            if re.search(r"MAE|RMSE|testing system|number of", line) and not line.startswith("max |d")]


def _assert_details_equal(ours_prefix, theirs_prefix):
    """Our detail files ``ours_prefix.*`` against dp test's stored ``tests/data/dp_test/theirs_prefix.*``:
    the same files, headers, rows and label columns; predictions to the models' agreement."""
    ours_files = sorted(p.name[len(ours_prefix.name):] for p in ours_prefix.parent.glob(ours_prefix.name + ".*"))
    assert ours_files == sorted([".e.out", ".e_peratom.out", ".f.out", ".v.out", ".v_peratom.out", ".s.out"])
    for suffix in (".e.out", ".e_peratom.out", ".v.out", ".v_peratom.out", ".s.out"):
        ours_h, ours = _read_detail(str(ours_prefix) + suffix)
        theirs_h, theirs = _read_detail(os.path.join(HERE, theirs_prefix + suffix))
        assert ours_h == theirs_h, suffix  # one header, the first system's, in dp test's words
        assert ours.shape == theirs.shape, suffix
        # label columns are the data themselves (equal); predictions to the model's agreement
        half = ours.shape[1] // 2
        assert np.array_equal(ours[:, :half], theirs[:, :half]), suffix
        np.testing.assert_allclose(ours[:, half:], theirs[:, half:], rtol=1e-9, atol=1e-9, err_msg=suffix)
    with open(str(ours_prefix) + ".f.out") as fh:
        ours_f = [next(fh) for _ in range(4)]
    with open(os.path.join(HERE, theirs_prefix + ".f.out.head")) as fh:
        theirs_f = fh.readlines()
    assert ours_f[0] == theirs_f[0]
    np.testing.assert_allclose(np.loadtxt(ours_f[1:]), np.loadtxt(theirs_f[1:]), rtol=1e-9, atol=1e-9)


def test_cli_detail_files_and_json(tmp_path, monkeypatch, capsys, reference):
    monkeypatch.chdir(REPO)  # systems named as dp test named them (relative -s)
    # dp test took the systems in file-system order; we take them in the order given
    order = [line.split("testing system :", 1)[1].strip() for line in reference["dp_test_log"]
             if "testing system :" in line]
    assert sorted(order) == sorted(os.path.join(SYSTEMS_REL, n) for n in os.listdir(SYSTEMS))
    rc = main(["test", "-m", MODEL, "-s", *order, "-d", str(tmp_path / "detail"), "--json",
               str(tmp_path / "out.json"), "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "weighted average of errors" in printed
    # the report, line for line as dp test printed it (7 digits; systems, frame counts, every error)
    assert _report_lines(printed) == reference["dp_test_log"]
    _assert_details_equal(tmp_path / "detail", "detail")
    with open(tmp_path / "out.json") as fh:
        doc = json.load(fh)
    assert set(doc) == {"model", "systems", "weighted"}
    water = next(v for k, v in doc["systems"].items() if k.endswith("water_pbc"))
    cluster = next(v for k, v in doc["systems"].items() if k.endswith("cluster_nopbc"))
    metrics = {"nframes", "energy_mae", "energy_rmse", "energy_mae_per_atom", "energy_rmse_per_atom", "force_mae",
               "force_rmse"}
    virial = {"virial_mae", "virial_rmse", "virial_mae_per_atom", "virial_rmse_per_atom", "stress_mae", "stress_rmse"}
    weighted = {"force_weighted_mae", "force_weighted_rmse"}  # water_pbc has atom_pref.npy
    assert set(water) == metrics | virial | weighted and water["nframes"] == 3
    assert set(cluster) == metrics and cluster["nframes"] == 2  # no virial for a non-periodic system
    assert set(doc["weighted"]) == metrics | virial | weighted and doc["weighted"]["nframes"] == 5


@pytest.mark.parametrize("which", ["exact", "compressed"])
def test_datafile_shuffle_seed_as_dp_test(tmp_path, monkeypatch, capsys, reference, compressed, which):
    """``-f systems.txt --shuffle-test -r 7 -n 2``: the frames dp test drew, in its order (the label
    columns of its detail files), and its errors at 1e-10; the stress file's header comes from the
    second system, the first with stress."""
    monkeypatch.chdir(REPO)  # systems.txt lists paths relative to the repository, as dp test read them
    model = MODEL if which == "exact" else compressed
    datafile = os.path.relpath(os.path.join(HERE, "systems.txt"), REPO)
    rc = main(["test", "-m", model, "-f", datafile, "--shuffle-test", "-r", "7", "-n", "2", "-d",
               str(tmp_path / "shuffled"), "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    systems = [line.split("testing system :", 1)[1].strip() for line in printed.splitlines() if "testing system :" in line]
    with open(datafile) as fh:
        assert systems == fh.read().split()  # the file's order
    _assert_details_equal(tmp_path / "shuffled", "shuffled")
    result = run_test(model, systems, numb_test=2, shuffle=True, seed=7, progress=False)
    ref = reference["shuffled_r7_n2"]
    for s in result.systems:
        _assert_errors_equal(s.errors, ref["systems"][os.path.basename(s.name)])
    _assert_errors_equal(result.weighted(), ref["weighted"])
    # the same seed, the same frames; a seed modulo 2**32 as dp test takes it
    again = run_test(model, systems, numb_test=2, shuffle=True, seed=7 + 2**32, progress=False)
    assert [list(s.frames) for s in again.systems] == [list(s.frames) for s in result.systems]


@pytest.mark.parametrize("which", ["exact", "compressed"])
def test_atomic_energies_as_dp_test(reference, compressed, which):
    """``-a``: the atomic energies against atom_ener.npy, per system only (not in the weighted
    average), equal to DeePMD-kit's at 1e-10 relative."""
    model = MODEL if which == "exact" else compressed
    result = run_test(model, [SYSTEMS], atomic=True, progress=False)
    ref = reference["atomic"]
    for s in result.systems:
        assert "atomic_energy" in s.errors
        _assert_errors_equal(s.errors, ref["systems"][os.path.basename(s.name)])
    assert "atomic_energy" not in result.weighted()
    _assert_errors_equal(result.weighted(), ref["weighted"])


def test_atomic_cli_report_and_missing_labels(tmp_path, monkeypatch, capsys, reference):
    monkeypatch.chdir(REPO)
    order = [line.split("testing system :", 1)[1].strip() for line in reference["dp_test_atomic_log"]
             if "testing system :" in line]
    assert main(["test", "-m", MODEL, "-s", *order, "-a", "--no-progress"]) == 0
    assert _report_lines(capsys.readouterr().out) == reference["dp_test_atomic_log"]
    # a system without atom_ener.npy: refused at once, naming it
    bare = tmp_path / "bare"
    shutil.copytree(os.path.join(SYSTEMS, "cluster_nopbc"), bare)
    os.remove(bare / "set.000" / "atom_ener.npy")
    assert main(["test", "-m", MODEL, "-s", str(bare), "-a", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(bare) in err and "atom_ener.npy" in err and len(err.strip().splitlines()) == 1
    assert main(["test", "-m", MODEL, "-s", str(bare), "--no-progress"]) == 0  # not needed without -a


def test_weighted_force_errors_numpy_twin():
    """The atom_pref-weighted force errors, against a direct numpy evaluation of their definition."""
    from dpcompress.validation.metrics import system_errors

    rng = np.random.default_rng(1)
    pred = {"energy": rng.normal(size=2), "force": rng.normal(size=(2, 4, 3)), "virial": rng.normal(size=(2, 9))}
    labels = {"force": rng.normal(size=(2, 4, 3)), "atom_pref": rng.uniform(0, 2, size=(2, 4))}
    err = system_errors(pred, labels, 4, False)["force_weighted"]
    d, w = pred["force"] - labels["force"], labels["atom_pref"][:, :, None] * np.ones(3)
    np.testing.assert_allclose(err, ((np.abs(d) * w).sum() / w.sum(), np.sqrt((d * d * w).sum() / w.sum()), w.sum()),
                               rtol=1e-14)
    labels["atom_pref"][:] = 0.0  # weights summing to 0: zeros, as DeePMD-kit
    assert system_errors(pred, labels, 4, False)["force_weighted"] == (0.0, 0.0, 0.0)


def test_train_and_valid_data_of_a_training_input(tmp_path, capsys):
    """``--train-data/--valid-data input.json``: its systems, relative to the input's folder (and
    ``rglob_patterns``), give the numbers of the same systems named with -s."""
    inp = tmp_path / "in" / "input.json"
    inp.parent.mkdir()
    rel = os.path.relpath(SYSTEMS, inp.parent)
    inp.write_text(json.dumps({"training": {
        "training_data": {"systems": rel},
        "validation_data": {"systems": [rel], "rglob_patterns": ["water_*"]}}}))
    out = {}
    for option in ("--train-data", "--valid-data"):
        js = tmp_path / f"{option[2:]}.json"
        assert main(["test", "-m", MODEL, option, str(inp), "--json", str(js), "--no-progress"]) == 0
        out[option] = json.loads(js.read_text())
    assert main(["test", "-m", MODEL, "-s", SYSTEMS, "--json", str(tmp_path / "s.json"), "--no-progress"]) == 0
    direct = json.loads((tmp_path / "s.json").read_text())
    assert [os.path.realpath(k) for k in out["--train-data"]["systems"]] == [os.path.realpath(k) for k in direct["systems"]]
    assert list(out["--train-data"]["systems"].values()) == list(direct["systems"].values())
    (name, metrics), = out["--valid-data"]["systems"].items()
    assert name.endswith("water_pbc") and metrics == next(v for k, v in direct["systems"].items() if k.endswith("water_pbc"))
    capsys.readouterr()
    inp.write_text(json.dumps({"training": {"training_data": {"systems": rel}}}))
    assert main(["test", "-m", MODEL, "--valid-data", str(inp), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "training.validation_data.systems" in err and len(err.strip().splitlines()) == 1


def test_shuffle_frames_and_mpi_split():
    """frames_to_test: a permutation drawn by RandomState.shuffle; every frame once, any split."""
    from dpcompress.validation.runner import frames_to_test, runs

    assert list(frames_to_test(5, 0)) == [0, 1, 2, 3, 4] and list(frames_to_test(5, 3)) == [0, 1, 2]
    rng = np.random.RandomState(3)
    perm = np.arange(10)
    rng.shuffle(perm)
    assert list(frames_to_test(10, 4, np.random.RandomState(3))) == list(perm[:4])
    assert runs([1, 2, 3, 7, 9, 10]) == [(1, 4), (7, 8), (9, 11)] and runs([]) == []


def test_shuffle_without_seed_tests_the_same_errors_as_all_frames():
    """Every frame, shuffled (no seed): the same frames, in another order: the same errors to round-off."""
    whole = run_test(MODEL, [SYSTEMS], progress=False)
    shuffled = run_test(MODEL, [SYSTEMS], shuffle=True, progress=False)
    for a, b in zip(whole.systems, shuffled.systems):
        assert sorted(b.frames) == list(range(a.nframes))
        for q, (mae, rmse, w) in a.errors.items():
            np.testing.assert_allclose(b.errors[q][:2], (mae, rmse), rtol=1e-12)
            assert b.errors[q][2] == w
        back = np.argsort(b.frames)
        assert np.array_equal(b.labels["energy"][back], a.labels["energy"])
        np.testing.assert_allclose(b.pred["force"][back], a.pred["force"], rtol=0, atol=1e-12)


def test_against_the_original(tmp_path, reference, compressed):
    out = tmp_path / "against.json"
    rc = main(["test", "-m", compressed, "-s", SYSTEMS, "--against", MODEL, "--json", str(out), "--no-progress"])
    assert rc == 0
    doc = json.loads(out.read_text())
    against = doc["against"]
    assert set(against) == {"model", "systems", "weighted", "differences", "differences_weighted"}
    ref = reference["all"]["weighted"]
    np.testing.assert_allclose(against["weighted"]["force_rmse"], ref["rmse_f"][0], rtol=RTOL)
    d = against["differences_weighted"]
    # the compressed model reproduces the exact one (docs/accuracy.md: ~1e-12 on these frames)
    assert d["energy_per_atom_max"] < 1e-9 and d["force_max"] < 1e-8 and d["virial_max"] < 1e-7
    assert d["force_rms"] <= d["force_max"]
    assert set(against["differences"]) == set(doc["systems"])


def test_parity_plot(tmp_path, compressed):
    pytest.importorskip("matplotlib", reason="matplotlib not installed (pip install 'dpcompress[plot]')")
    png = tmp_path / "parity.png"
    rc = main(["test", "-m", compressed, "-s", SYSTEMS, "--against", MODEL, "--plot", str(png), "--no-progress"])
    assert rc == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    rc = main(["test", "-m", MODEL, "-s", SYSTEMS, "--plot", str(tmp_path / "p.png"), "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "dpcompress[plot]" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("args, words", [
    (["-s", "no/such/folder"], "no such file"),
    (["-s", SYSTEMS, "-n", "-1"], "-n"),
    (["-f", "no/such/list.txt"], "-f no/such/list.txt"),
    (["-f", os.devnull], "lists no system"),
])
def test_user_errors_exit_2(args, words, capsys):
    rc = main(["test", "-m", MODEL, *args, "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1


def test_batches_give_the_same_numbers(monkeypatch, compressed):
    """One frame per Potential.eval call or all at once: the same errors, bit for bit."""
    from dpcompress.validation import runner

    whole = run_test(compressed, [SYSTEMS], progress=False)
    monkeypatch.setattr(runner, "BATCH_ATOMS", 1)
    single = run_test(compressed, [SYSTEMS], progress=False)
    for a, b in zip(whole.systems, single.systems):
        assert a.errors == b.errors
        for key in ("energy", "force", "virial"):
            assert np.array_equal(a.pred[key], b.pred[key])


@pytest.mark.mpi
def test_mpi_output_identical_to_one_rank(tmp_path, compressed):
    pytest.importorskip("mpi4py", reason="mpi4py not installed (pip install 'dpcompress[mpi]')")
    exe = os.path.join(sysconfig.get_path("scripts"), "mpiexec")
    if not os.path.exists(exe):
        pytest.skip(f"no mpiexec next to this Python ({exe}): pip install mpich")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    for variant, extra in (("plain", []), ("shuffled", ["--shuffle-test", "-r", "3", "-n", "2", "-a"])):
        outputs = {}
        for ranks in (1, 3):
            folder = tmp_path / f"{variant}{ranks}"
            folder.mkdir()
            cmd = [sys.executable, "-m", "dpcompress", "test", "-m", compressed, "-s", SYSTEMS, "-d",
                   str(folder / "detail"), "--json", str(folder / "out.json"), "--no-progress", *extra]
            proc = subprocess.run([exe, "-n", str(ranks), *cmd], capture_output=True, text=True, timeout=300, env=env)
            assert proc.returncode == 0, proc.stderr
            outputs[ranks] = (proc.stdout, {p.name: p.read_bytes() for p in sorted(folder.iterdir())})
        assert outputs[1] == outputs[3], variant  # the printed report and every file, byte for byte


@pytest.mark.slow
def test_water_validation_fixture():
    """The shared fixture's water validation data with its se_e2_a model (192 atoms, 20 frames):
    DeePMD-kit's errors stored in tests/data/dp_test/reference_fixture.json, at 1e-10 relative."""
    from conftest import shared_fixture

    fixture = shared_fixture("se_e2_a")
    data = os.path.join(os.path.dirname(fixture), "water-data", "valid")
    with open(os.path.join(HERE, "reference_fixture.json")) as fh:
        ref = json.load(fh)["all"]
    result = run_test(os.path.join(fixture, "frozen.dp"), [data], progress=False)
    for s in result.systems:
        _assert_errors_equal(s.errors, ref["systems"][os.path.basename(s.name)])
    _assert_errors_equal(result.weighted(), ref["weighted"])


def test_progress_plain_fallback(monkeypatch, capsys):
    """Without a terminal (or tqdm): a line on stderr every LINE_PERIOD s, on the showing rank only."""
    from dpcompress.validation import progress

    monkeypatch.setattr(progress, "LINE_PERIOD", 0.0)
    bar = progress.FrameProgress(10, show=True)
    bar.advance(4)
    bar.close()
    silent = progress.FrameProgress(10, show=False)
    silent.advance(4)
    err = capsys.readouterr().err
    assert err.count("test: 4/10 frames") == 1
