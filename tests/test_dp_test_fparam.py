"""``dpcompress test`` with models that take frame/atomic parameters, against DeePMD-kit's ``dp test``.

Reference: ``tests/data/dp_test/reference_fparam.json`` (made by
``tests/data/dp_test/make_fparam_reference.py``): DeePMD-kit 3.2.0's errors, at full precision, for the
tiny ``se_e2_a_fparam_tiny`` model (numb_fparam 1, numb_aparam 1) and its ``default_fparam`` variant on
the systems of ``tests/data/dp_test/systems_fparam`` (``fparam.npy`` / ``aparam.npy`` in every set;
``water_aparam_only`` without ``fparam.npy``), and the report ``dp --pt test`` printed.  Tolerance: 1e-10
relative on every error, as tests/test_dp_test.py.
"""

import json
import os
import shutil

import numpy as np
import pytest

from conftest import REPO
from dpcompress import compress, save_model
from dpcompress.cli import main
from dpcompress.core.errors import DataFormatError
from dpcompress.validation import run_test
from test_dp_test import _assert_errors_equal, _report_lines

HERE = os.path.join(REPO, "tests", "data", "dp_test")
SYSTEMS = os.path.join(HERE, "systems_fparam")
DEEPMD = os.path.join(REPO, "tests", "data", "deepmd")
MODELS = {"fparam": os.path.join(DEEPMD, "se_e2_a_fparam_tiny", "frozen.dp"),
          "default": os.path.join(DEEPMD, "se_e2_a_fparam_default_tiny", "frozen.dp")}
WITH_FPARAM = ["cluster_fparam", "water_fparam"]


@pytest.fixture(scope="module")
def reference():
    with open(os.path.join(HERE, "reference_fparam.json")) as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def compressed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fparam")
    out = {}
    for key, path in MODELS.items():
        out[key] = str(folder / f"{key}.dpc")
        save_model(compress(path), out[key])
    return out


def _systems(key):
    return [os.path.join(SYSTEMS, n) for n in (WITH_FPARAM if key == "fparam" else sorted(os.listdir(SYSTEMS)))]


@pytest.mark.parametrize("which", ["exact", "compressed"])
@pytest.mark.parametrize("key", ["fparam", "default"])
def test_errors_equal_deepmd_kits(reference, compressed, key, which):
    """fparam.npy / aparam.npy passed to the model; the default_fparam model uses its default where a
    system has no fparam.npy (water_aparam_only) and the file where it has one."""
    model = MODELS[key] if which == "exact" else compressed[key]
    result = run_test(model, _systems(key), progress=False)
    ref = reference[key]
    assert sorted(os.path.basename(s.name) for s in result.systems) == sorted(ref["systems"])
    for s in result.systems:
        _assert_errors_equal(s.errors, ref["systems"][os.path.basename(s.name)])
    _assert_errors_equal(result.weighted(), ref["weighted"])


def test_cli_report_equals_dp_tests(reference, monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # systems named as dp test named them
    rc = main(["test", "-m", MODELS["fparam"], "-s", *[os.path.relpath(p, REPO) for p in _systems("fparam")],
               "--no-progress"])
    assert rc == 0
    assert _report_lines(capsys.readouterr().out) == reference["fparam_log"]


def test_hdf5_systems_read_their_parameters(reference, tmp_path):
    """The same systems as one deepmd/hdf5 file: the same errors."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "systems.h5"
    with h5py.File(path, "w") as fh:
        for name in WITH_FPARAM:
            g = fh.create_group(name)
            src = os.path.join(SYSTEMS, name)
            g["type.raw"] = np.loadtxt(os.path.join(src, "type.raw"), dtype=int).reshape(-1)
            if os.path.exists(os.path.join(src, "nopbc")):
                g["nopbc"] = True
            for f in os.listdir(os.path.join(src, "set.000")):
                g[f"set.000/{f}"] = np.load(os.path.join(src, "set.000", f))
    result = run_test(MODELS["fparam"], [str(path)], progress=False)
    ref = reference["fparam"]
    assert len(result.systems) == 2
    for s in result.systems:
        _assert_errors_equal(s.errors, ref["systems"][s.name.rsplit("/", 1)[1]])
    _assert_errors_equal(result.weighted(), ref["weighted"])


def _copy(tmp_path, name="water_fparam"):
    dst = tmp_path / name
    shutil.copytree(os.path.join(SYSTEMS, name), dst)
    return dst


@pytest.mark.parametrize("missing, match", [
    ("fparam.npy", r"numb_fparam = 1, no default_fparam.*fparam.npy \(shape \(nframes, 1\)\)"),
    ("aparam.npy", r"numb_aparam = 1.*aparam.npy \(shape \(nframes, natoms \* 1\) = \(nframes, 192\)\)"),
])
def test_a_model_needing_parameters_the_system_lacks_is_refused(tmp_path, missing, match, capsys):
    system = _copy(tmp_path)
    os.remove(system / "set.000" / missing)
    with pytest.raises(DataFormatError, match=match):
        run_test(MODELS["fparam"], [str(system)], progress=False)
    # the CLI: exit 2, one line naming the system
    assert main(["test", "-m", MODELS["fparam"], "-s", str(system), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(system) in err and missing in err and len(err.splitlines()) == 1


def test_parameters_of_another_width_are_refused(tmp_path):
    system = _copy(tmp_path)
    np.save(system / "set.000" / "fparam.npy", np.ones((3, 2), dtype=np.float32))
    with pytest.raises(DataFormatError, match=r"fparam.npy.*numb_fparam = 1 per frame"):
        run_test(MODELS["fparam"], [str(system)], progress=False)


def test_a_parameter_file_with_other_frames_is_refused_on_opening(tmp_path):
    system = _copy(tmp_path)
    np.save(system / "set.000" / "aparam.npy", np.ones((2, 192), dtype=np.float32))
    with pytest.raises(DataFormatError, match=r"aparam.npy: shape \(2, 192\) does not hold 3 frames"):
        run_test(MODELS["fparam"], [str(system)], progress=False)


def test_models_without_parameters_ignore_the_files():
    """A plain model on a system with fparam.npy/aparam.npy: as without them (dp test ignores them too)."""
    plain = os.path.join(DEEPMD, "se_e2_a_tiny", "frozen.dp")
    a = run_test(plain, [os.path.join(SYSTEMS, "water_fparam")], progress=False)
    b = run_test(plain, [os.path.join(SYSTEMS, "water_aparam_only")], progress=False)
    assert a.systems[0].errors == b.systems[0].errors


def test_against_the_original_model(compressed):
    """--against: both models get the parameters; the compressed one differs from the exact by round-off."""
    result = run_test(compressed["fparam"], _systems("fparam"), against=MODELS["fparam"], progress=False)
    for s in result.systems:
        assert np.abs(s.pred["force"] - s.original["force"]).max() < 1e-9
        assert np.abs(s.pred["energy"] - s.original["energy"]).max() / s.natoms < 1e-10
