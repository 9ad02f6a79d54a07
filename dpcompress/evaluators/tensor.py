r"""Dipole and polarizability models: per-atom tensors from the descriptor's rotation matrix.

For each center atom :math:`i` the se_e2_a descriptor (and se_atten_v2, whose :math:`G_j` carry the
type gate and whose :math:`D_i` has the center's type embedding appended) keeps (exact: numpy, compressed: the compiled
table kernel ``dpc_se_a_tab_forward``) the :math:`4\times M` matrix

.. math::

    T_i = \frac1N \sum_j \tilde R_j^\top \otimes G_j,\qquad D_i = T_i^\top T_{i,:,:A},\qquad
    \mathcal R_i = (T_{i,1:4,:})^\top \in \mathbb R^{M\times 3}

(:math:`N = \sum` sel, padding slots included; :math:`\mathcal R_i` is DeePMD-kit's "rotation
matrix" ``gr[..., 1:]``).  The fitting nets turn :math:`D_i` (and any frame/atomic parameters)
into :math:`o_i\in\mathbb R^M` (or :math:`M^2`), contracted with :math:`\mathcal R_i` as
:mod:`dpcompress.models.tensor_fitting` states: :math:`\mathbf d_i = o_i\mathcal R_i` (dipole),
:math:`\mathbf A_i = s\,\mathcal R_i^\top\operatorname{diag}(o_i)\mathcal R_i + s(c + \bar\beta)\mathbf I`
(polarizability).  The compressed path runs the same tables and kernel as the C model runtime's
forward pass; the fitting nets and the contraction run in numpy (the runtime computes energies
only; a tensor model is not a ``.dpc`` file).  Tensors only: no forces or virials
(DeePMD-kit's ``DeepDipole.eval`` does not return them either).
"""

import dataclasses

import numpy as np

from .._ext.se_a_tab import descriptor_from_T, se_a_tab_forward, tables_from_view
from .._ext.threads import blas_threads
from ..core.errors import NumericalError, UnsupportedModelError
from ..core.networks import network_forward
from ..descriptors import unit_of
from ..models.fitting_params import parameter_columns
from ..models.tensor_fitting import TENSOR_DESCRIPTORS, TensorFitting
from ..neighbors import build_neighbor_list
from .exact import MATH, remove_pairs, slot_masks

#: centers per chunk (bounds the (chunk, nnei, M) intermediates; changes no number)
CHUNK = 512


@dataclasses.dataclass
class TensorFrame:
    """One frame's result: per-atom tensors and the counts the front end warns about.

    Attributes
    ----------
    atomic : ndarray (natoms, width)
        Row-major 3-vectors (dipole) or 3x3 matrices (polarizability); zero for unselected types.
    overflow : int
        Neighbors inside rcut that ``sel`` could not hold (dropped, nearest kept).
    beyond_fine, beyond_table : int
        Compressed models: neighbor entries beyond the fine table / the whole table.
    """

    atomic: np.ndarray
    overflow: int = 0
    beyond_fine: int = 0
    beyond_table: int = 0


def _rows(nl, sl):
    return (np.ascontiguousarray(nl.index[sl]), np.ascontiguousarray(nl.vectors[sl]),
            np.ascontiguousarray(nl.counts[sl]))


class TensorEvaluator:
    """A dipole or polarizability :class:`~dpcompress.models.DPModel`, exact or compressed.

    Raises
    ------
    UnsupportedModelError
        An energy model, or a descriptor other than se_e2_a and se_atten_v2.
    """

    def __init__(self, model):
        fitting = model.fitting
        if not isinstance(fitting, TensorFitting):
            raise UnsupportedModelError(f"{model.source or 'model'}: an energy model (fitting 'ener') is not a tensor "
                                        "model; evaluate it with dpcompress.Potential")
        desc = model.descriptor
        if desc.type_name not in TENSOR_DESCRIPTORS:
            raise UnsupportedModelError(f"{model.source or 'model'}: tensor models on descriptor {desc.type_name!r} "
                                        f"are not supported (supported: {', '.join(TENSOR_DESCRIPTORS)})")
        self.model = model
        self.fitting = fitting
        self.compressed = bool(model.is_compressed)
        self.tables = self.packed = None
        if self.compressed:
            # the same packed arrays the .dpc writer stores and the runtime reads
            self.packed = unit_of(desc).pack(desc, model.pair_exclude_types)
            self.tables = tables_from_view(self.packed.kernel_view())

    # ------------------------------------------------------------------ descriptor
    def _state(self, types, ctypes, index, vectors, counts, n_threads):
        """``(D, T, beyond)`` of a chunk of centers: descriptor rows, the 4 x M matrices and the table counts."""
        desc = self.model.descriptor
        if self.compressed:
            gate = None
            if self.tables.gate is not None:
                # se_atten_v2: each slot's row of the type-gate table (-1: padding or an excluded pair)
                q = self.packed.arrays["gate_of"][ctypes[:, None], types[np.maximum(index, 0)]]
                gate = np.ascontiguousarray(np.where(index < 0, -1, q), dtype=np.int64)
            T, beyond = se_a_tab_forward(self.tables, ctypes, vectors, counts, n_threads, check=True, gate_index=gate)
            D = descriptor_from_T(T, desc.axis_neuron, n_threads)
            if self.packed.ints["concat"]:  # se_atten_v2 appends the center's type embedding
                D = np.concatenate([D, self.packed.arrays["type_embedding"][ctypes]], axis=1)
            return D, T, (int(beyond[0].sum()), int(beyond[1].sum()))
        real, zeroed, jtype = slot_masks(desc, types, ctypes, index)
        D, cache = MATH[desc.type_name].descriptor_forward(desc, ctypes, jtype, vectors, real, zeroed)
        return D, cache["T"], (0, 0)

    # ------------------------------------------------------------------ fitting
    def _net_outputs(self, ctypes, D, params):
        """:math:`o_i = F_{t_i}(x_i) + b_{t_i}`, zero for the fitting's ``exclude_types``; (n, net_out)."""
        fit = self.fitting
        X = D if params is None else np.concatenate([D, params], axis=1)
        o = np.zeros((len(ctypes), fit.net_out))
        for t in np.unique(ctypes):
            if int(t) in fit.exclude_types:
                continue
            rows = ctypes == t
            y, _ = network_forward(fit.network(int(t)), X[rows])
            o[rows] = y + fit.bias_atom_e[t]
        return o

    def _contract(self, ctypes, o, T):
        r"""Atomic tensors (n, width) from the net outputs and :math:`\mathcal R = T_{1:4}^\top`."""
        fit = self.fitting
        R = np.transpose(T[:, 1:4, :], (0, 2, 1))  # (n, M, 3)
        if fit.kind == "dipole":
            return np.einsum("nm,nmk->nk", o, R)
        s = fit.scale[ctypes]
        o = o * s[:, None]
        if fit.fit_diag:
            A = np.einsum("nmi,nm,nmj->nij", R, o, R)
        else:
            M = fit.embedding_width
            O = o.reshape(-1, M, M)
            A = np.einsum("nmi,nmk,nkj->nij", R, 0.5 * (O + np.transpose(O, (0, 2, 1))), R)
        if fit.shift_diag:
            # the fitting's constant_matrix, then the atomic model's mean diagonal of out_bias, both times scale
            beta = np.trace(self.model.out_bias.reshape(-1, 3, 3), axis1=1, axis2=2) / 3.0
            A = A + ((fit.constant_matrix[ctypes] + beta[ctypes]) * s)[:, None, None] * np.eye(3)
        return A.reshape(-1, 9)

    # ------------------------------------------------------------------ frames
    def evaluate(self, coords, cell, types, n_threads=1, fparam=None, aparam=None):
        """One frame: :class:`TensorFrame` with the atomic tensors.

        Parameters
        ----------
        coords : ndarray (natoms, 3)
        cell : ndarray (3, 3) or None
            Rows are the cell vectors (fully periodic), None for a cluster.
        types : ndarray of int (natoms,)
        fparam : ndarray (numb_fparam,) or None
        aparam : ndarray (natoms, numb_aparam) or None
        """
        with blas_threads(n_threads):
            return self._evaluate(coords, cell, types, n_threads, fparam, aparam)

    def _evaluate(self, coords, cell, types, n_threads, fparam, aparam):
        model, fit = self.model, self.fitting
        desc = model.descriptor
        types = np.ascontiguousarray(types, dtype=np.int64)
        natoms = len(types)
        out = np.zeros((natoms, fit.width))
        if natoms == 0:
            return TensorFrame(out)
        params = parameter_columns(fit, natoms, fparam, aparam)
        nl = build_neighbor_list(coords, cell, types, desc.rcut, list(desc.sel), mixed_types=desc.mixed_types,
                                 n_threads=n_threads)
        overflow = int(nl.overflow.sum())
        nl = remove_pairs(nl, types, model.pair_exclude_types)
        keep = ~np.isin(types, list(model.atom_exclude_types))
        beyond = [0, 0]
        for start in range(0, natoms, CHUNK):
            sl = slice(start, min(start + CHUNK, natoms))
            ctypes = types[sl]
            index, vectors, counts = _rows(nl, sl)
            D, T, b = self._state(types, ctypes, index, vectors, counts, n_threads)
            beyond[0] += b[0]
            beyond[1] += b[1]
            o = self._net_outputs(ctypes, D, None if params is None else params[sl])
            out[sl] = self._contract(ctypes, o, T) * keep[sl, None]
        if not np.all(np.isfinite(out)):
            raise NumericalError("the model gave a non-finite tensor for this frame (it overflows there)")
        return TensorFrame(out, overflow, beyond[0], beyond[1])


__all__ = ["TensorEvaluator", "TensorFrame"]
