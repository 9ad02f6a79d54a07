"""Full neighbor lists for NEP (every neighbor within the largest pair cutoff, images included).

Wraps :func:`dpcompress.neighbors.build_neighbor_list` with ``mixed_types`` and a
``sel`` that grows until nothing overflows, so no neighbor is ever dropped.
"""

import numpy as np

from ..neighbors import build_neighbor_list


def _guess_sel(coords, cell, rcut):
    n = len(coords)
    if cell is not None:
        vol = abs(np.linalg.det(np.asarray(cell, dtype=float).reshape(3, 3)))
        density = n / max(vol, 1e-12)
    else:
        span = np.ptp(coords, axis=0) + rcut
        density = n / float(np.prod(span))
    return int(1.3 * 4.0 / 3.0 * np.pi * rcut**3 * density) + 8


class NeighborCache:
    """Remembers the last ``sel`` so the next frame starts with a good guess."""

    def __init__(self):
        self.sel = None

    def build(self, coords, cell, types, rcut, n_threads=None):
        sel = self.sel or _guess_sel(coords, cell, rcut)
        while True:
            nl = build_neighbor_list(coords, cell, np.zeros(len(coords), dtype=np.int64), rcut, [sel],
                                     mixed_types=True, n_threads=n_threads)
            need = int((nl.counts + nl.overflow).max()) if len(coords) else 0
            if not nl.overflow.any():
                self.sel = max(sel if need > 0.5 * sel else need + 8, 1)
                return nl
            sel = need + 8


def pair_arrays(nl):
    """Flatten a padded list to (pi, pj, vec) over real neighbors."""
    cnt = nl.counts[:, 0]
    mask = np.arange(nl.index.shape[1])[None, :] < cnt[:, None]
    pi = np.repeat(np.arange(len(cnt)), cnt)
    return pi, nl.index[mask], nl.vectors[mask]

