"""PWMLFF NEP checkpoints (``nep_model.ckpt``, docs/pwmlff.md): read as the nep.txt PWMLFF's own
conversion writes, evaluated, compressed and tested like any NEP model.

References: ``tests/data/pwmlff/nep_tiny_to_lmps.txt`` and ``nep_tiny_gpumd_3_5.txt`` were written
by PWMLFF's own ``extract_model`` (``utils/nep_to_gpumd.py``: ``PWMLFF toneplmps`` and ``PWMLFF
togpumd -t 29 8 -n 3 5``) from ``nep_tiny.ckpt`` (tests/data/pwmlff/make_nep_fixture.py).  The text
dpcompress builds must equal PWMLFF's byte for byte, so the evaluation is the same model to the bit.
The public checkpoint (PWMLFF's ``example/Ag-Au-D3/NEP/nep_model.ckpt``, 180 kB) is checked when
present under ``$DPCOMPRESS_PWMLFF_FIXTURES/nep/`` against the SHA-256 of PWMLFF's text of it.
"""

import hashlib
import os

import numpy as np
import pytest

from test_pwmlff import PUBLIC
from dpcompress import Potential
from dpcompress.cli import main
from dpcompress.core.errors import ModelFormatError, UnsupportedModelError
from dpcompress.modelfile import load_model
from dpcompress.modelfile.pwmlff_nep import (
    is_pwmlff_nep_checkpoint,
    model_from_nep_checkpoint,
    nep_text_from_checkpoint,
)
from dpcompress.models.torch_zip import read_checkpoint
from dpcompress.nep import NEPModel, read_nep

DATA = os.path.join(os.path.dirname(__file__), "data", "pwmlff")
CKPT = os.path.join(DATA, "nep_tiny.ckpt")
#: SHA-256 of the nep_to_lmps.txt PWMLFF's extract_model writes for the public Ag-Au checkpoint
PUBLIC_CKPT_SHA = "748a3d791827231582fb082deaf33ecb2e51c0f2768ccb39249a2bfa131fbcd7"
PUBLIC_TEXT_SHA = "d68bad72f15a2ee26252ddf5fd79cfcde704d5d37efbed60972e7319bee89125"


def _frame(seed=0, a=3.6, n=2, rattle=0.1):
    rng = np.random.default_rng(seed)
    base = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    pos = np.array([b + [i, j, k] for i in range(n) for j in range(n) for k in range(n) for b in base]) * a
    pos += rng.normal(scale=rattle, size=pos.shape)
    types = np.random.default_rng(99).integers(0, 2, len(pos))  # the same in every frame
    return pos.reshape(1, -1), (np.eye(3) * a * n).reshape(1, 9), types


def test_text_equals_pwmlff_conversion():
    ckpt = read_checkpoint(CKPT)
    assert is_pwmlff_nep_checkpoint(CKPT)
    with open(os.path.join(DATA, "nep_tiny_to_lmps.txt")) as fh:
        assert nep_text_from_checkpoint(ckpt, CKPT) == fh.read()


def test_load_and_evaluate():
    m = load_model(CKPT)
    assert isinstance(m, NEPModel) and m.elements == ["Cu", "O"] and m.pwmlff_biases
    ref = read_nep(os.path.join(DATA, "nep_tiny_to_lmps.txt"))
    c, cell, t = _frame()
    a, b = Potential(m).eval(c, cell, t), Potential(ref).eval(c, cell, t)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert np.all(np.isfinite(a[1])) and np.abs(a[1]).max() > 0


def test_cli_compress_and_eval(tmp_path):
    out = tmp_path / "nep.dpc"
    assert main(["compress", "-i", CKPT, "-o", str(out), "-s", "0.005"]) == 0
    c, cell, t = _frame(1)
    e, f, v = Potential(str(out)).eval(c, cell, t)
    e0, f0, v0 = Potential(CKPT).eval(c, cell, t)
    # quintic tables of the radial functions (docs/nep.md): table error only
    assert abs(e - e0).max() / len(t) < 1e-7
    assert np.abs(f - f0).max() < 1e-5


def _edited(edit):
    ckpt = read_checkpoint(CKPT)
    edit(ckpt)
    return ckpt


@pytest.mark.parametrize("edit, error, match", [
    (lambda c: c["state_dict"].pop("c_param_3"), ModelFormatError, "c_param_3"),
    (lambda c: c["state_dict"].__setitem__("c_param_2", np.zeros((2, 2, 5, 5))), ModelFormatError, "c_param_2"),
    (lambda c: c.__setitem__("q_scaler", np.zeros(3)), ModelFormatError, "q_scaler"),
    (lambda c: c["json_file"]["model"]["descriptor"].__setitem__("n_max", [4]), ModelFormatError, "n_max"),
    (lambda c: c["json_file"].__setitem__("atom_type", [29, 999]), ModelFormatError, "atom_type"),
    (lambda c: c.__setitem__("atom_type_order", np.array([8, 29])), UnsupportedModelError, "atom_type_order"),
    (lambda c: c["state_dict"].__setitem__("fitting_net.1.layers.0.bias", np.full((1, 6), np.nan)),
     ModelFormatError, "fitting_net.1.layers.0.bias"),
])
def test_bad_checkpoints(edit, error, match):
    with pytest.raises(error, match=match):
        model_from_nep_checkpoint(_edited(edit), "bad.ckpt")


@pytest.mark.slow
def test_public_checkpoint():
    path = os.path.join(PUBLIC, "nep", "nep_model.ckpt")
    if not os.path.exists(path):
        pytest.skip(f"{path} absent (PWMLFF's example/Ag-Au-D3/NEP/nep_model.ckpt, 180 kB)")
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == PUBLIC_CKPT_SHA
    text = nep_text_from_checkpoint(read_checkpoint(path), path)
    assert hashlib.sha256(text.encode()).hexdigest() == PUBLIC_TEXT_SHA
    assert load_model(path).elements == ["Ag", "Au"]


# ---- dpcompress pwmlff ... (PWMLFF's command lines) and NEP metrics in dpcompress test


def test_pwmlff_togpumd_matches_pwmlff(tmp_path, capsys):
    out = tmp_path / "gpumd.txt"
    assert main(["pwmlff", "togpumd", "-m", CKPT, "-t", "29", "O", "-n", "3", "5", "-s", str(out)]) == 0
    g, ref = read_nep(out), read_nep(os.path.join(DATA, "nep_tiny_gpumd_3_5.txt"))  # ref: PWMLFF togpumd
    assert g.version == 4 and not np.any(g.b1_type) and not np.any(ref.b1_type)
    assert g.b1 == pytest.approx(ref.b1, abs=1e-14)
    c, cell, t = _frame(2)
    for x, y in zip(Potential(g).eval(c, cell, t), Potential(ref).eval(c, cell, t)):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-9)  # write_nep keeps 7 decimals of w, c


def test_pwmlff_toneplmps(tmp_path):
    ckpt = tmp_path / "nep_model.ckpt"
    ckpt.write_bytes(open(CKPT, "rb").read())
    assert main(["pwmlff", "toneplmps", str(ckpt)]) == 0
    assert (tmp_path / "nep_to_lmps.txt").read_text() == open(os.path.join(DATA, "nep_tiny_to_lmps.txt")).read()


def test_pwmlff_compress_alias(tmp_path):
    dp = os.path.join(DATA, "cu_1el.ckpt")
    assert main(["pwmlff", "compress", dp, "-d", "0.01", "-o", "3", "-s", "cmp_dp_model.ckpt", "-w", str(tmp_path)]) == 0
    assert main(["compress", "-i", dp, "-o", str(tmp_path / "direct.dpc"), "-s", "0.01", "--order", "3", "-e", "10"]) == 0
    # the alias is exactly dpcompress compress -s 0.01 --order 3 -e 10: the same tables
    a, b = load_model(tmp_path / "cmp_dp_model.dpc"), load_model(tmp_path / "direct.dpc")
    assert a.compression["order"] == b.compression["order"] == 3
    c, cell, t = _frame(3, a=3.61)
    t = np.zeros_like(t)
    for x, y, z in zip(Potential(a).eval(c, cell, t), Potential(b).eval(c, cell, t), Potential(dp).eval(c, cell, t)):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_allclose(x, z, rtol=0, atol=1e-5)


@pytest.mark.parametrize("argv, match", [
    (["compress", "missing.ckpt"], "no such file"),
    (["compress", CKPT.replace("nep_tiny", "cu_1el"), "-o", "2"], "-o 2"),
    (["togpumd", "-m", CKPT, "-t", "29", "79", "-n", "3", "5"], "-t Au: not an element"),
    (["togpumd", "-m", CKPT, "-t", "29", "-n", "3", "5"], "1 elements but -n gives 2"),
    (["togpumd", "-m", CKPT, "-t", "Xx", "-n", "3"], "not an atomic number"),
    (["togpumd", "-m", os.path.join(DATA, "cu_1el.ckpt"), "-t", "29", "-n", "3"], "not a NEP model"),
])
def test_pwmlff_cli_errors(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["pwmlff"] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1


def test_nep_metrics_in_dpcompress_test(tmp_path, capsys):
    """dpcompress test on a NEP checkpoint: labels = the model's own predictions plus known offsets
    (energy +0, +0.01, +0.02 eV; every force component +0.001 eV/Å), so the metrics are known exactly."""
    pot = Potential(CKPT)
    d = tmp_path / "sys"
    (d / "set.000").mkdir(parents=True)
    coords, energies, forces, boxes = [], [], [], []
    for k in range(3):
        c, cell, t = _frame(10 + k)
        e, f, _ = pot.eval(c, cell, t)
        coords.append(c[0]), boxes.append(cell[0]), energies.append(e.reshape(-1)[0] + 0.01 * k)
        forces.append(f.reshape(-1) + 0.001)
    t = _frame(10)[2]  # the same types in every frame
    np.savetxt(d / "type.raw", t, fmt="%d")
    (d / "type_map.raw").write_text("Cu\nO\n")
    for name, a in (("coord", coords), ("box", boxes), ("energy", energies), ("force", forces)):
        np.save(d / "set.000" / f"{name}.npy", np.array(a))
    assert main(["test", "-m", CKPT, "-s", str(d)]) == 0
    out = capsys.readouterr().out
    n = len(t)
    rmse = np.sqrt((0 + 1e-4 + 4e-4) / 3)
    for label, value in (("Energy MAE ", 0.01), ("Energy RMSE ", rmse), ("Energy RMSE/Natoms ", rmse / n),
                         ("Force  RMSE ", 0.001)):
        line = [x for x in out.splitlines() if x.startswith(label)][0]
        assert float(line.split(":")[1].split()[0]) == pytest.approx(value, rel=1e-6), line


def test_info_names_the_checkpoint(capsys):
    assert main(["info", CKPT]) == 0
    out = capsys.readouterr().out
    assert "PWMLFF NEP checkpoint (nep_model.ckpt)" in out and "['Cu', 'O']" in out
