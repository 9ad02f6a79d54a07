"""Descriptors, one unit each: the model class, the reader of DeePMD-kit's tree, the table ranges,
the tabulator and the ``.dpc`` packing live in one module, registered here once.

Adding a descriptor: docs/design.md ("Adding a descriptor").
"""

import dataclasses

from ..core.errors import ModelFormatError, UnsupportedModelError
from . import dpa2_part, se_atten_v2, se_e2_a, se_e2_r, se_e3, se_e3_tebd
from .fields import Node
from .hybrid import DescriptorHybrid

#: the descriptor units, by canonical type name
UNITS = {unit.TYPE_NAME: unit for unit in (se_e2_a, se_e2_r, se_e3, se_atten_v2, se_e3_tebd, dpa2_part)}  # dpa2_part: DPA-2's reader + kind 7

#: every DeePMD-kit spelling -> canonical type name
ALIASES = {alias: unit.TYPE_NAME for unit in UNITS.values() for alias in unit.ALIASES}
ALIASES["hybrid"] = "hybrid"

#: part kind code of a .dpc file -> unit
BY_KIND = {unit.KIND: unit for unit in UNITS.values() if unit.KIND is not None}
BY_KIND[se_atten_v2.KIND_ATTENTION] = se_atten_v2  # DPA-1 with attention layers: its own part kind

#: what we know exists but do not evaluate, and why (named in the error)
UNSUPPORTED = {
    "dpa3": "DPA-3 is message passing, not a tabulable embedding",
    "se_a_tpe": "type-embedding se_e2_a is not supported",
    "se_a_ebd_v2": "type-embedding se_e2_a is not supported",
}


def parts(descriptor):
    """The descriptors a model concatenates: ``descriptor.parts`` for hybrid, else itself."""
    return tuple(getattr(descriptor, "parts", None) or (descriptor,))


def unit_of(descriptor):
    """The unit (module) of a non-hybrid descriptor."""
    return UNITS[descriptor.type_name]


def read_descriptor(node, ntypes):
    """Any supported descriptor from its node of DeePMD-kit's tree (dispatch on ``type``)."""
    dtype = node.raw("type")
    canon = ALIASES.get(dtype, dtype)
    if canon == "hybrid":
        return _read_hybrid(node, ntypes)
    if canon in UNITS:
        return UNITS[canon].read(node, ntypes)
    why = UNSUPPORTED.get(canon, "unknown descriptor type")
    raise UnsupportedModelError(
        f"{node.source}: descriptor type {dtype!r} is not supported ({why}); "
        f"supported: {', '.join(sorted(list(UNITS) + ['hybrid']))}"
    )


def _read_hybrid(node, ntypes):
    """A hybrid descriptor: its ``list`` of sub-descriptors, each read by its own unit."""
    raw = node.raw("list")
    if not isinstance(raw, list) or not raw:
        raise ModelFormatError(f"{node.source}: '{node.where}.list' should be a non-empty list of descriptors")
    out = []
    for k, sub in enumerate(raw):
        child = Node(sub, f"{node.where}.list[{k}]", node.source)
        if ALIASES.get(child.raw("type"), child.raw("type")) == "hybrid":
            raise UnsupportedModelError(f"{node.source}: '{child.where}' nests a hybrid inside a hybrid")
        out.append(read_descriptor(child, ntypes))
    return DescriptorHybrid(parts=tuple(out))


def tabulate(descriptor, min_nbor_dist, grid):
    """Compressed copy of ``descriptor`` (hybrid: of each part).

    ``grid`` holds stride0, stride1, extrapolate, order and n_threads.
    """
    if descriptor.type_name == "hybrid":
        return dataclasses.replace(descriptor, parts=tuple(tabulate(p, min_nbor_dist, grid) for p in descriptor.parts))
    return unit_of(descriptor).tabulate(descriptor, min_nbor_dist, dict(grid))


def iter_tables(descriptor):
    """Every table of a compressed descriptor (all parts), in a fixed order."""
    for part in parts(descriptor):
        yield from _leaves(part.tables)


def iter_nets(descriptor):
    """Every embedding net of an uncompressed descriptor (all parts)."""
    for part in parts(descriptor):
        yield from _leaves(part.embeddings)


def _leaves(item):
    if isinstance(item, (tuple, list)):
        for x in item:
            yield from _leaves(x)
    elif item is not None:
        yield item


__all__ = ["UNITS", "ALIASES", "BY_KIND", "DescriptorHybrid", "parts", "unit_of", "read_descriptor", "tabulate",
           "iter_tables", "iter_nets"]
