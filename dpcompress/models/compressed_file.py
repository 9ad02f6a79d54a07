"""The compressed model file (``.dpc``): HDF5, self-contained, versioned, validated on load.

Schema (``schema_version`` 1)::

    /                       attrs: format = "dpcompress.compressed-model", schema_version = 1,
                                   dpcompress_version, created (UTC ISO 8601),
                                   provenance (JSON: source file name and sha256, step, strides,
                                   extrapolate, order, check_frequency, min_nbor_dist and where it
                                   came from, max table errors)
    /model                  attrs: settings (JSON: type_map, descriptor settings, exclusions,
                                   min_nbor_dist)
      davg, dstd            (ntypes, nnei, 4)
      out_bias              (ntypes,)
      bias_atom_e           (ntypes,)
      fitting/net_{t}/layer_{k}/{w, b, idt}     attrs of layer_k: activation, resnet
    /tables/{name}          coef (nspline, ncoef, M); attrs: center, neighbor (-1 = any),
                            lower, stride0, stride1, n_fine, n_coarse, n_below, max_error, sha256 of coef

Everything needed to evaluate is in the file: the original model is not needed.
Reading checks the format tag, the schema version, every shape against the
settings, value finiteness and each table's checksum, and raises
:class:`~dpcompress.errors.ModelFormatError` naming the file and the entry.
"""

import datetime
import hashlib
import json
import os
import tempfile

import numpy as np

from .._version import __version__
from ..errors import InputError, ModelFormatError
from .serialized_tree import read_hdf5_safely
from .structures import DescriptorSeA, DPModel, EnergyFitting, Layer, Network

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


def _table_name(center, neighbor):
    return f"table_c{center}_n{neighbor}" if center >= 0 else f"table_n{neighbor}"


def save_compressed(model, path):
    """Write a compressed :class:`DPModel` to ``path`` (atomically: temp file, then rename)."""
    import h5py

    if not model.is_compressed:
        raise InputError("only compressed models can be saved as .dpc; run dpcompress.compress(model) first")
    d = model.descriptor
    settings = dict(
        type_map=list(model.type_map),
        descriptor=dict(
            type=d.type_name,
            rcut=d.rcut,
            rcut_smth=d.rcut_smth,
            sel=list(d.sel),
            neuron=list(d.neuron),
            axis_neuron=d.axis_neuron,
            type_one_side=d.type_one_side,
            exclude_types=sorted(map(list, d.exclude_types)),
            env_protection=d.env_protection,
            activation=d.activation,
            resnet_dt=d.resnet_dt,
        ),
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
            g["davg"], g["dstd"] = d.davg, d.dstd
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
            tg = fh.create_group("tables")
            for (c, n), tab in _iter_tables(d):
                ds = tg.create_dataset(_table_name(c, n), data=tab.coef)
                ds.attrs.update(
                    center=c, neighbor=n, lower=tab.lower, stride0=tab.stride0, stride1=tab.stride1,
                    n_fine=tab.n_fine, n_coarse=tab.n_coarse, n_below=tab.n_below, max_error=tab.max_error, sha256=_sha256(tab.coef),
                )
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _iter_tables(d):
    if d.type_one_side:
        for n, tab in enumerate(d.tables):
            if tab is not None:
                yield (-1, n), tab
    else:
        for c, row in enumerate(d.tables):
            for n, tab in enumerate(row):
                if tab is not None:
                    yield (c, n), tab


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


def _read(fh, path):
    from ..compress.tables import EmbeddingTable

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
    ds = s["descriptor"]
    if ds.get("type") != "se_e2_a":
        raise ModelFormatError(f"{path}: descriptor type {ds.get('type')!r} is not known to this schema")
    nt = len(type_map)
    sel = tuple(int(x) for x in ds["sel"])
    if len(sel) != nt or min(sel) < 0 or not 0 < sum(sel) < 2**20:
        raise ModelFormatError(f"{path}: descriptor sel {sel} does not fit type_map {type_map}")
    nnei = sum(sel)
    neuron = tuple(int(x) for x in ds["neuron"])
    M = neuron[-1]
    davg = _array(g, "davg", path, (nt, nnei, 4))
    dstd = _array(g, "dstd", path, (nt, nnei, 4))
    if np.any(dstd == 0):
        raise ModelFormatError(f"{path}: '/model/dstd' contains zeros")
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
    tos = bool(ds["type_one_side"])
    tables = [None] * nt if tos else [[None] * nt for _ in range(nt)]
    for name, tds in fh["tables"].items():
        a = tds.attrs
        c, n = int(a["center"]), int(a["neighbor"])
        if not (0 <= n < nt and (c == -1 if tos else 0 <= c < nt)):
            raise ModelFormatError(f"{path}: table '{name}' has types ({c}, {n}) outside the type_map")
        n_fine, n_coarse, n_below = int(a["n_fine"]), int(a["n_coarse"]), int(a.get("n_below", 0))
        nspline = n_below + n_fine + n_coarse
        coef = _array(fh["tables"], name, path)
        if coef.ndim != 3 or coef.shape[0] != nspline or coef.shape[1] not in (4, 6) or coef.shape[2] != M:
            raise ModelFormatError(f"{path}: table '{name}' has shape {coef.shape}, expected ({nspline}, 6|4, {M})")
        if _sha256(coef) != a["sha256"]:
            raise ModelFormatError(f"{path}: table '{name}' fails its checksum (file corrupt)")
        stride0, stride1 = float(a["stride0"]), float(a["stride1"])
        if not (stride0 > 0 and stride1 > 0 and n_fine >= 1 and n_coarse >= 0 and n_below >= 0):
            raise ModelFormatError(f"{path}: table '{name}' has invalid grid settings")
        tab = EmbeddingTable(float(a["lower"]), stride0, stride1, n_fine, n_coarse, coef, float(a["max_error"]), n_below)
        if tos:
            tables[n] = tab
        else:
            tables[c][n] = tab
    for c in range(nt):
        for n in range(nt):
            if sel[n] and (tables[n] if tos else tables[c][n]) is None:
                raise ModelFormatError(f"{path}: no table for center type {c}, neighbor type {n}")
    descriptor = DescriptorSeA(
        rcut=float(ds["rcut"]),
        rcut_smth=float(ds["rcut_smth"]),
        sel=sel,
        neuron=neuron,
        axis_neuron=int(ds["axis_neuron"]),
        type_one_side=tos,
        exclude_types=frozenset(tuple(p) for p in ds["exclude_types"]),
        env_protection=float(ds["env_protection"]),
        davg=davg,
        dstd=dstd,
        embeddings=None,
        activation=ds["activation"],
        resnet_dt=bool(ds["resnet_dt"]),
        tables=tuple(tables) if tos else tuple(tuple(r) for r in tables),
    )
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
