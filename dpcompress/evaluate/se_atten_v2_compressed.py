r"""One step of a compressed se_atten_v2 model (no attention layers) on the CPU.

The se_e2_a kernels in gated mode (``src_c/dpc_se_a_tab.c``): one mixed-type
block of ``sel`` slots, one table of the geometric net, and the exact
stripped type-embedding outputs :math:`S` as the gate table.  Per slot the
kernel gets the row :math:`q` of :math:`S` (the (center, neighbor) type pair,
or the neighbor type with ``type_one_side``; -1 for pairs of the descriptor's
``exclude_types``, whose rows are zeroed)::

    neighbor list (one block, nearest first) ─► gate rows q ─► fused forward ─► T (natoms, 4, M)
    D = [Tᵀ T_<, E_t]  ─► fitting ─► ∂E/∂T ─► fused backward (incl. the gate's sw'(r) term) ─► ∂E/∂r_ij

The appended type embedding :math:`E_{t_i}` does not depend on coordinates; its
columns of :math:`\partial E/\partial D` are dropped.
"""

from dataclasses import dataclass

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

#: forward() needs the neighbor types and the zeroed slots to find each slot's gate row
NEEDS_MASKS = True


@dataclass(frozen=True)
class Packed:
    """The kernels' :class:`PackedTables` plus what the Python side of a step needs."""

    tables: PackedTables
    descriptor: object  # DescriptorSeAttenV2 (compressed)


def pack(model, desc):
    """Module protocol of :mod:`dpcompress.evaluate.frame`: one block, one table, the gate table."""
    tab = desc.tables
    nt = desc.ntypes
    avg, std = desc.davg[:, :1, :], desc.dstd[:, :1, :]
    if not (np.all(desc.davg == avg) and np.all(desc.dstd == std)):
        raise UnsupportedModelError(
            "davg/dstd differ between neighbor slots; compressed evaluation needs per-center-type statistics "
            "(as DeePMD-kit computes them)"
        )
    tables = PackedTables(
        sel_offsets=np.array([0, desc.nnei]),
        avg=avg,
        std=std,
        block_mode=np.zeros((nt, 1), dtype=np.int8),  # pair exclusions are per neighbor: gate rows -1
        table_of=np.zeros((nt, 1), dtype=np.int64),
        tab_real=np.array([[tab.lower, tab.upper, tab.xmax, tab.stride0, tab.stride1]]),
        tab_count=np.array([[tab.n_fine, tab.n_coarse, tab.n_below]], dtype=np.int64),
        tab_offset=np.zeros(1, dtype=np.int64),
        coef=tab.coef.ravel(),
        ncoef=tab.coef.shape[1],
        n_channels=tab.coef.shape[2],
        rcut=desc.rcut,
        rcut_smth=desc.rcut_smth,
        protection=desc.env_protection,
        gate=desc.strip_table,
    )
    tables.axis_neuron = desc.axis_neuron
    return Packed(tables, desc)


def gate_index(desc, center_types, neighbor_types, zeroed):
    """Row of the gate table per slot (int64, C order); -1 on zeroed slots (and on padding, never read)."""
    q = desc.gate_rows(center_types, neighbor_types)
    return np.ascontiguousarray(np.where(zeroed | (neighbor_types < 0), -1, q), dtype=np.int64)


def forward(packed, center_types, nlist, real, zeroed, neighbor_types, n_threads=1, check=False):
    """Descriptor ``D`` (natoms, M*A [+ tebd_dim]) with the fused forward kernel in gated mode.

    Returns
    -------
    D, state, beyond : ndarray, tuple, ndarray of 2 ints
    """
    desc = packed.descriptor
    q = gate_index(desc, center_types, neighbor_types, zeroed)
    out = se_a_tab_forward(packed.tables, center_types, nlist.vectors, nlist.counts, n_threads, check, gate_index=q)
    T, beyond = out if check else (out, np.zeros((2, 1), dtype=np.int64))
    n, _, M = T.shape
    A = desc.axis_neuron
    D = descriptor_from_T(T, A, n_threads)
    if desc.concat_output_tebd:
        D = np.concatenate([D, desc.type_embedding[center_types]], axis=1)
    return D, (center_types, nlist, T, q), beyond.sum(axis=1)


def backward(packed, state, dD, n_threads=1):
    """``dE/dr_ij`` (natoms, nnei, 3) from ``dE/dD`` with the fused backward kernel."""
    center_types, nlist, T, q = state
    A = packed.descriptor.axis_neuron
    dT = descriptor_gradient_to_T(T, dD[:, : T.shape[2] * A], A, n_threads)
    return se_a_tab_backward(packed.tables, center_types, nlist.vectors, nlist.counts, dT, n_threads, gate_index=q)


scatter = scatter_pair_gradients
