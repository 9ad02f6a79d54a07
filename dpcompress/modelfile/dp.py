"""A compressed :class:`~dpcompress.models.DPModel` as the arrays of a ``.dpc`` file, and back.

The arrays are the kernels' layout (docs/model-file.md); the C runtime reads them in place.
Model-level arrays: ``type_map`` (names, NUL-separated), ``model.int`` (kind 1, ntypes, nparts,
descriptor width), ``model.out_bias``, ``model.fit_mask`` / ``model.keep_mask`` (0/1 per type:
fitting and atom exclusions), ``model.pair_exclude`` (ntypes x ntypes, 1 = pair removed); one
``part{p}.*`` group per descriptor part (its unit packs it); the fitting nets as ``fit.layer``
(per layer: n_in, n_out, activation code, residual code and the offsets of w, b, idt into
``fit.params``, -1 = absent), ``fit.net_start``, ``fit.net_of_type`` and ``fit.bias``.
"""

import numpy as np

from .._ext.table_build import ACTIVATION_CODES, RESIDUAL_CODES
from ..core.errors import InputError, ModelFormatError
from ..core.networks import Layer, Network
from ..descriptors import BY_KIND, DescriptorHybrid, parts, unit_of
from ..descriptors.base import INT_FIELDS
from ..models import DPModel, EnergyFitting

KIND_DP_ENERGY = 1
_ACTIVATION_NAMES = {v: k for k, v in ACTIVATION_CODES.items()}
_RESIDUAL_NAMES = {v: k for k, v in RESIDUAL_CODES.items()}


def _names(type_map):
    return np.frombuffer(b"".join(t.encode("utf-8") + b"\0" for t in type_map), dtype=np.uint8)


def type_map_array(type_map):
    """The ``type_map`` array: element names, each followed by a NUL byte."""
    return _names(type_map)


def _pack_fitting(fitting, ntypes):
    nets = list(fitting.networks)
    rows, params, start = [], [], [0]
    size = 0

    def add(arr):
        nonlocal size
        if arr is None:
            return -1
        flat = np.ascontiguousarray(arr, dtype=np.float64).ravel()
        params.append(flat)
        size += flat.size
        return size - flat.size

    for net in nets:
        for layer in net.layers:
            if layer.activation not in ACTIVATION_CODES:
                raise InputError(f"activation {layer.activation!r} has no compiled form")
            w_off = add(layer.w)
            rows.append([layer.n_in, layer.n_out, ACTIVATION_CODES[layer.activation], RESIDUAL_CODES[layer.residual],
                         w_off, add(layer.b), add(layer.idt)])
        start.append(len(rows))
    net_of_type = np.zeros(ntypes, dtype=np.int64) if len(nets) == 1 else np.arange(ntypes, dtype=np.int64)
    return {
        "fit.layer": np.array(rows, dtype=np.int64),
        "fit.net_start": np.array(start, dtype=np.int64),
        "fit.net_of_type": net_of_type,
        "fit.params": np.concatenate(params),
        "fit.bias": np.asarray(fitting.bias_atom_e, dtype=np.float64),
    }


def pack(model):
    """``(header, arrays)`` of a compressed DP energy model.

    Raises
    ------
    InputError
        The model is not compressed.
    """
    if not model.is_compressed:
        raise InputError("only compressed models can be written as .dpc; run dpcompress.compress(model) first")
    nt = model.ntypes
    descs = parts(model.descriptor)
    arrays = {
        "type_map": type_map_array(model.type_map),
        "model.int": np.array([KIND_DP_ENERGY, nt, len(descs), model.descriptor.dim_out], dtype=np.int64),
        "model.out_bias": np.asarray(model.out_bias, dtype=np.float64),
        "model.fit_mask": np.array([0.0 if t in model.fitting.exclude_types else 1.0 for t in range(nt)]),
        "model.keep_mask": np.array([0.0 if t in model.atom_exclude_types else 1.0 for t in range(nt)]),
        "model.pair_exclude": np.array(
            [[1 if (a, b) in model.pair_exclude_types else 0 for b in range(nt)] for a in range(nt)], dtype=np.int8
        ),
    }
    part_settings = []
    for p, desc in enumerate(descs):
        packed = unit_of(desc).pack(desc, model.pair_exclude_types)
        arrays[f"part{p}.int"] = np.array([packed.ints[k] for k in INT_FIELDS], dtype=np.int64)
        arrays[f"part{p}.real"] = np.array(packed.real, dtype=np.float64)
        for name, arr in packed.arrays.items():
            arrays[f"part{p}.{name}"] = arr
        part_settings.append(dict(packed.settings, type=desc.type_name))
    arrays.update(_pack_fitting(model.fitting, nt))
    header = {
        "kind": "dp_energy",
        "model": {
            "descriptor": part_settings,
            "hybrid": model.descriptor.type_name == "hybrid",
            "pair_exclude_types": sorted([int(a), int(b)] for a, b in model.pair_exclude_types),
            "atom_exclude_types": sorted(int(t) for t in model.atom_exclude_types),
            "fitting_exclude_types": sorted(int(t) for t in model.fitting.exclude_types),
            "min_nbor_dist": model.min_nbor_dist,
        },
        "compression": model.compression or {},
    }
    return header, arrays


def type_map_of(arrays, source):
    """The element names of a file's ``type_map`` array."""
    raw = bytes(np.asarray(arrays.get("type_map", np.zeros(0, dtype=np.uint8))))
    if not raw.endswith(b"\0"):
        raise ModelFormatError(f"{source}: array 'type_map' is missing or not NUL-terminated")
    return tuple(x.decode("utf-8", errors="replace") for x in raw[:-1].split(b"\0"))


def _unpack_fitting(arrays, ntypes):
    layers = arrays["fit.layer"]
    params = arrays["fit.params"]
    start = arrays["fit.net_start"]

    def get(off, n):
        return None if off < 0 else np.array(params[off : off + n])

    nets = []
    for k in range(len(start) - 1):
        out = []
        for row in layers[start[k] : start[k + 1]]:
            n_in, n_out, act, res, w, b, idt = (int(v) for v in row)
            out.append(Layer(w=get(w, n_in * n_out).reshape(n_in, n_out), b=get(b, n_out), idt=get(idt, n_out),
                             activation=_ACTIVATION_NAMES[act], resnet=_RESIDUAL_NAMES[res] is not None))
        nets.append(Network(tuple(out)))
    return EnergyFitting(networks=tuple(nets), bias_atom_e=np.array(arrays["fit.bias"]))


def unpack(header, arrays, source=""):
    """The :class:`DPModel` of a ``.dpc`` file (its arrays already checked by the C reader)."""
    type_map = type_map_of(arrays, source)
    nt = len(type_map)
    settings = header.get("model") or {}
    part_settings = settings.get("descriptor") or []
    nparts = int(arrays["model.int"][2])
    if len(part_settings) != nparts:
        raise ModelFormatError(f"{source}: the header describes {len(part_settings)} descriptor parts, the arrays {nparts}")
    descs = []
    for p in range(nparts):
        ints = dict(zip(INT_FIELDS, (int(v) for v in arrays[f"part{p}.int"])))
        prefix = f"part{p}."
        sub = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        unit = BY_KIND[ints["kind"]]
        if part_settings[p].get("type") != unit.TYPE_NAME:
            raise ModelFormatError(f"{source}: part {p} is {unit.TYPE_NAME} in the arrays, {part_settings[p].get('type')} in the header")
        descs.append(unit.unpack(ints, sub["real"], sub, part_settings[p]))
    descriptor = DescriptorHybrid(parts=tuple(descs)) if settings.get("hybrid") else descs[0]
    fitting = _unpack_fitting(arrays, nt)
    fitting = EnergyFitting(networks=fitting.networks, bias_atom_e=fitting.bias_atom_e,
                            exclude_types=frozenset(settings.get("fitting_exclude_types", [])))
    return DPModel(
        type_map=type_map,
        descriptor=descriptor,
        fitting=fitting,
        out_bias=np.array(arrays["model.out_bias"]),
        pair_exclude_types=frozenset(tuple(p) for p in settings.get("pair_exclude_types", [])),
        atom_exclude_types=frozenset(settings.get("atom_exclude_types", [])),
        min_nbor_dist=settings.get("min_nbor_dist"),
        source=source,
        compression=header.get("compression") or {},
    )
