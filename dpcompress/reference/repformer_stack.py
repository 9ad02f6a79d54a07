r"""Numpy twin of the DPA-2 repformer stack of ``src_c/dpc_repformer.c`` (same names, same arguments).

The stack is what lies between the repinit and the fitting net (``docs/dp-file-attention.md`` section 2):

.. math::

    g_1 = \varphi(D^{ri} W_s\ [+ E_{t} W_t]),\quad g_{2,ij} = \varphi(P_{ij0}\,w + b),\quad h_{2,ij} = P_{ij,1:4},

then the layers of :mod:`dpcompress.evaluators.exact.repformer_layer`.  :func:`stack_inputs` cuts a
frame at the stack's edges (the repinit output :math:`D^{ri}` and the pair inputs :math:`P`), exactly as
:func:`dpcompress.evaluators.exact.dpa2.descriptor_forward` does, for the compressed form's options
(no exclude_types, smooth, environment-matrix pair inputs).
"""

import numpy as np

from ..core.env_mat import smooth_switch
from ..evaluators.exact import dpa2 as exact_dpa2
from ..evaluators.exact.dpa2 import repformer_stack_backward, repformer_stack_forward  # the stack's math, once


def stack_inputs(desc, types, index, vectors, rf_real):
    """``(D0, P, idx, m, sw)``: the repinit output (n, n0), pair inputs (n, J, 4), slot atoms (n, J), masks."""
    rep = desc.repinit
    real = index >= 0
    jtype = np.where(real, types[np.maximum(index, 0)], -1)
    S = rep.nnei
    D0, _ = exact_dpa2._repinit_math(rep).descriptor_forward(rep, types, jtype[:, :S], vectors[:, :S], real[:, :S],
                                                             np.zeros_like(real[:, :S]))
    J = desc.rf_nsel
    vec = vectors[:, :J]
    P, _ = exact_dpa2.pair_inputs(desc, types, vec, rf_real)
    r = np.where(rf_real, np.linalg.norm(vec, axis=-1), 1.0)
    sw = smooth_switch(r, desc.rf_rcut_smth, desc.rf_rcut)[0] * rf_real
    return D0, P, np.maximum(index[:, :J], 0), rf_real.astype(np.float64), sw


__all__ = ["stack_inputs", "repformer_stack_forward", "repformer_stack_backward"]
