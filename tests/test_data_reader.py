"""deepmd/npy and deepmd/hdf5 training-data readers."""

import os

import h5py
import numpy as np
import pytest

from conftest import REPO, shared_fixture
from dpcompress.data import read_hdf5_systems, read_npy_system, read_systems
from dpcompress.errors import DataFormatError

FRAME = os.path.join(REPO, "examples", "data", "water", "frame")


def test_bundled_frame():
    s = read_npy_system(FRAME)
    assert s.nframes == 1 and s.natoms == 192 and s.type_map == ("O", "H")
    assert s.coords.dtype == np.float64 and s.cells.shape == (1, 3, 3)
    assert s.energy.shape == (1,) and s.force.shape == (1, 192, 3) and s.virial is None


def write_npy(root, nframes=3, natoms=4, nopbc=False, virial=True):
    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(root, "set.000"))
    os.makedirs(os.path.join(root, "set.001"))
    with open(os.path.join(root, "type.raw"), "w") as fh:
        fh.write("0 1 1 0\n"[: 2 * natoms])
    with open(os.path.join(root, "type_map.raw"), "w") as fh:
        fh.write("O\nH\n")
    if nopbc:
        open(os.path.join(root, "nopbc"), "w").close()
    for s in ("set.000", "set.001"):
        np.save(os.path.join(root, s, "coord.npy"), rng.normal(size=(nframes, natoms * 3)))
        if not nopbc:
            np.save(os.path.join(root, s, "box.npy"), np.tile(np.eye(3).ravel() * 10, (nframes, 1)))
        np.save(os.path.join(root, s, "energy.npy"), rng.normal(size=nframes))
        np.save(os.path.join(root, s, "force.npy"), rng.normal(size=(nframes, natoms * 3)))
        if virial:
            np.save(os.path.join(root, s, "virial.npy"), rng.normal(size=(nframes, 9)))


def test_npy_sets_are_concatenated(tmp_path):
    write_npy(tmp_path / "sys")
    s = read_npy_system(tmp_path / "sys")
    assert s.nframes == 6 and s.virial.shape == (6, 3, 3)
    assert read_systems(tmp_path)[0].nframes == 6  # found recursively


def test_nopbc(tmp_path):
    write_npy(tmp_path / "sys", nopbc=True)
    assert read_npy_system(tmp_path / "sys").cells is None


def test_hdf5_matches_npy(tmp_path):
    write_npy(tmp_path / "sys")
    npy = read_npy_system(tmp_path / "sys")
    with h5py.File(tmp_path / "data.h5", "w") as fh:
        g = fh.create_group("sys")
        g["type.raw"] = np.array([0, 1, 1, 0])
        g["type_map.raw"] = np.array([b"O", b"H"])
        for s in ("set.000", "set.001"):
            for key in ("coord", "box", "energy", "force", "virial"):
                g[f"{s}/{key}.npy"] = np.load(tmp_path / "sys" / s / f"{key}.npy")
    (h5,) = read_hdf5_systems(tmp_path / "data.h5")
    np.testing.assert_array_equal(h5.coords, npy.coords)
    np.testing.assert_array_equal(h5.cells, npy.cells)
    np.testing.assert_array_equal(h5.virial, npy.virial)
    assert h5.type_map == ("O", "H")


def test_bad_data(tmp_path):
    with pytest.raises(DataFormatError, match="type.raw"):
        read_npy_system(tmp_path)
    write_npy(tmp_path / "a")
    np.save(tmp_path / "a" / "set.000" / "coord.npy", np.zeros((3, 7)))
    with pytest.raises(DataFormatError, match="coord.npy"):
        read_npy_system(tmp_path / "a")
    write_npy(tmp_path / "b")
    os.remove(tmp_path / "b" / "set.001" / "box.npy")
    with pytest.raises(DataFormatError, match="box.npy"):
        read_npy_system(tmp_path / "b")
    write_npy(tmp_path / "c")
    np.save(tmp_path / "c" / "set.000" / "energy.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(DataFormatError, match="energy.npy"):
        read_npy_system(tmp_path / "c")
    with pytest.raises(DataFormatError, match="no such"):
        read_systems(tmp_path / "missing")


@pytest.mark.slow
def test_water_training_set():
    systems = read_systems(os.path.join(shared_fixture("water-data"), "train"))
    assert [s.nframes for s in systems] == [80, 160, 80]
    assert all(s.natoms == 192 and s.virial is None for s in systems)
