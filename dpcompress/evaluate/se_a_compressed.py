r"""One step of a compressed se_e2_a model on the CPU.

Pipeline per frame (all arrays batched over atoms)::

    neighbor list ──► fused forward kernel ──► T (natoms, 4, M)
                                    D = Tᵀ T_<                  (C, per atom)
                                    e, ∂e/∂D                    (fitting net: C + BLAS dgemm)
    ∂E/∂T = T_< ∂Dᵀ + [T ∂D]_<  ──► fused backward kernel ──► ∂E/∂r_ij (natoms, nnei, 3)
                                    scatter (fixed order) ──► forces, per-atom virials

The fused kernels (``src_c/dpc_se_a_tab.c``) read each neighbor's table row
once per pass and never store the nnei × M embedding matrix.
"""

import numpy as np

from .._ext.se_a_tab import (
    PackedTables,
    descriptor_from_T,
    descriptor_gradient_to_T,
    scatter_pair_gradients,
    se_a_tab_backward,
    se_a_tab_forward,
)
from ..core.errors import UnsupportedModelError


def block_statistics(desc):
    """davg/dstd reduced to one row per (center type, neighbor block).

    DeePMD-kit's statistics are identical for every slot of a block; the fused
    kernel relies on that (all padding slots of a block share one value).

    Returns
    -------
    avg, std : ndarray, shape (ntypes, nblocks, 4)
    """
    offsets = np.concatenate([[0], np.cumsum(desc.sel)])
    nt = desc.davg.shape[0]
    avg = np.zeros((nt, desc.ntypes, 4))
    std = np.ones((nt, desc.ntypes, 4))
    for b in range(desc.ntypes):
        if desc.sel[b] == 0:
            continue
        sl = slice(offsets[b], offsets[b + 1])
        for name, src, dst in (("davg", desc.davg, avg), ("dstd", desc.dstd, std)):
            block = src[:, sl]
            if not np.all(block == block[:, :1]):
                raise UnsupportedModelError(
                    f"{name} differs between the slots of neighbor block {b}; compressed evaluation needs "
                    "per-block statistics (as DeePMD-kit computes them)"
                )
            dst[:, b] = block[:, 0]
    return avg, std


def block_modes(model, desc):
    """Exclusion mode per (center type, block): 0 normal, 1 rows zeroed, 2 neighbors removed."""
    nt = model.ntypes
    mode = np.zeros((nt, nt), dtype=np.int8)
    for t in range(nt):
        for b in range(nt):
            if (t, b) in model.pair_exclude_types:
                mode[t, b] = 2
            elif (t, b) in desc.exclude_types:
                mode[t, b] = 1
    return mode


def pack_descriptor(model, desc=None, **mode):
    """Flatten a compressed se_e2_a descriptor's tables into the kernels' :class:`PackedTables`.

    ``mode`` is passed on to :class:`PackedTables` (``n_rows=1``: the radial mode of se_e2_r,
    whose per-type layout is the same).
    """
    desc = model.descriptor if desc is None else desc
    nt = model.ntypes
    tables, table_of = [], -np.ones((nt, nt), dtype=np.int64)
    index_of = {}
    for t in range(nt):
        for b in range(nt):
            if desc.sel[b] == 0:
                continue
            tab = desc.embedding_table(t, b)
            if id(tab) not in index_of:
                index_of[id(tab)] = len(tables)
                tables.append(tab)
            table_of[t, b] = index_of[id(tab)]
    orders = {tab.coef.shape[1] for tab in tables}
    widths = {tab.coef.shape[2] for tab in tables}
    if len(orders) != 1 or len(widths) != 1:
        raise UnsupportedModelError("all tables of a model must share the order and the channel count")
    offsets = np.cumsum([0] + [tab.coef.size for tab in tables])
    avg, std = block_statistics(desc)
    packed = PackedTables(
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
        **mode,
    )
    packed.axis_neuron = getattr(desc, "axis_neuron", 0)
    return packed


#: forward() reads counts and block modes; the pipeline need not build slot masks
NEEDS_MASKS = False


def pack(model, desc):
    """Module protocol of :mod:`dpcompress.evaluate.frame`: the kernels' flat arrays for ``desc``."""
    return pack_descriptor(model, desc)


def forward(packed, center_types, nlist, real, zeroed, neighbor_types, n_threads=1, check=False):
    """Descriptor ``D`` (natoms, M*A) with the fused forward kernel.

    The kernel reads the real neighbors from ``nlist.counts`` and applies the
    descriptor's exclusions through the block modes, so ``real``/``zeroed``/
    ``neighbor_types`` (used by other descriptors) are not needed here.

    Returns
    -------
    D, state, beyond : ndarray, tuple, ndarray of 2 ints
    """
    out = se_a_tab_forward(packed, center_types, nlist.vectors, nlist.counts, n_threads, check)
    T, beyond = out if check else (out, np.zeros((2, 1), dtype=np.int64))
    n, _, M = T.shape
    A = packed.axis_neuron
    D = descriptor_from_T(T, A, n_threads)
    return D, (center_types, nlist, T), beyond.sum(axis=1)


def backward(packed, state, dD, n_threads=1):
    """``dE/dr_ij`` (natoms, nnei, 3) from ``dE/dD`` with the fused backward kernel."""
    center_types, nlist, T = state
    dT = descriptor_gradient_to_T(T, dD, packed.axis_neuron, n_threads)
    return se_a_tab_backward(packed, center_types, nlist.vectors, nlist.counts, dT, n_threads)


scatter = scatter_pair_gradients
