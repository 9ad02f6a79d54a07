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


def tabulate_se_e3(desc, min_nbor_dist, grid):
    r"""Tables of se_e3: one per neighbor-type pair a <= b, on a symmetric three-segment grid.

    The grid covers :math:`[-eU, eU]`: fine stride over :math:`[-U, U)`, coarse
    stride on both sides (:func:`~dpcompress.compress.tables.build_embedding_table`
    with ``extrapolate_below``), :math:`U` from
    :func:`~dpcompress.compress.bounds.se_e3_table_bounds`.  Both strides are ten
    times the requested ones, as DeePMD-kit does for se_e3 (step 0.01 gives 0.1
    and 1.0): :math:`e_{jk}` spans a range some ten times wider than se_e2_a's input.
    """
    from .bounds import se_e3_table_bounds

    bounds = se_e3_table_bounds(desc, min_nbor_dist)
    grid = dict(grid, stride0=10.0 * grid["stride0"], stride1=10.0 * grid["stride1"], extrapolate_below=True)
    nt = desc.ntypes
    tables = []
    for a in range(nt):
        row = tuple(
            _build(desc.embedding_net(a, b), bounds[a][b], grid) if a <= b and desc.sel[a] and desc.sel[b] else None
            for b in range(nt)
        )
        # an all-None row is stored as None: the .dpc writer infers the nesting from the first non-None entry
        tables.append(row if any(t is not None for t in row) else None)
    return dataclasses.replace(desc, embeddings=None, tables=tuple(tables))


TABULATORS["se_e3"] = tabulate_se_e3


def tabulate_se_atten_v2(desc, min_nbor_dist, grid):
    r"""Tables of se_atten_v2: one table of the geometric net, and the strip net's outputs.

    The geometric net :math:`G_s` gets one table on :math:`[L, U)` with
    :func:`~dpcompress.compress.bounds.se_atten_table_bounds`.  The strip net
    only ever sees the type-embedding rows of the (center, neighbor) type pairs,
    so it is replaced by its exact outputs :math:`S` (``strip_table``, DeePMD-kit's
    ``type_embd_data``) — no approximation there.
    """
    from .bounds import se_atten_table_bounds

    table = _build(desc.embeddings, se_atten_table_bounds(desc, min_nbor_dist), grid)
    return dataclasses.replace(desc, embeddings=None, strip_net=None, strip_table=desc.gate_table(), tables=table)


TABULATORS.update(se_e2_r=tabulate_se_e2_a, se_atten_v2=tabulate_se_atten_v2)  # se_e2_r: se_e2_a's per-type layout
