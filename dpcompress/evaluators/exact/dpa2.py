r"""DPA-2 in numpy, exact, one frame at a time: forward, hand-derived backward, forces and virials.

DPA-2 passes messages (a neighbor's :math:`g_1` enters every repformer layer), so it does not fit the
per-center ``descriptor_forward`` / ``descriptor_backward`` contract of the other descriptors: this
module evaluates a whole frame.

Neighbor lists (``docs/dp-file-attention.md`` section 2): one list sorted by distance for the repinit
(its rcut and nsel, mixed types); the repformer list is its first ``rf_nsel`` slots with every
entry at :math:`r \ge r_c'` made empty.  Slots hold local atom indices (periodic images fold back
onto their atom), so a neighbor's :math:`g_1` is :math:`g_1[\mathrm{idx}]` however small the cell:
this is DeePMD-kit's ``g1_ext = g1[mapping]``.

Forward: repinit (:mod:`.se_atten_v2`, strip; :mod:`.repinit_concat`, concat),
:math:`g_1 = \varphi(D^{ri} W_s [+ E_t W_t])`,
:math:`g_2 = \varphi(\tilde R'_0 w + b)`, :math:`h_2 = \tilde R'_{1:4}` (``direct_dist``: :math:`r/r_c'` and
:math:`\mathbf r/r_c'`, :func:`pair_inputs`), the layers of
:mod:`.repformer_layer`, :math:`D_i = [g_1, E_{t_i}]`, the fitting nets.

Backward: from weights :math:`\omega_i` on the atomic energies,
:math:`\partial(\sum_i \omega_i e_i)/\partial\mathbf r_{ks}` for every slot s of every atom k
(repinit and repformer slots together; a repformer slot is a repinit slot).  With
:math:`\omega = 1` this gives :math:`\mathbf G_{ks}`: :math:`\mathbf F_k \mathrel{+}= \mathbf G_{ks}`,
:math:`\mathbf F_l \mathrel{-}= \mathbf G_{ks}` (l the slot's atom).  Per-atom virial, DeePMD-kit's
definition (each atom energy's derivative taken relative to its own atom :math:`i`):

.. math::

    W_a = -\sum_i \frac{\partial e_i}{\partial \mathbf x_a}\otimes(\mathbf x_a - \mathbf x_i)
    \ \Rightarrow\
    W_l \mathrel{-}= \mathbf G_{ks}\otimes\mathbf r_{ks} + \mathbf C_{ks},\quad W_k \mathrel{+}= \mathbf C_{ks},\quad
    \mathbf C_{ks} = \mathbf G_{ks}\otimes\mathbf x_k - \mathbf H_{ks}

where :math:`\mathbf H_{ks,\cdot b}` is the backward pass with :math:`\omega_i = x_{i,b}` (three more
passes; the coordinates as given, unwrapped, as DeePMD-kit's ``DeepPot`` uses them: the per-atom split
of a periodic frame depends on which image of each atom is given, the sums do not).  Without message passing
:math:`\mathbf C = 0` and this is the neighbor convention of the other evaluators.
"""

import numpy as np

from ...core.activations import activate
from ...core.env_mat import env_mat_se_a, smooth_switch
from ...neighbors import build_neighbor_list
from ..base import Overflow, result_from_atoms
from . import repinit_concat, se_atten_v2
from .fitting import atomic_energy_masks, fitting_forward_backward, parameter_columns
from .repformer_layer import layer_backward, layer_forward


def _repinit_math(rep):
    """The repinit's forward/backward module: se_atten_v2 (strip) or :mod:`.repinit_concat`."""
    return repinit_concat if getattr(rep, "tebd_input_mode", "strip") == "concat" else se_atten_v2


def neighbor_lists(desc, coords, cell, types, n_threads=1):
    """The repinit list (index, vectors) and the repformer slots (its first ``rf_nsel``), with the overflow.

    Returns
    -------
    index, vectors : ndarray, (n, S) and (n, S, 3)
        Repinit slots, nearest first, -1 / 0 on padding.
    rf_real : ndarray of bool, (n, J)
        Repformer slot j (= repinit slot j) holds a neighbor within the repformer cutoff.
    overflow : Overflow
        Neighbors dropped by either ``nsel`` (repinit first, then the repformer's).
    """
    nl = build_neighbor_list(coords, cell, types, desc.repinit.rcut, list(desc.repinit.sel), mixed_types=True,
                             n_threads=n_threads)
    index, vectors = nl.index, nl.vectors
    S, J = index.shape[1], desc.rf_nsel
    if J > S:  # the repformer asks for more slots than the repinit keeps: pad (they stay empty)
        index = np.concatenate([index, np.full((len(index), J - S), -1, dtype=index.dtype)], axis=1)
        vectors = np.concatenate([vectors, np.zeros((len(index), J - S, 3))], axis=1)
    r = np.linalg.norm(vectors, axis=-1)
    within = (index >= 0) & (r < desc.rf_rcut)
    rf_real = within[:, :J]
    dropped = nl.overflow[:, 0] + within[:, J:].sum(axis=1)
    overflow = Overflow()
    if dropped.size and dropped.max() > 0:
        atom = int(np.argmax(dropped))
        overflow = Overflow(int(dropped.sum()), int(dropped[atom]), 0, atom, 0)
    return index, vectors, rf_real, overflow


def pair_inputs(desc, types, vec, real):
    r"""The repformer's pair inputs :math:`P = [g_2^{in}, h_2]` (n, J, 4) and
    :math:`\partial P/\partial\mathbf r` (n, J, 4, 3).

    Environment matrix (default): :math:`P = \tilde R'` (davg 0, so :math:`R/\sigma`); ``direct_dist``:
    :math:`P = [\,r, \mathbf r\,]/r_c'`.  Zero on empty slots.
    """
    if not desc.direct_dist:
        R, dR = env_mat_se_a(vec, real, desc.rf_rcut, desc.rf_rcut_smth, desc.env_protection)
        std = desc.rf_dstd[types]  # davg is zero (checked by the reader)
        return R / std, dR / std[..., None]
    v = np.where(real[..., None], vec, 0.0)
    r = np.where(real, np.linalg.norm(v, axis=-1), 1.0)
    P = np.concatenate([(r * real)[..., None], v], axis=-1) / desc.rf_rcut
    dP = np.zeros(vec.shape[:-1] + (4, 3))
    dP[..., 0, :] = v / r[..., None]
    dP[..., 1:, :] = np.eye(3) * real[..., None, None]
    return P, dP / desc.rf_rcut


def descriptor_forward(desc, types, index, vectors, rf_real):
    """:math:`D` (n, dim_out) of every local atom and the cache of :func:`descriptor_backward`."""
    rep = desc.repinit
    real = index >= 0
    jtype = np.where(real, types[np.maximum(index, 0)], -1)
    S = rep.nnei
    excluded = np.zeros(index.shape, dtype=bool)  # exclude_types: the slot stays taken, its neighbor is masked
    for a, b in desc.exclude_types:
        excluded |= (types[:, None] == a) & (jtype == b)
    D0, c_ri = _repinit_math(rep).descriptor_forward(rep, types, jtype[:, :S], vectors[:, :S], real[:, :S],
                                                     excluded[:, :S] & real[:, :S])
    J = desc.rf_nsel
    rf_real = rf_real & ~excluded[:, :J]
    vec = vectors[:, :J]
    m = rf_real.astype(np.float64)
    P, dP = pair_inputs(desc, types, vec, rf_real)
    r = np.where(rf_real, np.linalg.norm(vec, axis=-1), 1.0)
    sw, dsw_dr = smooth_switch(r, desc.rf_rcut_smth, desc.rf_rcut)
    sw = sw * m
    dsw_dvec = (dsw_dr * m / r)[..., None] * vec
    idx = np.maximum(index[:, :J], 0)
    g1, c_rf = repformer_stack_forward(desc, D0, types, P, idx, m, sw)
    D = np.concatenate([g1, desc.type_embedding[types]], axis=1) if desc.concat_output_tebd else g1
    cache = dict(c_ri=c_ri, types=types, dP=dP, dsw_dvec=dsw_dvec, m=m, idx=idx, g1_dim=g1.shape[1], stack=c_rf)
    return D, cache


def repformer_stack_forward(desc, D0, types, P, idx, m, sw):
    r"""The repformer stack: :math:`g_1 = \varphi(D^{ri} W_s [+ E_t W_t])`, :math:`g_2 = \varphi(P_0 w + b)`,
    :math:`h_2 = P_{1:4}`, then the layers; returns the last layer's :math:`g_1` (n, g1_dim) and the cache of
    :func:`repformer_stack_backward`.  (``src_c/dpc_repformer.c``'s stack; its twin re-exports this.)"""
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
    r"""``(dD0, dP, dsw)`` from :math:`\partial L/\partial g_1` of the last layer (layers in reverse, then the
    g2 embedding and the g1 transforms)."""
    dg1, dg2, dh2 = dg1_out, np.zeros_like(cache["g2"]), np.zeros_like(cache["h2"])
    dsw = np.zeros_like(m)
    for layer, c in zip(reversed(desc.layers), reversed(cache["layers"])):
        dg1, dg2, dh2, dsw_l = layer_backward(layer, c, dg1, dg2, dh2, idx, m, desc.smooth)
        dsw = dsw + dsw_l
    dP = np.concatenate([desc.g2_embd.back(dg2 * cache["d_g2"]), dh2], axis=-1)
    dz = dg1 * cache["d_g1"]
    return (dz if desc.g1_shape is None else desc.g1_shape.back(dz)), dP, dsw


def descriptor_backward(desc, cache, dD):
    r""":math:`\partial L/\partial\mathbf r_{ks}` (n, S, 3) for every repinit slot, from :math:`\bar D` (n, dim_out).

    Layers in reverse (:func:`~.repformer_layer.layer_backward`), then
    :math:`\bar{\tilde R}'_0 = (\bar g_2\odot\varphi')\,w^\top`, :math:`\bar{\tilde R}'_{1:4} = \bar h_2`,
    through the environment matrix and the switch of the repformer slots; :math:`\bar g_1\odot\varphi'`
    through the shape transform into the repinit's backward.
    """
    m, idx = cache["m"], cache["idx"]
    dD0, dPbar, dsw = repformer_stack_backward(desc, cache["stack"], idx, m, dD[:, : cache["g1_dim"]].copy())
    rf_grad = np.einsum("njk,njkb->njb", dPbar, cache["dP"]) + dsw[..., None] * cache["dsw_dvec"]
    rf_grad *= m[..., None]
    grad = _repinit_math(desc.repinit).descriptor_backward(desc.repinit, cache["c_ri"], dD0)
    J = min(desc.rf_nsel, grad.shape[1])
    grad[:, :J] += rf_grad[:, :J]
    return grad


def evaluate_frame(model, coords, cell, types, n_threads=1, fparam=None, aparam=None):
    """Energy, forces and (per-atom) virials of one frame of a DPA-2 model: a :class:`FrameResult`."""
    desc = model.descriptor
    types = np.ascontiguousarray(types, dtype=np.int64)
    coords = np.asarray(coords, dtype=np.float64)
    natoms = len(types)
    params = parameter_columns(model.fitting, natoms, fparam, aparam)
    index, vectors, rf_real, overflow = neighbor_lists(desc, coords, cell, types, n_threads)
    D, cache = descriptor_forward(desc, types, index, vectors, rf_real)
    fit_mask, keep_mask = atomic_energy_masks(model, types)
    e_fit, dD = fitting_forward_backward(model, types, D, params)
    atom_energy = keep_mask * (fit_mask * e_fit + model.out_bias[types])
    dD = dD * (fit_mask * keep_mask)[:, None]
    G = descriptor_backward(desc, cache, dD)
    x = coords  # as given, not folded into the cell: DeePMD-kit's atomic virial uses them so (checked to 2e-15)
    H = np.stack([descriptor_backward(desc, cache, dD * x[:, b:b + 1]) for b in range(3)], axis=-1)
    rows, slots = np.nonzero(index[:, : G.shape[1]] >= 0)
    nbr = index[rows, slots]
    g = G[rows, slots]
    r = vectors[rows, slots]
    corr = g[:, :, None] * x[rows][:, None, :] - H[rows, slots]
    force = np.zeros((natoms, 3))
    atom_virial = np.zeros((natoms, 3, 3))
    np.add.at(force, rows, g)
    np.add.at(force, nbr, -g)
    np.add.at(atom_virial, nbr, -g[:, :, None] * r[:, None, :] - corr)
    np.add.at(atom_virial, rows, corr)
    return result_from_atoms(atom_energy, force, atom_virial, overflow=overflow)


def descriptors(model, coords, cell, types, n_threads=1):
    """Every atom's :math:`D_i` of one frame, (natoms, dim_out)."""
    types = np.ascontiguousarray(types, dtype=np.int64)
    index, vectors, rf_real, _ = neighbor_lists(model.descriptor, coords, cell, types, n_threads)
    return descriptor_forward(model.descriptor, types, index, vectors, rf_real)[0]


__all__ = ["neighbor_lists", "descriptor_forward", "descriptor_backward", "repformer_stack_forward",
           "repformer_stack_backward", "evaluate_frame", "descriptors"]
