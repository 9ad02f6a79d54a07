"""Numpy twin of ``src_c/dpc_table_build.c``: Hermite table coefficients of a scalar-input net.

Readable, vectorised over all intervals at once; the compiled builder must
agree with it to round-off (``tests/test_tables.py``).
"""

import numpy as np

from ..tables import grid_nodes
from ..core.networks import embedding_with_derivatives
from ..core.table_math import cubic_coefficients, quintic_coefficients


def build_table(net, lower, stride0, stride1, n_fine, n_coarse, order=5, n_below=0):
    """Coefficients of the table of ``net`` on the grid given by its integer counts.

    Parameters
    ----------
    net : Network
        ``in_dim == 1``.
    lower, stride0, stride1 : float
    n_fine, n_coarse, n_below : int
        Grid of :func:`dpcompress.tables.grid_nodes`.
    order : {5, 3}
        Quintic (matches y, y', y'' at both ends) or cubic (y, y').

    Returns
    -------
    ndarray, shape (n_below + n_fine + n_coarse, order + 1, M)
        ``coef[l, k, m]`` of ``src_c/dpc_table.h``.
    """
    x = grid_nodes(lower, stride0, stride1, n_fine, n_coarse, n_below)
    g, dg, d2g = embedding_with_derivatives(net, x)
    l = np.arange(n_below + n_fine + n_coarse)
    w = np.where((l >= n_below) & (l < n_below + n_fine), stride0, stride1)[:, None]
    if order == 5:
        a = quintic_coefficients(g[:-1], dg[:-1], d2g[:-1], g[1:], dg[1:], d2g[1:], w)
    elif order == 3:
        a = cubic_coefficients(g[:-1], dg[:-1], g[1:], dg[1:], w)
    else:
        raise ValueError(f"order must be 3 or 5, got {order}")
    return np.ascontiguousarray(a.transpose(1, 0, 2))
