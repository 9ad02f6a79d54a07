r"""One step of a compressed se_e2_r model on the CPU: the se_e2_a kernels in radial mode.

se_e2_r has se_e2_a's per-type blocks and exclusion modes; only the contraction
differs.  The fused kernel (``src_c/dpc_se_a_tab.c`` with ``n_rows = 1``) returns
:math:`T_i = \frac1N \sum_j g(x_{ij})` over all slots (padding adds :math:`g(x_\text{pad})`,
rows zeroed by ``exclude_types`` add :math:`g(0)`), and

.. math::

    D_i = \tfrac15 T_i,\qquad \frac{\partial E}{\partial T_i} = \tfrac15 \frac{\partial E}{\partial D_i}.
"""

import numpy as np

from .._ext.se_a_tab import scatter_pair_gradients, se_a_tab_backward, se_a_tab_forward
from ..models.structures import DescriptorSeR
from .se_a_compressed import pack_descriptor

#: forward() reads counts and block modes; the pipeline need not build slot masks
NEEDS_MASKS = False


def pack(model, desc):
    """Module protocol of :mod:`dpcompress.evaluate.frame`: the kernels' flat arrays, radial mode."""
    return pack_descriptor(model, desc, n_rows=1)


def forward(packed, center_types, nlist, real, zeroed, neighbor_types, n_threads=1, check=False):
    """Descriptor ``D`` (natoms, M) with the fused forward kernel (masks unused: counts and block modes).

    Returns
    -------
    D, state, beyond : ndarray, tuple, ndarray of 2 ints
    """
    out = se_a_tab_forward(packed, center_types, nlist.vectors, nlist.counts, n_threads, check)
    T, beyond = out if check else (out, np.zeros((2, 1), dtype=np.int64))
    return T[:, 0, :] * DescriptorSeR.RESCALE, (center_types, nlist), beyond.sum(axis=1)


def backward(packed, state, dD, n_threads=1):
    """``dE/dr_ij`` (natoms, nnei, 3) from ``dE/dD`` with the fused backward kernel."""
    center_types, nlist = state
    dT = np.ascontiguousarray((dD * DescriptorSeR.RESCALE)[:, None, :])
    return se_a_tab_backward(packed, center_types, nlist.vectors, nlist.counts, dT, n_threads)


scatter = scatter_pair_gradients
