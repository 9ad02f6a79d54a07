"""Turn a DeePMD-kit serialised model tree into :mod:`~dpcompress.models.structures` objects.

Only what dpcompress can evaluate exactly is accepted; anything else (another
descriptor, fparam/aparam, spin, a non-energy fitting, ...) raises
:class:`~dpcompress.errors.UnsupportedModelError`, and a malformed tree raises
:class:`~dpcompress.errors.ModelFormatError`; both name the file and the key.
"""

import warnings

import numpy as np

from ..errors import ModelFormatError, UnsupportedModelError
from .activations import canonical_name
from .structures import DescriptorHybrid, DescriptorSeA, DPModel, EnergyFitting, Layer, Network

#: DeePMD-kit spellings of descriptor types -> our canonical names
DESCRIPTOR_ALIASES = {"se_a": "se_e2_a", "se_e2_a": "se_e2_a", "hybrid": "hybrid"}

#: what we know exists but do not evaluate, and why (named in the error)
UNSUPPORTED_DESCRIPTORS = {
    "dpa2": "DPA-2's repformer layers are message passing, not a tabulable embedding",
    "dpa3": "DPA-3 is message passing, not a tabulable embedding",
    "se_atten": "only se_atten_v2 with attn_layer 0 is supported",
    "dpa1": "only se_atten_v2 with attn_layer 0 is supported",
    "se_e3_tebd": "se_e3_tebd is not supported",
    "se_a_tpe": "type-embedding se_e2_a is not supported",
    "se_a_ebd_v2": "type-embedding se_e2_a is not supported",
}

# Upper bounds on sizes read from a file: far above any real model, low enough
# that a corrupt number cannot make us allocate the machine away.
MAX_TYPES = 512
MAX_SEL = 1 << 16
MAX_WIDTH = 1 << 16


class _Node:
    """A dict of the tree plus its dotted path, so every error can name the key."""

    def __init__(self, data, where, source):
        self.data, self.where, self.source = data, where, source
        if not isinstance(data, dict):
            raise ModelFormatError(f"{source}: '{where}' should be a mapping, found {type(data).__name__}")

    def _key(self, key):
        return f"{self.where}.{key}" if self.where else key

    def has(self, key):
        return key in self.data

    def raw(self, key, default=KeyError):
        if key not in self.data:
            if default is KeyError:
                raise ModelFormatError(f"{self.source}: missing key '{self._key(key)}'")
            return default
        return self.data[key]

    def node(self, key):
        return _Node(self.raw(key), self._key(key), self.source)

    def number(self, key, default=KeyError, positive=False):
        v = self.raw(key, default)
        if isinstance(v, np.ndarray) and v.ndim == 0:
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise ModelFormatError(f"{self.source}: '{self._key(key)}' should be a finite number, found {v!r}")
        if positive and v <= 0:
            raise ModelFormatError(f"{self.source}: '{self._key(key)}' should be > 0, found {v!r}")
        return float(v)

    def flag(self, key, default=KeyError):
        v = self.raw(key, default)
        if not isinstance(v, bool):
            raise ModelFormatError(f"{self.source}: '{self._key(key)}' should be true or false, found {v!r}")
        return v

    def int_list(self, key, default=KeyError, lo=0, hi=MAX_WIDTH):
        v = self.raw(key, default)
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            raise ModelFormatError(f"{self.source}: '{self._key(key)}' should be a list of integers, found {v!r}")
        for x in v:
            if not lo <= x <= hi:
                raise ModelFormatError(f"{self.source}: '{self._key(key)}' has {x}, outside [{lo}, {hi}]")
        return tuple(v)

    def array(self, key, shape=None, allow_none=False):
        v = self.raw(key)
        if v is None and allow_none:
            return None
        if not isinstance(v, np.ndarray) or v.dtype.kind not in "fiu":
            raise ModelFormatError(f"{self.source}: '{self._key(key)}' should be a numeric array, found {type(v).__name__}")
        if shape is not None and (v.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, v.shape))):
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise ModelFormatError(f"{self.source}: '{self._key(key)}' has shape {v.shape}, expected {want}")
        v = v.astype(np.float64)
        if not np.all(np.isfinite(v)):
            raise ModelFormatError(f"{self.source}: '{self._key(key)}' contains NaN or inf")
        return v


def _pairs(node, key, ntypes):
    """Read a list of [a, b] type pairs, validated and symmetrised."""
    raw = node.raw(key, [])
    if raw is None:
        raw = []
    out = set()
    if not isinstance(raw, (list, tuple)):
        raise ModelFormatError(f"{node.source}: '{node._key(key)}' should be a list of type pairs, found {raw!r}")
    for p in raw:
        if not (isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(x, int) and 0 <= x < ntypes for x in p)):
            raise ModelFormatError(f"{node.source}: '{node._key(key)}' entry {p!r} is not a pair of type indices < {ntypes}")
        out.add((p[0], p[1]))
        out.add((p[1], p[0]))
    return frozenset(out)


def _types(node, key, ntypes):
    raw = node.raw(key, [])
    if raw is None:
        raw = []
    if not isinstance(raw, (list, tuple)) or not all(isinstance(x, int) and 0 <= x < ntypes for x in raw):
        raise ModelFormatError(f"{node.source}: '{node._key(key)}' should list type indices < {ntypes}, found {raw!r}")
    return frozenset(raw)


def _activation(node, key):
    name = node.raw(key, "tanh")
    canon = canonical_name(name)
    if canon is None:
        raise UnsupportedModelError(
            f"{node.source}: '{node._key(key)}' = {name!r} is not supported "
            "(supported: tanh, gelu, gelu_tf, relu, relu6, softplus, sigmoid, silu, linear/none)"
        )
    return canon


def read_layer(node):
    """Read one serialised ``Layer``."""
    var = node.node("@variables")
    w = var.array("w", shape=(None, None))
    n_in, n_out = w.shape
    if not (1 <= n_in <= MAX_WIDTH and 1 <= n_out <= MAX_WIDTH):
        raise ModelFormatError(f"{node.source}: '{var._key('w')}' has implausible shape {w.shape}")
    use_bias = node.flag("bias", True)
    b = var.array("b", shape=(n_out,), allow_none=True) if var.has("b") else None
    if use_bias and b is None:
        raise ModelFormatError(f"{node.source}: '{node.where}' has bias true but no 'b' array")
    use_timestep = node.flag("use_timestep", False)
    idt = var.array("idt", shape=(n_out,), allow_none=True) if var.has("idt") else None
    if use_timestep and idt is None:
        raise ModelFormatError(f"{node.source}: '{node.where}' has use_timestep true but no 'idt' array")
    return Layer(
        w=w,
        b=b if use_bias else None,
        idt=idt if use_timestep else None,
        activation=_activation(node, "activation_function"),
        resnet=node.flag("resnet", False),
    )


def read_network(node):
    """Read a serialised ``EmbeddingNetwork`` / ``FittingNetwork`` (or ``NativeNet``)."""
    layers_raw = node.raw("layers")
    if not isinstance(layers_raw, list) or not layers_raw:
        raise ModelFormatError(f"{node.source}: '{node.where}.layers' should be a non-empty list")
    layers = tuple(read_layer(_Node(l, f"{node.where}.layers[{k}]", node.source)) for k, l in enumerate(layers_raw))
    for k in range(1, len(layers)):
        if layers[k].n_in != layers[k - 1].n_out:
            raise ModelFormatError(
                f"{node.source}: '{node.where}.layers[{k}]' takes {layers[k].n_in} inputs "
                f"but layer {k - 1} gives {layers[k - 1].n_out}"
            )
    return Network(layers)


def _network_list(coll, ndim_expected, ntypes):
    ndim = coll.raw("ndim")
    if ndim not in ndim_expected:
        raise ModelFormatError(f"{coll.source}: '{coll.where}.ndim' = {ndim!r}, expected one of {ndim_expected}")
    nets = coll.raw("networks")
    if not isinstance(nets, list) or len(nets) != ntypes**ndim:
        raise ModelFormatError(
            f"{coll.source}: '{coll.where}.networks' should hold {ntypes}**{ndim} = {ntypes**ndim} entries, "
            f"found {len(nets) if isinstance(nets, list) else type(nets).__name__}"
        )
    return ndim, [None if n is None else read_network(_Node(n, f"{coll.where}.networks[{k}]", coll.source)) for k, n in enumerate(nets)]


def read_descriptor_se_e2_a(node, ntypes):
    """Read an se_e2_a descriptor."""
    rcut, rcut_smth, protection = _radial_settings(node)
    sel = _per_type_sel(node, ntypes)
    neuron = node.int_list("neuron", lo=1)
    axis = int(node.number("axis_neuron", positive=True))
    if not neuron or axis > neuron[-1]:
        raise ModelFormatError(f"{node.source}: '{node.where}.axis_neuron' = {axis} exceeds the embedding width {neuron}")
    tos = node.flag("type_one_side", False)
    davg, dstd = _statistics(node, ntypes, sum(sel), 4)
    embeddings = _pair_embeddings(node, ntypes, sel, tos, neuron[-1])
    return DescriptorSeA(
        rcut=rcut,
        rcut_smth=rcut_smth,
        sel=sel,
        neuron=neuron,
        axis_neuron=axis,
        type_one_side=tos,
        exclude_types=_pairs(node, "exclude_types", ntypes),
        env_protection=protection,
        davg=davg,
        dstd=dstd,
        embeddings=embeddings,
        activation=_activation(node, "activation_function"),
        resnet_dt=bool(node.raw("resnet_dt", False)),
    )


def read_descriptor(node, ntypes):
    """Read any supported descriptor (dispatch on its ``type``)."""
    dtype = node.raw("type")
    canon = DESCRIPTOR_ALIASES.get(dtype, dtype)
    if canon in DESCRIPTOR_READERS:
        return DESCRIPTOR_READERS[canon](node, ntypes)
    why = UNSUPPORTED_DESCRIPTORS.get(canon, "unknown descriptor type")
    raise UnsupportedModelError(
        f"{node.source}: descriptor type {dtype!r} is not supported ({why}); "
        f"supported: {', '.join(sorted(DESCRIPTOR_READERS))}"
    )


def read_descriptor_hybrid(node, ntypes):
    """Read a hybrid descriptor: its ``list`` of sub-descriptors, each read by its own reader."""
    parts = node.raw("list")
    if not isinstance(parts, list) or not parts:
        raise ModelFormatError(f"{node.source}: '{node.where}.list' should be a non-empty list of descriptors")
    out = []
    for k, sub in enumerate(parts):
        child = _Node(sub, f"{node.where}.list[{k}]", node.source)
        if DESCRIPTOR_ALIASES.get(child.raw("type"), child.raw("type")) == "hybrid":
            raise UnsupportedModelError(f"{node.source}: '{child.where}' nests a hybrid inside a hybrid")
        out.append(read_descriptor(child, ntypes))
    return DescriptorHybrid(parts=tuple(out))


def read_energy_fitting(node, ntypes, dim_descrpt):
    """Read an ``ener`` fitting."""
    ftype = node.raw("type", "ener")
    if ftype != "ener":
        raise UnsupportedModelError(f"{node.source}: fitting type {ftype!r} is not supported (only energy models, 'ener')")
    for key in ("numb_fparam", "numb_aparam", "dim_case_embd"):
        if int(node.number(key, 0)) != 0:
            raise UnsupportedModelError(f"{node.source}: '{node.where}.{key}' = {node.raw(key)} is not supported (must be 0)")
    if node.raw("spin", None) is not None:
        raise UnsupportedModelError(f"{node.source}: spin models are not supported ('{node.where}.spin' is set)")
    atom_ener = node.raw("atom_ener", []) or []
    if any(a is not None for a in atom_ener):
        raise UnsupportedModelError(f"{node.source}: '{node.where}.atom_ener' = {atom_ener!r} is not supported")
    if int(node.number("dim_out", 1)) != 1:
        raise UnsupportedModelError(f"{node.source}: '{node.where}.dim_out' must be 1 for an energy model")
    mixed = node.flag("mixed_types", False)
    ndim, nets = _network_list(node.node("nets"), (0,) if mixed else (1,), ntypes)
    for k, net in enumerate(nets):
        if net is None:
            raise ModelFormatError(f"{node.source}: '{node.where}.nets.networks[{k}]' is null")
        if net.in_dim != dim_descrpt or net.out_dim != 1:
            raise ModelFormatError(
                f"{node.source}: '{node.where}.nets.networks[{k}]' maps {net.in_dim} -> {net.out_dim}, "
                f"expected {dim_descrpt} -> 1 (descriptor width)"
            )
    var = node.node("@variables")
    bias = var.array("bias_atom_e", shape=(ntypes, 1))[:, 0]
    return EnergyFitting(networks=tuple(nets), bias_atom_e=bias, exclude_types=_types(node, "exclude_types", ntypes))


def model_from_tree(tree, source=""):
    """Build a :class:`DPModel` from a serialised tree (see :func:`load_tree`)."""
    top = _Node(tree, "", source)
    model = top.node("model")
    mtype = model.raw("type", "standard")
    if mtype != "standard":
        raise UnsupportedModelError(f"{source}: model type {mtype!r} is not supported (only 'standard' energy models)")
    if model.raw("@class", "Model") != "Model":
        raise UnsupportedModelError(f"{source}: '@class' = {model.raw('@class')!r} is not a standard model")
    type_map = model.raw("type_map")
    if not isinstance(type_map, list) or not type_map or not all(isinstance(t, str) for t in type_map):
        raise ModelFormatError(f"{source}: 'model.type_map' should be a non-empty list of element names")
    if len(type_map) > MAX_TYPES:
        raise ModelFormatError(f"{source}: 'model.type_map' has {len(type_map)} types (> {MAX_TYPES})")
    ntypes = len(type_map)
    if model.raw("spin", None) is not None:
        raise UnsupportedModelError(f"{source}: spin models are not supported")
    desc = model.node("descriptor")
    if desc.raw("precision", "float64") != "float64" or model.node("fitting").raw("precision", "float64") != "float64":
        warnings.warn(f"{source}: model trained in lower precision; dpcompress evaluates it in float64", stacklevel=3)
    descriptor = read_descriptor(desc, ntypes)
    fitting = read_energy_fitting(model.node("fitting"), ntypes, descriptor.dim_out)
    mvar = model.node("@variables")
    out_bias = mvar.array("out_bias")
    if out_bias.ndim != 3 or out_bias.shape[1:] != (ntypes, 1):
        raise ModelFormatError(f"{source}: 'model.@variables.out_bias' has shape {out_bias.shape}, expected (1, {ntypes}, 1)")
    min_nbor = None
    if top.has("@variables") and isinstance(top.raw("@variables"), dict):
        v = top.raw("@variables").get("min_nbor_dist")
        if v is not None:
            v = float(np.asarray(v).reshape(-1)[0]) if np.size(v) == 1 else None
            if v is None or not np.isfinite(v) or v <= 0:
                raise ModelFormatError(f"{source}: '@variables.min_nbor_dist' should be a positive number")
            min_nbor = v
    if min_nbor is None and isinstance(model.raw("min_nbor_dist", None), (int, float)):
        min_nbor = float(model.raw("min_nbor_dist"))
    return DPModel(
        type_map=tuple(type_map),
        descriptor=descriptor,
        fitting=fitting,
        out_bias=out_bias[0, :, 0].copy(),
        pair_exclude_types=_pairs(model, "pair_exclude_types", ntypes),
        atom_exclude_types=_types(model, "atom_exclude_types", ntypes),
        min_nbor_dist=min_nbor,
        source=source,
    )


def read_descriptor_se_e3(node, ntypes):
    """Read an se_e3 (se_t) descriptor.

    Its ``embeddings`` collection (``ndim`` 2) holds ``ntypes**2`` nets at
    DeePMD-kit's flat index ``a + b*ntypes``; only the neighbor-type pairs
    ``a <= b`` are used (the others are stored but never evaluated, and may be null).
    """
    from .structures import DescriptorSeT

    rcut, rcut_smth, protection = _radial_settings(node)
    sel = _per_type_sel(node, ntypes)
    neuron = node.int_list("neuron", lo=1)
    if not neuron:
        raise ModelFormatError(f"{node.source}: '{node.where}.neuron' is empty")
    davg, dstd = _statistics(node, ntypes, sum(sel), 4)
    ndim, nets = _network_list(node.node("embeddings"), (2,), ntypes)
    M = neuron[-1]
    embeddings = []
    for a in range(ntypes):
        row = []
        for b in range(ntypes):
            net = nets[a + b * ntypes] if a <= b else None
            where = f"{node.where}.embeddings.networks[{a + b * ntypes}]"
            if net is None and a <= b and sel[a] and sel[b]:
                raise ModelFormatError(f"{node.source}: '{where}' (neighbor types {a}, {b}) is null")
            if net is not None and (net.in_dim != 1 or net.out_dim != M):
                raise ModelFormatError(f"{node.source}: '{where}' maps {net.in_dim} -> {net.out_dim}, expected 1 -> {M}")
            row.append(net)
        embeddings.append(tuple(row))
    return DescriptorSeT(
        rcut=rcut,
        rcut_smth=rcut_smth,
        sel=sel,
        neuron=neuron,
        exclude_types=_pairs(node, "exclude_types", ntypes),
        env_protection=protection,
        davg=davg,
        dstd=dstd,
        embeddings=tuple(embeddings),
        activation=_activation(node, "activation_function"),
        resnet_dt=bool(node.raw("resnet_dt", False)),
    )


#: canonical descriptor type -> reader(node, ntypes)
DESCRIPTOR_READERS = {"se_e2_a": read_descriptor_se_e2_a, "hybrid": read_descriptor_hybrid}
DESCRIPTOR_READERS["se_e3"] = read_descriptor_se_e3
DESCRIPTOR_ALIASES.update(se_e3="se_e3", se_t="se_e3", se_at="se_e3", se_a_3be="se_e3")  # DeePMD-kit's spellings


def _radial_settings(node):
    """rcut, rcut_smth and env_protection of a descriptor node, validated (every se_* reader)."""
    if node.raw("spin", None) is not None:
        raise UnsupportedModelError(f"{node.source}: spin models are not supported ('{node.where}.spin' is set)")
    rcut = node.number("rcut", positive=True)
    rcut_smth = node.number("rcut_smth")
    if not 0 <= rcut_smth < rcut:
        raise ModelFormatError(f"{node.source}: '{node.where}.rcut_smth' = {rcut_smth} should lie in [0, rcut={rcut})")
    env = _Node(node.raw("env_mat", {}) or {}, f"{node.where}.env_mat", node.source)
    if env.raw("use_exp_switch", False):
        raise UnsupportedModelError(f"{node.source}: '{env.where}.use_exp_switch' = true is not supported")
    protection = node.number("env_protection", 0.0)
    if protection < 0:
        raise ModelFormatError(f"{node.source}: '{node.where}.env_protection' should be >= 0, found {protection}")
    return rcut, rcut_smth, protection


def _per_type_sel(node, ntypes):
    """``sel`` of a type-separated descriptor: one non-negative entry per type, not all zero."""
    sel = node.int_list("sel", lo=0, hi=MAX_SEL)
    if len(sel) != ntypes:
        raise ModelFormatError(f"{node.source}: '{node.where}.sel' has {len(sel)} entries, the type_map {ntypes}")
    if sum(sel) == 0:
        raise ModelFormatError(f"{node.source}: '{node.where}.sel' is all zero")
    return sel


def _pair_embeddings(node, ntypes, sel, type_one_side, width):
    """Embedding nets ``1 -> width``: per neighbor type (type_one_side) or ``[center][neighbor]``.

    DeePMD-kit's flat index of (center c, neighbor n) is ``c + n * ntypes``.
    A null net is an error wherever its block has slots.
    """
    _, nets = _network_list(node.node("embeddings"), (1,) if type_one_side else (2,), ntypes)
    for k, net in enumerate(nets):
        if net is not None and (net.in_dim != 1 or net.out_dim != width):
            raise ModelFormatError(
                f"{node.source}: '{node.where}.embeddings.networks[{k}]' maps {net.in_dim} -> {net.out_dim}, "
                f"expected 1 -> {width}"
            )
    if type_one_side:
        embeddings = tuple(nets)
    else:
        embeddings = tuple(tuple(nets[c + n * ntypes] for n in range(ntypes)) for c in range(ntypes))
    for c in range(ntypes):
        for n in range(ntypes):
            if sel[n] and (embeddings[n] if type_one_side else embeddings[c][n]) is None:
                raise ModelFormatError(f"{node.source}: embedding net for center type {c}, neighbor type {n} is null")
    return embeddings


def _statistics(node, ntypes, nnei, ncomp):
    var = node.node("@variables")
    davg = var.array("davg", shape=(ntypes, nnei, ncomp))
    dstd = var.array("dstd", shape=(ntypes, nnei, ncomp))
    if np.any(dstd == 0):
        raise ModelFormatError(f"{node.source}: '{var._key('dstd')}' contains zeros (division by zero)")
    return davg, dstd


def read_descriptor_se_e2_r(node, ntypes):
    """Read an se_e2_r (se_r) descriptor.

    Its nets are laid out as se_e2_a's: ``ndim`` 1 (``type_one_side``, the only
    form DeePMD-kit's PyTorch backend writes) or 2 (flat index ``c + n*ntypes``).
    """
    from .structures import DescriptorSeR

    rcut, rcut_smth, protection = _radial_settings(node)
    sel = _per_type_sel(node, ntypes)
    neuron = node.int_list("neuron", lo=1)
    if not neuron:
        raise ModelFormatError(f"{node.source}: '{node.where}.neuron' is empty")
    tos = node.flag("type_one_side", True)
    davg, dstd = _statistics(node, ntypes, sum(sel), 1)
    embeddings = _pair_embeddings(node, ntypes, sel, tos, neuron[-1])
    return DescriptorSeR(
        rcut=rcut,
        rcut_smth=rcut_smth,
        sel=sel,
        neuron=neuron,
        type_one_side=tos,
        exclude_types=_pairs(node, "exclude_types", ntypes),
        env_protection=protection,
        davg=davg,
        dstd=dstd,
        embeddings=embeddings,
        activation=_activation(node, "activation_function"),
        resnet_dt=bool(node.raw("resnet_dt", False)),
    )


def read_descriptor_se_atten_v2(node, ntypes):
    """Read se_atten_v2 (or DPA-1 / se_atten in its equivalent form) without attention layers.

    Accepted: ``attn_layer`` 0, stripped type embedding (``tebd_input_mode``
    "strip", implied by se_atten_v2) with ``smooth_type_embedding``, ``lmax`` 1,
    one-hot type embedding (no ``use_econf_tebd``).  Everything else raises
    :class:`~dpcompress.errors.UnsupportedModelError` saying why.  The type
    embedding is evaluated here (it is a constant table).
    """
    from ..reference.networks import network_forward
    from .structures import DescriptorSeAttenV2

    dtype = node.raw("type")
    where, src = node.where, node.source
    attn_layer = node.raw("attn_layer", 2)
    if isinstance(attn_layer, bool) or not isinstance(attn_layer, int) or attn_layer < 0:
        raise ModelFormatError(f"{src}: '{where}.attn_layer' should be a non-negative integer, found {attn_layer!r}")
    if attn_layer > 0:
        raise UnsupportedModelError(
            f"{src}: {dtype} with attn_layer = {attn_layer} is not supported: attention layers mix the embeddings of "
            "all neighbors of an atom, so the embedding is no longer a function of one neighbor's distance and "
            "cannot be tabulated (only attn_layer 0 is supported)"
        )
    # se_atten_v2 is strip by definition; DPA-1's default is concat
    mode = node.raw("tebd_input_mode", "strip" if dtype == "se_atten_v2" else "concat")
    if mode != "strip":
        raise UnsupportedModelError(
            f"{src}: {dtype} with tebd_input_mode = {mode!r} is not supported: 'concat' feeds [s, type embedding] "
            "into one net, whose input is then not a scalar and cannot be tabulated (only 'strip' is supported)"
        )
    if not node.flag("smooth_type_embedding", True):
        raise UnsupportedModelError(
            f"{src}: '{where}.smooth_type_embedding' = false is not supported (se_atten_v2 always smooths the type gate)"
        )
    if int(node.number("lmax", 1)) != 1:
        raise UnsupportedModelError(f"{src}: '{where}.lmax' = {node.raw('lmax')} is not supported (only 1)")
    rcut, rcut_smth, protection = _radial_settings(node)
    raw_sel = node.raw("sel")
    sel = (raw_sel,) if isinstance(raw_sel, int) and not isinstance(raw_sel, bool) else node.int_list("sel", lo=1, hi=MAX_SEL)
    if len(sel) != 1 or not 1 <= sel[0] <= MAX_SEL:
        raise ModelFormatError(f"{src}: '{where}.sel' should be one positive number (mixed types), found {raw_sel!r}")
    neuron = node.int_list("neuron", lo=1)
    if not neuron:
        raise ModelFormatError(f"{src}: '{where}.neuron' is empty")
    M = neuron[-1]
    axis = int(node.number("axis_neuron", positive=True))
    if axis > M:
        raise ModelFormatError(f"{src}: '{where}.axis_neuron' = {axis} exceeds the embedding width {neuron}")
    tebd_dim = int(node.number("tebd_dim", positive=True))
    tos = node.flag("type_one_side", False)
    davg, dstd = _statistics(node, ntypes, sel[0], 4)
    _, (geo,) = _network_list(node.node("embeddings"), (0,), ntypes)
    _, (strip,) = _network_list(node.node("embeddings_strip"), (0,), ntypes)
    n_strip = tebd_dim if tos else 2 * tebd_dim
    for key, net, n_in in (("embeddings", geo, 1), ("embeddings_strip", strip, n_strip)):
        if net is None or net.in_dim != n_in or net.out_dim != M:
            got = "null" if net is None else f"{net.in_dim} -> {net.out_dim}"
            raise ModelFormatError(f"{src}: '{where}.{key}.networks[0]' maps {got}, expected {n_in} -> {M}")
    te = node.node("type_embedding")
    if te.raw("use_econf_tebd", False) or node.raw("use_econf_tebd", False):
        raise UnsupportedModelError(
            f"{src}: '{te.where}.use_econf_tebd' = true is not supported (the electronic-configuration inputs are not in the model file)"
        )
    tnet = read_network(te.node("embedding"))
    if tnet.in_dim != ntypes or tnet.out_dim != tebd_dim:
        raise ModelFormatError(
            f"{src}: '{te.where}.embedding' maps {tnet.in_dim} -> {tnet.out_dim}, expected {ntypes} (one-hot) -> {tebd_dim}"
        )
    # E_t = net(one-hot t); the padding type (-1 -> row ntypes) has the zero embedding
    E = np.concatenate([network_forward(tnet, np.eye(ntypes))[0], np.zeros((1, tebd_dim))])
    return DescriptorSeAttenV2(
        rcut=rcut,
        rcut_smth=rcut_smth,
        sel=sel,
        neuron=neuron,
        axis_neuron=axis,
        tebd_dim=tebd_dim,
        type_one_side=tos,
        exclude_types=_pairs(node, "exclude_types", ntypes),
        env_protection=protection,
        davg=davg,
        dstd=dstd,
        type_embedding=E,
        embeddings=geo,
        strip_net=strip,
        concat_output_tebd=node.flag("concat_output_tebd", True),
        activation=_activation(node, "activation_function"),
        resnet_dt=bool(node.raw("resnet_dt", False)),
    )


DESCRIPTOR_READERS.update(se_e2_r=read_descriptor_se_e2_r, se_atten_v2=read_descriptor_se_atten_v2)
DESCRIPTOR_ALIASES.update(se_r="se_e2_r", se_e2_r="se_e2_r", se_atten_v2="se_atten_v2", se_atten="se_atten_v2", dpa1="se_atten_v2")
