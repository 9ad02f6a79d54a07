"""Hostile and damaged .dpc files: every byte is covered by a checksum, and every value that a
checksum cannot vouch for (an edit whose checksums were recomputed) is checked against the file's
own redundancy, by both readers: the Python one (``container.decode``) and the C one
(``dpc_model_open``, via the runtime), each refusing with a message naming the array or key.

The cases of issue 13 (items 4 and 5) are here; docs/model-file.md ("Checks") lists every check.
"""

import json
import os
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest

from conftest import DATA, REPO, TINY
from dpcompress import compress, compress_nep
from dpcompress._ext import runtime
from dpcompress.core.errors import ModelFormatError
from dpcompress.core.warnings import TableAccuracyWarning
from dpcompress.modelfile import model_bytes, read_dpc
from dpcompress.modelfile.container import ENTRY, decode, encode

MODEL = os.path.join(TINY, "frozen.dp")
SE_E3 = os.path.join(DATA, "deepmd", "se_e3_tiny", "frozen.dp")
NEP = os.path.join(DATA, "nep", "PbTe_NEP4_example", "nep.txt")


# ---------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def dp_bytes():
    """A small compressed se_e2_a (coarse step: 1.4 MB)."""
    return model_bytes(compress(MODEL, step=0.05))


@pytest.fixture(scope="module")
def e3_bytes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TableAccuracyWarning)  # se_e3 strides are 10x the step
        return model_bytes(compress(SE_E3, step=0.05))


@pytest.fixture(scope="module")
def nep_bytes():
    return model_bytes(compress_nep(NEP, step=0.05))


def refix_crcs(data):
    """``data`` with every array's checksum and the whole-file checksum recomputed from its own
    directory: what a careful editor of the bytes does, so that the edit reaches the value checks."""
    data = bytearray(data)
    doff, narr = struct.unpack_from("<QQ", data, 24)
    n = len(data)
    for k in range(min(narr, (n - doff) // ENTRY if doff < n else 0)):
        e = doff + k * ENTRY
        off, length = struct.unpack_from("<QQ", data, e + 104)
        if off <= n and length <= n - off:
            struct.pack_into("<I", data, e + 120, zlib.crc32(bytes(data[off : off + length])))
    struct.pack_into("<I", data, 48, 0)
    struct.pack_into("<I", data, 48, zlib.crc32(bytes(data)))
    return bytes(data)


def edit_arrays(data, change):
    """Re-encode with ``change(arrays)`` applied to writable copies (every checksum recomputed)."""
    c = decode(data, check=False)
    arrays = {k: np.array(v) for k, v in c.arrays.items()}
    change(arrays)
    return encode(c.header, sorted(arrays.items()))


def edit_header(data, change):
    c = decode(data, check=False)
    header = json.loads(json.dumps(c.header))
    change(header)
    return encode(header, sorted((k, np.array(v)) for k, v in c.arrays.items()))


def both_refuse(data, match):
    """Both readers refuse ``data`` with a message matching ``match`` (and naming the file)."""
    with pytest.raises(ModelFormatError, match=match) as py:
        decode(data, "hostile.dpc")
    with pytest.raises(ModelFormatError, match=match) as c:
        runtime.check_model_bytes(data, "hostile.dpc")
    assert str(py.value).startswith("hostile.dpc: ") and str(c.value).startswith("hostile.dpc: ")
    return str(py.value), str(c.value)


def both_accept(data):
    decode(data, "ok.dpc")
    runtime.check_model_bytes(data, "ok.dpc")


def array_span(data, name):
    """(offset, length) of an array in the file."""
    doff, narr = struct.unpack_from("<QQ", data, 24)
    for k in range(narr):
        e = doff + k * ENTRY
        if data[e : e + 64].split(b"\0", 1)[0] == name.encode():
            return struct.unpack_from("<QQ", data, e + 104)
    raise KeyError(name)


def entry_of(data, name):
    doff, narr = struct.unpack_from("<QQ", data, 24)
    for k in range(narr):
        e = doff + k * ENTRY
        if data[e : e + 64].split(b"\0", 1)[0] == name.encode():
            return e
    raise KeyError(name)


# ------------------------------------------------------------------------------------- the good files


def test_files_of_the_writer_pass_both_readers(dp_bytes, e3_bytes, nep_bytes):
    for data in (dp_bytes, e3_bytes, nep_bytes):
        both_accept(data)


# ----------------------------------------------------------- every byte under a checksum (no CRC fix)


def _byte_classes(data):
    """One position per class of byte in the file (name, offset)."""
    hlen, = struct.unpack_from("<I", data, 12)
    doff, narr = struct.unpack_from("<QQ", data, 24)
    first, first_len = struct.unpack_from("<QQ", data, doff + 104)
    weights, wlen = array_span(data, "fit.params")
    out = [("signature", 3), ("version", 8), ("header length", 12), ("header offset", 16), ("directory offset", 24),
           ("array count", 32), ("file size", 40), ("file checksum", 49), ("reserved", 53),
           ("header JSON", 64 + hlen // 2)]
    if doff > 64 + hlen:
        out.append(("padding after the header", doff - 1))
    for field, at in (("name", 1), ("dtype", 64), ("rank", 68), ("shape", 72), ("offset", 104), ("length", 112),
                      ("array checksum", 121), ("entry zero", 124)):
        out.append((f"directory {field}", doff + ENTRY + at))
    out.append(("first array", first))
    if (first + first_len) % 64:
        out.append(("padding between arrays", first + first_len))
    out.append(("fitting weight", weights + wlen // 2 + 3))
    out.append(("last byte", len(data) - 1))
    return out


def test_every_class_of_byte_is_checksummed(dp_bytes):
    """A flipped bit in any kind of byte, checksums left alone: both readers refuse (an array's
    damage names the array)."""
    for what, pos in _byte_classes(dp_bytes):
        bad = bytearray(dp_bytes)
        bad[pos] ^= 0x04
        with pytest.raises(ModelFormatError) as py:
            decode(bytes(bad), "bad.dpc")
        with pytest.raises(ModelFormatError) as c:
            runtime.check_model_bytes(bytes(bad), "bad.dpc")
        if what == "fitting weight":
            assert "array 'fit.params' fails its checksum" in str(py.value), what
            assert "array 'fit.params' fails its checksum" in str(c.value), what


def test_a_fitting_weight_has_no_redundancy_beyond_its_checksum(dp_bytes):
    """A flipped mantissa bit of a weight with the checksums recomputed is a different, valid
    model: nothing in the file can tell (only the checksums, which this edit rewrote)."""
    off, length = array_span(dp_bytes, "fit.params")
    bad = bytearray(dp_bytes)
    bad[off + 8 * 10 + 2] ^= 0x10  # a low mantissa byte of weight 10
    both_accept(refix_crcs(bad))
    bad[off + 8 * 10 + 7] = 0x7F  # exponent all ones: inf or NaN
    bad[off + 8 * 10 + 6] |= 0xF0
    both_refuse(refix_crcs(bad), "'fit.params' holds NaN or infinite")


@pytest.mark.parametrize(
    "where, match",
    [
        ("header padding", "padding byte at offset"),
        ("array padding", "padding byte at offset"),
        ("tail padding", "padding byte at offset"),
    ],
)
def test_padding_is_zero_even_with_checksums_recomputed(dp_bytes, where, match):
    hlen, = struct.unpack_from("<I", dp_bytes, 12)
    doff, narr = struct.unpack_from("<QQ", dp_bytes, 24)
    spans = sorted(array_span(dp_bytes, dp_bytes[doff + k * ENTRY : doff + k * ENTRY + 64].split(b"\0")[0].decode())
                   for k in range(narr))
    gaps = [o + n for o, n in spans[:-1] if (o + n) % 64]
    pos = {"header padding": doff - 1 if doff > 64 + hlen else None, "array padding": gaps[0] if gaps else None,
           "tail padding": len(dp_bytes) - 1 if (spans[-1][0] + spans[-1][1]) % 64 else None}[where]
    if pos is None:
        pytest.skip(f"this file has no {where}")
    bad = bytearray(dp_bytes)
    bad[pos] = 1
    both_refuse(refix_crcs(bad), match)


def test_layout_must_be_the_writers(dp_bytes):
    """An array moved (aliasing another's bytes), an extra or a renamed array: refused."""
    e = entry_of(dp_bytes, "model.keep_mask")
    bad = bytearray(dp_bytes)
    off, = struct.unpack_from("<Q", bad, e + 104)
    struct.pack_into("<Q", bad, e + 104, off - 64)
    both_refuse(refix_crcs(bad), "'model.keep_mask' at offset .* the writer puts it at")

    def extra(a):
        a["part0.junk"] = np.zeros(3)

    both_refuse(edit_arrays(dp_bytes, extra), "array 'part0.junk' is not part of a DP model")
    bad = bytearray(dp_bytes)
    e = entry_of(bad, "model.out_bias")
    bad[e : e + 14] = b"model.out_bia\0"  # a name out of the sorted order
    both_refuse(refix_crcs(bad), "out of the writer's order|is missing")


# ------------------------------------------------------- DP: value edits with checksums recomputed


def _set(name, index, value):
    def change(a):
        a[name].reshape(-1)[index] = value
    return change


def _shift_table(k, by):
    """Table k's whole grid moved by ``by`` (lower, upper and xmax together: self-consistent)."""
    def change(a):
        a["part0.tab_real"][k, :3] += by
    return change


def _stride(k, factor):
    """Table k's fine stride scaled, upper and xmax recomputed from the counts (self-consistent)."""
    def change(a):
        r, c = a["part0.tab_real"][k], a["part0.tab_count"][k]
        r[3] *= factor
        r[1] = r[0] + c[0] * r[3]
        r[2] = r[1] + c[1] * r[4]
    return change


def _split(k, by):
    """Table k's fine/coarse split moved by ``by`` intervals (rows reinterpreted, self-consistent)."""
    def change(a):
        r, c = a["part0.tab_real"][k], a["part0.tab_count"][k]
        c[0] += by
        c[1] -= by
        r[1] = r[0] + c[0] * r[3]
        r[2] = r[1] + c[1] * r[4]
    return change


def _coef_row(k, row, factor):
    def change(a):
        off = a["part0.tab_offset"][k]
        M, ncoef = a["part0.int"][5], a["part0.int"][4]
        a["part0.coef"][off + row * ncoef * M + 3 * M] *= factor  # a3 of channel 0 of one interval
    return change


DP_EDITS = {
    "range start edited": (_set("part0.tab_real", 0, 1.0), r"'part0.tab_real'.*disagree with lower"),
    "range moved, self-consistent": (_shift_table(0, 1.0), r"'part0.tab_real' \(table 0\): grid lower -?\d.*give lower"),
    "range start NaN": (_set("part0.tab_real", 0, np.nan), r"'part0.tab_real' holds NaN"),
    "stride edited": (_set("part0.tab_real", 3, 0.0501), r"'part0.tab_real'.*disagree with lower"),
    "stride edited, self-consistent": (_stride(1, 1.01), r"'part0.tab_real' \(table 1\): grid"),
    "fine/coarse split edited": (_split(2, 3), r"'part0.tab_real' \(table 2\): grid"),
    "interval counts edited": (_set("part0.tab_count", 1, 7), r"'part0.tab_real'.*disagree with lower"),
    "one coefficient edited": (_coef_row(1, 40, 1.001), r"'part0.coef' \(table 1\): intervals 40 and 41 disagree"),
    "tables not tiling coef": (_set("part0.tab_offset", 1, 6), r"'part0.tab_offset': table 1 starts at 6"),
    "rcut_smth > rcut": (_set("part0.real", 1, 9.0), r"rcut_smth"),
    "rcut edited (moves the table range)": (_set("part0.real", 0, 0.9), r"'part0.tab_real' \(table 0\): grid"),
    "dstd 1e-300": (_set("part0.std", 0, 1e-300), r"'part0.std': std entry 0 is 1e-300"),
    "dstd 1e-11": (_set("part0.std", 0, 1e-11), r"'part0.std': std entry 0"),
    "dstd edited (moves the table range)": (_set("part0.std", 1, 0.05), r"'part0.tab_real' \(table 0\): grid"),
    "davg edited (moves the table range)": (_set("part0.avg", 0, 1.0), r"'part0.tab_real' \(table 0\): grid"),
    "davg NaN": (_set("part0.avg", 0, np.nan), r"'part0.avg' holds NaN"),
    "bias NaN": (_set("fit.params", 5, np.nan), r"'fit.params' holds NaN"),
    "table error negative": (_set("part0.tab_error", 0, -1.0), r"'part0.tab_error'"),
    "fitting activation code": (_set("fit.layer", 2, 99), r"activation code 99"),
    "unused part field": (_set("part0.int", 9, 3), r"'part0.int': fields this descriptor kind does not use"),
    "table shared across blocks": (_set("part0.table_of", 0, 1), r"'part0.table_of': table [01] "),
    "type named twice": (lambda a: a.__setitem__("type_map", np.frombuffer(b"O\0O\0", dtype=np.uint8).copy()),
                         r"'type_map' names 'O' twice"),
}


@pytest.mark.parametrize("case", sorted(DP_EDITS))
def test_dp_value_edits_are_refused_by_both_readers(dp_bytes, case):
    change, match = DP_EDITS[case]
    edited = edit_arrays(dp_bytes, change)
    both_refuse(edited, match)
    # and without the checksums recomputed, the checksum says so first (naming the array)
    c = decode(dp_bytes, check=False)
    arrays = {k: np.array(v) for k, v in c.arrays.items()}
    change(arrays)
    for name, arr in arrays.items():
        old = c.arrays[name]
        if arr.shape == old.shape and arr.dtype == old.dtype and arr.tobytes() != old.tobytes():
            off, length = array_span(dp_bytes, name)
            raw = bytearray(dp_bytes)
            raw[off : off + length] = arr.tobytes()
            both_refuse(bytes(raw), f"array '{name}' fails its checksum")


@pytest.mark.parametrize(
    "change",
    [
        _set("part0.std", 0, 0.13),  # radial std of center 0: its range stays (-1, 14)
        _set("part0.avg", 0, 0.06),
        _set("part0.real", 0, 5.9),  # rcut: s_max moves, the ceiled range does not
        _set("part0.real", 2, 0.1),  # env_protection: not part of any range
        _set("fit.params", 0, 0.5),
        _set("model.out_bias", 0, 1.0),
        lambda a: a["part0.coef"].__imul__(1.01),  # every table of the part scaled alike
    ],
)
def test_what_no_redundancy_protects(dp_bytes, change):
    """Limits, stated by a test: values with no second copy in the file pass once their checksums
    are recomputed (statistics and cutoffs only while the tables' integer ranges stay, network
    weights and biases always; a whole table scaled alike keeps its continuity).  The file does
    not hold the embedding nets, so the tables cannot be compared with them."""
    both_accept(edit_arrays(dp_bytes, change))


def test_the_c_and_python_messages_agree(dp_bytes):
    """Same check, same words: the message of each reader names the same array and numbers."""
    py, c = both_refuse(edit_arrays(dp_bytes, _shift_table(0, 1.0)), "grid")
    assert py == c


def test_se_e3_symmetric_grid(e3_bytes):
    def shift(a):
        a["part0.tab_real"][0, :3] += 1.0

    both_refuse(edit_arrays(e3_bytes, shift), r"'part0.tab_real' \(table 0\): grid")

    def below(a):
        a["part0.tab_count"][0, 2] += 1
        a["part0.tab_count"][0, 1] -= 1
        r, c = a["part0.tab_real"][0], a["part0.tab_count"][0]
        r[2] = r[1] + c[1] * r[4]

    both_refuse(edit_arrays(e3_bytes, below), "'part0.tab_real' \\(table 0\\): grid")


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("min_nbor_dist", 0.5, "'part0.tab_real' \\(table 0\\): grid"),
        ("stride0", 0.04, "'part0.tab_real' \\(table 0\\): grid"),
        ("extrapolate", 4, "'part0.tab_real' \\(table 0\\): grid"),
        ("order", 3, "compression.order"),
        ("min_nbor_dist", None, "header key 'compression.min_nbor_dist' is missing or not a number"),
        ("stride1", -0.5, "need positive strides"),
        ("extrapolate", float("nan"), "compression.extrapolate"),
    ],
)
def test_header_grid_settings_are_checked_by_both_readers(dp_bytes, key, value, match):
    both_refuse(edit_header(dp_bytes, lambda h: h["compression"].__setitem__(key, value)), match)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda h: h.__setitem__("kind", "nep"), "header key 'kind'"),
        (lambda h: h.__setitem__("format", "x"), "header key 'format'"),
    ],
)
def test_header_identity_is_checked_by_both_readers(dp_bytes, change, match):
    both_refuse(edit_header(dp_bytes, change), match)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda h: h["model"]["descriptor"][0].__setitem__("activation", "bogus"), "activation' = 'bogus'"),
        (lambda h: h["model"]["descriptor"][0].__setitem__("neuron", [5, 10, 0]), "neuron"),
        (lambda h: h["model"]["descriptor"][0].__setitem__("type_one_side", True), "type_one_side"),
        (lambda h: h["model"].__setitem__("pair_exclude_types", [[0, 1], [1, 0]]), "pair_exclude_types"),
        (lambda h: h["model"].__setitem__("atom_exclude_types", [1]), "atom_exclude_types"),
        (lambda h: h["model"].__setitem__("min_nbor_dist", 0.9), "min_nbor_dist"),
        (lambda h: h["model"].__setitem__("hybrid", "yes"), "hybrid"),
    ],
)
def test_settings_only_the_python_model_reads(dp_bytes, change, match):
    """Header settings the C runtime never reads (its numbers come from the arrays alone), but the
    Python model is built from: the Python reader holds them to the arrays."""
    data = edit_header(dp_bytes, change)
    with pytest.raises(ModelFormatError, match=match):
        decode(data, "hostile.dpc")
    with pytest.raises(ModelFormatError, match=match):
        read_dpc(data, "hostile.dpc")  # what Potential and load_model call
    runtime.check_model_bytes(data, "hostile.dpc")


# ------------------------------------------------------------------------------------------- NEP


def _nep_scale(factor):
    def change(a):
        a["nep.tab_coef"] *= factor
    return change


NEP_EDITS = {
    "coefficient NaN": (_set("nep.tab_coef", 100, np.nan), r"'nep.tab_coef' holds NaN"),
    "coefficients scaled x1.01": (_nep_scale(1.01), r"'nep.tab_coef': table 0 \(radial, pair 0\)"),
    "one coefficient edited": (lambda a: a["nep.tab_coef"].__setitem__(6 * 4 * 50 + 3 * 4, 1.0), r"'nep.tab_coef': table 0"),
    "interval count edited": (_set("nep.tab_M", 0, 300), r"'nep.tab_M': table 0 has 300 intervals"),
    "interval width edited": (lambda a: a["nep.tab_grid"].__setitem__((1, 0), a["nep.tab_grid"][1, 0] * 1.001),
                              r"'nep.tab_grid': table 1"),
    "radial coefficient edited": (lambda a: a["nep.c_R"].__setitem__((0, 0, 0), a["nep.c_R"][0, 0, 0] + 0.01),
                                  r"'nep.tab_coef': table 0"),
    "padding channel set": (lambda a: a["nep.c_R"].__setitem__((0, 0, -1), 1.0), r"'nep.c_R': padding channel"),
}


@pytest.mark.parametrize("case", sorted(NEP_EDITS))
def test_nep_value_edits_are_refused_by_both_readers(nep_bytes, case):
    change, match = NEP_EDITS[case]
    both_refuse(edit_arrays(nep_bytes, change), match)


def test_nep_step_in_the_header(nep_bytes):
    both_refuse(edit_header(nep_bytes, lambda h: h.__setitem__("step", 0.04)), r"'nep.tab_M': table 0")
    both_refuse(edit_header(nep_bytes, lambda h: h.pop("step")), r"header key 'step' is missing")


def _edit_nep_text(header):
    """The first radial coefficient of the embedded nep.txt changed (its line after the network)."""
    lines = header["nep_txt"].splitlines()
    from dpcompress.nep import parse_nep_text

    m = parse_nep_text(header["nep_txt"], "x")
    n_ann = m.ntypes * (m.dim * m.n_neuron + 2 * m.n_neuron) + 1
    first = 6 + n_ann  # header lines of a NEP4 file: nep4, cutoff, n_max, basis_size, l_max, ANN
    lines[first] = repr(float(lines[first]) + 0.01)
    header["nep_txt"] = "\n".join(lines) + "\n"


def test_nep_text_that_disagrees_with_its_tables(nep_bytes):
    """The embedded nep.txt and the Chebyshev coefficients edited together, the tables left: both
    readers refuse (C compares the tables with c_R, Python with the text and with c_R)."""
    from dpcompress.nep import parse_nep_text
    from dpcompress.nep.packing import pack_arrays

    c = decode(nep_bytes, check=False)
    header = json.loads(json.dumps(c.header))
    _edit_nep_text(header)
    arrays = {k: np.array(v) for k, v in c.arrays.items()}
    edited = pack_arrays(parse_nep_text(header["nep_txt"], "x"), False)
    changed = [k for k in ("nep.c_R", "nep.c_A") if not np.array_equal(edited[k], arrays[k])]
    assert changed, "the edit must reach a Chebyshev coefficient"
    for k in changed:
        arrays[k] = edited[k]
    both_refuse(encode(header, sorted(arrays.items())), r"'nep.tab_coef': table \d+")
    # the text alone: the arrays still agree with each other (C computes with them), the Python
    # reader, which builds its model from the text, refuses
    header = json.loads(json.dumps(c.header))
    _edit_nep_text(header)
    data = encode(header, sorted((k, np.array(v)) for k, v in c.arrays.items()))
    with pytest.raises(ModelFormatError, match=r"array 'nep.c_[RA]' disagrees with the embedded nep.txt"):
        read_dpc(data, "hostile.dpc")
    runtime.check_model_bytes(data, "hostile.dpc")


# -------------------------------------------------------------- sizes before allocation (item 5)

_HUGE = 96 * 2**30  # bytes


def _declare_huge(data, name):
    """The directory entry of ``name`` declaring 96 GiB (shape and length consistent), checksums fixed."""
    e = entry_of(data, name)
    bad = bytearray(data)
    struct.pack_into("<QQQQ", bad, e + 72, _HUGE // 8, 0, 0, 0)
    struct.pack_into("<Q", bad, e + 112, _HUGE)
    return refix_crcs(bad)


def _huge_counts(data):
    def change(a):
        c, r = a["part0.tab_count"], a["part0.tab_real"]
        c[0, 0] = 2**38
        r[0, 1] = r[0, 0] + c[0, 0] * r[0, 3]
        r[0, 2] = r[0, 1] + c[0, 1] * r[0, 4]
    return edit_arrays(data, change)


def test_a_declared_96_gib_array_is_refused_before_allocation(dp_bytes):
    for data, match in ((_declare_huge(dp_bytes, "part0.coef"), "'part0.coef' .* does not fit its shape or the file"),
                        (_huge_counts(dp_bytes), "'part0.tab_count': table 0's \\d+ intervals .* do not fit")):
        tracemalloc.start()
        with pytest.raises(ModelFormatError, match=match):
            decode(data, "huge.dpc")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 64 * 2**20, peak  # far below the declared size: nothing was sized from it
        with pytest.raises(ModelFormatError, match=match):
            runtime.check_model_bytes(data, "huge.dpc")


def test_sizes_under_an_address_space_limit(dp_bytes, nep_bytes, tmp_path):
    """Both readers in a process that cannot map 4 GiB: a reader that allocated from a declared
    size would fail with MemoryError instead of the format error."""
    files = {
        "coef": _declare_huge(dp_bytes, "part0.coef"),
        "counts": _huge_counts(dp_bytes),
        "nep": edit_arrays(nep_bytes, _set("nep.tab_M", 0, 2**40)),
    }
    for k, v in files.items():
        (tmp_path / f"{k}.dpc").write_bytes(v)
    script = "\n".join([
        "import resource, sys",
        f"sys.path.insert(0, {REPO!r})",
        "from dpcompress.modelfile.container import decode",
        "from dpcompress._ext import runtime",
        "from dpcompress.core.errors import ModelFormatError",
        "soft, hard = resource.getrlimit(resource.RLIMIT_AS)",
        "vm = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()",
        "resource.setrlimit(resource.RLIMIT_AS, (vm + 4 * 2**30, hard))",
        f"for name in {sorted(files)!r}:",
        f"    data = open({str(tmp_path)!r} + '/' + name + '.dpc', 'rb').read()",
        "    for reader in (lambda b: decode(b, name), lambda b: runtime.check_model_bytes(b, name)):",
        "        try:",
        "            reader(data)",
        "        except ModelFormatError as exc:",
        "            print('refused', name, exc)",
        "        else:",
        "            print('ACCEPTED', name)",
    ])
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 6 and all(line.startswith("refused") for line in lines), out.stdout


# ------------------------------------------------------------------- the JSON header, both readers


@pytest.mark.parametrize(
    "raw, accepted",
    [
        (b'{"a": NaN, "b": -Infinity}', True),
        (b'{"a": 1, "a": 2}', True),
        (b'{"\\u0061": [1, 2.5e-3, true, null, "x\\n"]}', True),
        (b'{"a": 1}   \n', True),
        (b'{"a": 01}', False),
        (b'{"a": 1.}', False),
        (b'{"a": -NaN}', False),
        (b'{"a": "\x01"}', False),
        (b'{"a": "\\x"}', False),
        (b'{"a": "' + b"\xc3\x28" + b'"}', False),
        (b'{"a": "' + b"\xed\xa0\x80" + b'"}', False),
        (b"\xef\xbb\xbf{}", False),
        (b'{"a": ' + b"1" * 65 + b"}", False),
        (b'{"a": ' + b"1" * 64 + b"}", True),
        (b"[1]", False),
        (b'{"a": ' + b"[" * 64 + b"]" * 64 + b"}", False),
        (b'{"a": ' + b"[" * 63 + b"]" * 63 + b"}", True),
        (b'{"a": 1}x', False),
    ],
)
def test_both_readers_read_the_same_json(raw, accepted):
    """The container of each reader on a crafted header (no arrays): same verdict.  Rejections
    must say the header cannot be read (or is not an object)."""
    head = raw
    directory = (64 + len(head) + 63) // 64 * 64
    buf = bytearray(directory)
    buf[64 : 64 + len(head)] = head
    struct.pack_into("<8sIIQQQQIIQ", buf, 0, b"DPCMODEL", 2, len(head), 64, directory, 0, directory, 0, 0, 0)
    struct.pack_into("<I", buf, 48, zlib.crc32(bytes(buf)))
    data = bytes(buf)
    verdicts = []
    for reader in (lambda b: decode(b, "j.dpc", check=False), runtime.directory):
        try:
            reader(data)
            verdicts.append(True)
        except ModelFormatError as exc:
            assert "JSON header" in str(exc), exc
            verdicts.append(False)
    assert verdicts == [accepted, accepted]


def test_escaped_keys_are_read_alike(dp_bytes):
    """A key spelled with escapes is the same key for both readers (as json.loads decodes it)."""
    c = decode(dp_bytes, check=False)
    text = json.dumps(c.header, sort_keys=True, separators=(",", ":"))
    assert '"kind":"dp_energy"' in text
    for spelled in ('"\\u006bind":"dp_energy"', '"kind":"dp\\u005fenergy"'):
        edited = text.replace('"kind":"dp_energy"', spelled)
        raw = _with_header(dp_bytes, edited.encode())
        both_accept(raw)
    raw = _with_header(dp_bytes, text.replace('"kind":"dp_energy"', '"kind":"dp_energy","kind":"nep"').encode())
    both_refuse(raw, "header key 'kind'")  # the last of repeated keys counts, in both


def _with_header(data, head):
    """The file re-laid with another header's bytes (the arrays unchanged)."""
    c = decode(data, check=False)
    arrays = sorted((k, np.array(v)) for k, v in c.arrays.items())
    out = bytearray(encode({}, arrays))
    # rebuild with encode's layout but this exact header text
    empty = len(b"{}")
    shift = (64 + len(head) + 63) // 64 * 64 - (64 + empty + 63) // 64 * 64
    doff, narr = struct.unpack_from("<QQ", out, 24)
    body = out[doff:]
    new = bytearray((64 + len(head) + 63) // 64 * 64) + body
    new[64 : 64 + len(head)] = head
    for k in range(narr):
        e = len(new) - len(body) + k * ENTRY
        off, = struct.unpack_from("<Q", new, e + 104)
        struct.pack_into("<Q", new, e + 104, off + shift)
    struct.pack_into("<8sIIQQQQIIQ", new, 0, b"DPCMODEL", 2, len(head), 64, doff + shift, narr, len(new), 0, 0, 0)
    return refix_crcs(new)
