r"""The exact evaluator of a DP + ZBL linear model (:class:`~dpcompress.models.dp_zbl.DPZBLModel`).

:math:`E_i = (1 - w_i) a_i + w_i b_i + \beta_{t_i}` with :math:`a_i` the DP atomic energy (out_bias
included), :math:`b_i` the pair-table energy plus its out_bias and :math:`w_i` the ZBL weight
(:mod:`dpcompress.models.dp_zbl`).  Per pair :math:`(i, j)` of center :math:`i`'s lists the gradient
:math:`\mathbf g_{ij} = \partial E/\partial\mathbf r_{ij}` collects

* :math:`(1 - w_i)\,\partial a_i/\partial\mathbf r_{ij}`: the DP part's backward pass with
  :math:`\partial E/\partial D_i` scaled by :math:`1 - w_i`;
* :math:`w_i\,\tfrac12 E'_{t_i t_j}(r_{ij})\,\hat{\mathbf r}_{ij}` (pair table list);
* :math:`(b_i - a_i)\,\partial w_i/\partial r_{ij}\,\hat{\mathbf r}_{ij}` (the weight's list).

Forces and per-atom virials follow the DP convention (the pair virial goes to the neighbor), so
they are DeePMD-kit's.
"""

import numpy as np

from ..._ext.threads import blas_threads
from ...core.errors import InputError
from ...descriptors import parts
from ...neighbors import build_neighbor_list
from ..base import Evaluator, Overflow, result_from_atoms
from . import ExactEvaluator, MATH, _scatter_rows
from .fitting import atomic_energy_masks, fitting_forward_backward, parameter_columns
from .pair_table import pair_energy, softmin_weight


def _distances(nl):
    real = nl.index >= 0
    r = np.sqrt(np.sum(nl.vectors * nl.vectors, axis=-1))
    return real, r


def weighted_dp(dp_eval, coords, cell, types, scale, n_threads, fparam=None, aparam=None):
    r"""DP atomic energies :math:`a_i` and forces / atomic virials of :math:`\sum_i s_i a_i`.

    The DP part of :class:`~dpcompress.evaluators.exact.ExactEvaluator`, its :math:`\partial E/\partial D_i`
    multiplied by ``scale`` :math:`s_i` before the descriptor's backward pass.
    """
    model = dp_eval.model
    natoms = len(types)
    params = parameter_columns(model.fitting, natoms, fparam, aparam)
    nlists, overflow = dp_eval._neighbor_lists(coords, cell, types, n_threads)
    fit_mask, keep_mask = atomic_energy_masks(model, types)
    a = np.zeros(natoms)
    force = np.zeros((natoms, 3))
    atom_virial = np.zeros((natoms, 3, 3))
    for sl, states, D_parts, D in dp_eval._descriptor_chunks(types, nlists):
        ctypes = types[sl]
        e_fit, dD = fitting_forward_backward(model, ctypes, D, None if params is None else params[sl])
        a[sl] = keep_mask[sl] * (fit_mask[sl] * e_fit + model.out_bias[ctypes])
        dD = dD * (fit_mask[sl] * keep_mask[sl] * scale[sl])[:, None]
        col = 0
        for d, (nl, state), Dp in zip(parts(model.descriptor), states, D_parts):
            dDp = np.ascontiguousarray(dD[:, col : col + Dp.shape[1]])
            col += Dp.shape[1]
            _scatter_rows(force, atom_virial, sl.start, nl.index, nl.vectors,
                          MATH[d.type_name].descriptor_backward(d, state, dDp))
    return a, force, atom_virial, overflow


class DPZBLExactEvaluator(Evaluator):
    """An uncompressed :class:`~dpcompress.models.dp_zbl.DPZBLModel`, evaluated exactly in numpy."""

    def __init__(self, model):
        if model.is_compressed:
            raise InputError("DPZBLExactEvaluator takes an uncompressed model; compressed ones run on the runtime")
        self.model = model
        self.dp_eval = ExactEvaluator(model.dp)
        self.type_map = tuple(model.type_map)
        self.rcut = float(model.rcut)

    def evaluate(self, coords, cell, types, n_threads=1, fparam=None, aparam=None):
        """One frame (the arguments of :meth:`ExactEvaluator.evaluate`)."""
        with blas_threads(n_threads):
            return self._evaluate(coords, cell, types, n_threads, fparam, aparam)

    def _evaluate(self, coords, cell, types, n_threads, fparam, aparam):
        m = self.model
        tab = m.table
        types = np.ascontiguousarray(types, dtype=np.int64)
        natoms = len(types)
        nl_tab = build_neighbor_list(coords, cell, types, tab.rcut, [tab.sel], mixed_types=True, n_threads=n_threads)
        dp_nnei = int(sum(m.dp.descriptor.sel))
        if tab.sel >= dp_nnei:  # DeePMD-kit: the larger list, the pair table's on a tie
            nl_w = nl_tab
        else:
            nl_w = build_neighbor_list(coords, cell, types, m.dp.rcut, [dp_nnei], mixed_types=True,
                                       n_threads=n_threads)
        # the switching weight
        real_w, r_w = _distances(nl_w)
        w, dw = softmin_weight(r_w, real_w, m.sw_rmin, m.sw_rmax, m.smin_alpha)
        # the pair table
        real_t, r_t = _distances(nl_tab)
        jt = types[np.maximum(nl_tab.index, 0)]
        e_pair, de_pair = pair_energy(tab, types[:, None], jt, np.where(real_t, r_t, tab.rcut))
        b = 0.5 * np.sum(np.where(real_t, e_pair, 0.0), axis=1) + m.tab_out_bias[types]
        # the DP part, its gradient weighted by 1 - w
        a, force, atom_virial, overflow = weighted_dp(self.dp_eval, coords, cell, types, 1.0 - w, n_threads,
                                                      fparam, aparam)
        atom_energy = (1.0 - w) * a + w * b + m.out_bias[types]
        safe_t = np.where(real_t, r_t, 1.0)
        g_tab = (w[:, None] * 0.5 * np.where(real_t, de_pair, 0.0) / safe_t)[:, :, None] * nl_tab.vectors
        _scatter_rows(force, atom_virial, 0, nl_tab.index, nl_tab.vectors, g_tab)
        safe_w = np.where(real_w, r_w, 1.0)
        g_w = ((b - a)[:, None] * dw / safe_w)[:, :, None] * nl_w.vectors
        _scatter_rows(force, atom_virial, 0, nl_w.index, nl_w.vectors, g_w)
        o = nl_tab.overflow
        if o.size and o.max() > overflow.worst:
            atom = int(np.argmax(o.reshape(natoms, -1).max(axis=1)))
            overflow = Overflow(overflow.total + int(o.sum()), int(o.max()), 1, atom, 0)
        else:
            overflow.total += int(o.sum())
        return result_from_atoms(atom_energy, force, atom_virial, overflow=overflow)


__all__ = ["DPZBLExactEvaluator", "weighted_dp"]
