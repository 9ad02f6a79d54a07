"""Embedding-net tables: piecewise quintic (or cubic) Hermite polynomials on a two-stride grid.

The layout and the formulas are those of ``src_c/dpc_table.h``; :func:`build_embedding_table`
tabulates one net (``src_c/dpc_table_build.c``) and measures the result against the net.
"""

from .bounds import center_type_bounds, center_type_ranges, deepmd_se_t_bounds, union_bounds
from .embedding_table import (
    MAX_TABLE_ELEMENTS,
    EmbeddingTable,
    build_embedding_table,
    estimate_table_error,
    grid_counts,
    grid_nodes,
    pack_network,
)

__all__ = ["EmbeddingTable", "build_embedding_table", "estimate_table_error", "grid_counts", "grid_nodes",
           "pack_network", "center_type_bounds", "center_type_ranges", "deepmd_se_t_bounds", "union_bounds",
           "MAX_TABLE_ELEMENTS"]
