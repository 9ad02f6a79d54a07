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

from ..core.activations import activate
from ..core.env_mat import smooth_switch
from ..evaluators.exact import dpa2 as exact_dpa2
from ..evaluators.exact.repformer_layer import layer_backward, layer_forward


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


def repformer_stack_forward(desc, D0, types, P, idx, m, sw):
    """g1 of the last layer (n, g1_dim) and the cache of :func:`repformer_stack_backward`."""
    z = D0 if desc.g1_shape is None else desc.g1_shape(D0)
    if desc.tebd_transform is not None:
        z = z + desc.tebd_transform(desc.type_embedding[types])
    g1, d_g1 = activate(desc.activation, z, order=1)
    g2, d_g2 = activate(desc.activation, desc.g2_embd(P[..., :1]), order=1)
    h2 = P[..., 1:]
    caches = []
    for layer in desc.layers:
        g1, g2, h2, c = layer_forward(layer, g1, g2, h2, idx, m, sw, desc.smooth, desc.activation, desc.use_sqrt_nnei)
        caches.append(c)
    return g1, dict(d_g1=d_g1, d_g2=d_g2, layers=caches, g2=g2, h2=h2)


def repformer_stack_backward(desc, cache, idx, m, dg1_out):
    """``(dD0, dP, dsw)`` from :math:`\\partial L/\\partial g_1` of the last layer."""
    dg1, dg2, dh2 = dg1_out, np.zeros_like(cache["g2"]), np.zeros_like(cache["h2"])
    dsw = np.zeros_like(m)
    for layer, c in zip(reversed(desc.layers), reversed(cache["layers"])):
        dg1, dg2, dh2, dsw_l = layer_backward(layer, c, dg1, dg2, dh2, idx, m, desc.smooth)
        dsw = dsw + dsw_l
    dP = np.concatenate([desc.g2_embd.back(dg2 * cache["d_g2"]), dh2], axis=-1)
    dz = dg1 * cache["d_g1"]
    return (dz if desc.g1_shape is None else desc.g1_shape.back(dz)), dP, dsw


__all__ = ["stack_inputs", "repformer_stack_forward", "repformer_stack_backward"]
