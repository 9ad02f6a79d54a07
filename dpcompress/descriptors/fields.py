"""Reading DeePMD-kit's serialised tree: a node type that names its key in every error, and the
fields every descriptor reader shares (cutoffs, per-type ``sel``, statistics, nets, type pairs).

Files are untrusted: every size read from them is bounded, every array checked for shape and
finiteness, and every failure raises :class:`~dpcompress.core.errors.ModelFormatError` (or
:class:`~dpcompress.core.errors.UnsupportedModelError` for a well-formed feature we lack) naming
the file and the key.
"""

import numpy as np

from ..core.activations import check_activation
from ..core.errors import ModelFormatError, UnsupportedModelError
from ..core.networks import Layer, Network

# Upper bounds on sizes read from a file: far above any real model, low enough
# that a corrupt number cannot make us allocate the machine away.
MAX_TYPES = 512
MAX_SEL = 1 << 16
MAX_WIDTH = 1 << 16


class Node:
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
        return Node(self.raw(key), self._key(key), self.source)

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


def type_pairs(node, key, ntypes):
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


def type_set(node, key, ntypes):
    raw = node.raw(key, [])
    if raw is None:
        raw = []
    if not isinstance(raw, (list, tuple)) or not all(isinstance(x, int) and 0 <= x < ntypes for x in raw):
        raise ModelFormatError(f"{node.source}: '{node._key(key)}' should list type indices < {ntypes}, found {raw!r}")
    return frozenset(raw)


def activation(node, key):
    """The canonical activation name at ``key``; unknown names are refused naming file, key and the known ones."""
    return check_activation(node.raw(key, "tanh"), f"{node.source}: '{node._key(key)}'")


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
        activation=activation(node, "activation_function"),
        resnet=node.flag("resnet", False),
    )


def read_network(node):
    """Read a serialised ``EmbeddingNetwork`` / ``FittingNetwork`` (or ``NativeNet``)."""
    layers_raw = node.raw("layers")
    if not isinstance(layers_raw, list) or not layers_raw:
        raise ModelFormatError(f"{node.source}: '{node.where}.layers' should be a non-empty list")
    layers = tuple(read_layer(Node(l, f"{node.where}.layers[{k}]", node.source)) for k, l in enumerate(layers_raw))
    for k in range(1, len(layers)):
        if layers[k].n_in != layers[k - 1].n_out:
            raise ModelFormatError(
                f"{node.source}: '{node.where}.layers[{k}]' takes {layers[k].n_in} inputs "
                f"but layer {k - 1} gives {layers[k - 1].n_out}"
            )
    return Network(layers)


def network_list(coll, ndim_expected, ntypes):
    ndim = coll.raw("ndim")
    if ndim not in ndim_expected:
        raise ModelFormatError(f"{coll.source}: '{coll.where}.ndim' = {ndim!r}, expected one of {ndim_expected}")
    nets = coll.raw("networks")
    if not isinstance(nets, list) or len(nets) != ntypes**ndim:
        raise ModelFormatError(
            f"{coll.source}: '{coll.where}.networks' should hold {ntypes}**{ndim} = {ntypes**ndim} entries, "
            f"found {len(nets) if isinstance(nets, list) else type(nets).__name__}"
        )
    return ndim, [None if n is None else read_network(Node(n, f"{coll.where}.networks[{k}]", coll.source)) for k, n in enumerate(nets)]


def radial_settings(node):
    """rcut, rcut_smth and env_protection of a descriptor node, validated (every se_* reader)."""
    if node.raw("spin", None) is not None:
        raise UnsupportedModelError(f"{node.source}: spin models are not supported ('{node.where}.spin' is set)")
    rcut = node.number("rcut", positive=True)
    rcut_smth = node.number("rcut_smth")
    if not 0 <= rcut_smth < rcut:
        raise ModelFormatError(f"{node.source}: '{node.where}.rcut_smth' = {rcut_smth} should lie in [0, rcut={rcut})")
    env = Node(node.raw("env_mat", {}) or {}, f"{node.where}.env_mat", node.source)
    if env.raw("use_exp_switch", False):
        raise UnsupportedModelError(f"{node.source}: '{env.where}.use_exp_switch' = true is not supported")
    protection = node.number("env_protection", 0.0)
    if protection < 0:
        raise ModelFormatError(f"{node.source}: '{node.where}.env_protection' should be >= 0, found {protection}")
    return rcut, rcut_smth, protection


def per_type_sel(node, ntypes):
    """``sel`` of a type-separated descriptor: one non-negative entry per type, not all zero."""
    sel = node.int_list("sel", lo=0, hi=MAX_SEL)
    if len(sel) != ntypes:
        raise ModelFormatError(f"{node.source}: '{node.where}.sel' has {len(sel)} entries, the type_map {ntypes}")
    if sum(sel) == 0:
        raise ModelFormatError(f"{node.source}: '{node.where}.sel' is all zero")
    return sel


def pair_embeddings(node, ntypes, sel, type_one_side, width):
    """Embedding nets ``1 -> width``: per neighbor type (type_one_side) or ``[center][neighbor]``.

    DeePMD-kit's flat index of (center c, neighbor n) is ``c + n * ntypes``.
    A null net is an error wherever its block has slots.
    """
    _, nets = network_list(node.node("embeddings"), (1,) if type_one_side else (2,), ntypes)
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


def statistics(node, ntypes, nnei, ncomp):
    var = node.node("@variables")
    davg = var.array("davg", shape=(ntypes, nnei, ncomp))
    dstd = var.array("dstd", shape=(ntypes, nnei, ncomp))
    if np.any(dstd == 0):
        raise ModelFormatError(f"{node.source}: '{var._key('dstd')}' contains zeros (division by zero)")
    return davg, dstd
