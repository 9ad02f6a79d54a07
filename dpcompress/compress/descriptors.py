"""Tabulate the embedding nets of each descriptor type.

Every tabulator takes an uncompressed descriptor and the grid settings and
returns the same descriptor with ``tables`` filled (indexed like its
``embeddings``) and ``embeddings`` set to None.  :func:`tabulate` dispatches on
``type_name``; hybrid descriptors tabulate each part.
"""

import dataclasses

from ..errors import UnsupportedModelError
from .bounds import table_bounds
from .tables import build_embedding_table


def _build(net, bounds, grid):
    if net is None:
        return None
    return build_embedding_table(net, bounds[0], bounds[1], **grid)


def tabulate_se_e2_a(desc, min_nbor_dist, grid):
    """Tables of se_e2_a (and any descriptor with the same per-type embedding layout)."""
    bounds = table_bounds(desc, min_nbor_dist)
    nt = desc.ntypes
    if desc.type_one_side:
        tables = tuple(_build(desc.embeddings[n], bounds[n], grid) if desc.sel[n] else None for n in range(nt))
    else:
        tables = tuple(
            tuple(_build(desc.embeddings[c][n], bounds[c][n], grid) if desc.sel[n] else None for n in range(nt))
            for c in range(nt)
        )
    return dataclasses.replace(desc, embeddings=None, tables=tables)


#: descriptor type -> tabulator(desc, min_nbor_dist, grid) where grid holds
#: stride0, stride1, extrapolate, order, n_threads
TABULATORS = {"se_e2_a": tabulate_se_e2_a}


def tabulate(desc, min_nbor_dist, grid):
    """Compressed copy of ``desc`` (hybrid: of each part)."""
    parts = getattr(desc, "parts", None)
    if parts:
        return dataclasses.replace(desc, parts=tuple(tabulate(p, min_nbor_dist, grid) for p in parts))
    if desc.type_name not in TABULATORS:
        raise UnsupportedModelError(f"compression of descriptor {desc.type_name!r} is not implemented")
    return TABULATORS[desc.type_name](desc, min_nbor_dist, dict(grid))


def iter_tables(desc):
    """Every table of a compressed descriptor (all parts), in a fixed order."""
    for part in getattr(desc, "parts", None) or (desc,):
        stack = [part.tables]
        while stack:
            item = stack.pop(0)
            if isinstance(item, (tuple, list)):
                stack[:0] = list(item)
            elif item is not None:
                yield item


def iter_nets(desc):
    """Every embedding net of an uncompressed descriptor (all parts)."""
    for part in getattr(desc, "parts", None) or (desc,):
        stack = [part.embeddings]
        while stack:
            item = stack.pop(0)
            if isinstance(item, (tuple, list)):
                stack[:0] = list(item)
            elif item is not None:
                yield item
