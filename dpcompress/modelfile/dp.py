"""A compressed :class:`~dpcompress.models.DPModel` as the arrays of a ``.dpc`` file, and back.

The arrays are the kernels' layout (docs/model-file.md); the C runtime reads them in place.
Model-level arrays: ``type_map`` (names, NUL-separated), ``model.int`` (kind 1, ntypes, nparts,
descriptor width), ``model.out_bias``, ``model.fit_mask`` / ``model.keep_mask`` (0/1 per type:
fitting and atom exclusions), ``model.pair_exclude`` (ntypes x ntypes, 1 = pair removed); one
``part{p}.*`` group per descriptor part (its unit packs it); the fitting nets as ``fit.layer``
(per layer: n_in, n_out, activation code, residual code and the offsets of w, b, idt into
``fit.params``, -1 = absent), ``fit.net_start``, ``fit.net_of_type`` and ``fit.bias``.

:func:`check` is the numpy twin of the C reader's checks of such a file (``src_c/dpc_model.c``),
including every table's grid derived again from the statistics, the cutoffs and the header's
compression settings, and the continuity of the table polynomials.
"""

import math

import numpy as np

from .._ext.table_build import ACTIVATION_CODES, RESIDUAL_CODES
from ..core.activations import canonical_name
from ..core.env_mat import smooth_switch
from ..core.errors import InputError, ModelFormatError, UnsupportedModelError
from ..core.networks import Layer, Network
from ..descriptors import BY_KIND, DescriptorHybrid, parts, unit_of
from ..descriptors.base import INT_FIELDS, KIND_DPA1, KIND_SE_A, KIND_SE_ATTEN, KIND_SE_R, KIND_SE_T
from ..descriptors.se_e3_tebd import KIND_SE_T_TEBD
from .dp_attention import ATTENTION_ARRAYS, check_attention
from .dp_dpa2 import KIND_DPA2, check_dpa2, is_dpa2_array
from ..models import DPModel, EnergyFitting
from ..models.fitting_params import PARAM_FIELDS, FittingParams
from ..models.tensor_fitting import refuse_tensor_model
from ..tables.bounds import center_type_ranges
from . import dp_zbl
from ..tables.embedding_table import EmbeddingTable, grid_counts

KIND_DP_ENERGY = 1
#: a dipole/polar model (:mod:`dpcompress.modelfile.dp_tensor`): checked and read in Python, not opened by the runtime
KIND_DP_TENSOR = 3
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


def refuse_fitting_params(params, what, source="model"):
    """Raise :class:`UnsupportedModelError` when ``params`` (a fitting, or its :class:`FittingParams`) takes
    frame/atomic parameters: for the evaluators (``what``) whose kernels read the descriptor only."""
    if params is not None and (params.numb_fparam or params.numb_aparam):
        raise UnsupportedModelError(
            f"{source}: {what} does not take models with frame/atomic parameters (numb_fparam = "
            f"{params.numb_fparam}, numb_aparam = {params.numb_aparam}); evaluate it on one CPU process "
            "(Potential without comm/device)"
        )


def _params_arrays(fitting):
    r"""The arrays of a fitting's frame/atomic parameters (empty without): ``fit.nparam`` (nf + na),
    ``fit.nfparam`` (nf), ``fit.param_avg`` / ``fit.param_inv_std`` (the nf frame then the na atomic
    columns' shift :math:`\bar x` and scale :math:`s`; the runtime feeds :math:`(x - \bar x)\,s`
    to the fitting net) and ``fit.default_fparam`` (nf, only when the model has one).

    The runtime normalises the raw parameters it is given with these (one normalisation, in C, for
    every front end: Python and LAMMPS alike).
    """
    nf, na = int(getattr(fitting, "numb_fparam", 0) or 0), int(getattr(fitting, "numb_aparam", 0) or 0)
    if nf + na == 0:
        return {}

    def columns(frame, atomic):  # the nf frame columns, then the na atomic ones
        return np.concatenate([np.asarray(frame, dtype=np.float64).ravel() if nf else np.zeros(0),
                               np.asarray(atomic, dtype=np.float64).ravel() if na else np.zeros(0)])

    arrays = {"fit.nparam": np.array([nf + na], dtype=np.int64), "fit.nfparam": np.array([nf], dtype=np.int64),
              "fit.param_avg": columns(fitting.fparam_avg, fitting.aparam_avg),
              "fit.param_inv_std": columns(fitting.fparam_inv_std, fitting.aparam_inv_std)}
    if nf and fitting.default_fparam is not None:
        arrays["fit.default_fparam"] = np.asarray(fitting.default_fparam, dtype=np.float64).reshape(nf)
    return arrays


def params_from_arrays(arrays):
    """The :class:`FittingParams` of a checked ``.dpc`` file's arrays (all zero without ``fit.nparam``)."""
    if "fit.nparam" not in arrays:
        return FittingParams()
    n, nf = int(arrays["fit.nparam"][0]), int(arrays["fit.nfparam"][0])
    avg, inv = np.array(arrays["fit.param_avg"]), np.array(arrays["fit.param_inv_std"])
    default = arrays.get("fit.default_fparam")
    return FittingParams(numb_fparam=nf, numb_aparam=n - nf,
                         fparam_avg=avg[:nf] if nf else None, fparam_inv_std=inv[:nf] if nf else None,
                         aparam_avg=avg[nf:] if n > nf else None, aparam_inv_std=inv[nf:] if n > nf else None,
                         default_fparam=None if default is None else np.array(default))


def _check_params_arrays(c, nfit):
    """The parameter arrays of ``read_fitting`` in the C reader (``fit.nfparam``, the statistics, the default)."""
    if "fit.nfparam" not in c.arrays:
        c.fail("array 'fit.nparam' without 'fit.nfparam', 'fit.param_avg', 'fit.param_inv_std': a file of an earlier "
               "development format (parameter statistics in the header); compress the model again")
    nf = int(c.need("fit.nfparam", "i8", (1,))[0])
    if not 0 <= nf <= nfit:
        c.fail(f"fit.nfparam: {nf} frame parameters of fit.nparam = {nfit}")
    c.finite("fit.param_avg", "f8", (nfit,))
    c.finite("fit.param_inv_std", "f8", (nfit,))
    if "fit.default_fparam" in c.arrays:
        if nf == 0:
            c.fail("array 'fit.default_fparam' in a model without frame parameters")
        c.finite("fit.default_fparam", "f8", (nf,))


def pack(model):
    """``(header, arrays)`` of a compressed DP energy model.

    Raises
    ------
    InputError
        The model is not compressed.
    """
    refuse_tensor_model(model, "dp.pack (dp_tensor.pack writes tensor models) packs")
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
        if packed.ints["kind"] == KIND_DPA2:  # the repformers' activation as the C runtime's code
            arrays[f"part{p}.rf.act"] = np.array([ACTIVATION_CODES[canonical_name(packed.settings["rf_activation"])]], dtype=np.int64)
        part_settings.append(dict(packed.settings, type=desc.type_name))
    arrays.update(_pack_fitting(model.fitting, nt))
    arrays.update(_params_arrays(model.fitting))
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
        "compression": dict(model.compression or {}),
    }
    header["compression"].pop("table_strides", None)
    if header["compression"].get("table_budget") is not None:
        # each table has its own strides (compress with a table-error budget): the readers derive
        # every grid from these, not from the global stride0/stride1
        header["compression"]["table_strides"] = [
            [float(v) for v in arrays[f"part{p}.tab_real"][:, 3:5].ravel()] for p in range(len(descs))
        ]
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
    """The :class:`DPModel` of a ``.dpc`` file checked by :func:`check` (the container reader runs it)."""
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
    params = params_from_arrays(arrays)
    fitting = EnergyFitting(networks=fitting.networks, bias_atom_e=fitting.bias_atom_e,
                            exclude_types=frozenset(settings.get("fitting_exclude_types", [])),
                            **{k: getattr(params, k) for k in PARAM_FIELDS})
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


# ------------------------------------------------------------------------------------------------
# Checks: the numpy twin of the C reader's (src_c/dpc_model.c), run by the Python reader
# (container.decode) on every file, with the same order and messages, plus the checks of what
# only the Python model reads (the header's descriptor settings and exclusion lists).

#: Smallest |std| accepted (src_c/dpc_model.c DPC_MIN_STD).  DeePMD-kit floors its statistics at
#: 1e-2, so real models are eight orders above; 1e-300 makes (s - avg)/std overflow.
MIN_STD = 1e-10
#: Relative tolerance of neighbouring table polynomials at their common node (TABLE_NODE_TOL).
TABLE_NODE_TOL = 1e-10
#: The writer's slack under ceil() (tables/embedding_table.py).
GRID_SLACK = 1e-9
MAX_INTERVALS = 1 << 40
MAX_TYPES = 4096
MAX_PARTS = 8
MAX_AXIS_NEURON = 512  # src_c/dpc_se_a_tab.h
_INT_MAX = 2**31 - 1
_DTYPE_NAMES = {np.dtype("<f8"): "float64", np.dtype("<i8"): "int64", np.dtype("<i4"): "int32",
                np.dtype("i1"): "int8", np.dtype("u1"): "uint8"}
_PART_ARRAYS = ("int", "real", "sel_offsets", "avg", "std", "block_mode", "table_of", "tab_real", "tab_count",
                "tab_offset", "coef", "tab_error")
_GATED_ARRAYS = ("gate", "gate_of", "type_embedding", "gate_pad")
_DP_ARRAYS = ("type_map", "model.int", "model.out_bias", "model.fit_mask", "model.keep_mask", "model.pair_exclude",
              "fit.layer", "fit.net_start", "fit.net_of_type", "fit.params", "fit.bias", "fit.nparam",
              "fit.nfparam", "fit.param_avg", "fit.param_inv_std", "fit.default_fparam")


class Checker:
    """The arrays of a file and its name: lookups that raise :class:`ModelFormatError` naming both.

    Shared by the DP and NEP checks (:mod:`dpcompress.modelfile.nep`); messages are the C reader's.
    """

    def __init__(self, header, arrays, source):
        self.header, self.arrays, self.source = header, arrays, source

    def fail(self, msg):
        raise ModelFormatError(f"{self.source}: {msg}")

    def need(self, name, dtype, shape):
        """``arrays[name]`` of this dtype (``"f8"``, ``"i8"``, ...) and shape (-1: any extent, None: any rank)."""
        a = self.arrays.get(name)
        want = np.dtype("i1" if dtype == "i1" else "<" + dtype)
        if a is None:
            self.fail(f"array '{name}' is missing")
        if a.dtype != want:
            self.fail(f"array '{name}' is {_DTYPE_NAMES.get(a.dtype, 'unknown')}, expected {_DTYPE_NAMES[want]}")
        if shape is not None:
            if a.ndim != len(shape):
                self.fail(f"array '{name}' has {a.ndim} dimensions, expected {len(shape)}")
            if any(s >= 0 and s != n for s, n in zip(shape, a.shape)):
                got = ", ".join(str(n) for n in a.shape)
                exp = ", ".join("*" if s < 0 else str(s) for s in shape)
                self.fail(f"array '{name}' has shape ({got}), expected ({exp})")
        return a

    def finite(self, name, dtype="f8", shape=None):
        a = self.need(name, dtype, shape)
        if not np.all(np.isfinite(a)):
            self.fail(f"array '{name}' holds NaN or infinite values")
        return a

    def number(self, path):
        """A number of the header at ``path`` (keys), as the C reader reads it."""
        v = self.header
        for key in path:
            v = v.get(key) if isinstance(v, dict) else None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(f"header key '{'.'.join(path)}' is missing or not a number")
        return float(v)

    def header_kind(self, kind):
        if self.header.get("format") != "dpcompress.model":
            self.fail('header key \'format\' is not "dpcompress.model"')
        if self.header.get("kind") != kind:
            self.fail(f"header key 'kind' is not \"{kind}\", the kind of array 'model.int'")

    def type_map(self, ntypes):
        a = self.arrays.get("type_map")
        if a is None or a.dtype != np.uint8 or a.ndim != 1 or a.size < 2:
            self.fail("array 'type_map' (uint8, names separated by NUL) is missing")
        raw = bytes(a)
        if raw[-1] != 0:
            self.fail("array 'type_map' is not NUL-terminated")
        names = raw[:-1].split(b"\0")
        if len(names) > ntypes or not all(names):
            self.fail(f"array 'type_map' does not hold {ntypes} non-empty names")
        if len(names) != ntypes:
            self.fail(f"array 'type_map' holds {len(names)} names for {ntypes} types")
        bad = next((k for k, b in enumerate(raw) if 0 < b < 0x20), None)
        if bad is not None:
            self.fail(f"array 'type_map' holds a control character (byte {bad})")
        for t in range(1, ntypes):
            if names[t] in names[:t]:
                name = names[t].decode("utf-8", errors="replace")
                self.fail(f"array 'type_map' names '{name}' twice (types {names.index(names[t])} and {t})")

    def no_other_arrays(self, allowed, kind):
        for name in self.arrays:
            if not allowed(name):
                self.fail(f"array '{name}' is not part of a {kind} model (edited file?)")


def model_int(c):
    """``model.int`` and the ntypes / kind checks of ``dpc_model_open``."""
    a = c.arrays.get("model.int")
    if a is None or a.dtype != np.dtype("<i8") or a.ndim != 1 or a.size != 4:
        c.fail("array 'model.int' (int64, 4 values) is missing")
    kind, nt = int(a[0]), int(a[1])
    if not 1 <= nt <= MAX_TYPES:
        c.fail(f"{nt} atom types (1 to {MAX_TYPES})")
    if kind not in (KIND_DP_ENERGY, 2, KIND_DP_TENSOR):
        c.fail(f"model kind {kind} is not known to this dpcompress")
    return a


def start_check(header, arrays, source, kind):
    """A :class:`Checker` after the checks every model kind shares: ``model.int``, the header's
    kind and the type map.  Returns ``(checker, model_int array, ntypes)``."""
    c = Checker(header, arrays, source)
    I = model_int(c)
    nt = int(I[1])
    c.header_kind(kind)
    c.type_map(nt)
    return c, I, nt


def grid_spec(c):
    """The header's compression settings (min_nbor_dist, stride0, stride1, extrapolate, order)."""
    keys = ("min_nbor_dist", "stride0", "stride1", "extrapolate", "order")
    rmin, s0, s1, e, order = (c.number(("compression", k)) for k in keys)
    if not (math.isfinite(rmin) and rmin > 0):
        c.fail(f"header key 'compression.min_nbor_dist' is {rmin:g} (need a positive distance)")
    if not (math.isfinite(s0) and s0 > 0) or not (math.isfinite(s1) and s1 > 0):
        c.fail(f"header keys 'compression.stride0', 'compression.stride1' are {s0:g}, {s1:g} (need positive strides)")
    if not (math.isfinite(e) and e >= 1):
        c.fail(f"header key 'compression.extrapolate' is {e:g} (need >= 1)")
    if order not in (3.0, 5.0):
        c.fail(f"header key 'compression.order' is {order:g} (3 or 5)")
    return rmin, s0, s1, e, order


_TS_KEY = "header key 'compression.table_strides'"


def table_strides(c, p, ntab):
    """``compression.table_strides`` of part ``p`` (``read_table_strides`` in C): None when the key is
    absent (every table takes the global strides), else ``2 * ntab`` positive strides, two per table
    in file order, the strides each table's grid is derived from (se_e3: as built)."""
    comp = c.header.get("compression")
    if not isinstance(comp, dict) or "table_strides" not in comp:
        return None
    v = comp["table_strides"]
    if not isinstance(v, list) or p >= len(v):
        c.fail(f"{_TS_KEY} does not list one entry per descriptor part ({c.nparts})")
    part = v[p]

    def ok(x):
        return not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x) and x > 0

    if not isinstance(part, list) or len(part) != 2 * ntab or not all(ok(x) for x in part):
        c.fail(f"{_TS_KEY} (part {p}) does not hold 2 positive strides for each of the part's {ntab} tables")
    return [float(x) for x in part]


def writer_grid(lo, hi, s0, s1, e, below):
    """``(lower, upper, xmax, stride0, stride1, n_fine, n_coarse, n_below)`` of the table the writer
    builds for the requested range (build_embedding_table with its own grid_counts), or None when
    the counts are out of range."""
    lo, hi = float(lo), float(hi)
    if not all(math.isfinite(v) for v in (lo, hi)) or not (hi - lo) / s0 - GRID_SLACK <= MAX_INTERVALS:
        return None
    try:
        nf, nc = grid_counts(lo, hi, s0, s1, e)
        nb = max(0, math.ceil((lo - e * lo) / s1 - GRID_SLACK)) if below and lo < 0 else 0
    except (OverflowError, ValueError):  # an infinite or NaN count: out of range, as in C
        return None
    if nf > MAX_INTERVALS or nc > MAX_INTERVALS or nb > MAX_INTERVALS:
        return None
    t = EmbeddingTable(lo, s0, s1, nf, nc, None, n_below=nb)
    return (t.lower, t.upper, t.xmax, s0, s1, nf, nc, nb)


def _range_matches(ranges, real, count, s0, s1, e, below):
    """The rule of ``range_matches`` in the C reader: ``ranges`` lists per center (lo, hi, counts),
    counts 1 / 0 / -1 (undecided: block mode 2 hides whether the descriptor excluded the pair).
    Returns (ok, the writer's grid of the sure centers)."""
    have = (float(real[0]), float(real[1]), float(real[2]), float(real[3]), float(real[4]),
            int(count[0]), int(count[1]), int(count[2]))
    sure = [r for r in ranges if r[2] > 0]
    pool = sure or ranges
    want = writer_grid(min(r[0] for r in pool), max(r[1] for r in pool), s0, s1, e, below)
    if not any(r[2] < 0 for r in ranges):
        return want == have, want
    lo_ok = any(r[0] == have[0] for r in ranges if r[2] != 0 or not sure)
    if not lo_ok or (sure and have[0] > min(r[0] for r in sure)):
        return False, want
    for r in ranges:
        if (r[2] == 0 and sure) or (sure and r[1] < max(x[1] for x in sure)):
            continue
        if writer_grid(have[0], r[1], s0, s1, e, below) == have:
            return True, want
    return False, writer_grid(have[0], max(r[1] for r in pool), s0, s1, e, below)


def continuity(coef, widths, ncoef):
    """First (interval, channel, what) where neighbouring polynomials disagree at their node, or None.

    ``coef`` (rows, ncoef, M), ``widths`` (rows,); the arithmetic of ``table_continuity`` in C.
    """
    if coef.shape[0] < 2:
        return None
    w = widths[:-1, None]
    A, B = coef[:-1], coef[1:]
    a0, a1, a2, a3 = A[:, 0], A[:, 1], A[:, 2], A[:, 3]
    b0, b1 = B[:, 0], B[:, 1]
    if ncoef == 6:
        a4, a5, b2 = A[:, 4], A[:, 5], B[:, 2]
        v = ((((a5 * w + a4) * w + a3) * w + a2) * w + a1) * w + a0
        d = (((5.0 * a5 * w + 4.0 * a4) * w + 3.0 * a3) * w + 2.0 * a2) * w + a1
        dd = ((20.0 * a5 * w + 12.0 * a4) * w + 6.0 * a3) * w + 2.0 * a2
        scale = np.abs(a0) + np.abs(a1) * w + np.abs(a2) * w * w + np.abs(b0) + np.abs(b1) * w + np.abs(b2) * w * w
        tol = TABLE_NODE_TOL * scale
        bad_dd = ~(np.abs(dd - 2.0 * b2) * w * w <= tol)
    else:
        v = ((a3 * w + a2) * w + a1) * w + a0
        d = (3.0 * a3 * w + 2.0 * a2) * w + a1
        scale = np.abs(a0) + np.abs(a1) * w + np.abs(b0) + np.abs(b1) * w
        tol = TABLE_NODE_TOL * scale
        bad_dd = np.zeros_like(tol, dtype=bool)
    bad_v = ~(np.abs(v - b0) <= tol)
    bad_d = ~(np.abs(d - b1) * w <= tol)
    bad = bad_v | bad_d | bad_dd
    if not bad.any():
        return None
    l, m = (int(i) for i in np.unravel_index(int(np.argmax(bad.ravel())), bad.shape))
    what = "value" if bad_v[l, m] else ("first derivative" if bad_d[l, m] else "second derivative")
    return l, m, what


def _check_tables(c, p, part, spec):
    """``read_tables`` of the C reader: sizes, tiling, the writer's grid, continuity."""
    kind, nb, ntab, ncoef, M = part["kind"], part["nblocks"], part["ntab"], part["ncoef"], part["M"]
    nt = part["nt"]
    name = f"part{p}.tab_real"
    tab_real = c.finite(name, "f8", (ntab, 5))
    tab_count = c.need(f"part{p}.tab_count", "i8", (ntab, 3))
    tab_offset = c.need(f"part{p}.tab_offset", "i8", (ntab,))
    err = c.need(f"part{p}.tab_error", "f8", (ntab,))
    for k, e in enumerate(err):
        if not (math.isfinite(e) and e >= 0):
            c.fail(f"array 'part{p}.tab_error': table {k}'s error estimate {e:g} is not a finite number >= 0")
    cname = f"part{p}.coef"
    coef = c.finite(cname, "f8", (-1,))
    ncoefs = coef.size
    rmin, s0h, s1h, e, order = spec
    if order + 1 != ncoef:
        c.fail(f"part {p}: {ncoef} coefficients per interval, header key 'compression.order' says {order:g}")
    pos, row = 0, ncoef * M
    for k in range(ntab):
        nf, nc, nbl = (int(v) for v in tab_count[k])
        below_ok = kind in (KIND_SE_T, KIND_SE_T_TEBD)  # the symmetric grid's coarse segment below
        if nf < 1 or nc < 0 or nbl < 0 or max(nf, nc, nbl) > MAX_INTERVALS or (nbl != 0 and not below_ok):
            c.fail(f"array 'part{p}.tab_count': table {k}'s interval counts ({nf}, {nc}, {nbl}) invalid")
        r = tab_real[k]
        if not (r[3] > 0 and r[4] > 0):
            c.fail(f"array '{name}': table {k}'s strides {r[3]:g}, {r[4]:g} must be positive")
        if r[1] != r[0] + float(nf) * r[3] or r[2] != r[1] + float(nc) * r[4]:
            c.fail(f"array '{name}': table {k}'s upper/xmax ({r[1]:.17g}, {r[2]:.17g}) disagree with lower "
                   f"{r[0]:.17g}, the strides and the interval counts")
        rows = nf + nc + nbl
        if not 0 <= int(tab_offset[k]) <= ncoefs:
            c.fail(f"array 'part{p}.tab_offset': table {k} starts at {int(tab_offset[k])}, outside '{cname}' ({ncoefs} values)")
        if int(tab_offset[k]) != pos:
            c.fail(f"array 'part{p}.tab_offset': table {k} starts at {int(tab_offset[k])}; the tables before it end at {pos}")
        if rows > (ncoefs - pos) // row:
            c.fail(f"array 'part{p}.tab_count': table {k}'s {rows} intervals x {ncoef} coefficients x {M} channels do "
                   f"not fit in '{cname}' ({ncoefs} values)")
        pos += rows * row
    if pos != ncoefs:
        c.fail(f"array '{cname}' holds {ncoefs} values; its tables use {pos}")

    se_t = kind in (KIND_SE_T, KIND_SE_T_TEBD)
    s0_all, s1_all = (10.0 * s0h, 10.0 * s1h) if se_t else (s0h, s1h)
    strides = table_strides(c, p, ntab)
    avg, std, mode, table_of, sel_offsets = (part[k] for k in ("avg", "std", "mode", "table_of", "sel_offsets"))
    rcut, rcut_smth = part["rcut"], part["rcut_smth"]
    if se_t:
        sw, _ = smooth_switch(np.array([rmin]), rcut_smth, rcut)  # s_max exactly as se_e3.table_bounds
        s_max = float(sw[0]) / rmin
    sel = np.diff(sel_offsets)
    b0 = int(np.argmax(sel > 0))  # the writer reads neighbor slot 0: the first non-empty block
    if not se_t:
        # per center: DeePMD-kit's range over the four components (the writer's function), floored
        # and ceiled as center_type_bounds does (in floats: an overflowed range stays inf)
        lo, hi = center_type_ranges(avg[:, b0 : b0 + 1, :], std[:, b0 : b0 + 1, :], rcut_smth, rcut, rmin)
        per_center = list(zip(np.floor(lo).tolist(), np.ceil(hi).tolist()))
    else:
        rho = np.zeros((nt, nb))
        silent = np.zeros((nt, nb), dtype=bool)
        for x in range(nb):  # descriptors/se_e3.py table_bounds, on the per-block statistics
            a, s = avg[:, x : x + 1, 1:], std[:, x : x + 1, 1:]
            rho[:, x] = s_max / np.abs(s).min(axis=(1, 2)) + np.linalg.norm(a / s, axis=2).max(axis=1)
            silent[:, x] = np.all(a == 0, axis=(1, 2))
    for k in range(ntab):
        s0, s1 = (strides[2 * k], strides[2 * k + 1]) if strides is not None else (s0_all, s1_all)
        users = np.argwhere(table_of == k)
        if len(users) == 0:
            c.fail(f"array 'part{p}.table_of': table {k} is not used")
        if len(set(int(b) for _, b in users)) > 1 or (se_t and len(users) > 1):
            c.fail(f"array 'part{p}.table_of': table {k} serves more than one neighbor block")
        if not se_t:
            blk = int(users[0][1])
            ranges = []
            for t in range(nt):
                if table_of[t, blk] != k:
                    continue
                # every center that uses the table, excluded or not (tables/bounds.py)
                ranges.append((float(per_center[t][0]), float(per_center[t][1]), 1))
            ok, want = _range_matches(ranges, tab_real[k], tab_count[k], s0, s1, e, False)
        else:
            a, b = int(users[0][0]), int(users[0][1])
            ranges = []
            # never below DeePMD-kit's range of center type a (tables/bounds.py deepmd_se_t_bounds)
            slots = [int(np.searchsorted(sel_offsets, q, side="right")) - 1 for q in (1, 2, 3) if q < sel_offsets[-1]]
            # (se_e3_tebd: one table for all centers, DeePMD-kit's widest range over the center types)
            cts = list(range(nt)) if kind == KIND_SE_T_TEBD else [a]
            ud = -math.inf
            for t in cts if slots else ():
                ud = max(ud, float(np.ceil(np.max(np.square(float(sw[0]) / (rmin * std[t, slots, :]))))))
            for t in range(nt):
                off = any(silent[t, x] and mode[t, x] == 1 for x in (a, b))
                maybe = any(silent[t, x] and mode[t, x] == 2 for x in (a, b))
                u = float(np.ceil(rho[t, a] * rho[t, b]))
                u = 1.0 if u < 1.0 else u  # max(1, ...), NaN kept (refused below, as in C)
                u = ud if u < ud else u
                ranges.append((-u, u, 0 if off else (-1 if maybe else 1)))
            have = tuple(float(v) for v in tab_real[k]) + tuple(int(v) for v in tab_count[k])
            sure = [r for r in ranges if r[2] > 0]
            u_sure = max(r[1] for r in (sure or ranges))
            want = writer_grid(-u_sure, u_sure, s0, s1, e, True)
            ok = want == have
            if not ok and any(r[2] < 0 for r in ranges):
                floor_u = max(r[1] for r in sure) if sure else -math.inf
                ok = any(writer_grid(-r[1], r[1], s0, s1, e, True) == have for r in ranges if r[2] != 0 and r[1] >= floor_u)
        if not ok:
            r, cnt = tab_real[k], tab_count[k]
            w = want or (0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0)
            c.fail(f"array '{name}' (table {k}): grid lower {r[0]:.17g}, upper {r[1]:.17g}, xmax {r[2]:.17g}, strides "
                   f"{r[3]:.17g}, {r[4]:.17g}, counts ({int(cnt[0])}, {int(cnt[1])}, {int(cnt[2])}); the statistics, "
                   f"cutoffs and header compression settings give lower {w[0]:.17g}, upper {w[1]:.17g}, xmax "
                   f"{w[2]:.17g}, strides {w[3]:.17g}, {w[4]:.17g}, counts ({w[5]}, {w[6]}, {w[7]})")
        nf, nc, nbl = (int(v) for v in tab_count[k])
        rows = nbl + nf + nc
        off = int(tab_offset[k])
        block = np.asarray(coef[off : off + rows * row]).reshape(rows, ncoef, M)
        widths = np.full(rows, float(tab_real[k][4]))
        widths[nbl : nbl + nf] = float(tab_real[k][3])
        bad = continuity(block, widths, ncoef)
        if bad is not None:
            l, m, what = bad
            c.fail(f"array '{cname}' (table {k}): intervals {l} and {l + 1} disagree at their common node (channel "
                   f"{m}, {what}): edited coefficients, strides or interval counts")


def _check_part(c, p, spec):
    """``read_part`` of the C reader, then what the Python model reads of the part."""
    nt = c.ntypes
    name = f"part{p}.int"
    I = [int(v) for v in c.need(name, "i8", (len(INT_FIELDS),))]
    f = dict(zip(INT_FIELDS, I))
    kind, nb, nnei, ntab, ncoef, M, A = (f[k] for k in ("kind", "nblocks", "nnei", "ntables", "ncoef", "M", "axis_neuron"))
    mixed, concat, tebd_dim, dim_out, ngate = (f[k] for k in ("mixed", "concat", "tebd_dim", "dim_out", "n_gate_rows"))
    if not KIND_SE_A <= kind <= KIND_DPA2:
        c.fail(f"part {p}: unknown descriptor kind {kind}")
    gated, tebd = kind in (KIND_SE_ATTEN, KIND_DPA1, KIND_DPA2), kind == KIND_SE_T_TEBD
    if mixed != int(gated or tebd) or nb != (1 if gated or tebd else nt):
        c.fail(f"part {p}: {nb} neighbor blocks (mixed {mixed}) for {nt} types")
    if ncoef not in (4, 6):
        c.fail(f"part {p}: {ncoef} coefficients per interval (4 or 6)")
    if not (1 <= M <= 1 << 20) or not (1 <= ntab <= nt * nt):
        c.fail(f"part {p}: {M} channels or {ntab} tables out of range")
    angular = kind == KIND_SE_A or gated
    if (not gated and not tebd and (concat != 0 or tebd_dim != 0 or ngate != 0)) or (not angular and A != 0):
        c.fail(f"array '{name}': fields this descriptor kind does not use are not 0 (axis_neuron {A}, concat {concat}, "
               f"tebd_dim {tebd_dim}, gate rows {ngate})")
    if angular and not (1 <= A <= min(M, MAX_AXIS_NEURON)):
        c.fail(f"part {p}: axis_neuron {A} outside [1, min(M={M}, {MAX_AXIS_NEURON})]")
    if (gated or tebd) and (concat not in (0, 1) or not 1 <= tebd_dim <= 1 << 20):
        c.fail(f"part {p}: tebd_dim {tebd_dim}")
    if tebd and ngate != (nt + 1) ** 2:
        c.fail(f"part {p}: {ngate} gate rows, se_e3_tebd has (ntypes + 1)^2 = {(nt + 1) ** 2}")
    dim = M * A + (tebd_dim if gated and concat else 0) if angular else M + (tebd_dim if tebd and concat else 0)
    if kind == KIND_DPA2:  # the repformers' g1 and the type embedding
        dim = check_dpa2(c, p, nt, tebd_dim, concat, c.need(f"part{p}.avg", "f8", None))
    if dim_out != dim:
        c.fail(f"part {p}: output width {dim_out}, its sizes give {dim}")
    rcut, rcut_smth, prot = (float(v) for v in c.need(f"part{p}.real", "f8", (3,)))
    if not (0 < rcut < 1e6) or not (0 <= rcut_smth < rcut) or not (0 <= prot < 1e6):
        c.fail(f"part {p}: rcut {rcut:g}, rcut_smth {rcut_smth:g}, protection {prot:g} (need 0 <= rcut_smth < rcut, "
               "protection >= 0)")
    so = c.need(f"part{p}.sel_offsets", "i8", (nb + 1,))
    if so[0] != 0 or so[nb] != nnei or not 1 <= nnei <= 1 << 20:
        c.fail(f"part {p}: sel offsets do not start at 0 and end at nnei {nnei}")
    dec = np.nonzero(np.diff(so) < 0)[0]
    if dec.size:
        c.fail(f"part {p}: sel offsets decrease at block {int(dec[0])}")
    avg = c.finite(f"part{p}.avg", "f8", (nt, nb, 4))
    sname = f"part{p}.std"
    std = c.need(sname, "f8", (nt, nb, 4))
    bad = np.nonzero(~(np.isfinite(std) & (np.abs(std) >= MIN_STD)).ravel())[0]
    if bad.size:
        k = int(bad[0])
        c.fail(f"array '{sname}': std entry {k} is {std.ravel()[k]:g} (zero, not finite or below {MIN_STD:g} in "
               "magnitude: the normalised inputs would overflow)")
    if tebd:
        nz = np.nonzero((avg.reshape(-1) != 0) & (np.arange(avg.size) % 4 != 0))[0]
        if nz.size:  # padding rows would carry -avg/std (descriptors/se_e3_tebd.py)
            k = int(nz[0])
            c.fail(f"array 'part{p}.avg': entry {k} is {avg.ravel()[k]:g}; se_e3_tebd needs a zero angular avg")
    mode = c.need(f"part{p}.block_mode", "i1", (nt, nb))
    if np.any((mode < 0) | (mode > 2)):
        c.fail(f"part {p}: block mode {int(mode[(mode < 0) | (mode > 2)][0])}")
    rows_of = nb if kind in (KIND_SE_T, KIND_SE_T_TEBD) else nt
    tname = f"part{p}.table_of"
    table_of = c.need(tname, "i8", (rows_of, nb))
    sel = np.diff(so)
    for r in range(rows_of):
        for b in range(nb):
            k = int(table_of[r, b])
            sel_r = sel[r] if kind in (KIND_SE_T, KIND_SE_T_TEBD) else 1
            needed = sel[b] > 0 and sel_r > 0 and (kind not in (KIND_SE_T, KIND_SE_T_TEBD) or r <= b)
            if k < -1 or k >= ntab or (needed and k < 0) or (not needed and k != -1):
                c.fail(f"array '{tname}': table index {k} of ({r}, {b}) invalid (the pair "
                       f"{'needs' if needed else 'has no neighbors, so no'} a table)")
    part = dict(kind=kind, nblocks=nb, ntab=ntab, ncoef=ncoef, M=M, nt=nt, avg=avg, std=std, mode=mode,
                table_of=table_of, sel_offsets=so, rcut=rcut, rcut_smth=rcut_smth)
    with np.errstate(all="ignore"):  # an overflowed range or polynomial is a refusal below, not a warning
        _check_tables(c, p, part, spec)
    if gated:
        if not 1 <= ngate <= 1 << 30:
            c.fail(f"part {p}: {ngate} gate rows")
        c.finite(f"part{p}.gate", "f8", (ngate, M))
        gate_of = c.need(f"part{p}.gate_of", "i8", (nt, nt))
        if np.any((gate_of < -1) | (gate_of >= ngate)):
            c.fail(f"part {p}: gate row {int(gate_of[(gate_of < -1) | (gate_of >= ngate)][0])} out of range")
        if f"part{p}.gate_pad" in c.arrays:  # optional: the unswitched gate (se_atten v1)
            pad = c.need(f"part{p}.gate_pad", "i8", (nt,))
            if np.any((pad < 0) | (pad >= ngate)):
                c.fail(f"part {p}: padding gate row {int(pad[(pad < 0) | (pad >= ngate)][0])} out of range")
        c.finite(f"part{p}.type_embedding", "f8", (nt, tebd_dim))
    if tebd:  # read_se_t_tebd_gate of the C reader
        c.finite(f"part{p}.gate", "f8", (ngate, M))
        gname = f"part{p}.gate_of"
        gate_of = c.need(gname, "i8", (nt, nt)).ravel()
        bad = np.nonzero((gate_of != -1) & (gate_of != np.arange(nt * nt) % nt))[0]
        if bad.size:
            k = int(bad[0])
            c.fail(f"array '{gname}': entry {k} is {int(gate_of[k])} (se_e3_tebd: the neighbor type {k % nt}, or -1 for "
                   "an excluded pair)")
        if f"part{p}.gate_pad" in c.arrays:  # optional: the unswitched gate (smooth false)
            pad = c.need(f"part{p}.gate_pad", "i8", (nt,))
            if np.any((pad < 0) | (pad >= ngate)):
                c.fail(f"part {p}: padding gate row {int(pad[(pad < 0) | (pad >= ngate)][0])} out of range")
        c.finite(f"part{p}.type_embedding", "f8", (nt, tebd_dim))
    if kind == KIND_DPA1:
        check_attention(c, p, nt, M, avg)
    return f, dim_out


def _check_fitting(c, dim, n_out=1, bias_shape=None):
    """``read_fitting`` of the C reader (a tensor model's nets end with ``n_out`` outputs, its biases ``bias_shape``)."""
    nt = c.ntypes
    L = c.need("fit.layer", "i8", (-1, 7))
    nl = L.shape[0]
    start = c.need("fit.net_start", "i8", (-1,))
    nnets = start.size - 1
    if nnets < 1 or nnets > nt or start[0] != 0 or start[nnets] != nl:
        c.fail(f"fit.net_start: {nnets} nets for {nl} layers")
    net_of = c.need("fit.net_of_type", "i8", (nt,))
    params = c.finite("fit.params", "f8", (-1,))
    c.finite("fit.bias", "f8", bias_shape or (nt,))
    nfit = 0  # optional: frame/atomic parameters appended to D
    if "fit.nparam" in c.arrays:
        nfit = int(c.need("fit.nparam", "i8", (1,))[0])
        if not 1 <= nfit <= 4096:
            c.fail(f"fit.nparam: {nfit} parameters (expected 1..4096)")
        _check_params_arrays(c, nfit)
    else:
        for name in ("fit.nfparam", "fit.param_avg", "fit.param_inv_std", "fit.default_fparam"):
            if name in c.arrays:
                c.fail(f"array '{name}' without 'fit.nparam' (edited file?)")
    nparams = params.size
    for n in range(nnets):
        if start[n + 1] <= start[n]:
            c.fail(f"fit.net_start: net {n} has no layers")
        prev = dim + nfit
        for k in range(int(start[n]), int(start[n + 1])):
            nin, nout, act, res, *offs = (int(v) for v in L[k])
            j = k - int(start[n])
            if nin != prev or nout < 1 or nout > _INT_MAX:
                c.fail(f"fitting net {n} layer {j} maps {nin} -> {nout} after width {prev}")
            if act not in _ACTIVATION_NAMES:
                c.fail(f"fitting net {n} layer {j}: unknown activation code {act}")
            if res not in (0, 1, 2) or (res == 1 and nout != nin) or (res == 2 and nout != 2 * nin):
                c.fail(f"fitting net {n} layer {j}: residual {res} does not fit {nin} -> {nout}")
            for q, (off, ln) in enumerate(zip(offs, (nin * nout, nout, nout))):
                if (q == 0 and off < 0) or off < -1 or (off >= 0 and (off > nparams or ln > nparams - off)):
                    c.fail(f"fitting net {n} layer {j}: parameter offset {off} outside fit.params")
            prev = nout
        if prev != n_out:
            c.fail(f"fitting net {n} ends with {prev} outputs, expected {n_out}")
    for t in range(nt):
        if not 0 <= net_of[t] < nnets:
            c.fail(f"fit.net_of_type: type {t} uses net {int(net_of[t])} of {nnets}")
    return nfit


def _expected_array(name, nparts, kinds):
    if name in _DP_ARRAYS:
        return True
    head, dot, tail = name.partition(".")
    if not dot or not head.startswith("part") or not head[4:].isdigit() or str(int(head[4:])) != head[4:]:
        return False
    p = int(head[4:])
    return p < nparts and (tail in _PART_ARRAYS or (kinds[p] in (KIND_SE_ATTEN, KIND_DPA1) and tail in _GATED_ARRAYS)
                           or (kinds[p] == KIND_SE_T_TEBD and tail in ("gate", "gate_of", "type_embedding", "gate_pad"))
                           or (kinds[p] == KIND_DPA1 and tail in ATTENTION_ARRAYS)
                           or (kinds[p] == KIND_DPA2 and (tail in _GATED_ARRAYS or is_dpa2_array(tail))))


def _pair_set(c, key, nt):
    v = (c.header.get("model") or {}).get(key, [])
    if not isinstance(v, list) or not all(
        isinstance(x, list) and len(x) == 2 and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < nt for i in x)
        for x in v
    ):
        c.fail(f"header key 'model.{key}' should list pairs of type indices < {nt}")
    return {(a, b) for a, b in v}


def _type_set(c, key, nt):
    v = (c.header.get("model") or {}).get(key, [])
    if not isinstance(v, list) or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < nt for i in v):
        c.fail(f"header key 'model.{key}' should list type indices < {nt}")
    return set(v)


def _check_settings(c, parts_ints, spec):
    """What only the Python model reads: the header's settings must agree with the arrays."""
    nt = c.ntypes
    model = c.header.get("model")
    if not isinstance(model, dict):
        c.fail("header key 'model' is missing or not an object")
    descs = model.get("descriptor")
    if not isinstance(descs, list) or len(descs) != len(parts_ints):
        c.fail(f"header key 'model.descriptor' describes {len(descs) if isinstance(descs, list) else 'no'} descriptor "
               f"parts, the arrays {len(parts_ints)}")
    hybrid = model.get("hybrid")
    if not isinstance(hybrid, bool) or (not hybrid and len(parts_ints) != 1):
        c.fail(f"header key 'model.hybrid' is {hybrid!r} for {len(parts_ints)} descriptor parts")
    for p, (s, f) in enumerate(zip(descs, parts_ints)):
        where = f"model.descriptor[{p}]"
        if not isinstance(s, dict):
            c.fail(f"header key '{where}' is not an object")
        unit = BY_KIND[f["kind"]]
        if s.get("type") != unit.TYPE_NAME:
            c.fail(f"part {p} is {unit.TYPE_NAME} in the arrays, {s.get('type')} in the header ('{where}.type')")
        neuron = s.get("neuron")
        if (not isinstance(neuron, list) or not neuron
                or not all(isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= 1 << 16 for x in neuron)
                or neuron[-1] != f["M"]):
            c.fail(f"header key '{where}.neuron' is {neuron!r}; the tables have {f['M']} channels")
        act = s.get("activation", "tanh")
        if canonical_name(act) is None:
            c.fail(f"header key '{where}.activation' = {act!r} is not a known activation")
        rf_act = s.get("rf_activation")
        if f["kind"] == KIND_DPA2 and (not isinstance(rf_act, str) or canonical_name(rf_act) is None):
            c.fail(f"header key '{where}.rf_activation' = {rf_act!r} is not a known activation (the repformers')")
        if f["kind"] == KIND_DPA2 and ACTIVATION_CODES[canonical_name(rf_act)] != int(c.arrays[f"part{p}.rf.act"][0]):
            c.fail(f"header key '{where}.rf_activation' = {rf_act!r} disagrees with array 'part{p}.rf.act' "
                   f"(activation code {int(c.arrays[f'part{p}.rf.act'][0])})")
        for key in ("resnet_dt", "type_one_side"):
            if key in s and not isinstance(s[key], bool):
                c.fail(f"header key '{where}.{key}' should be true or false, found {s[key]!r}")
        if f["kind"] in (KIND_SE_A, KIND_SE_R) and nt > 1:
            table_of = c.arrays[f"part{p}.table_of"]
            shared = all(len(set(int(v) for v in table_of[:, b])) == 1 for b in range(nt))
            if "type_one_side" not in s or bool(s["type_one_side"]) != shared:
                c.fail(f"header key '{where}.type_one_side' = {s.get('type_one_side')!r} disagrees with array "
                       f"'part{p}.table_of'")
        if f["kind"] in (KIND_SE_ATTEN, KIND_DPA1, KIND_DPA2) and not isinstance(s.get("type_one_side"), bool):
            c.fail(f"header key '{where}.type_one_side' should be true or false")
        if f["kind"] in (KIND_SE_ATTEN, KIND_DPA1, KIND_SE_T_TEBD, KIND_DPA2):
            excl = s.get("exclude_types", [])
            if not isinstance(excl, list) or not all(
                isinstance(x, list) and len(x) == 2 and all(isinstance(i, int) and 0 <= i < nt for i in x) for x in excl
            ):
                c.fail(f"header key '{where}.exclude_types' should list pairs of type indices < {nt}")
            gate_of = c.arrays[f"part{p}.gate_of"]
            if {(int(a), int(b)) for a, b in zip(*np.nonzero(gate_of == -1))} != {(a, b) for a, b in excl}:
                c.fail(f"header key '{where}.exclude_types' disagrees with array 'part{p}.gate_of' (-1 = excluded)")
        if f["kind"] in (KIND_SE_ATTEN, KIND_DPA1):
            smooth = s.get("smooth_type_embedding", True)
            if f["kind"] == KIND_DPA1 and (not isinstance(smooth, bool) or smooth != bool(c.arrays[f"part{p}.att_int"][4])):
                c.fail(f"header key '{where}.smooth_type_embedding' = {smooth!r} disagrees with array 'part{p}.att_int' "
                       "(entry 4: the switched attention)")
            elif f["kind"] == KIND_DPA1:
                pass
            elif not isinstance(smooth, bool) or smooth == (f"part{p}.gate_pad" in c.arrays):
                c.fail(f"header key '{where}.smooth_type_embedding' = {smooth!r} disagrees with array 'part{p}.gate_pad' "
                       "(present exactly when the type gate is not smoothed)")
        if f["kind"] == KIND_SE_T_TEBD:
            smooth = s.get("smooth", True)
            if not isinstance(smooth, bool) or smooth == (f"part{p}.gate_pad" in c.arrays):
                c.fail(f"header key '{where}.smooth' = {smooth!r} disagrees with array 'part{p}.gate_pad' "
                       "(present exactly when the type gate is not smoothed)")
    pe = c.arrays["model.pair_exclude"]
    if _pair_set(c, "pair_exclude_types", nt) != {(int(a), int(b)) for a, b in zip(*np.nonzero(pe))}:
        c.fail("header key 'model.pair_exclude_types' disagrees with array 'model.pair_exclude'")
    if _type_set(c, "atom_exclude_types", nt) != {int(t) for t in np.nonzero(c.arrays["model.keep_mask"] == 0)[0]}:
        c.fail("header key 'model.atom_exclude_types' disagrees with array 'model.keep_mask'")
    if _type_set(c, "fitting_exclude_types", nt) != {int(t) for t in np.nonzero(c.arrays["model.fit_mask"] == 0)[0]}:
        c.fail("header key 'model.fitting_exclude_types' disagrees with array 'model.fit_mask'")
    rmin = model.get("min_nbor_dist")
    if rmin != spec[0]:
        c.fail(f"header key 'model.min_nbor_dist' = {rmin!r}, 'compression.min_nbor_dist' = {spec[0]!r}")


def check(header, arrays, source="", tensor=None):
    """Refuse a DP ``.dpc`` whose arrays or header are inconsistent: the C reader's checks
    (``dpc_model_open``) in numpy, same order and messages, then the header settings only the
    Python model reads.  ``tensor`` = (net outputs, tensor width, its extra array names) checks a
    tensor model's arrays (:func:`dpcompress.modelfile.dp_tensor.check`).

    Raises
    ------
    ModelFormatError
        Naming the file and the array or header key.
    """
    n_out, width, extra = tensor or (1, None, ())
    c, I, nt = start_check(header, arrays, source, "dp_energy" if tensor is None else "dp_tensor")
    c.ntypes = nt
    nparts, dim = int(I[2]), int(I[3])
    if not 1 <= nparts <= MAX_PARTS:
        c.fail(f"{nparts} descriptor parts (1 to {MAX_PARTS})")
    if not 1 <= dim <= _INT_MAX:
        c.fail(f"descriptor width {dim}")
    c.finite("model.out_bias", "f8", (nt,) if tensor is None else (nt, width))
    fm = c.need("model.fit_mask", "f8", (nt,))
    km = c.need("model.keep_mask", "f8", (nt,))
    for t in range(nt):
        if fm[t] not in (0.0, 1.0) or km[t] not in (0.0, 1.0):
            c.fail(f"model.fit_mask/keep_mask of type {t} are not 0 or 1")
    pe = c.need("model.pair_exclude", "i1", (nt, nt))
    if np.any((pe != 0) & (pe != 1)):
        c.fail(f"model.pair_exclude holds {int(pe[(pe != 0) & (pe != 1)][0])}")
    spec = grid_spec(c)
    c.nparts = nparts
    parts_ints, total = [], 0
    for p in range(nparts):
        f, d = _check_part(c, p, spec)
        parts_ints.append(f)
        total += d
    ts = (header.get("compression") or {}).get("table_strides") if isinstance(header.get("compression"), dict) else None
    if isinstance(ts, list) and len(ts) > nparts:
        c.fail(f"{_TS_KEY} does not list one entry per descriptor part ({nparts})")
    if total != dim:
        c.fail(f"descriptor width {dim}, its parts give {total}")
    zbl = tensor is None and dp_zbl.check(c, nt, float(arrays["part0.real"][0]), parts_ints[0]["nnei"],
                                          parts_ints[0]["mixed"], bool(np.any(pe)))  # DP + ZBL (docs/dp-zbl.md)
    nfit = _check_fitting(c, dim, n_out, None if tensor is None else (nt, n_out))
    kinds = [f["kind"] for f in parts_ints]
    c.no_other_arrays(lambda name: name in extra or _expected_array(name, nparts, kinds)
                      or (zbl and name in dp_zbl.ARRAYS), "DP")
    _check_settings(c, parts_ints, spec)
    if "fitting_params" in (header.get("model") or {}):
        c.fail("header key 'model.fitting_params' belongs to an earlier development format (parameter statistics "
               "in the header); compress the model again")
