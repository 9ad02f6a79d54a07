"""Checking the array sizes a ``.dp`` file declares against the model's settings, before any read.

An HDF5 dataset's shape is metadata: a 70 kB file can declare an 8 GiB weight matrix, and
reading it allocates 8 GiB of fill values.  So :func:`check_declared_arrays` runs on the tree
with every array still a :class:`Declared` (name, shape, dtype, bytes stored) and refuses:

* a layer's ``w``, ``b``, ``idt`` of more than two dimensions or with a dimension wider than
  every width setting of the model (``in_dim``, ``neuron``, ``dim_descrpt``, ...); the message
  gives the shape its network's settings imply.  Not equality: DeePMD-kit builds a network from
  its layers, so a stale ``in_dim`` beside correct layers is a valid model;
* any other array larger than the model's settings allow: :func:`settings_cap` elements, from
  the widest setting, ``ntypes`` and the largest neighbor count (``sel``);
* a dataset that declares more bytes than it stores (without compression filters, the bytes
  must be in the file);
* more bytes in all than the memory limit (:mod:`dpcompress.core.memory_limit`).
"""

from dataclasses import dataclass
from typing import Tuple

from ..core.errors import ModelFormatError
from ..core.memory_limit import format_bytes, how_to_raise

#: largest integer setting taken as a width (seeds and the like are larger and are not widths)
_WIDTH_LIMIT = 1 << 20
_NOT_WIDTHS = ("seed", "@version", "version")


@dataclass(frozen=True)
class Declared:
    """An HDF5 dataset known by its metadata only."""

    name: str
    shape: Tuple[int, ...]
    itemsize: int
    stored: int  # bytes the file holds for it (compressed size with filters)
    filtered: bool  # compression or another filter: ``stored`` may be far below ``nbytes``

    @property
    def size(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self):
        return self.size * self.itemsize


def _walk(tree):
    """Yield ``(where, node)`` for every dict and list of the tree, without recursion."""
    stack = [("", tree)]
    while stack:
        where, node = stack.pop()
        yield where, node
        if isinstance(node, dict):
            stack.extend((f"{where}.{k}" if where else str(k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(node))


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _int_settings(tree):
    """Every integer setting of the tree that may be a width (keys named in :data:`_NOT_WIDTHS` excluded)."""
    out = []
    for _, node in _walk(tree):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in _NOT_WIDTHS:
                    continue
                if _is_int(v) and 0 < v <= _WIDTH_LIMIT:
                    out.append(v)
                elif isinstance(v, list) and v and all(_is_int(x) for x in v):
                    out.extend(x for x in v if 0 < x <= _WIDTH_LIMIT)
    return out


def _ntypes(tree):
    model = tree.get("model") if isinstance(tree, dict) else None
    tm = model.get("type_map") if isinstance(model, dict) else None
    return len(tm) if isinstance(tm, list) else 1


def _max_nnei(tree):
    """The largest neighbor count of any descriptor: sum of a ``sel`` list, or an integer ``sel``."""
    best = 1
    for _, node in _walk(tree):
        if isinstance(node, dict) and "sel" in node:
            sel = node["sel"]
            if _is_int(sel):
                best = max(best, sel)
            elif isinstance(sel, list) and all(_is_int(x) for x in sel):
                best = max(best, sum(sel))
    return best


def widest_setting(tree):
    """The largest width setting of the model (see :func:`_int_settings`), at least 1."""
    widths = _int_settings(tree)
    return max(widths) if widths else 1


def settings_cap(tree):
    """Most elements any one array of this model may have, from its settings.

    With ``W`` the largest width setting (``in_dim``, ``neuron``, ``dim_descrpt``, ``tebd_dim``,
    ...), ``T`` = ntypes + 1 and ``N`` the largest neighbor count: a weight matrix has at most
    ``W²`` elements (``4 W²`` leaves room for attention's stacked projections), the statistics
    ``T N 4``, a type-pair table ``T² W``.
    """
    w = widest_setting(tree)
    t = _ntypes(tree) + 1
    return max(4096, 4 * w * w, 4 * t * _max_nnei(tree), t * t * w)


def _network_widths(net):
    """``[in_dim, *neuron, (out_dim)]`` of a serialised network, or None when it does not say."""
    in_dim, neuron = net.get("in_dim"), net.get("neuron")
    if not (_is_int(in_dim) and isinstance(neuron, list) and all(_is_int(x) for x in neuron)):
        return None
    widths = [in_dim] + list(neuron)
    if "out_dim" in net:  # FittingNetwork: a last layer to out_dim
        if not _is_int(net["out_dim"]):
            return None
        widths.append(net["out_dim"])
    return widths if len(widths) == len(net.get("layers") or ()) + 1 else None


def _check_layers(tree, source):
    """Every layer array against the model's widest width setting; returns the arrays checked."""
    checked = set()
    widest = None
    for where, net in _walk(tree):
        if not (isinstance(net, dict) and isinstance(net.get("layers"), list)):
            continue
        widths = _network_widths(net)
        for k, layer in enumerate(net["layers"]):
            var = layer.get("@variables") if isinstance(layer, dict) else None
            if not isinstance(var, dict):
                continue
            for key, rank in (("w", 2), ("b", 2), ("idt", 2)):
                arr = var.get(key)
                if not isinstance(arr, Declared):
                    continue
                checked.add(id(arr))
                widest = widest_setting(tree) if widest is None else widest
                if len(arr.shape) <= rank and all(d <= widest for d in arr.shape):
                    continue
                implied = ""
                if widths is not None:
                    n_in, n_out = widths[k], widths[k + 1]
                    want = (n_in, n_out) if key == "w" else (n_out,)
                    hidden = widths[1:-1] if "out_dim" in net else widths[1:]
                    out = f", out_dim {widths[-1]}" if "out_dim" in net else ""
                    implied = f"the network's settings (in_dim {widths[0]}, neuron {hidden}{out}) imply {want}, and "
                raise ModelFormatError(
                    f"{source}: '{where}.layers[{k}].@variables.{key}' (dataset {arr.name!r}) declares shape "
                    f"{arr.shape} ({format_bytes(arr.nbytes)}), but {implied}no width setting of the model exceeds "
                    f"{widest}; refusing before reading it"
                )
    return checked


def check_declared_arrays(tree, source, file_bytes, limit):
    """Refuse a tree whose declared arrays do not fit its settings, its file or the memory limit.

    Parameters
    ----------
    tree : dict
        The serialised model with :class:`Declared` in place of every array.
    source : str
        File name for the messages.
    file_bytes : int
        Size of the file.
    limit : int
        Most bytes all arrays together may take.

    Raises
    ------
    ModelFormatError
    """
    checked = _check_layers(tree, source)
    cap = None
    total = 0
    for where, node in _walk(tree):
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, arr in items:
            if not isinstance(arr, Declared):
                continue
            at = f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]"
            if not arr.filtered and arr.stored < arr.nbytes:
                raise ModelFormatError(
                    f"{source}: '{at}' (dataset {arr.name!r}) declares {format_bytes(arr.nbytes)} but the file "
                    f"stores {arr.stored} bytes of it (file size {file_bytes}); the file is corrupt or forged"
                )
            if id(arr) not in checked:
                cap = settings_cap(tree) if cap is None else cap
                if arr.size > cap:
                    raise ModelFormatError(
                        f"{source}: '{at}' (dataset {arr.name!r}) declares shape {arr.shape} ({arr.size} elements), "
                        f"more than the model's settings allow ({cap} elements from its widths, types and sel); "
                        "refusing before reading it"
                    )
            total += arr.nbytes
    if total > limit:
        raise ModelFormatError(
            f"{source}: the arrays the file declares need {format_bytes(total)}, above the limit of "
            f"{format_bytes(limit)}; {how_to_raise()}"
        )
