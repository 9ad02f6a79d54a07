r"""Read a PyTorch zip checkpoint (``torch.save``'s format) into numpy arrays without torch and
without running pickle code.

A checkpoint is a zip archive ``<name>/data.pkl``, ``<name>/byteorder`` and one entry
``<name>/data/<key>`` per tensor storage (raw little- or big-endian elements).  ``data.pkl`` is a
pickle whose tensors are ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``
calls and whose storages are persistent ids ``('storage', <StorageClass>, key, location, numel)``.

The unpickler here resolves a *whitelist* of global names to dpcompress's own functions; no module
is ever imported by name and nothing else can be called (``REDUCE`` and ``BUILD`` only ever reach
these functions).  The names a PWMLFF checkpoint holds:

``collections.OrderedDict``
    a plain ``dict`` (key order is kept by ``dict``).
``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter``
    a numpy array: element :math:`k` of the result is storage element
    :math:`o + \sum_d k_d s_d`; the offset :math:`o`, sizes and strides are checked so that every
    element read lies in the storage.
``torch.<T>Storage``
    the element type of a storage (float64, float32, float16, int64, int32, int16, int8, uint8,
    bool).
``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``, ``_codecs.encode``
    numpy arrays pickled by value (PWMLFF's ``davg``, ``dstd``, ``energy_shift``): only numeric
    dtypes, C or Fortran order, and a byte string whose length is exactly the array's size.
``numpy.core.multiarray.scalar``
    a numpy number (a numeric dtype and exactly its item size in bytes).

Any other global is refused with :class:`~dpcompress.core.errors.ModelFormatError` naming it, as is
every malformed argument, a storage that is missing or shorter than its declared element count, a
compressed or oversized entry, and a truncated archive.
"""

import io
import os
import pickle
import zipfile

import numpy as np

from ..core.errors import ModelFormatError
from ..core.memory_limit import format_bytes, max_bytes

ZIP_SIGNATURE = b"PK\x03\x04"
#: largest data.pkl read (the pickle itself holds settings and small numpy arrays only)
MAX_PICKLE_BYTES = 64 * 2**20
MAX_DIMS = 8

#: torch storage class name -> numpy element type (little-endian; the byteorder entry may flip it)
STORAGE_DTYPES = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "LongStorage": "i8", "IntStorage": "i4",
    "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}
#: numpy dtype strings accepted in numpy arrays pickled by value
NUMPY_DTYPES = ("f8", "f4", "f2", "i8", "i4", "i2", "i1", "u8", "u4", "u2", "u1", "b1")


def is_torch_zip(path):
    """True when ``path`` is a zip archive holding a ``data.pkl`` and no TorchScript code (a
    ``torch.save`` checkpoint, not a ``torch.jit.save`` module such as DeePMD-kit's ``.pth``)."""
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != ZIP_SIGNATURE:
                return False
    except OSError:
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        # a zip that does not open (truncated): let read_checkpoint say so, unless it is named
        # like DeePMD-kit's TorchScript files (their own message comes from the .dp reader)
        return os.path.splitext(str(path))[1].lower() not in (".pth", ".pt")
    scripted = any("/code/" in n or n.endswith("constants.pkl") for n in names)
    return not scripted and any(n.endswith("/data.pkl") or n == "data.pkl" for n in names)


class _StorageType:
    """What a ``torch.<T>Storage`` global resolves to: its name and element type only."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])

    def __setstate__(self, state):
        raise ModelFormatError(f"the pickle sets the state of torch.{self.name}; refused")


class _Storage:
    """A storage's elements (a 1-d numpy array) and where they came from."""

    def __init__(self, key, data):
        self.key = key
        self.data = data

    def __setstate__(self, state):
        raise ModelFormatError(f"the pickle sets the state of storage {self.key!r}; refused")


class _NumpyArrayMarker:
    """What ``numpy.ndarray`` resolves to: only a marker argument of ``_reconstruct``."""


class _PickledArray:
    """A numpy array pickled by value: ``_reconstruct`` makes the shell, ``BUILD`` its state."""

    def __init__(self, where):
        self.where = where
        self.array = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) != 5:
            raise ModelFormatError(f"{self.where}: a pickled numpy array has a malformed state")
        _version, shape, dtype, fortran, raw = state
        if not isinstance(dtype, _PickledDtype) or dtype.dtype is None:
            raise ModelFormatError(f"{self.where}: a pickled numpy array has no accepted dtype")
        shape = _int_tuple(shape, f"{self.where}: numpy array shape")
        if not isinstance(raw, (bytes, bytearray)):
            raise ModelFormatError(f"{self.where}: a pickled numpy array's data is {type(raw).__name__}, "
                                   "expected bytes (object arrays are refused)")
        n = _count(shape)  # exact: a Python int cannot wrap around
        if n * dtype.dtype.itemsize != len(raw):
            raise ModelFormatError(f"{self.where}: a pickled numpy array of shape {shape} and dtype "
                                   f"{dtype.dtype} needs {n * dtype.dtype.itemsize} bytes, the file holds {len(raw)}")
        flat = np.frombuffer(bytes(raw), dtype=dtype.dtype)
        self.array = flat.reshape(shape, order="F" if fortran else "C").astype(dtype.dtype.newbyteorder("="))


class _PickledDtype:
    """``numpy.dtype(name, align, copy)`` plus its ``BUILD`` state (the byte order)."""

    def __init__(self, where, name):
        self.where = where
        self.dtype = None
        if not isinstance(name, str) or name not in NUMPY_DTYPES:
            raise ModelFormatError(f"{where}: numpy dtype {name!r} is refused (only numeric dtypes {NUMPY_DTYPES})")
        self.dtype = np.dtype(name)

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in ("<", ">", "|", "="):
            raise ModelFormatError(f"{self.where}: a pickled numpy dtype has a malformed state")
        if state[1] in "<>":
            self.dtype = self.dtype.newbyteorder(state[1])


def _count(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _int_tuple(value, what):
    if not isinstance(value, tuple) or len(value) > MAX_DIMS or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise ModelFormatError(f"{what} should be a tuple of at most {MAX_DIMS} non-negative integers, got {value!r}")
    return value


class _RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose globals are the whitelist of the module docstring."""

    def __init__(self, data, where, load_storage):
        super().__init__(io.BytesIO(data))
        self.where = where
        self.load_storage = load_storage  # (key, dtype, numel) -> 1-d array of the entry
        self.storages = {}  # key -> _Storage, filled by persistent_load

    def find_class(self, module, name):
        full = f"{module}.{name}"
        where = self.where
        if full == "collections.OrderedDict":
            return _ordered_dict
        if full == "torch._utils._rebuild_tensor_v2":
            return lambda *args: _rebuild_tensor(where, *args)
        if full == "torch._utils._rebuild_parameter":
            return lambda data, *rest: data
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if full in ("numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct"):
            return lambda cls, *rest: _reconstruct(where, cls)
        if full in ("numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar"):
            return lambda dtype, raw=None: _numpy_scalar(where, dtype, raw)
        if full == "numpy.ndarray":
            return _NumpyArrayMarker
        if full == "numpy.dtype":
            return lambda name, *rest: _PickledDtype(where, name)
        if full == "_codecs.encode":
            return _latin1_encode
        raise ModelFormatError(f"{where}: the pickle names the global '{full}', which a checkpoint of "
                               "tensors and settings does not hold; refused (nothing was run)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise ModelFormatError(f"{self.where}: unknown persistent id {pid!r} (expected a tensor storage)")
        _, stype, key, _location, numel = pid
        if not isinstance(stype, _StorageType):
            raise ModelFormatError(f"{self.where}: storage {key!r} has type {stype!r}, expected a torch.<T>Storage")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise ModelFormatError(f"{self.where}: malformed storage reference {pid!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(key, self.load_storage(key, stype.dtype, numel))
        st = self.storages[key]
        if st.data.dtype.str[1:] != stype.dtype.str[1:] or st.data.size < numel:
            raise ModelFormatError(f"{self.where}: storage {key!r} is used with two element types or sizes")
        return st


class _OrderedDict(dict):
    """``collections.OrderedDict``: a dict that accepts (and drops) the attributes ``BUILD`` sets
    (``state_dict()._metadata``, the modules' version numbers)."""

    def __setstate__(self, state):
        pass


def _ordered_dict(*args):
    if args and not (len(args) == 1 and isinstance(args[0], (list, tuple))):
        raise ModelFormatError("collections.OrderedDict called with unexpected arguments")
    return _OrderedDict(*args)


def _latin1_encode(text, encoding="utf-8"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ModelFormatError(f"_codecs.encode called with encoding {encoding!r}; only 'latin1' (numpy's "
                               "pickled array bytes) is accepted")
    return text.encode("latin1")


def _numpy_scalar(where, dtype, raw):
    """``numpy.core.multiarray.scalar(dtype, bytes)``: one number (PWMLFF's type vectors hold them)."""
    if not isinstance(dtype, _PickledDtype) or dtype.dtype is None:
        raise ModelFormatError(f"{where}: a pickled numpy scalar has no accepted dtype")
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != dtype.dtype.itemsize:
        raise ModelFormatError(f"{where}: a pickled numpy {dtype.dtype} scalar needs {dtype.dtype.itemsize} bytes")
    return np.frombuffer(bytes(raw), dtype=dtype.dtype)[0].astype(dtype.dtype.newbyteorder("="))


def _reconstruct(where, cls):
    if cls is not _NumpyArrayMarker:
        raise ModelFormatError(f"{where}: numpy _reconstruct of {cls!r}; only numpy.ndarray is accepted")
    return _PickledArray(where)


def _rebuild_tensor(where, storage, offset, size, stride, *rest):
    """The numpy twin of ``torch._utils._rebuild_tensor_v2``, bounds-checked."""
    if not isinstance(storage, _Storage):
        raise ModelFormatError(f"{where}: a tensor is built from {type(storage).__name__}, expected a storage")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ModelFormatError(f"{where}: tensor of storage {storage.key!r} has offset {offset!r}")
    size = _int_tuple(size, f"{where}: tensor size (storage {storage.key!r})")
    stride = _int_tuple(stride, f"{where}: tensor stride (storage {storage.key!r})")
    if len(size) != len(stride):
        raise ModelFormatError(f"{where}: tensor of storage {storage.key!r} has {len(size)} sizes and "
                               f"{len(stride)} strides")
    data = storage.data
    nbytes = _count(size) * data.dtype.itemsize  # stride 0 can repeat one element without bound
    if nbytes > max_bytes():
        raise ModelFormatError(f"{where}: tensor of storage {storage.key!r} has size {size}: "
                               f"{format_bytes(nbytes)}, over the memory limit of {format_bytes(max_bytes())}")
    if all(s > 0 for s in size):
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= data.size:
            raise ModelFormatError(
                f"{where}: tensor of storage {storage.key!r} (offset {offset}, size {size}, stride {stride}) reads "
                f"element {last}, but the storage holds {data.size}")
    else:
        return np.zeros(size, dtype=data.dtype)
    item = data.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(data[offset:], shape=size, strides=tuple(s * item for s in stride),
                                           writeable=False)
    return np.array(view, dtype=data.dtype.newbyteorder("="))


def read_checkpoint(path):
    """The object a PyTorch zip checkpoint holds, with tensors as numpy arrays.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    object
        Usually a dict; tensors and pickled numpy arrays become ``numpy.ndarray``.

    Raises
    ------
    ModelFormatError
        Not a zip archive, truncated, a missing or short storage, a refused global, a malformed
        tensor; the message names the file and what was found.
    """
    path = os.fspath(path)
    limit = max_bytes()
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelFormatError(f"{path}: not a readable PyTorch zip checkpoint ({exc})") from None
    with zf:
        names = zf.namelist()
        pkl = [n for n in names if n == "data.pkl" or (n.endswith("/data.pkl") and n.count("/") == 1)]
        if len(pkl) != 1:
            raise ModelFormatError(f"{path}: a PyTorch checkpoint holds one '<name>/data.pkl'; found {len(pkl)}")
        prefix = pkl[0][: -len("data.pkl")]
        infos = {i.filename: i for i in zf.infolist()}

        def read_entry(name, cap):
            info = infos.get(name)
            if info is None:
                raise ModelFormatError(f"{path}: entry '{name}' is missing")
            if info.file_size > cap:
                raise ModelFormatError(f"{path}: entry '{name}' is {format_bytes(info.file_size)}, over the limit of "
                                       f"{format_bytes(cap)}")
            try:
                return zf.read(name)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
                raise ModelFormatError(f"{path}: entry '{name}' cannot be read; the file is truncated or "
                                       f"corrupt ({exc})") from None

        order = "<"
        if prefix + "byteorder" in infos:
            bo = read_entry(prefix + "byteorder", 16)
            if bo not in (b"little", b"big"):
                raise ModelFormatError(f"{path}: byteorder entry is {bo!r}, expected 'little' or 'big'")
            order = "<" if bo == b"little" else ">"
        where = f"{path}: {pkl[0]}"
        used = [0]

        def load_storage(key, dtype, numel):
            dtype = dtype.newbyteorder(order)
            raw = read_entry(f"{prefix}data/{key}", limit - used[0])
            used[0] += len(raw)
            if len(raw) < numel * dtype.itemsize or len(raw) % dtype.itemsize:
                raise ModelFormatError(f"{path}: storage '{prefix}data/{key}' holds {len(raw)} bytes; its "
                                       f"{numel} elements of {dtype} need {numel * dtype.itemsize}")
            return np.frombuffer(raw, dtype=dtype, count=numel)

        unpickler = _RestrictedUnpickler(read_entry(pkl[0], MAX_PICKLE_BYTES), where, load_storage)
        try:
            obj = unpickler.load()
        except ModelFormatError:
            raise
        except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, IndexError, KeyError,
                RecursionError, MemoryError) as exc:
            raise ModelFormatError(f"{where}: malformed pickle ({type(exc).__name__}: {exc})") from None
    return _resolve(obj, where)


MAX_DEPTH = 64


def _resolve(obj, where, depth=0):
    """Replace the pickled-array shells by their arrays; refuse any other leftover object."""
    if depth > MAX_DEPTH:
        raise ModelFormatError(f"{where}: containers nested deeper than {MAX_DEPTH}")
    if isinstance(obj, _PickledArray):
        if obj.array is None:
            raise ModelFormatError(f"{where}: a pickled numpy array has no state")
        return obj.array
    if isinstance(obj, dict):  # _OrderedDict included
        return {k: _resolve(v, where, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v, where, depth + 1) for v in obj)
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, np.ndarray, np.generic)):
        return obj
    raise ModelFormatError(f"{where}: a {type(obj).__name__.strip('_')} object where data was expected")
