"""The ``.dpc`` container: a 64-byte preamble, a JSON header, an array directory, the arrays.

The layout is specified in ``docs/model-file.md``; ``src_c/dpc_model_file.c`` is the C reader
(the model runtime and the LAMMPS plug-in read the same bytes).  Every array starts at a
64-byte-aligned offset, so a read-only memory map of the file serves the arrays in place (MPI
ranks on one node share the pages).  The whole file and every array carry a CRC-32 (zlib's), and
every size is checked against the file before anything is read or allocated.
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


def decode(buffer, source="<memory>"):
    """Parse and check the bytes of a ``.dpc`` file (the checks of ``dpc_file_parse``).

    Parameters
    ----------
    buffer : bytes-like
        Kept referenced by the result: the arrays are read-only views into it.
    source : str
        Named in every error.

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
    if narr > MAX_ARRAYS or doff % ALIGN or doff < hoff + hlen or doff > n or narr * ENTRY > n - doff:
        bad(f"array directory (offset {doff}, {narr} entries) outside the file")
    if r1 or r2:
        bad("reserved preamble bytes are not zero")
    got = zlib.crc32(view[:48])
    got = zlib.crc32(b"\0\0\0\0", got)
    got = zlib.crc32(view[52:], got)
    if got != crc:
        bad(f"checksum mismatch: the file is damaged (CRC-32 {got:08x}, the preamble says {crc:08x})")
    try:
        header = json.loads(bytes(view[hoff : hoff + hlen]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        bad(f"the JSON header cannot be read ({exc})")
    if not isinstance(header, dict):
        bad("the JSON header is not an object")
    arrays = {}
    start = doff + narr * ENTRY
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
        for s in shape[:ndim]:
            count *= s
        if length != count * DTYPES[code].itemsize or off % ALIGN or off < start or off > n or length > n - off:
            bad(f"array '{name}' ({DTYPES[code]}, {length} bytes at offset {off}) does not fit its shape or the file")
        if zlib.crc32(view[off : off + length]) != acrc:
            bad(f"array '{name}' fails its checksum: the file is damaged")
        if name in arrays:
            bad(f"array '{name}' appears twice")
        arr = np.frombuffer(buffer, dtype=DTYPES[code], count=count, offset=off).reshape(shape[:ndim])
        arr.flags.writeable = False
        arrays[name] = arr
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
