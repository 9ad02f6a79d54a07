"""Validation shared by the packed-table classes of the fused kernels (se_a_tab, se_t_tab).

The kernels index these arrays with sizes read from them, so every shape,
offset and table reference is checked here, once per model, before any
``nogil`` call can read out of bounds.
"""

from types import SimpleNamespace

import numpy as np


def check_array(arr, shape, dtype, name):
    """Raise ValueError unless ``arr`` is C-contiguous, of ``dtype`` and ``shape``."""
    if arr.dtype != dtype or not arr.flags.c_contiguous or arr.shape != shape:
        raise ValueError(f"{name}: expected C-contiguous {np.dtype(dtype)} of shape {shape}, got {arr.dtype} {arr.shape}")


def table_arrays(sel_offsets, avg, std, block_mode, table_of, tab_real, tab_count, tab_offset, coef,
                 ncoef, n_channels, table_of_rows=None):
    """Contiguous, checked copies of the packed arrays and the sizes derived from them.

    ``table_of`` has shape (ntypes, nblocks), or (``table_of_rows``, nblocks)
    when given (se_e3: one row per neighbor block).
    """
    p = SimpleNamespace()
    p.sel_offsets = np.ascontiguousarray(sel_offsets, dtype=np.int64)
    p.nblocks = p.sel_offsets.shape[0] - 1
    p.nnei = p.sel_offsets[p.nblocks]
    p.avg = np.ascontiguousarray(avg, dtype=np.float64)
    p.ntypes = p.avg.shape[0]
    p.std = np.ascontiguousarray(std, dtype=np.float64)
    p.block_mode = np.ascontiguousarray(block_mode, dtype=np.int8)
    p.table_of = np.ascontiguousarray(table_of, dtype=np.int64)
    p.tab_real = np.ascontiguousarray(tab_real, dtype=np.float64)
    p.ntables = p.tab_real.shape[0]
    p.tab_count = np.ascontiguousarray(tab_count, dtype=np.int64)
    p.tab_offset = np.ascontiguousarray(tab_offset, dtype=np.int64)
    p.coef = np.ascontiguousarray(coef, dtype=np.float64)
    nt, nb = p.ntypes, p.nblocks
    check_array(p.avg, (nt, nb, 4), np.float64, "avg")
    check_array(p.std, (nt, nb, 4), np.float64, "std")
    check_array(p.block_mode, (nt, nb), np.int8, "block_mode")
    check_array(p.table_of, (nt if table_of_rows is None else table_of_rows, nb), np.int64, "table_of")
    check_array(p.tab_real, (p.ntables, 5), np.float64, "tab_real")
    check_array(p.tab_count, (p.ntables, 3), np.int64, "tab_count")
    check_array(p.tab_offset, (p.ntables,), np.int64, "tab_offset")
    if ncoef not in (4, 6) or n_channels < 1:
        raise ValueError("ncoef must be 4 or 6 and n_channels positive")
    if np.any(p.table_of >= p.ntables) or np.any(p.table_of < -1):
        raise ValueError("table_of refers to a missing table")
    sizes = p.tab_count.sum(axis=1) * ncoef * n_channels
    if np.any(p.tab_count[:, 0] < 1) or np.any(p.tab_count[:, 1:] < 0):
        raise ValueError("each table needs n_fine >= 1, n_coarse >= 0 and n_below >= 0")
    if np.any(p.tab_offset < 0) or np.any(p.tab_offset + sizes > p.coef.shape[0]):
        raise ValueError("table offsets exceed the coefficient buffer")
    if np.any(p.std == 0):
        raise ValueError("std contains zeros")
    return p
