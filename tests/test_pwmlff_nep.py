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
    types = rng.integers(0, 2, len(pos))
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
