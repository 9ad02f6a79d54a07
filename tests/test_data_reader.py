"""deepmd/npy and deepmd/hdf5 training-data readers."""

import os

import h5py
import numpy as np
import pytest

from conftest import REPO, shared_fixture
from dpcompress.data import FrameReader, discover_systems, read_hdf5_systems, read_npy_system, read_systems
from dpcompress.core.errors import DataFormatError

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


def test_frame_ranges_across_sets(tmp_path):
    """Any frame range (here across the set.000/set.001 boundary) reads what the whole-system read holds."""
    write_npy(tmp_path / "sys")
    whole = read_npy_system(tmp_path / "sys")
    (info,) = discover_systems(tmp_path / "sys", labels=True)
    with FrameReader() as reader:
        blocks = list(reader.blocks(info, 2, 5, labels=("energy", "force"), chunk=2))
    assert [(b.first, b.first_in_set, b.nframes) for b in blocks] == [(2, 2, 1), (3, 0, 2)]
    np.testing.assert_array_equal(np.concatenate([b.coords for b in blocks]), whole.coords[2:5])
    np.testing.assert_array_equal(np.concatenate([b.cells for b in blocks]), whole.cells[2:5])
    np.testing.assert_array_equal(np.concatenate([b.labels["force"] for b in blocks]), whole.force[2:5])
    assert blocks[1].frame_where(1) == os.path.join(str(tmp_path / "sys"), "set.001") + " frame 1"


def test_scan_and_data_share_one_reader(tmp_path, monkeypatch):
    """The scan finds and reads systems through dpcompress.data: the same functions, the same file reads, the same bits."""
    import dpcompress.scan as scan
    from dpcompress.data import resolve_type_map

    assert scan.discover_systems is discover_systems and scan.resolve_type_map is resolve_type_map
    write_npy(tmp_path / "sys")
    reads = []
    read_array = FrameReader.read_array

    def spy(self, ref, width, nframes, a, b):
        reads.append((ref.where, a, b))
        return read_array(self, ref, width, nframes, a, b)

    monkeypatch.setattr(FrameReader, "read_array", spy)
    whole = read_npy_system(tmp_path / "sys")
    by_data = {r for r in reads if r[0].endswith(("coord.npy", "box.npy"))}
    reads.clear()
    doc = scan.run_scan([tmp_path / "sys"], rcut=3.0, show_progress=False)
    assert doc["nframes"] == whole.nframes == 6
    assert set(reads) == by_data and len(by_data) == 4  # coord and box of both sets, through FrameReader
    # the frames the scan's statistics get are the arrays dpcompress.data returns, bit for bit
    (info,) = discover_systems(tmp_path / "sys")
    resolve_type_map([info])
    with FrameReader() as reader:
        frames = list(scan.iter_frames(reader, info, 0, info.nframes))
    assert len(frames) == whole.nframes
    for k, (coords, cell, types, _) in enumerate(frames):
        np.testing.assert_array_equal(coords, whole.coords[k])
        np.testing.assert_array_equal(cell, whole.cells[k])
        np.testing.assert_array_equal(types, whole.atom_types)


def test_labels_in_some_sets_only_and_bad_types(tmp_path):
    write_npy(tmp_path / "a")
    os.remove(tmp_path / "a" / "set.001" / "virial.npy")
    s = read_npy_system(tmp_path / "a")
    assert s.virial is None and s.energy.shape == (6,)  # a label is all or nothing
    write_npy(tmp_path / "b")
    with open(tmp_path / "b" / "type.raw", "w") as fh:
        fh.write("0 1 2 0\n")  # type 2, but type_map.raw names two elements
    with pytest.raises(DataFormatError, match="type_map.raw"):
        read_npy_system(tmp_path / "b")
    write_npy(tmp_path / "c")
    np.save(tmp_path / "c" / "set.000" / "real_atom_types.npy", np.full((3, 4), 0.5))
    np.save(tmp_path / "c" / "set.001" / "real_atom_types.npy", np.zeros((3, 4)))
    with pytest.raises(DataFormatError, match="real_atom_types.npy: atom types must be integers"):
        read_npy_system(tmp_path / "c")
    write_npy(tmp_path / "d")
    np.save(tmp_path / "d" / "set.001" / "force.npy", np.full((3, 12), np.nan))
    with pytest.raises(DataFormatError, match="force.npy: frame 0 contains NaN"):
        read_npy_system(tmp_path / "d")


@pytest.mark.slow
def test_water_training_set():
    systems = read_systems(os.path.join(shared_fixture("water-data"), "train"))
    assert [s.nframes for s in systems] == [80, 160, 80]
    assert all(s.natoms == 192 and s.virial is None for s in systems)
