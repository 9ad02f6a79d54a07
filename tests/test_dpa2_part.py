"""Compressed DPA-2 as a ``.dpc`` part (kind 7, issue 16): written by ``compress``, checked and read back by
both readers.

The part is decoded with the Python reader's checks (:func:`dpcompress.modelfile.container.decode`) and the
read-back model evaluated with the numpy twin (the exact frame evaluator with the repinit's table); the C
runtime's evaluation of it is tested in ``test_dpa2_compressed.py``.  References: DeePMD-kit 3.2.0's
compressed model's outputs (``tests/data/deepmd/dpa2_tiny/ref_compressed_pth.npz``, README there) and
the in-memory tabulated model.
"""

import os

import numpy as np
import pytest

from conftest import DATA, water_frames

import dpcompress
from dpcompress.core.errors import ModelFormatError
from dpcompress.evaluators.exact import dpa2 as exact_dpa2
from dpcompress.modelfile import dp, model_bytes, read_dpc
from dpcompress.modelfile.container import decode, encode

FIXTURE = os.path.join(DATA, "deepmd", "dpa2_tiny")
MODEL = os.path.join(FIXTURE, "frozen.dp")


@pytest.fixture(scope="module")
def compressed():
    """DeePMD-kit's dp compress defaults (step 0.01, extrapolate 5, quintic)."""
    return dpcompress.compress(MODEL, n_threads=1)


@pytest.fixture(scope="module")
def container(compressed):
    return decode(model_bytes(compressed), "x.dpc")


@pytest.fixture(scope="module")
def frames():
    return water_frames()


def test_compress_writes_kind_7_with_the_repformer_arrays(compressed, container):
    """One part of kind 7: the repinit's se_atten_v2 arrays (no gate_pad: the smooth gate) and every rf array;
    its width is g1 + tebd_dim (DPA-2 appends the type embedding)."""
    a = container.arrays
    ints = dict(zip(dp.INT_FIELDS, (int(v) for v in a["part0.int"])))
    d = compressed.descriptor
    assert ints["kind"] == 7 and ints["concat"] == 1 and ints["dim_out"] == d.dim_out == d.g1_dim + ints["tebd_dim"]
    assert "part0.gate_pad" not in a
    assert {"part0.coef", "part0.gate", "part0.rf.int", "part0.rf.act", "part0.rf1.linear1.w"} <= set(a)
    assert container.header["model"]["descriptor"][0]["type"] == "dpa2"


def test_read_back_model_matches_deepmd_compressed(compressed, container, frames):
    """The read-back model evaluates bit-identically to the compressed model in memory, and within
    1e-10 eV/atom and 1e-9 eV/Å (virial 1e-9 eV) of DeePMD-kit's compressed model (measured: 0 and 5e-15)."""
    coords, cells, types = frames
    back = dp.unpack(container.header, container.arrays, "x.dpc")
    assert back.is_compressed and back.descriptor.repinit.embeddings is None
    n = len(types)
    with np.load(os.path.join(FIXTURE, "ref_compressed_pth.npz"), allow_pickle=False) as ref:
        for f in range(2):
            a = exact_dpa2.evaluate_frame(compressed, coords[f], cells[f], types)
            b = exact_dpa2.evaluate_frame(back, coords[f], cells[f], types)
            assert a.energy == b.energy
            np.testing.assert_array_equal(a.force, b.force)
            np.testing.assert_array_equal(a.atom_virial, b.atom_virial)
            assert abs(b.energy - ref["energy"][f]) / n < 1e-10
            np.testing.assert_allclose(b.force, ref["force"][f], rtol=0, atol=1e-9)
            np.testing.assert_allclose(b.virial, ref["virial"][f].reshape(3, 3), rtol=0, atol=1e-9)


def _edited(container, edit):
    arrays = dict(container.arrays)
    edit(arrays)
    return encode(container.header, sorted(arrays.items()))


def _set(name, value):
    def edit(arrays):
        arrays[name] = value(np.array(arrays[name])) if callable(value) else value
    return edit


def _nan(a):
    a.flat[2] = np.nan
    return a


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda a: a.pop("part0.rf0.mapkv.w"), r"array 'part0.rf0.mapkv.w' is missing"),
        (_set("part0.rf1.linear1.w", lambda a: a[:-1]), r"array 'part0.rf1.linear1.w' is float64\[47, 8\], expected"),
        (_set("part0.rf0.head_map2.w", _nan), r"array 'part0.rf0.head_map2.w' holds a non-finite value"),
        (_set("part0.rf.dstd", lambda a: -a), r"array 'part0.rf.dstd' holds a value <= 0"),
        (_set("part0.rf.int", lambda a: a * np.array([100, 1, 1, 1, 1, 1])), r"array 'part0.rf.int' = \[200, "),
        (_set("part0.rf1.linear2.w", np.zeros((4, 4))), r"array 'part0.rf1.linear2.w' is not part of this compressed"),
        (_set("part0.gate_pad", np.zeros(2, dtype=np.int64)), r"array 'part0.gate_pad': not used by a compressed DPA-2"),
        (_set("part0.avg", lambda a: a + 0.5), r"array 'part0.avg': entry 0 is 0.5; a compressed DPA-2 needs davg = 0"),
        (_set("part0.int", lambda a: a * np.array([1] * 8 + [0] + [1] * 3)), r"array 'part0.int': concat 0, a compressed DPA-2 appends"),
        (_set("part0.rf.real", np.array([4.0, 4.0])), r"array 'part0.rf.real' = \[4, 4\]: expected rcut > rcut_smth"),
        (_set("part0.rf.layer_int", lambda a: a * np.array([1, 1, 1, 0, 1, 1, 1, 1])),
         r"array 'part0.rf.layer_int' row 0 = \[8, 4, 4, 0, .*update_chnnl_2 = 1"),
        (_set("part0.rf.layer_int", lambda a: -a), r"array 'part0.rf.layer_int' holds \[\[-8, "),
        (_set("part0.rf.layer_real", lambda a: a * np.array([1.0, 1.0, 0.0])), r"array 'part0.rf.layer_real': expected"),
        (_set("part0.rf.int", lambda a: a * np.array([1, 1, 1, 2, 1, 1])), r"array 'part0.rf.layer_int' row 0: g1_dim"),
        (lambda a: a.pop("part0.rf.act"), r"array 'part0.rf.act' is missing"),
        (_set("part0.rf.act", np.array([9])), r"array 'part0.rf.act' holds \[9\], expected values in \[0, 7\]"),
        (_set("part0.rf.act", np.array([1, 1])), r"array 'part0.rf.act' is int64\[2\], expected int64\[1\]"),
        (_set("part0.rf.g1_shape.w", lambda a: a[:, :-1]), r"array 'part0.rf.g1_shape.w' is float64\[64, 7\], expected float64\[64, 8\]"),
    ],
)
def test_damaged_parts_are_named_by_both_readers(container, edit, match):
    """The Python reader and the C reader name every damaged, missing or extra kind-7 array (file, part, array,
    expectation), with the same message."""
    from dpcompress._ext.runtime import check_model_bytes

    data = _edited(container, edit)
    with pytest.raises(ModelFormatError, match="^x.dpc: (part 0: )?" + match) as py:
        decode(data, "x.dpc")
    with pytest.raises(ModelFormatError) as c:
        check_model_bytes(data, "x.dpc")
    assert str(c.value) == str(py.value)


@pytest.mark.parametrize("value", [None, "sigmoidal", ["tanh"]])
def test_a_bad_repformer_activation_is_named(container, value):
    """The header's ``rf_activation`` (the repformers' activation, not in the arrays) is checked too."""
    import copy

    header = copy.deepcopy(container.header)
    header["model"]["descriptor"][0]["rf_activation"] = value
    with pytest.raises(ModelFormatError, match=r"^x.dpc: header key 'model.descriptor\[0\].rf_activation' = .* is not "
                                               "a known activation"):
        decode(encode(header, sorted(container.arrays.items())), "x.dpc")


def test_the_activation_code_agrees_with_the_header(container):
    """``rf.act`` (the C runtime's code of the repformers' activation) is tanh's here and must agree with the
    header's ``rf_activation``."""
    assert container.arrays["part0.rf.act"].tolist() == [1]
    assert container.header["model"]["descriptor"][0]["rf_activation"] == "tanh"
    data = _edited(container, _set("part0.rf.act", np.array([7])))
    with pytest.raises(ModelFormatError, match=r"^x.dpc: header key 'model.descriptor\[0\].rf_activation' = 'tanh' "
                                               r"disagrees with array 'part0.rf.act' \(activation code 7\)"):
        decode(data, "x.dpc")


def test_the_c_reader_opens_an_intact_part(compressed):
    """The C reader checks and reads an intact part (the runtime evaluates it: test_dpa2_compressed.py)."""
    from dpcompress._ext.runtime import check_model_bytes

    check_model_bytes(model_bytes(compressed), "x.dpc")
    assert read_dpc(model_bytes(compressed), "x.dpc").header["model"]["descriptor"][0]["type"] == "dpa2"
