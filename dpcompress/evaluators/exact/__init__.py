r"""The exact (uncompressed) evaluator: DeePMD-kit's model in readable numpy.

Per frame, for every descriptor part (one, or several for hybrid): the neighbor list (its rcut,
sel, per-type or mixed) without the model's excluded pairs, then :math:`D` part by part, the
fitting nets and :math:`\partial E/\partial D`, and back through each part to
:math:`\mathbf g_{ij} = \partial E/\partial\mathbf r_{ij}`:
:math:`\mathbf F_i \mathrel{+}= \mathbf g_{ij}`, :math:`\mathbf F_j \mathrel{-}= \mathbf g_{ij}`,
:math:`W^{(j)}_{ab} \mathrel{-}= g_{ij,a} r_{ij,b}` (DeePMD-kit assigns the pair virial to the
neighbor).  Centers are taken in chunks so that the nnei x M intermediates stay small.
"""

import dataclasses

import numpy as np

from ..._ext.threads import blas_threads
from ...core.errors import InputError, UnsupportedModelError
from ...descriptors import parts
from ...models.tensor_fitting import refuse_tensor_model
from ...neighbors import build_neighbor_list
from . import dpa2, se_atten_v2, se_e2_a, se_e2_r, se_e3, se_e3_tebd
from .fitting import atomic_energy_masks, fitting_forward_backward, parameter_columns
from ..base import Evaluator, Overflow, result_from_atoms

#: descriptor type -> module with descriptor_forward / descriptor_backward
MATH = {m.__name__.rsplit(".", 1)[1]: m for m in (se_e2_a, se_e2_r, se_e3, se_atten_v2, se_e3_tebd)}

#: centers per chunk; chunking changes no number
CHUNK = 512


def slot_masks(desc, atom_types, center_types, index):
    """Real slots, slots zeroed by the descriptor's ``exclude_types``, and neighbor types (-1 = padding)."""
    real = index >= 0
    jtype = np.where(real, atom_types[np.maximum(index, 0)], -1)
    zeroed = np.zeros(index.shape, dtype=bool)
    for a, b in desc.exclude_types:
        zeroed |= (center_types[:, None] == a) & (jtype == b)
    return real, zeroed & real, jtype


def remove_pairs(nlist, atom_types, pairs):
    """A copy of ``nlist`` without neighbors j of atoms i whose (type_i, type_j) is in ``pairs``.

    DeePMD-kit cuts at sel first and then turns excluded entries into padding; here the excluded
    neighbors are dropped and the remaining real ones move to the front of their block, so that
    "the first ``counts`` slots are real" stays true (the sums do not depend on the order).
    """
    if not pairs:
        return nlist
    index = nlist.index
    real = index >= 0
    jt = np.where(real, atom_types[np.maximum(index, 0)], -1)
    it = atom_types[:, None]
    drop = np.zeros(index.shape, dtype=bool)
    for a, b in pairs:
        drop |= (it == a) & (jt == b)
    drop &= real
    if not drop.any():
        return nlist
    keep = real & ~drop
    new_index = np.full_like(index, -1)
    new_vectors = np.zeros_like(nlist.vectors)
    counts = np.zeros_like(nlist.counts)
    offsets = nlist.offsets
    for b in range(len(nlist.sel)):
        sl = slice(offsets[b], offsets[b + 1])
        k = keep[:, sl]
        rank = np.cumsum(k, axis=1) - 1  # stable order of the kept slots inside the block
        rows, cols = np.nonzero(k)
        dest = offsets[b] + rank[rows, cols]
        new_index[rows, dest] = index[:, sl][rows, cols]
        new_vectors[rows, dest] = nlist.vectors[:, sl][rows, cols]
        counts[:, b] = k.sum(axis=1)
    return dataclasses.replace(nlist, index=new_index, vectors=new_vectors, counts=counts)


def _rows(nlist, sl):
    return dataclasses.replace(nlist, index=nlist.index[sl], vectors=nlist.vectors[sl], counts=nlist.counts[sl],
                               overflow=nlist.overflow[sl])


def _scatter_rows(force, atom_virial, start, index, vectors, pair_grad):
    rows, slots = np.nonzero(index >= 0)
    g = pair_grad[rows, slots]
    np.add.at(force, rows + start, g)
    np.add.at(force, index[rows, slots], -g)
    np.add.at(atom_virial, index[rows, slots], -g[:, :, None] * vectors[rows, slots][:, None, :])


class ExactEvaluator(Evaluator):
    """An uncompressed :class:`~dpcompress.models.DPModel`, evaluated exactly in numpy."""

    def __init__(self, model):
        if model.is_compressed:
            raise InputError("ExactEvaluator takes an uncompressed model; compressed ones run on the runtime")
        for d in parts(model.descriptor):
            if d.type_name == "hybrid":
                raise UnsupportedModelError("a hybrid descriptor inside a hybrid is not supported")
            if d.type_name == "dpa2":  # message passing: a frame-level path, for DPA-2 alone
                if d is not model.descriptor:
                    raise UnsupportedModelError("DPA-2 inside a hybrid descriptor is not supported (only alone)")
                if model.pair_exclude_types:
                    raise UnsupportedModelError(f"{model.source}: 'model.pair_exclude_types' = "
                                                f"{sorted(model.pair_exclude_types)} with DPA-2 is not supported")
                continue
            if d.type_name not in MATH:
                raise UnsupportedModelError(f"no evaluator for descriptor {d.type_name!r}")
        refuse_tensor_model(model, "dpcompress.Potential evaluates")
        self.model = model
        self.type_map = tuple(model.type_map)
        self.rcut = float(model.rcut)

    def evaluate(self, coords, cell, types, n_threads=1, fparam=None, aparam=None):
        """One frame; ``fparam`` (numb_fparam,) and ``aparam`` (natoms, numb_aparam) for models that take them
        (None: the model's ``default_fparam``; see :func:`~.fitting.parameter_columns`)."""
        with blas_threads(n_threads):  # numpy's BLAS on the caller's thread budget
            if self.model.descriptor.type_name == "dpa2":
                return dpa2.evaluate_frame(self.model, coords, cell, types, n_threads, fparam, aparam)
            return self._evaluate(coords, cell, types, n_threads, fparam, aparam)

    def descriptors(self, xyz, cells, types, n_threads=1):
        """Every atom's descriptor :math:`D_i` (the fitting net's input), (nframes, natoms, dim)."""
        out = []
        with blas_threads(n_threads):
            for f in range(xyz.shape[0]):
                t = np.ascontiguousarray(types if types.ndim == 1 else types[f], dtype=np.int64)
                if self.model.descriptor.type_name == "dpa2":
                    out.append(dpa2.descriptors(self.model, xyz[f], None if cells is None else cells[f], t, n_threads))
                    continue
                nlists, _ = self._neighbor_lists(xyz[f], None if cells is None else cells[f], t, n_threads)
                out.append(np.concatenate([D for _, _, _, D in self._descriptor_chunks(t, nlists)], axis=0))
        return np.stack(out)

    def _descriptor_chunks(self, types, nlists):
        """Per chunk of centers: its slice, the parts' (rows, state) and the descriptor rows D."""
        descs = parts(self.model.descriptor)
        for start in range(0, len(types), CHUNK):
            sl = slice(start, min(start + CHUNK, len(types)))
            ctypes = types[sl]
            states, D_parts = [], []
            for d, nl_all in zip(descs, nlists):
                nl = _rows(nl_all, sl)
                real, zeroed, jtype = slot_masks(d, types, ctypes, nl.index)
                D, state = MATH[d.type_name].descriptor_forward(d, ctypes, jtype, nl.vectors, real, zeroed)
                states.append((nl, state))
                D_parts.append(D)
            yield sl, states, D_parts, (np.concatenate(D_parts, axis=1) if len(D_parts) > 1 else D_parts[0])

    def _neighbor_lists(self, coords, cell, types, n_threads):
        """Each descriptor part's neighbor list (excluded pairs removed) and the sel overflow."""
        nlists, overflow = [], Overflow()
        for k, d in enumerate(parts(self.model.descriptor)):
            nl = build_neighbor_list(coords, cell, types, d.rcut, list(d.sel), mixed_types=d.mixed_types,
                                     n_threads=n_threads)
            o = nl.overflow
            overflow.total += int(o.sum())
            if o.size and o.max() > overflow.worst:
                atom, block = np.unravel_index(np.argmax(o), o.shape)
                overflow = Overflow(overflow.total, int(o.max()), k, int(atom), int(block))
            nlists.append(remove_pairs(nl, types, self.model.pair_exclude_types))
        return nlists, overflow

    def _evaluate(self, coords, cell, types, n_threads, fparam=None, aparam=None):
        model = self.model
        types = np.ascontiguousarray(types, dtype=np.int64)
        natoms = len(types)
        params = parameter_columns(model.fitting, natoms, fparam, aparam)
        descs = parts(model.descriptor)
        nlists, overflow = self._neighbor_lists(coords, cell, types, n_threads)
        fit_mask, keep_mask = atomic_energy_masks(model, types)
        atom_energy = np.zeros(natoms)
        force = np.zeros((natoms, 3))
        atom_virial = np.zeros((natoms, 3, 3))
        for sl, states, D_parts, D in self._descriptor_chunks(types, nlists):
            start, ctypes = sl.start, types[sl]
            e_fit, dD = fitting_forward_backward(model, ctypes, D, None if params is None else params[sl])
            atom_energy[sl] = keep_mask[sl] * (fit_mask[sl] * e_fit + model.out_bias[ctypes])
            dD = dD * (fit_mask[sl] * keep_mask[sl])[:, None]
            col = 0
            for d, (nl, state), Dp in zip(descs, states, D_parts):
                dDp = np.ascontiguousarray(dD[:, col : col + Dp.shape[1]])
                col += Dp.shape[1]
                pair_grad = MATH[d.type_name].descriptor_backward(d, state, dDp)
                _scatter_rows(force, atom_virial, start, nl.index, nl.vectors, pair_grad)
        return result_from_atoms(atom_energy, force, atom_virial, overflow=overflow)


__all__ = ["ExactEvaluator", "slot_masks", "remove_pairs"]
