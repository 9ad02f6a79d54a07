"""Read DeePMD-kit's backend-neutral model files into a plain tree.

DeePMD-kit v3 serialises a model as one nested dict (the same tree the
``serialize()`` methods produce) in two containers:

``.dp`` (HDF5)
    One root attribute ``json`` holds the tree; every array in it is replaced
    by the path string of a root dataset (``"/variable_0042"``).
``.yaml``
    The tree itself; arrays are mappings
    ``{"@class": "np.ndarray", "dtype": ..., "value": nested lists}``.

:func:`load_tree` returns the tree with every array resolved to a numpy array.
Files are untrusted input: the YAML is read by a bounded
``yaml.SafeLoader`` (:mod:`dpcompress.core.bounded_yaml`: depth, aliases), the HDF5
file's JSON with bounded depth; dataset references must name existing numeric datasets
whose declared shapes fit the model's settings, the file and the memory limit *before*
any is read (:mod:`dpcompress.models.declared_sizes`); every failure becomes a
:class:`~dpcompress.ModelFormatError` naming the file.  Layer biases stored as ``(1, n)``
(DeePMD-kit's older TensorFlow models) are read as ``(n,)``.
"""

import os

import numpy as np

from ..core.errors import ModelFormatError, UnsupportedModelError
from ..core.memory_limit import format_bytes, how_to_raise, max_bytes
from ..core.bounded_yaml import load_json, load_yaml
from .declared_sizes import Declared, check_declared_arrays

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ALLOWED_DTYPES = ("float64", "float32", "float16", "int64", "int32", "int8", "uint8", "bool")
MAX_ARRAY_ELEMENTS = 2**31  # a model array larger than this is corrupt, not a model


def file_kind(path):
    """Return ``'hdf5'`` or ``'yaml'`` from the file's first bytes and name."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: no such file") from None
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read ({exc})") from None
    if head == HDF5_SIGNATURE:
        return "hdf5"
    ext = os.path.splitext(str(path))[1].lower()
    if ext in (".yaml", ".yml"):
        return "yaml"
    if ext in (".pth", ".pt", ".pb", ".savedmodel", ".pd", ".json"):
        raise UnsupportedModelError(
            f"{path}: '{ext}' files are not read directly; convert with "
            f"`dp convert-backend {os.path.basename(str(path))} model.dp` (DeePMD-kit) first"
        )
    if ext == ".dp":
        raise ModelFormatError(f"{path}: not an HDF5 file (bad signature {head!r}); the file is corrupt or not a .dp model")
    raise ModelFormatError(
        f"{path}: unknown model format (expected a DeePMD-kit .dp (HDF5) or .yaml file, a GPUMD nep.txt or a "
        f"dpcompress .dpc); the file starts with {head!r}"
    )


def load_tree(path):
    """Load a ``.dp`` or ``.yaml`` model file into a dict with numpy arrays.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        The serialised model tree (top-level keys ``model``, ``software``, ...).

    Raises
    ------
    ModelFormatError
        Unreadable, truncated or corrupt file, or not a DeePMD-kit model.
    UnsupportedModelError
        A backend-specific format (``.pth``, ``.pb``) that must be converted first.
    """
    path = os.fspath(path)
    kind = file_kind(path)
    tree = _load_hdf5(path) if kind == "hdf5" else _load_yaml(path)
    if not isinstance(tree, dict) or "model" not in tree:
        raise ModelFormatError(f"{path}: not a DeePMD-kit model file (no top-level 'model' entry)")
    _flatten_row_biases(tree)
    return tree


def _flatten_row_biases(tree):
    """Read layer biases and timesteps stored as ``(1, n)`` as ``(n,)``, as DeePMD-kit does.

    Models converted from DeePMD-kit's older TensorFlow graphs store them as one-row matrices.
    """
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            var = node.get("@variables")
            w = var.get("w") if isinstance(var, dict) else None
            if isinstance(w, np.ndarray) and w.ndim == 2:
                for key in ("b", "idt"):
                    v = var.get(key)
                    if isinstance(v, np.ndarray) and v.shape == (1, w.shape[1]):
                        var[key] = v.reshape(w.shape[1])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def read_hdf5_safely(path, reader):
    """Return ``reader(h5py_file, path)``; every h5py failure becomes a :class:`ModelFormatError`.

    h5py reports a damaged file lazily, on the first read that touches the
    damage, so the whole read runs under the guard.
    """
    import h5py

    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot open as HDF5 ({exc}); the file is truncated or corrupt") from None
    try:
        with fh:
            return reader(fh, path)
    except (ModelFormatError, UnsupportedModelError):
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise ModelFormatError(f"{path}: cannot read the HDF5 content ({type(exc).__name__}: {exc}); the file is truncated or corrupt") from None


def _load_hdf5(path):
    return read_hdf5_safely(path, _read_hdf5_tree)


def _read_hdf5_tree(fh, path):
    if "json" not in fh.attrs:
        raise ModelFormatError(f"{path}: HDF5 file without the 'json' root attribute; not a DeePMD-kit .dp model")
    raw = fh.attrs["json"]
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not isinstance(raw, str):
        raise ModelFormatError(f"{path}: root attribute 'json' is not a string")
    tree = load_json(raw, path, "root attribute 'json'")
    # sizes first, from the metadata: nothing is read before every declared array is known to fit
    tree = _declare(tree, fh, path, "")
    check_declared_arrays(tree, path, os.path.getsize(path), max_bytes())
    return _materialize(tree, fh, path, {})


def _declare(node, fh, path, where):
    """The tree with every dataset reference replaced by its :class:`Declared` metadata."""
    if isinstance(node, dict):
        return {k: _declare(v, fh, path, f"{where}.{k}" if where else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_declare(v, fh, path, f"{where}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str) and node.startswith("/variable_"):
        if node not in fh:
            raise ModelFormatError(f"{path}: '{where}' refers to dataset {node!r}, which the file lacks")
        ds = fh[node]
        if not hasattr(ds, "dtype") or ds.dtype.kind not in "fiub":
            raise ModelFormatError(f"{path}: dataset {node!r} ('{where}') is not a numeric array")
        if ds.size > MAX_ARRAY_ELEMENTS:
            raise ModelFormatError(f"{path}: dataset {node!r} ('{where}') has an implausible size {ds.shape}")
        filtered = bool(ds.compression) or bool(ds.id.get_create_plist().get_nfilters())
        return Declared(name=node, shape=tuple(int(d) for d in ds.shape), itemsize=int(ds.dtype.itemsize),
                        stored=int(ds.id.get_storage_size()), filtered=filtered)
    return node


def _materialize(node, fh, path, cache):
    """The tree with every :class:`Declared` read into a numpy array (each dataset read once)."""
    if isinstance(node, dict):
        return {k: _materialize(v, fh, path, cache) for k, v in node.items()}
    if isinstance(node, list):
        return [_materialize(v, fh, path, cache) for v in node]
    if isinstance(node, Declared):
        if node.name not in cache:
            try:
                cache[node.name] = np.asarray(fh[node.name][()])
            except OSError as exc:
                raise ModelFormatError(f"{path}: cannot read dataset {node.name!r}: {exc}; file corrupt?") from None
        return cache[node.name]
    return node


def _load_yaml(path):
    try:
        size = os.path.getsize(path)
        limit = max_bytes()
        if size > limit:  # the text is held whole, and its arrays again as numbers
            raise ModelFormatError(f"{path}: a {format_bytes(size)} YAML file is above the limit of "
                                   f"{format_bytes(limit)}; {how_to_raise()}")
        with open(path, "r", encoding="utf-8-sig") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path}: cannot read ({exc})") from None
    return _resolve_yaml(load_yaml(text, path), path, "")


def _resolve_yaml(node, path, where):
    if isinstance(node, dict):
        if node.get("@class") == "np.ndarray":
            dtype = node.get("dtype")
            if dtype not in ALLOWED_DTYPES:
                raise ModelFormatError(f"{path}: array '{where}' has unsupported dtype {dtype!r}")
            try:
                arr = np.asarray(node.get("value"), dtype=dtype)
            except (TypeError, ValueError) as exc:
                raise ModelFormatError(f"{path}: array '{where}' is not a regular {dtype} array ({exc})") from None
            return arr
        return {k: _resolve_yaml(v, path, f"{where}.{k}" if where else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_yaml(v, path, f"{where}[{i}]") for i, v in enumerate(node)]
    return node
