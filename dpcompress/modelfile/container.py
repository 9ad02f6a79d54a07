"""The ``.dpc`` container: a 64-byte preamble, a JSON header, an array directory, the arrays.

The layout is specified in ``docs/model-file.md``; ``src_c/dpc_model_file.c`` is the C reader
(the model runtime and the LAMMPS plug-in read the same bytes).  Every array starts at a
64-byte-aligned offset, so a read-only memory map of the file serves the arrays in place (MPI
ranks on one node share the pages).  The whole file and every array carry a CRC-32 (zlib's), and
every size is checked against the file before anything is read or allocated; the layout must be
the writer's to the byte.  :func:`decode` then runs the model checks of the C reader
(:func:`check_model`), so both readers refuse the same files (docs/model-file.md, "Checks").
"""

import json
import os
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ..core.atomic_file import write_atomic
from ..core.errors import ModelFormatError

MAGIC = b"DPCMODEL"
VERSION = 2
ALIGN = 64
PREAMBLE = 64
ENTRY = 128
NAME = 64
MAX_ARRAYS = 65536
MAX_HEADER = 1 << 26
#: JSON limits both readers apply to the header (src_c/dpc_model_file.h DPC_JSON_MAX_*)
MAX_JSON_DEPTH = 64
MAX_JSON_NUMBER = 64

#: dtype code <-> numpy dtype (little-endian)
DTYPES = {1: np.dtype("<f8"), 2: np.dtype("<i8"), 3: np.dtype("<i4"), 4: np.dtype("i1"), 5: np.dtype("u1")}
CODES = {v: k for k, v in DTYPES.items()}

_PREAMBLE = struct.Struct("<8sIIQQQQIIQ")
_ENTRY = struct.Struct("<64sII4QQQII")


def _pad(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass(frozen=True)
class Container:
    """A parsed ``.dpc`` file: its header and read-only array views into ``buffer``."""

    header: dict
    arrays: dict
    buffer: object  # bytes, or a memory map kept open while the arrays are used


def encode(header, arrays):
    """The bytes of a ``.dpc`` file.

    Parameters
    ----------
    header : dict
        JSON-serialisable metadata.
    arrays : sequence of (str, ndarray)
        Names (ASCII, at most 63 bytes, unique) and arrays of the dtypes in :data:`DTYPES`.
    """
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if len(head) > MAX_HEADER:
        raise ValueError("the JSON header is too large")
    items = []
    for name, arr in arrays:
        raw = name.encode("ascii")
        if not 0 < len(raw) < NAME:
            raise ValueError(f"array name {name!r} must have 1 to {NAME - 1} ASCII characters")
        a = np.ascontiguousarray(arr)
        dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
        dt = np.dtype(dt.str.replace("=", "<"))
        if dt not in CODES:
            raise ValueError(f"array {name!r}: dtype {a.dtype} cannot be stored")
        if a.ndim > 4:
            raise ValueError(f"array {name!r} has {a.ndim} dimensions (at most 4)")
        items.append((raw, CODES[dt], np.ascontiguousarray(a, dtype=dt)))
    if len({r for r, _, _ in items}) != len(items):
        raise ValueError("array names must be unique")
    directory = _pad(PREAMBLE + len(head))
    offset = _pad(directory + ENTRY * len(items))
    layout = []
    for raw, code, a in items:
        layout.append((raw, code, a, offset))
        offset = _pad(offset + a.nbytes)
    total = offset
    buf = bytearray(total)
    buf[PREAMBLE : PREAMBLE + len(head)] = head
    for k, (raw, code, a, off) in enumerate(layout):
        shape = list(a.shape) + [0] * (4 - a.ndim)
        data = a.tobytes()
        buf[off : off + len(data)] = data
        _ENTRY.pack_into(buf, directory + k * ENTRY, raw, code, a.ndim, *shape, off, len(data), zlib.crc32(data), 0)
    _PREAMBLE.pack_into(buf, 0, MAGIC, VERSION, len(head), PREAMBLE, directory, len(items), total, 0, 0, 0)
    crc = zlib.crc32(bytes(buf))
    struct.pack_into("<I", buf, 48, crc)
    return bytes(buf)


def _number_token(convert):
    """A json.loads hook that refuses number tokens longer than :data:`MAX_JSON_NUMBER` characters
    (the C reader's limit; a 5000-digit integer would otherwise raise Python's int-size error)."""

    def parse(token):
        if len(token) > MAX_JSON_NUMBER:
            raise ValueError(f"a number of {len(token)} characters")
        return convert(token)

    return parse


def _depth(value):
    """Nesting depth of containers in a parsed JSON value (a scalar: 0), iteratively."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d + 1)
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def parse_header(raw):
    """The header object from its bytes, under the rules both readers share (UTF-8 JSON, NaN and
    Infinity allowed as Python writes them, at most :data:`MAX_JSON_DEPTH` nested containers and
    number tokens of at most :data:`MAX_JSON_NUMBER` characters).

    Raises
    ------
    ValueError
        With the reason; :func:`decode` names the file.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"the JSON header cannot be read (invalid UTF-8 at byte {exc.start})") from None
    try:
        header = json.loads(text, parse_int=_number_token(int), parse_float=_number_token(float))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise ValueError(f"the JSON header cannot be read ({exc})") from None
    if _depth(header) > MAX_JSON_DEPTH:
        raise ValueError(f"the JSON header cannot be read (nesting deeper than {MAX_JSON_DEPTH})")
    if not isinstance(header, dict):
        raise ValueError("the JSON header is not an object")
    return header


def check_model(header, arrays, source="<memory>"):
    """The model checks of the C reader's ``dpc_model_open``, in numpy (:func:`dpcompress.modelfile.dp.check`,
    :func:`dpcompress.modelfile.nep.check`), by the model kind of ``model.int``.

    Raises
    ------
    ModelFormatError
    """
    from . import dp, dp_tensor, nep  # the model layouts build on this module, not the other way round

    kind = int(dp.model_int(dp.Checker(header, arrays, source))[0])
    checks = {dp.KIND_DP_ENERGY: dp.check, dp.KIND_DP_TENSOR: dp_tensor.check}
    checks.get(kind, nep.check)(header, arrays, source)


def decode(buffer, source="<memory>", check=True):
    """Parse and check the bytes of a ``.dpc`` file: the checks of the C reader (``dpc_file_parse``,
    then with ``check`` those of ``dpc_model_open``: :func:`check_model`).

    Beyond sizes and checksums the layout must be the writer's (:func:`encode`): the directory
    right after the header, the arrays in name order each right after the previous one, every
    padding byte zero.  So no byte of the file is left unchecked, and a directory cannot alias
    or hide data.

    Parameters
    ----------
    buffer : bytes-like
        Kept referenced by the result: the arrays are read-only views into it.
    source : str
        Named in every error.
    check : bool
        Also check the model the arrays describe (False: the container only, e.g. to edit a file).

    Raises
    ------
    ModelFormatError
    """
    view = memoryview(buffer).cast("B")
    n = len(view)

    def bad(msg):
        raise ModelFormatError(f"{source}: {msg}")

    if n < PREAMBLE or bytes(view[:8]) != MAGIC:
        bad("not a dpcompress model file (no DPCMODEL signature)")
    magic, version, hlen, hoff, doff, narr, total, crc, r1, r2 = _PREAMBLE.unpack_from(view, 0)
    if version != VERSION:
        bad(f"format version {version}; this dpcompress reads version {VERSION}")
    if total != n:
        bad(f"the preamble declares {total} bytes but the file has {n} (truncated or extended)")
    if hoff != PREAMBLE or hlen > n - PREAMBLE or hlen > MAX_HEADER:
        bad(f"header (offset {hoff}, {hlen} bytes) outside the file")
    if narr > MAX_ARRAYS:
        bad(f"{narr} arrays declared (at most {MAX_ARRAYS})")
    if doff % ALIGN or doff < hoff + hlen or doff > n or narr * ENTRY > n - doff:
        bad(f"array directory (offset {doff}, {narr} entries) outside the file")
    if r1 or r2:
        bad("reserved preamble bytes are not zero")
    # every array's own checksum first, where its entry can be read: a damaged file then names the
    # array at fault; damage anywhere else is caught by the whole-file checksum
    start = doff + narr * ENTRY
    for k in range(narr):
        raw, _, _, _, _, _, _, off, length, acrc, _ = _ENTRY.unpack_from(view, doff + k * ENTRY)
        if raw[0] == 0 or b"\0" not in raw or off % ALIGN or off < start or off > n or length > n - off:
            continue  # refused below, with the reason
        if zlib.crc32(view[off : off + length]) != acrc:
            name = raw.split(b"\0", 1)[0].decode("ascii", errors="replace")
            bad(f"array '{name}' fails its checksum: the file is damaged")
    got = zlib.crc32(view[:48])
    got = zlib.crc32(b"\0\0\0\0", got)
    got = zlib.crc32(view[52:], got)
    if got != crc:
        bad(f"checksum mismatch: the file is damaged (CRC-32 {got:08x}, the preamble says {crc:08x})")
    try:
        header = parse_header(bytes(view[hoff : hoff + hlen]))
    except ValueError as exc:
        bad(str(exc))
    if doff != _pad(hoff + hlen):
        bad(f"array directory at offset {doff}; the writer puts it at {_pad(hoff + hlen)}, right after the header")
    arrays = {}
    start = doff + narr * ENTRY
    end = start  # the writer's next array offset, before padding
    previous = None
    for k in range(narr):
        raw, code, ndim, s0, s1, s2, s3, off, length, acrc, zero = _ENTRY.unpack_from(view, doff + k * ENTRY)
        name = raw.split(b"\0", 1)[0]
        if not name or b"\0" not in raw:
            bad(f"array entry {k} has no valid name")
        name = name.decode("ascii", errors="replace")
        if code not in DTYPES or ndim > 4 or zero:
            bad(f"array '{name}': dtype code {code} or rank {ndim} not supported")
        shape = (s0, s1, s2, s3)
        if any(shape[ndim:]):
            bad(f"array '{name}': unused shape slots are not zero")
        count = 1
        for s in shape[:ndim]:  # as the C reader: no product beyond int64 bytes
            if s > 2**63 - 1 or (s != 0 and count > (2**63 - 1) // 8 // s):
                bad(f"array '{name}': implausible shape")
            count *= s
        if length != count * DTYPES[code].itemsize or off % ALIGN or off < start or off > n or length > n - off:
            bad(f"array '{name}' ({DTYPES[code]}, {length} bytes at offset {off}) does not fit its shape or the file")
        if off != _pad(end):
            bad(f"array '{name}' at offset {off}; the writer puts it at {_pad(end)}, right after the previous one")
        if any(view[end:off]):
            bad(f"padding byte at offset {end + next(i for i, b in enumerate(view[end:off]) if b)} (before array '{name}') is not zero")
        end = off + length  # its checksum was verified above
        # the writer sorts the names: one comparison per entry proves them unique
        if previous is not None and raw.split(b"\0", 1)[0] <= previous:
            if raw.split(b"\0", 1)[0] == previous:
                bad(f"array '{name}' appears twice")
            bad(f"array '{name}' is out of the writer's order (names sorted ascending)")
        previous = raw.split(b"\0", 1)[0]
        arr = np.frombuffer(buffer, dtype=DTYPES[code], count=count, offset=off).reshape(shape[:ndim])
        arr.flags.writeable = False
        arrays[name] = arr
    if n != _pad(end):
        bad(f"the file has {n} bytes; its arrays end at {end} (padded: {_pad(end)})")
    for lo, hi in ((hoff + hlen, doff), (end, n)):
        tail = bytes(view[lo:hi])
        if any(tail):
            bad(f"padding byte at offset {lo + next(i for i, b in enumerate(tail) if b)} is not zero")
    if check:
        check_model(header, arrays, source)
    return Container(header, arrays, buffer)


def read_file(path):
    """The bytes of a file, memory-mapped read-only (an empty or unmappable file: read)."""
    import mmap

    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            try:
                return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except (ValueError, OSError):
                return fh.read()
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: no such file") from None
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read ({exc})") from None


def write_file(path, data):
    """Write ``data`` to ``path`` atomically: :func:`dpcompress.core.atomic_file.write_atomic`."""
    write_atomic(path, data)
