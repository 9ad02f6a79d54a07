"""Bad input never crashes, hangs or returns NaN: it raises one clear exception."""

import json
import os
import shutil

import h5py
import numpy as np
import pytest

from conftest import TINY
from dpcompress import Potential
from dpcompress.core.errors import InputError, ModelFormatError, UnsupportedModelError
from dpcompress import load_model

MODEL = os.path.join(TINY, "frozen.dp")


def rewrite_json(src, dst, edit):
    """Copy a .dp file and apply ``edit`` to its JSON tree."""
    shutil.copy(src, dst)
    os.chmod(dst, 0o644)
    with h5py.File(dst, "r+") as fh:
        tree = json.loads(fh.attrs["json"])
        edit(tree)
        fh.attrs["json"] = json.dumps(tree)
    return dst


# --- model files ----------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ModelFormatError, match="no such file"):
        load_model(tmp_path / "nope.dp")


@pytest.mark.parametrize("keep", [0.05, 0.5, 0.95])
def test_truncated_dp(tmp_path, keep):
    data = open(MODEL, "rb").read()
    path = tmp_path / "truncated.dp"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelFormatError, match="truncated.dp"):
        load_model(path)


def test_corrupt_dp(tmp_path):
    data = bytearray(open(MODEL, "rb").read())
    rng = np.random.default_rng(0)
    path = tmp_path / "corrupt.dp"
    path.write_bytes(bytes(rng.integers(0, 256, size=len(data), dtype=np.uint8)))
    with pytest.raises(ModelFormatError, match="corrupt.dp"):
        load_model(path)
    # a valid HDF5 header with garbage after it
    data[4096:] = bytes(rng.integers(0, 256, size=len(data) - 4096, dtype=np.uint8))
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="corrupt.dp"):
        load_model(path)


def test_non_model_hdf5(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as fh:
        fh["x"] = np.arange(3)
    with pytest.raises(ModelFormatError, match="json"):
        load_model(path)


def test_backend_specific_files_need_conversion(tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(b"PK\x03\x04 not really a torch file")
    with pytest.raises(UnsupportedModelError, match="convert-backend"):
        load_model(path)


@pytest.mark.parametrize("descriptor", ["dpa3", "made_up"])
def test_unsupported_descriptor(tmp_path, descriptor):
    # dpa2 is read now (tests/test_dpa2.py): relabelled, an se_e2_a tree lacks its keys (ModelFormatError)
    def edit(tree):
        tree["model"]["descriptor"]["type"] = descriptor

    path = rewrite_json(MODEL, tmp_path / "m.dp", edit)
    with pytest.raises(UnsupportedModelError, match=f"descriptor type '{descriptor}'"):
        load_model(path)


@pytest.mark.parametrize(
    "edit, error, match",
    [
        # frame/atomic parameters are read now (tests/test_fparam_aparam.py): without their statistics, malformed
        (lambda t: t["model"]["fitting"].__setitem__("numb_fparam", 2), ModelFormatError, "numb_fparam"),
        (lambda t: t["model"]["fitting"].__setitem__("numb_aparam", 1), ModelFormatError, "numb_aparam"),
        (lambda t: t["model"]["descriptor"].__setitem__("spin", {"use_spin": [True, False]}), UnsupportedModelError, "spin"),
        # dipole/polar models are read now (tests/test_deep_tensor.py): an energy fitting relabelled lacks their keys
        (lambda t: t["model"]["fitting"].__setitem__("type", "dipole"), ModelFormatError, "embedding_width"),
        (lambda t: t["model"]["fitting"].__setitem__("type", "dos"), UnsupportedModelError, "fitting type 'dos'"),
        # DP + ZBL models are read now (tests/test_dp_zbl.py): a standard model relabelled lacks their keys
        (lambda t: t["model"].__setitem__("type", "zbl"), ModelFormatError, "model.models"),
        (lambda t: t["model"].__setitem__("type", "linear_ener"), UnsupportedModelError, "linear_ener"),
        (lambda t: t["model"]["descriptor"].pop("sel"), ModelFormatError, "model.descriptor.sel"),
        (lambda t: t["model"]["descriptor"]["@variables"].pop("davg"), ModelFormatError, "davg"),
        (lambda t: t["model"]["descriptor"].__setitem__("sel", [46]), ModelFormatError, "sel"),
        (lambda t: t["model"]["descriptor"].__setitem__("sel", [46, 10**9]), ModelFormatError, "sel"),
        (lambda t: t["model"]["descriptor"].__setitem__("rcut", -1.0), ModelFormatError, "rcut"),
        (lambda t: t["model"]["descriptor"]["@variables"].__setitem__("davg", "/variable_9999"), ModelFormatError, "variable_9999"),
        (lambda t: t["model"]["descriptor"]["embeddings"]["networks"].pop(), ModelFormatError, "networks"),
        (lambda t: t["model"]["descriptor"].__setitem__("activation_function", "silut:3.0"), UnsupportedModelError, "silut"),
        (
            lambda t: t["model"]["descriptor"]["embeddings"]["networks"][0]["layers"][0].__setitem__("activation_function", "swish7"),
            UnsupportedModelError,
            "swish7",
        ),
        (lambda t: t.pop("model"), ModelFormatError, "model"),
    ],
)
def test_malformed_or_unsupported_tree(tmp_path, edit, error, match):
    path = rewrite_json(MODEL, tmp_path / "m.dp", edit)
    with pytest.raises(error, match=match):
        load_model(path)


def test_shape_mismatch_in_arrays(tmp_path):
    path = tmp_path / "m.dp"
    shutil.copy(MODEL, path)
    os.chmod(path, 0o644)
    with h5py.File(path, "r+") as fh:
        tree = json.loads(fh.attrs["json"])
        ref = tree["model"]["descriptor"]["@variables"]["dstd"]
        del fh[ref]
        fh[ref] = np.ones((2, 5, 4))
    with pytest.raises(ModelFormatError, match=r"dstd.*\(2, 5, 4\)"):
        load_model(path)


def test_invalid_yaml(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("model: [unclosed\n")
    with pytest.raises(ModelFormatError, match="m.yaml"):
        load_model(path)
    path.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ModelFormatError, match="m.yaml"):
        load_model(path)


# --- evaluation inputs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pot():
    return Potential(MODEL)


COORDS = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
CELL = np.eye(3) * 10.0
TYPES = np.array([0, 1, 1])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_coordinates(pot, bad):
    c = COORDS.copy()
    c[2, 1] = bad
    with pytest.raises(InputError, match="atom 2"):
        pot.eval(c[None], CELL[None], TYPES)


def test_types_out_of_range(pot):
    with pytest.raises(InputError, match="atom 1 has type 2"):
        pot.eval(COORDS[None], CELL[None], [0, 2, 1])
    with pytest.raises(InputError, match="atom 0 has type -1"):
        pot.eval(COORDS[None], CELL[None], [-1, 1, 1])


def test_type_map_mismatch(pot):
    with pytest.raises(InputError, match="'C'.*type_map"):
        pot.eval(COORDS[None], CELL[None], ["O", "C", "H"])


@pytest.mark.parametrize(
    "coords, cells, types, match",
    [
        (np.zeros((1, 8)), CELL[None], TYPES, "coords has shape"),
        (np.zeros((2, 3, 2)), CELL[None], TYPES, "coords has shape"),
        (COORDS[None], np.eye(2), TYPES, "cells has shape"),
        (COORDS[None], CELL[None], np.array([[[0]]]), "atom_types must have shape"),
        (COORDS[None], CELL[None], [0.5, 1, 1], "integers"),
        (COORDS[None], CELL[None], [], "empty"),
    ],
)
def test_wrong_shapes(pot, coords, cells, types, match):
    with pytest.raises(InputError, match=match):
        pot.eval(coords, cells, types)


@pytest.mark.parametrize(
    "cell",
    [np.zeros((3, 3)), np.array([[1.0, 0, 0], [2.0, 0, 0], [0, 0, 1.0]]), np.array([[5.0, 0, 0], [0, 5.0, 0], [0, 0, np.nan]])],
)
def test_singular_or_invalid_cell(pot, cell):
    with pytest.raises(InputError, match="frame 0"):
        pot.eval(COORDS[None], cell[None], TYPES)


def test_overlapping_atoms(pot):
    c = COORDS.copy()
    c[2] = c[0]
    with pytest.raises(InputError, match="overlap|coincide"):
        pot.eval(c[None], CELL[None], TYPES)


def test_fparam_rejected(pot):
    with pytest.raises(InputError, match="fparam"):
        pot.eval(COORDS[None], CELL[None], TYPES, fparam=np.zeros(1))


def test_bad_n_threads():
    with pytest.raises(InputError, match="n_threads"):
        Potential(MODEL, n_threads=0)
