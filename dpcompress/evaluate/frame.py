r"""One frame of any supported model: neighbor lists, descriptors, fitting net, forces.

The same pipeline serves the exact uncompressed model (numpy reference
modules, :mod:`dpcompress.reference`) and compressed models (fused kernels,
:mod:`dpcompress.evaluate`)::

    for every descriptor part (one, or several for hybrid):
        neighbor list (its rcut, sel, per-type or mixed)  ->  minus excluded pairs
        D_part, state = forward(...)
    D = [D_part ...]            e_i = F_t(D_i) + biases        dE/dD
    for every part:  dE/dr_ij = backward(state, dE/dD_part)  ->  forces, per-atom virials

With :math:`\mathbf g_{ij} = \partial E/\partial\mathbf r_{ij}`:
:math:`\mathbf F_i \mathrel{+}= \mathbf g_{ij}`, :math:`\mathbf F_j \mathrel{-}= \mathbf g_{ij}`,
:math:`W^{(j)}_{ab} \mathrel{-}= g_{ij,a} r_{ij,b}` (DeePMD-kit assigns the pair
virial to the neighbor).
"""

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..core.errors import UnsupportedModelError
from ..neighbors import build_neighbor_list
from ..neighbors.exclusions import remove_pairs

#: descriptor type -> (numpy reference module, compressed-kernel module)
MODULES = {
    "se_e2_a": ("dpcompress.reference.se_e2_a", "dpcompress.evaluate.se_a_compressed"),
    "se_e3": ("dpcompress.reference.se_e3", "dpcompress.evaluate.se_e3_compressed"),
}
MODULES.update({k: (f"dpcompress.reference.{k}", f"dpcompress.evaluate.{k}_compressed") for k in ("se_e2_r", "se_atten_v2")})


def descriptor_parts(descriptor):
    """The descriptors a model concatenates: ``descriptor.parts`` for hybrid, else itself."""
    return tuple(getattr(descriptor, "parts", None) or (descriptor,))


@dataclass
class Part:
    descriptor: Any
    module: Any
    packed: Optional[Any] = None  # compressed kernels' flat arrays


@dataclass
class Plan:
    """What :func:`evaluate_frame` needs besides the frame, prepared once per model."""

    model: Any
    parts: tuple
    compressed: bool


def make_plan(model):
    parts = []
    for desc in descriptor_parts(model.descriptor):
        if desc.type_name == "hybrid":
            raise UnsupportedModelError("a hybrid descriptor inside a hybrid is not supported")
        if desc.type_name not in MODULES:
            raise UnsupportedModelError(f"no evaluator for descriptor {desc.type_name!r}")
        ref_name, cmp_name = MODULES[desc.type_name]
        if model.is_compressed:
            mod = importlib.import_module(cmp_name)
            parts.append(Part(desc, mod, mod.pack(model, desc)))
        else:
            parts.append(Part(desc, importlib.import_module(ref_name)))
    return Plan(model, tuple(parts), model.is_compressed)


def slot_masks(desc, atom_types, center_types, index):
    """Real slots, slots zeroed by the descriptor's ``exclude_types``, and neighbor types (-1 = padding)."""
    real = index >= 0
    jtype = np.where(real, atom_types[np.maximum(index, 0)], -1)
    zeroed = np.zeros(index.shape, dtype=bool)
    for a, b in desc.exclude_types:
        zeroed |= (center_types[:, None] == a) & (jtype == b)
    return real, zeroed & real, jtype


#: The exact (numpy) path evaluates centers in chunks so that its nnei x M
#: intermediates stay small on large frames; chunking changes no number.
REFERENCE_CHUNK = 512


def _rows(nlist, sl):
    return dataclasses.replace(nlist, index=nlist.index[sl], vectors=nlist.vectors[sl], counts=nlist.counts[sl], overflow=nlist.overflow[sl])


def _scatter_rows(force, atom_virial, start, index, vectors, pair_grad):
    """Numpy scatter for a chunk of centers starting at atom ``start``."""
    rows, slots = np.nonzero(index >= 0)
    g = pair_grad[rows, slots]
    np.add.at(force, rows + start, g)
    np.add.at(force, index[rows, slots], -g)
    np.add.at(atom_virial, index[rows, slots], -g[:, :, None] * vectors[rows, slots][:, None, :])


def evaluate_frame(plan, coords, cell, atom_types, n_threads=1, check=False, n_centers=None):
    """Energy, forces and virials of one frame.

    Parameters
    ----------
    n_centers : int or None
        Only the first ``n_centers`` atoms are centers (their energies are
        computed); the others are ghosts that only serve as neighbors — a
        rank's share in domain decomposition.  None: every atom.

    Returns
    -------
    dict
        ``energy`` (float, the centers' sum), ``force`` (natoms, 3), ``virial`` (3, 3),
        ``atom_energy`` (n_centers,), ``atom_virial`` (natoms, 3, 3), ``overflow``
        (per part, NeighborList.overflow of the centers), and with ``check``
        (compressed) ``beyond_fine``, ``beyond_table``.
    """
    from ..reference.dp_model import atomic_energy_masks, fitting_forward_backward
    from .fitting import fitting_energy_and_gradient

    model = plan.model
    types = np.ascontiguousarray(atom_types, dtype=np.int64)
    natoms = len(types)
    ncenter = natoms if n_centers is None else int(n_centers)
    nlists, overflow = [], []
    for part in plan.parts:
        d = part.descriptor
        nl = build_neighbor_list(coords, cell, types, d.rcut, list(d.sel), mixed_types=d.mixed_types,
                                 n_threads=n_threads, n_centers=ncenter)
        overflow.append(nl.overflow)
        nlists.append(remove_pairs(nl, types, model.pair_exclude_types))
    fit_mask, keep_mask = atomic_energy_masks(model, types)
    atom_energy = np.zeros(ncenter)
    force = np.zeros((natoms, 3))
    atom_virial = np.zeros((natoms, 3, 3))
    beyond = np.zeros(2, dtype=np.int64)
    chunk = ncenter if plan.compressed else REFERENCE_CHUNK
    for start in range(0, ncenter, max(chunk, 1)):
        sl = slice(start, min(start + chunk, ncenter))
        ctypes = types[sl]
        states, D_parts = [], []
        for part, nl_all in zip(plan.parts, nlists):
            nl = nl_all if chunk == ncenter else _rows(nl_all, sl)
            if plan.compressed and not getattr(part.module, "NEEDS_MASKS", True):
                real = zeroed = jtype = None  # the kernel reads counts and block modes instead
            else:
                real, zeroed, jtype = slot_masks(part.descriptor, types, ctypes, nl.index)
            if plan.compressed:
                D, state, b = part.module.forward(part.packed, ctypes, nl, real, zeroed, jtype, n_threads, check)
                beyond += b
            else:
                D, state = part.module.descriptor_forward(part.descriptor, ctypes, jtype, nl.vectors, real, zeroed)
            states.append((nl, state))
            D_parts.append(D)
        D = np.concatenate(D_parts, axis=1) if len(D_parts) > 1 else D_parts[0]
        if plan.compressed:
            e_fit, dD = fitting_energy_and_gradient(model, ctypes, D, n_threads)
        else:
            e_fit, dD = fitting_forward_backward(model, ctypes, D)
        atom_energy[sl] = keep_mask[sl] * (fit_mask[sl] * e_fit + model.out_bias[ctypes])
        dD = dD * (fit_mask[sl] * keep_mask[sl])[:, None]
        col = 0
        for part, (nl, state), Dp in zip(plan.parts, states, D_parts):
            dDp = np.ascontiguousarray(dD[:, col : col + Dp.shape[1]])
            col += Dp.shape[1]
            if plan.compressed:
                pair_grad = part.module.backward(part.packed, state, dDp, n_threads)
                f, w = part.module.scatter(nl.index, nl.vectors, pair_grad, natoms)
                force += f
                atom_virial += w
            else:
                pair_grad = part.module.descriptor_backward(part.descriptor, state, dDp)
                _scatter_rows(force, atom_virial, start, nl.index, nl.vectors, pair_grad)
    out = dict(
        energy=float(atom_energy.sum()),
        force=force,
        virial=atom_virial.sum(axis=0),
        atom_energy=atom_energy,
        atom_virial=atom_virial,
        overflow=overflow,
    )
    if check:
        out["beyond_fine"], out["beyond_table"] = int(beyond[0]), int(beyond[1])
    return out
