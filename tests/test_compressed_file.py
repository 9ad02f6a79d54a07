"""The .dpc file: round trip, self-containedness, provenance, and validation of bad files."""

import os
import shutil

import h5py
import numpy as np
import pytest

from conftest import TINY
from dpcompress import Potential
from dpcompress.compress import compress
from dpcompress.errors import ModelFormatError
from dpcompress.models import load_model

MODEL = os.path.join(TINY, "frozen.dp")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("dpc") / "water.dpc"
    cm = compress(MODEL, check_frequency=7)
    cm.save(path)
    return cm, path


def test_round_trip_is_exact(saved, water_frame):
    cm, path = saved
    coords, cell, types = water_frame
    a = Potential(cm).eval(coords[None], cell[None], types, atomic=True)
    b = Potential(path).eval(coords[None], cell[None], types, atomic=True)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_self_contained_and_provenance(saved, tmp_path, water_frame):
    cm, path = saved
    moved = tmp_path / "elsewhere.dpc"
    shutil.copy(path, moved)  # the source .dp is not needed
    m = load_model(moved)
    assert m.is_compressed and m.descriptor.embeddings is None
    p = m.compression
    assert p["source"] == "frozen.dp" and len(p["source_sha256"]) == 64
    assert p["step"] == 0.01 and p["stride1"] == 0.1 and p["extrapolate"] == 5 and p["order"] == 5
    assert p["min_nbor_dist_source"] == "model" and p["check_frequency"] == 7
    assert 0 <= p["max_table_error"] < 1e-12 and len(p["table_errors"]) == 4
    assert Potential(moved).check_frequency == 7
    with h5py.File(moved) as fh:
        assert fh.attrs["schema_version"] == 1 and fh.attrs["dpcompress_version"]


def edited_copy(src, dst, edit):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as fh:
        edit(fh)
    return dst


def bump_schema(fh):
    fh.attrs["schema_version"] = 99


TABLES = "model/descriptor/tables"


def flip_table_value(fh):
    name = sorted(fh[TABLES])[0]
    data = fh[TABLES][name][()]
    data[10, 2, 3] += 1e-9
    fh[TABLES][name][...] = data


def drop_fitting(fh):
    del fh["model/fitting/net_1"]


def bad_shape(fh):
    del fh["model/descriptor/davg"]
    fh["model/descriptor/davg"] = np.zeros((2, 3, 4))


def nan_bias(fh):
    fh["model/out_bias"][0] = np.nan


def bad_grid(fh):
    name = sorted(fh[TABLES])[0]
    fh[TABLES][name].attrs["n_fine"] = 5


@pytest.mark.parametrize(
    "edit, match",
    [
        (bump_schema, "newer dpcompress"),
        (flip_table_value, "checksum"),
        (drop_fitting, "fitting"),
        (bad_shape, "davg"),
        (nan_bias, "NaN"),
        (bad_grid, "shape"),
    ],
)
def test_invalid_files_are_rejected(saved, tmp_path, edit, match):
    _, path = saved
    bad = edited_copy(path, tmp_path / "bad.dpc", edit)
    with pytest.raises(ModelFormatError, match=match):
        load_model(bad)


def test_truncated_file(saved, tmp_path):
    _, path = saved
    data = open(path, "rb").read()
    bad = tmp_path / "short.dpc"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match="short.dpc"):
        load_model(bad)


def test_uncompressed_models_cannot_be_saved_as_dpc(tmp_path):
    from dpcompress.errors import InputError

    with pytest.raises(InputError, match="compress"):
        load_model(MODEL).save(tmp_path / "x.dpc")
