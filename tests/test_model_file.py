"""The .dpc file: round trip, self-containedness, provenance, the C and Python readers agreeing, and
the rejection of damaged, edited, truncated, oversized and old files (by both readers)."""

import os
import shutil
import zlib

import h5py
import numpy as np
import pytest

from conftest import DATA, TINY
from dpcompress import Potential, compress, compress_nep, load_model, save_model
from dpcompress._ext import runtime
from dpcompress.core.errors import InputError, ModelFormatError
from dpcompress.modelfile import model_bytes, read_dpc
from dpcompress.modelfile.container import CODES, decode, encode

MODEL = os.path.join(TINY, "frozen.dp")
NEP = os.path.join(DATA, "nep", "PbTe_NEP4_example", "nep.txt")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("dpc") / "water.dpc"
    cm = compress(MODEL, check_frequency=7)
    save_model(cm, path)
    return cm, path


def test_round_trip_is_exact(saved, water_frame):
    cm, path = saved
    coords, cell, types = water_frame
    a = Potential(cm).eval(coords[None], cell[None], types, atomic=True)
    b = Potential(path).eval(coords[None], cell[None], types, atomic=True)
    c = Potential(load_model(path)).eval(coords[None], cell[None], types, atomic=True)
    for x, y, z in zip(a, b, c):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)


def test_self_contained_and_provenance(saved, tmp_path):
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
    header = read_dpc(moved).header
    assert header["format"] == "dpcompress.model" and header["dpcompress_version"]
    with open(moved, "rb") as fh:
        assert fh.read(8) == b"DPCMODEL"


def test_layout_is_aligned_and_both_readers_agree(saved):
    """Every array at a 64-byte offset; the C reader finds what the Python reader finds; the
    unpacked model writes the same bytes again (one writer, one reader per language)."""
    cm, path = saved
    data = open(path, "rb").read()
    py = decode(data, str(path))
    c = runtime.directory(data)
    assert [name for name, *_ in c] == list(py.arrays)
    for name, code, shape, offset in c:
        arr = py.arrays[name]
        assert offset % 64 == 0 and CODES[arr.dtype] == code and arr.shape == shape
        assert bytes(arr.tobytes()) == data[offset : offset + arr.nbytes]
    again = model_bytes(load_model(path))
    assert decode(again).arrays.keys() == py.arrays.keys()
    for name in py.arrays:
        assert np.array_equal(decode(again).arrays[name], py.arrays[name]), name
    assert runtime.crc32(data) == zlib.crc32(data)


def test_every_byte_is_checksummed(saved):
    """A flipped bit anywhere (preamble, header, directory, padding, any array) is caught by both readers."""
    _, path = saved
    data = bytearray(open(path, "rb").read())
    rng = np.random.default_rng(0)
    spots = sorted(set(rng.integers(0, len(data), 60).tolist()) | {0, 9, 20, 49, 70, len(data) - 1})
    for pos in spots:
        bad = bytearray(data)
        bad[pos] ^= 0x10
        with pytest.raises(ModelFormatError):
            decode(bytes(bad), "bad.dpc")
        with pytest.raises(ModelFormatError):
            runtime.check_model_bytes(bytes(bad), "bad.dpc")


def _edit(path, name, change):
    """A copy of the file with one array changed and every checksum recomputed (a deliberate edit)."""
    c = decode(open(path, "rb").read())
    arrays = {k: np.array(v) for k, v in c.arrays.items()}
    arrays[name] = change(arrays[name])
    return encode(c.header, sorted(arrays.items()))


def _set(index, value):
    def change(a):
        a.reshape(-1)[index] = value
        return a
    return change


@pytest.mark.parametrize(
    "name, change, match",
    [
        ("part0.std", _set(0, 0.0), "std entry"),
        ("part0.coef", _set(5, np.nan), "NaN or infinite"),
        ("part0.tab_count", _set(0, 5), "disagree with lower"),
        ("part0.tab_offset", _set(1, 10**9), "outside"),
        ("part0.table_of", _set(0, 7), "table index"),
        ("part0.real", _set(1, 9.0), "rcut_smth"),
        ("part0.block_mode", _set(0, 3), "block mode"),
        ("fit.layer", _set(2, 99), "activation"),
        ("fit.net_start", _set(1, 0), "net"),
        ("model.fit_mask", _set(0, 0.5), "fit_mask"),
        ("type_map", lambda a: a[:-1], "type_map"),
        ("part0.avg", lambda a: a[:1], "shape"),
    ],
)
def test_edited_files_are_rejected_naming_the_array(saved, name, change, match):
    """Checksums do not catch a deliberate edit; the C reader checks every value the kernels use."""
    _, path = saved
    with pytest.raises(ModelFormatError, match=match):
        runtime.check_model_bytes(_edit(path, name, change), "edited.dpc")


def test_declared_sizes_are_checked_before_reading(saved):
    """A directory entry declaring a huge array fails on its size, before anything is read or allocated."""
    _, path = saved
    data = bytearray(open(path, "rb").read())
    directory = int.from_bytes(data[24:32], "little")
    data[directory + 72 : directory + 80] = (2**40).to_bytes(8, "little")  # shape[0] of the first array
    crc = zlib.crc32(bytes(data[:48]) + b"\0\0\0\0" + bytes(data[52:]))
    data[48:52] = crc.to_bytes(4, "little")
    for reader in (lambda b: decode(b, "big.dpc"), lambda b: runtime.check_model_bytes(b, "big.dpc")):
        with pytest.raises(ModelFormatError, match="does not fit its shape or the file"):
            reader(bytes(data))


def test_truncated_file(saved, tmp_path):
    _, path = saved
    data = open(path, "rb").read()
    bad = tmp_path / "short.dpc"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match="short.dpc.*truncated"):
        load_model(bad)


def test_old_hdf5_dpc_gets_a_regeneration_message(tmp_path):
    old = tmp_path / "old.dpc"
    with h5py.File(old, "w") as fh:
        fh.attrs["format"] = "dpcompress.compressed-model"
        fh.attrs["schema_version"] = 1
    for load in (load_model, Potential):
        with pytest.raises(ModelFormatError, match="regenerate it with `dpcompress compress"):
            load(old)


def test_uncompressed_models_cannot_be_saved_as_dpc(tmp_path):
    with pytest.raises(InputError, match="compress"):
        save_model(load_model(MODEL), tmp_path / "x.dpc")


def test_nep_file_round_trip_and_edited_text(tmp_path):
    """A NEP .dpc embeds its nep.txt; a file whose text and arrays disagree is refused."""
    m = compress_nep(NEP, step=0.02)
    path = tmp_path / "nep.dpc"
    save_model(m, path)
    back = load_model(path)
    assert back.tables is not None and back.tables.step == 0.02
    np.testing.assert_array_equal(back.tables.coef, m.tables.coef)
    c = decode(open(path, "rb").read())
    header = dict(c.header, nep_txt=c.header["nep_txt"].replace("nep4 2 Te Pb", "nep4 2 Te Pb\n", 1))
    lines = header["nep_txt"].splitlines()
    lines[-1] = str(float(lines[-1]) + 0.5)  # one edited number of the text
    header["nep_txt"] = "\n".join(lines) + "\n"
    (tmp_path / "edited.dpc").write_bytes(encode(header, sorted((k, np.array(v)) for k, v in c.arrays.items())))
    with pytest.raises(ModelFormatError, match="disagrees with the embedded nep.txt"):
        load_model(tmp_path / "edited.dpc")


def test_atomic_write_leaves_no_temporary(saved, tmp_path):
    cm, _ = saved
    save_model(cm, tmp_path / "a.dpc")
    save_model(cm, tmp_path / "a.dpc")  # overwrite in place
    assert sorted(os.listdir(tmp_path)) == ["a.dpc"]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "a.dpc").st_mode & 0o777 == 0o666 & ~umask
