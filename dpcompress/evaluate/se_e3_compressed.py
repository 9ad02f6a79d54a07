r"""One step of a compressed se_e3 (se_t) model on the CPU.

Pipeline per frame (all arrays batched over atoms)::

    neighbor list ──► fused forward kernel ──► D (natoms, M)
                                    e, ∂e/∂D                    (fitting net, BLAS)
    ∂E/∂D ──► fused backward kernel ──► ∂E/∂r_ij (natoms, nnei, 3)
                                    scatter (fixed order) ──► forces, per-atom virials

The kernels (``src_c/dpc_se_t_tab.c``) visit every pair of real neighbors
(j, k) of a center once per pass, look the table up once at
:math:`e_{jk} = \tilde{\mathbf r}_j\cdot\tilde{\mathbf r}_k` and accumulate
straight into D (forward) or into :math:`\partial E/\partial\tilde{\mathbf r}`
(backward); the :math:`n_j \times n_k \times M` embedding tensor is never stored.
"""

import numpy as np

from .._ext.se_a_tab import scatter_pair_gradients
from .._ext.se_t_tab import PackedSeTTables, se_t_tab_backward, se_t_tab_forward
from ..core.errors import UnsupportedModelError
from .se_a_compressed import block_modes, block_statistics

#: forward() reads counts and block modes; the pipeline need not build slot masks
NEEDS_MASKS = False


def pack_descriptor(model, desc=None):
    """Flatten a compressed se_e3 descriptor's tables into the kernels' :class:`PackedSeTTables`."""
    desc = model.descriptor if desc is None else desc
    nt = desc.ntypes
    tables, table_of = [], -np.ones((nt, nt), dtype=np.int64)
    for a in range(nt):
        for b in range(a, nt):
            if desc.sel[a] == 0 or desc.sel[b] == 0:
                continue
            tab = desc.embedding_table(a, b)
            if tab is None:
                raise UnsupportedModelError(f"se_e3: no table for neighbor types ({a}, {b})")
            table_of[a, b] = len(tables)
            tables.append(tab)
    if not tables:
        raise UnsupportedModelError("se_e3: no neighbor-type pair has slots on both sides")
    orders = {tab.coef.shape[1] for tab in tables}
    widths = {tab.coef.shape[2] for tab in tables}
    if len(orders) != 1 or len(widths) != 1 or widths != {desc.n_channels}:
        raise UnsupportedModelError("all tables of a model must share the order and the channel count")
    offsets = np.cumsum([0] + [tab.coef.size for tab in tables])
    avg, std = block_statistics(desc)
    return PackedSeTTables(
        sel_offsets=np.concatenate([[0], np.cumsum(desc.sel)]),
        avg=avg,
        std=std,
        block_mode=block_modes(model, desc),
        table_of=table_of,
        tab_real=np.array([[tab.lower, tab.upper, tab.xmax, tab.stride0, tab.stride1] for tab in tables]),
        tab_count=np.array([[tab.n_fine, tab.n_coarse, tab.n_below] for tab in tables], dtype=np.int64),
        tab_offset=offsets[:-1].astype(np.int64),
        coef=np.concatenate([tab.coef.ravel() for tab in tables]),
        ncoef=orders.pop(),
        n_channels=widths.pop(),
        rcut=desc.rcut,
        rcut_smth=desc.rcut_smth,
        protection=desc.env_protection,
    )


def pack(model, desc):
    """Module protocol of :mod:`dpcompress.evaluate.frame`: the kernels' flat arrays for ``desc``."""
    return pack_descriptor(model, desc)


def forward(packed, center_types, nlist, real, zeroed, neighbor_types, n_threads=1, check=False):
    """Descriptor ``D`` (natoms, M) with the fused forward kernel.

    The kernel reads the real neighbors from ``nlist.counts`` and applies the
    exclusions through the block modes, so ``real``/``zeroed``/``neighbor_types``
    are not needed.

    Returns
    -------
    D, state, beyond : ndarray, tuple, ndarray of 2 ints
        ``beyond`` counts the entries :math:`e_{jk}` of real neighbor pairs outside
        the fine region and outside the whole table.
    """
    out = se_t_tab_forward(packed, center_types, nlist.vectors, nlist.counts, n_threads, check)
    D, beyond = out if check else (out, np.zeros((2, 1), dtype=np.int64))
    return D, (center_types, nlist), beyond.sum(axis=1)


def backward(packed, state, dD, n_threads=1):
    """``dE/dr_ij`` (natoms, nnei, 3) from ``dE/dD`` with the fused backward kernel."""
    center_types, nlist = state
    return se_t_tab_backward(packed, center_types, nlist.vectors, nlist.counts, np.ascontiguousarray(dD), n_threads)


scatter = scatter_pair_gradients
