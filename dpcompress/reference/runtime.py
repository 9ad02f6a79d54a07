r"""Numpy twin of the model runtime's ``dpc_compute`` (``src_c/dpc_runtime.c``) for DP energy models.

Written to be read: the whole frame at once, every step a twin of its kernel.  Rows by exhaustive
search (:func:`~dpcompress.reference.neighbors.brute_force_neighbor_list`), excluded pairs
removed, the parts' table kernels (:mod:`.se_a_tab`, :mod:`.se_t_tab`) on the arrays the ``.dpc``
file holds (each descriptor unit's ``pack``), the fitting nets, the energies
:math:`e_i = k_t(f_t(F_t(D_i) + b_t) + \beta_t)`, and the scatter.
"""

import numpy as np

from ..descriptors import parts, unit_of
from ..descriptors.base import KIND_SE_A, KIND_SE_ATTEN, KIND_SE_R
from ..descriptors.se_e3_tebd import KIND_SE_T_TEBD
from ..evaluators.exact import remove_pairs
from .fitting import fitting_forward_backward
from .neighbors import brute_force_neighbor_list
from .se_a_tab import descriptor_from_T, descriptor_gradient_to_T, scatter_pair_gradients, se_a_tab_backward, se_a_tab_forward
from .se_t_tab import se_t_tab_backward, se_t_tab_forward

#: se_e2_r's output scale (DeePMD-kit's res_rescale)
SE_R_RESCALE = 0.2


def _gate_index(p, part, ctypes, types, index):
    q = part.arrays["gate_of"][ctypes[:, None], types[np.maximum(index, 0)]]
    return np.ascontiguousarray(np.where(index < 0, -1, q), dtype=np.int64)


def compute(model, coords, cell, types):
    """Per-atom energies, forces and per-atom virials (natoms, 9) of a compressed :class:`DPModel`.

    Returns
    -------
    atom_energy, force, atom_virial, beyond : ndarray, ndarray, ndarray, (int, int)
    """
    types = np.asarray(types, dtype=np.int64)
    natoms = len(types)
    steps, D_parts, beyond = [], [], np.zeros(2, dtype=np.int64)
    for desc in parts(model.descriptor):
        packed = unit_of(desc).pack(desc, model.pair_exclude_types)
        p = packed.kernel_view()
        kind = packed.ints["kind"]
        nl = brute_force_neighbor_list(coords, cell, types, desc.rcut, list(desc.sel), mixed_types=desc.mixed_types)
        nl = remove_pairs(nl, types, model.pair_exclude_types)
        gate = _gate_index(p, packed, types, types, nl.index) if kind == KIND_SE_ATTEN else None
        if kind in (KIND_SE_A, KIND_SE_R, KIND_SE_ATTEN):
            T, b = se_a_tab_forward(p, types, nl.vectors, nl.counts, 1, True, gate_index=gate)
            if kind == KIND_SE_R:
                D = T[:, 0, :] * SE_R_RESCALE
            else:
                D = descriptor_from_T(T, p.axis_neuron)
                if packed.ints["concat"]:
                    D = np.concatenate([D, packed.arrays["type_embedding"][types]], axis=1)
            state = T
        else:
            if kind == KIND_SE_T_TEBD:  # the gate reads each slot's neighbor type (gate_of: -1 when excluded)
                gate = _gate_index(p, packed, types, types, nl.index)
            D, b = se_t_tab_forward(p, types, nl.vectors, nl.counts, 1, True, neighbor_type=gate)
            if kind == KIND_SE_T_TEBD and packed.ints["concat"]:
                D = np.concatenate([D, packed.arrays["type_embedding"][types]], axis=1)
            state = None
        beyond += np.asarray(b).sum(axis=1)
        steps.append((kind, p, nl, gate, state, D.shape[1]))
        D_parts.append(D)
    D = np.concatenate(D_parts, axis=1)
    e_fit, dD = fitting_forward_backward(model, types, D)
    fit = np.array([0.0 if t in model.fitting.exclude_types else 1.0 for t in types])
    keep = np.array([0.0 if t in model.atom_exclude_types else 1.0 for t in types])
    atom_energy = keep * (fit * e_fit + model.out_bias[types])
    dD = dD * (fit * keep)[:, None]
    force = np.zeros((natoms, 3))
    atom_virial = np.zeros((natoms, 3, 3))
    col = 0
    for kind, p, nl, gate, state, width in steps:
        dDp = dD[:, col : col + width]
        col += width
        if kind == KIND_SE_R:
            grad = se_a_tab_backward(p, types, nl.vectors, nl.counts, (dDp * SE_R_RESCALE)[:, None, :])
        elif kind in (KIND_SE_A, KIND_SE_ATTEN):
            A = p.axis_neuron
            dT = descriptor_gradient_to_T(state, dDp[:, : state.shape[2] * A], A)
            grad = se_a_tab_backward(p, types, nl.vectors, nl.counts, dT, gate_index=gate)
        else:
            grad = se_t_tab_backward(p, types, nl.vectors, nl.counts, dDp[:, : p.n_channels], neighbor_type=gate)
        f, w = scatter_pair_gradients(nl.index, nl.vectors, grad, natoms)
        force += f
        atom_virial += w
    return atom_energy, force, atom_virial.reshape(natoms, 9), (int(beyond[0]), int(beyond[1]))


def compute_frames(model, xyz, cells, types):
    """Twin of :func:`dpcompress._ext.runtime.compute_frames` (``dpc_compute_frames``): :func:`compute`
    of each frame in turn (``cells[f]`` None for a cluster, ``types`` one row or one per frame).

    Returns
    -------
    atom_energy (nframes, natoms), force (nframes, natoms, 3), atom_virial (nframes, natoms, 9)
    """
    out = [compute(model, xyz[f], None if cells is None else cells[f], types if np.ndim(types) == 1 else types[f])
           for f in range(len(xyz))]
    return tuple(np.stack([o[k] for o in out]) for k in range(3))
