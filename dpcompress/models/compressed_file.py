"""The compressed model file (``.dpc``): HDF5, self-contained, versioned, validated on load.

Schema (``schema_version`` 1)::

    /                       attrs: format = "dpcompress.compressed-model", schema_version = 1,
                                   dpcompress_version, created (UTC ISO 8601),
                                   provenance (JSON: source file name and sha256, step, strides,
                                   extrapolate, order, check_frequency, min_nbor_dist and where it
                                   came from, max table errors)
    /model                  attrs: settings (JSON: type_map, exclusions, min_nbor_dist, ...)
      out_bias              (ntypes,)
      bias_atom_e           (ntypes,)
      fitting/net_{t}/layer_{k}/{w, b, idt}     attrs of layer_k: activation, resnet
      descriptor/           attrs: type, settings (JSON of the descriptor's scalar fields),
                                   tables_shape (nesting of its tables: [nt, nt], [nt] or [])
        {array field}       e.g. davg, dstd (ntypes, nnei, 4), and any other array of the descriptor
        tables/t_{i}[_{j}]  coef (nspline, ncoef, M); attrs: lower, stride0, stride1, n_fine,
                            n_coarse, n_below, max_error, sha256 of coef
        part_{k}/           hybrid only: one such group per sub-descriptor

Everything needed to evaluate is in the file: the original model is not needed.
Reading checks the format tag, the schema version, every shape against the
settings, value finiteness and each table's checksum, and raises
:class:`~dpcompress.errors.ModelFormatError` naming the file and the entry.
"""

import dataclasses
import datetime
import hashlib
import json
import os
import tempfile

import numpy as np

from .._version import __version__
from ..errors import InputError, ModelFormatError
from .serialized_tree import read_hdf5_safely
from .structures import DESCRIPTOR_CLASSES, DPModel, EnergyFitting, Layer, Network

FORMAT = "dpcompress.compressed-model"
SCHEMA_VERSION = 1
MAX_ELEMENTS = 2**34


def is_compressed_file(path):
    """True when ``path`` is an HDF5 file carrying our format tag."""
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            return fh.attrs.get("format") in (FORMAT, FORMAT.encode())
    except (OSError, ValueError):
        return False


def _sha256(arr):
    return hashlib.sha256(np.ascontiguousarray(arr, dtype=np.float64).tobytes()).hexdigest()


def _settings_value(v):
    if isinstance(v, frozenset):
        return sorted(list(x) if isinstance(x, tuple) else x for x in v)
    if isinstance(v, tuple):
        return [_settings_value(x) for x in v]
    return v


def _write_descriptor(g, desc):
    """One descriptor into group ``g``, generically from its dataclass fields."""
    g.attrs["type"] = desc.type_name
    settings = {}
    for f in dataclasses.fields(desc):
        v = getattr(desc, f.name)
        if f.name == "embeddings":
            continue
        if f.name == "parts":
            for k, part in enumerate(v):
                _write_descriptor(g.create_group(f"part_{k}"), part)
        elif f.name == "tables":
            tg = g.create_group("tables")
            shape = []
            node = v
            while isinstance(node, tuple):
                shape.append(len(node))
                node = next((x for x in node if x is not None), None)
            g.attrs["tables_shape"] = json.dumps(shape)
            for idx in np.ndindex(*shape) if shape else [()]:
                tab = v
                for i in idx:
                    tab = None if tab is None else tab[i]  # a whole row may be None (se_e3: empty neighbor block)
                if tab is None:
                    continue
                ds = tg.create_dataset("t" + "".join(f"_{i}" for i in idx), data=tab.coef)
                ds.attrs.update(
                    lower=tab.lower, stride0=tab.stride0, stride1=tab.stride1, n_fine=tab.n_fine,
                    n_coarse=tab.n_coarse, n_below=tab.n_below, max_error=tab.max_error, sha256=_sha256(tab.coef),
                )
        elif isinstance(v, np.ndarray):
            g[f.name] = v
        else:
            settings[f.name] = _settings_value(v)
    g.attrs["settings"] = json.dumps(settings)


def save_compressed(model, path):
    """Write a compressed :class:`DPModel` to ``path`` (atomically: temp file, then rename)."""
    import h5py

    if not model.is_compressed:
        raise InputError("only compressed models can be saved as .dpc; run dpcompress.compress(model) first")
    settings = dict(
        type_map=list(model.type_map),
        pair_exclude_types=sorted(map(list, model.pair_exclude_types)),
        atom_exclude_types=sorted(model.atom_exclude_types),
        fitting_exclude_types=sorted(model.fitting.exclude_types),
        n_fitting_nets=len(model.fitting.networks),
        min_nbor_dist=model.min_nbor_dist,
    )
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    fd, tmp = tempfile.mkstemp(suffix=".dpc.tmp", dir=directory)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
    try:
        with h5py.File(tmp, "w") as fh:
            fh.attrs["format"] = FORMAT
            fh.attrs["schema_version"] = SCHEMA_VERSION
            fh.attrs["dpcompress_version"] = __version__
            fh.attrs["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            fh.attrs["provenance"] = json.dumps(model.compression or {})
            g = fh.create_group("model")
            g.attrs["settings"] = json.dumps(settings)
            g["out_bias"] = model.out_bias
            g["bias_atom_e"] = model.fitting.bias_atom_e
            for t, net in enumerate(model.fitting.networks):
                for k, layer in enumerate(net.layers):
                    lg = g.create_group(f"fitting/net_{t}/layer_{k}")
                    lg["w"] = layer.w
                    if layer.b is not None:
                        lg["b"] = layer.b
                    if layer.idt is not None:
                        lg["idt"] = layer.idt
                    lg.attrs["activation"] = layer.activation
                    lg.attrs["resnet"] = layer.resnet
            _write_descriptor(g.create_group("descriptor"), model.descriptor)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_compressed(path):
    """Read a ``.dpc`` file into a compressed :class:`DPModel`.

    Raises
    ------
    ModelFormatError
        Not a dpcompress file, a newer schema, or any inconsistent or corrupt entry.
    """
    return read_hdf5_safely(os.fspath(path), _read)


def _array(g, key, path, shape=None):
    if key not in g:
        raise ModelFormatError(f"{path}: missing '{g.name}/{key}'")
    ds = g[key]
    if ds.size > MAX_ELEMENTS or ds.dtype.kind != "f":
        raise ModelFormatError(f"{path}: '{ds.name}' is not a float array of plausible size")
    arr = np.asarray(ds[()], dtype=np.float64)
    if shape is not None and arr.shape != tuple(shape):
        raise ModelFormatError(f"{path}: '{ds.name}' has shape {arr.shape}, expected {tuple(shape)}")
    if not np.all(np.isfinite(arr)):
        raise ModelFormatError(f"{path}: '{ds.name}' contains NaN or inf")
    return arr


def _from_settings(name, v):
    if name.endswith("exclude_types"):
        return frozenset(tuple(x) if isinstance(x, list) else x for x in v)
    if isinstance(v, list):
        return tuple(_from_settings("", x) for x in v)
    return v


def _read_table(ds, name, path):
    from ..compress.tables import EmbeddingTable

    a = ds.attrs
    n_fine, n_coarse, n_below = int(a["n_fine"]), int(a["n_coarse"]), int(a.get("n_below", 0))
    nspline = n_below + n_fine + n_coarse
    if ds.size > MAX_ELEMENTS or ds.dtype.kind != "f":
        raise ModelFormatError(f"{path}: table '{name}' is not a float array of plausible size")
    coef = np.asarray(ds[()], dtype=np.float64)
    if coef.ndim != 3 or coef.shape[0] != nspline or coef.shape[1] not in (4, 6):
        raise ModelFormatError(f"{path}: table '{name}' has shape {coef.shape}, expected ({nspline}, 6|4, M)")
    if not np.all(np.isfinite(coef)):
        raise ModelFormatError(f"{path}: table '{name}' contains NaN or inf")
    if _sha256(coef) != a["sha256"]:
        raise ModelFormatError(f"{path}: table '{name}' fails its checksum (file corrupt)")
    stride0, stride1 = float(a["stride0"]), float(a["stride1"])
    if not (stride0 > 0 and stride1 > 0 and n_fine >= 1 and n_coarse >= 0 and n_below >= 0):
        raise ModelFormatError(f"{path}: table '{name}' has invalid grid settings")
    return EmbeddingTable(float(a["lower"]), stride0, stride1, n_fine, n_coarse, coef, float(a["max_error"]), n_below)


def _read_descriptor(g, path, ntypes):
    """Inverse of :func:`_write_descriptor`; validates with the descriptor's own ``validate``."""
    tname = g.attrs["type"]
    tname = tname.decode() if isinstance(tname, bytes) else str(tname)
    if tname not in DESCRIPTOR_CLASSES:
        raise ModelFormatError(f"{path}: descriptor type {tname!r} is not known to this dpcompress")
    cls = DESCRIPTOR_CLASSES[tname]
    settings = json.loads(g.attrs["settings"])
    values = {}
    for f in dataclasses.fields(cls):
        if f.name == "embeddings":
            values[f.name] = None
        elif f.name == "parts":
            k = 0
            parts = []
            while f"part_{k}" in g:
                parts.append(_read_descriptor(g[f"part_{k}"], path, ntypes))
                k += 1
            if not parts:
                raise ModelFormatError(f"{path}: hybrid descriptor '{g.name}' has no parts")
            values[f.name] = tuple(parts)
        elif f.name == "tables":
            shape = json.loads(g.attrs.get("tables_shape", "[]"))
            if len(shape) > 2 or any(not 0 < n <= ntypes for n in shape):
                raise ModelFormatError(f"{path}: '{g.name}' has an invalid table layout {shape}")
            tg = g["tables"]

            def build(prefix, dims):
                if not dims:
                    name = "t" + prefix
                    return _read_table(tg[name], f"{g.name}/tables/{name}", path) if name in tg else None
                return tuple(build(f"{prefix}_{i}", dims[1:]) for i in range(dims[0]))

            values[f.name] = build("", shape)
        elif f.name in g:
            values[f.name] = _array(g, f.name, path)
        elif f.name in settings:
            values[f.name] = _from_settings(f.name, settings[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ModelFormatError(f"{path}: '{g.name}' lacks '{f.name}'")
    try:
        desc = cls(**values)
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(f"{path}: invalid descriptor '{g.name}' ({exc})") from None
    problem = desc.check_compressed(ntypes) if hasattr(desc, "check_compressed") else None
    if problem:
        raise ModelFormatError(f"{path}: descriptor '{g.name}': {problem}")
    return desc


def _read(fh, path):
    fmt = fh.attrs.get("format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if fmt != FORMAT:
        raise ModelFormatError(f"{path}: not a dpcompress compressed model (format tag {fmt!r})")
    version = int(fh.attrs.get("schema_version", -1))
    if version > SCHEMA_VERSION:
        raise ModelFormatError(
            f"{path}: schema version {version} was written by a newer dpcompress; this one reads up to {SCHEMA_VERSION}"
        )
    if version < 1:
        raise ModelFormatError(f"{path}: invalid schema version {version}")
    g = fh["model"]
    s = json.loads(g.attrs["settings"])
    type_map = s["type_map"]
    nt = len(type_map)
    if not 0 < nt < 512 or not all(isinstance(t, str) for t in type_map):
        raise ModelFormatError(f"{path}: invalid type_map {type_map!r}")
    descriptor = _read_descriptor(g["descriptor"], path, nt)
    nets = []
    fg = g["fitting"]
    for t in range(len(fg)):
        ng = fg[f"net_{t}"]
        layers = []
        for k in range(len(ng)):
            lg = ng[f"layer_{k}"]
            w = _array(lg, "w", path)
            layers.append(
                Layer(
                    w=w,
                    b=_array(lg, "b", path, (w.shape[1],)) if "b" in lg else None,
                    idt=_array(lg, "idt", path, (w.shape[1],)) if "idt" in lg else None,
                    activation=str(lg.attrs["activation"]),
                    resnet=bool(lg.attrs["resnet"]),
                )
            )
        nets.append(Network(tuple(layers)))
    if len(nets) != s["n_fitting_nets"] or len(nets) not in (1, nt):
        raise ModelFormatError(f"{path}: {len(nets)} fitting nets found, {s['n_fitting_nets']} expected for {nt} types")
    for net in nets:
        if net.in_dim != descriptor.dim_out or net.out_dim != 1:
            raise ModelFormatError(f"{path}: fitting net maps {net.in_dim} -> {net.out_dim}, expected {descriptor.dim_out} -> 1")
    fitting = EnergyFitting(
        networks=tuple(nets),
        bias_atom_e=_array(g, "bias_atom_e", path, (nt,)),
        exclude_types=frozenset(s.get("fitting_exclude_types", [])),
    )
    return DPModel(
        type_map=tuple(type_map),
        descriptor=descriptor,
        fitting=fitting,
        out_bias=_array(g, "out_bias", path, (nt,)),
        pair_exclude_types=frozenset(tuple(p) for p in s["pair_exclude_types"]),
        atom_exclude_types=frozenset(s["atom_exclude_types"]),
        min_nbor_dist=s.get("min_nbor_dist"),
        source=path,
        compression=json.loads(fh.attrs["provenance"]),
    )
