r"""``DeepDipole`` and ``DeepPolar``: DeePMD-kit's tensor-model inference contract.

Switching from DeePMD-kit is one import::

    # from deepmd.infer import DeepDipole
    from dpcompress import DeepDipole

    dp = DeepDipole("dipole.dp")                          # exact (uncompressed)
    dp = DeepDipole("dipole.dpc")        # compressed: dpcompress compress -i dipole.dp -o dipole.dpc
    atomic = dp.eval(coords, cells, atom_types)               # (nframes, natoms, 3)
    total = dp.eval(coords, cells, atom_types, atomic=False)  # (nframes, 3)

``DeepPolar`` gives ``(nframes, natoms, 9)`` and ``(nframes, 9)`` (row-major 3x3 polarizabilities).
Atoms of unselected types (:meth:`DeepTensor.get_sel_type`) get zero tensors; the global tensor is
the sum of the atomic ones (DeePMD-kit 3.2's reduction).  The math:
:mod:`dpcompress.models.tensor_fitting` and :mod:`dpcompress.evaluators.tensor`.

A compressed tensor model is a ``.dpc`` file of kind ``dp_tensor`` (:mod:`dpcompress.modelfile.dp_tensor`):
the descriptor's tables run in the compiled se_e2_a kernel (also se_atten_v2's), the nets and the contraction
in numpy; the C model runtime (LAMMPS, i-PI, ``Potential``) computes energy models only.
"""

import os
import warnings
from typing import List, Optional, Union

import numpy as np

from .core.errors import InputError, UnsupportedModelError
from .core.inputs import as_atom_types, as_cells, as_coords, warn_far_coordinates
from .core.lattice import reduce_cell
from .core.warnings import NeighborOverflowWarning, TableOverflowWarning
from ._ext.threads import effective_n_threads
from .evaluators.frame_params import frame_parameters
from .evaluators.tensor import TensorEvaluator
from .modelfile import load_model
from .models import DPModel
from .nep import NEPModel
from .models.tensor_fitting import TensorFitting

__all__ = ["DeepTensor", "DeepDipole", "DeepPolar"]


class DeepTensor:
    """A dipole or polarizability model ready to evaluate (use :class:`DeepDipole` or :class:`DeepPolar`).

    Parameters
    ----------
    model : str, os.PathLike or DPModel
        A DeePMD-kit ``.dp`` / ``.yaml`` file of a ``dipole`` / ``polar`` model (evaluated exactly), its
        compressed ``.dpc`` (``dpcompress compress -i model.dp -o model.dpc``: the embedding
        nets as tables), or a :class:`~dpcompress.models.DPModel` of either (:func:`dpcompress.compress`).
    n_threads : int or None
        Threads of the compiled kernels and of numpy's BLAS; ``None``: every available core.  Results
        do not depend on it.

    Raises
    ------
    UnsupportedModelError
        An energy or NEP model, a tensor model of the other kind, a descriptor other than se_e2_a and
        se_atten_v2 (attention layers 0).
    InputError
        A bad argument.
    """

    #: the fitting ``type`` this class evaluates
    KIND = ""
    #: numbers per atomic tensor
    WIDTH = 0

    def __init__(self, model: Union[str, os.PathLike, DPModel], *, n_threads: Optional[int] = None):
        name = type(self).__name__
        if isinstance(model, (str, os.PathLike)):
            model = load_model(model)
        if isinstance(model, NEPModel):
            raise UnsupportedModelError(f"{model.source or '<memory>'}: a NEP model (energy only); {name} evaluates "
                                        f"DeePMD-kit {self.KIND!r} models")
        if not isinstance(model, DPModel):
            raise InputError(f"{name} takes a model file or a DPModel, got {type(model).__name__}")
        source = model.source or "<memory>"
        fitting = model.fitting
        if not isinstance(fitting, TensorFitting):
            raise UnsupportedModelError(f"{source}: an energy model (fitting type 'ener'), not a {self.KIND!r} model: "
                                        "evaluate it with dpcompress.Potential")
        if fitting.kind != self.KIND:
            other = {"dipole": "DeepDipole", "polar": "DeepPolar"}[fitting.kind]
            raise UnsupportedModelError(f"{source}: a {fitting.kind!r} model, not a {self.KIND!r} one: use "
                                        f"dpcompress.{other}")
        self.model = model
        self.evaluator = TensorEvaluator(model)
        self.n_threads = effective_n_threads(n_threads)
        self.table_overflow_total = {"beyond_fine": 0, "beyond_table": 0}
        self._overflow_reported = False

    # DeePMD-kit's introspection API
    def get_type_map(self) -> List[str]:
        """Element names, in type-index order."""
        return list(self.model.type_map)

    def get_ntypes(self) -> int:
        return self.model.ntypes

    def get_rcut(self) -> float:
        """Cutoff radius, Å."""
        return float(self.model.rcut)

    def get_sel_type(self) -> List[int]:
        """Types whose atoms have a tensor (the fitting's types not excluded); the others get zeros."""
        return self.model.fitting.sel_type(self.model.ntypes)

    def get_dim_fparam(self) -> int:
        return int(self.model.fitting.numb_fparam)

    def get_dim_aparam(self) -> int:
        return int(self.model.fitting.numb_aparam)

    @property
    def output_dim(self) -> int:
        """Numbers per tensor: 3 (dipole) or 9 (polarizability)."""
        return self.WIDTH

    def eval(self, coords, cells, atom_types, atomic: bool = True, fparam=None, aparam=None,
             mixed_type: bool = False, **kwargs) -> np.ndarray:
        """Atomic or global tensors of each frame (DeePMD-kit 3.2's ``DeepTensor.eval``).

        Parameters
        ----------
        coords : array_like, shape (nframes, natoms * 3) or (nframes, natoms, 3)
        cells : array_like, shape (nframes, 9) or (nframes, 3, 3), or None
            Rows are the cell vectors (periodic in all three directions); None for clusters.
        atom_types : array_like of int, shape (natoms,), or (nframes, natoms) with ``mixed_type``
        atomic : bool
            True (default, as DeePMD-kit): per-atom tensors; False: their sum over the frame's atoms.
        fparam, aparam : array_like or None
            Frame/atomic parameters of a model that takes them (shapes as :meth:`dpcompress.Potential.eval`).
        mixed_type : bool
            ``atom_types`` has one row per frame.

        Returns
        -------
        ndarray
            ``(nframes, natoms, output_dim)`` when ``atomic``, else ``(nframes, output_dim)``; zero
            rows for atoms whose type is not in :meth:`get_sel_type`.

        Raises
        ------
        InputError
            Bad arrays (the message names the argument and the expected shape), or a DeePMD-kit
            input tensor models lack (``efield``).
        """
        for key, value in kwargs.items():
            if key != "efield":
                raise TypeError(f"eval() got an unexpected keyword argument {key!r}")
            if value is not None:
                raise InputError("efield given, but dpcompress reads no electric-field models; pass efield=None")
        types = as_atom_types(atom_types, self.get_type_map())
        if types.ndim == 2 and not mixed_type:
            if not np.all(types == types[:1]):
                raise InputError("atom_types has one row per frame but mixed_type=False; pass mixed_type=True")
            types = types[0]
        natoms = types.shape[-1]
        xyz = as_coords(coords, natoms)
        nframes = int(xyz.shape[0])
        if types.ndim == 2 and types.shape[0] != nframes:
            raise InputError(f"atom_types has {types.shape[0]} frames, coords {nframes}")
        fp, ap = frame_parameters(fparam, aparam, nframes, natoms, self.get_dim_fparam(), self.get_dim_aparam(),
                                  self.model.fitting.default_fparam is not None)
        box = as_cells(cells, nframes)
        out = np.zeros((nframes, natoms, self.WIDTH))
        if natoms:
            warn_far_coordinates(xyz)
        for f in range(nframes if natoms else 0):
            cell = None if box is None else np.ascontiguousarray(reduce_cell(box[f]).cell, dtype=np.float64)
            t = types if types.ndim == 1 else types[f]
            try:
                r = self.evaluator.evaluate(np.ascontiguousarray(xyz[f]), cell, t, self.n_threads,
                                            None if fp is None else fp[f], None if ap is None else ap[f])
            except InputError as exc:
                raise type(exc)(f"frame {f}: {exc}") from None
            out[f] = r.atomic
            self._warn(f, r)
        return out if atomic else out.sum(axis=1)

    def _warn(self, frame, r):
        if r.overflow:
            warnings.warn(f"frame {frame}: {r.overflow} neighbors inside rcut did not fit into sel and were "
                          "dropped (the nearest are kept, as in DeePMD-kit)", NeighborOverflowWarning, stacklevel=3)
        self.table_overflow_total["beyond_fine"] += r.beyond_fine
        self.table_overflow_total["beyond_table"] += r.beyond_table
        if r.beyond_table and not self._overflow_reported:
            self._overflow_reported = True
            warnings.warn(f"frame {frame}: {r.beyond_table} neighbor entries beyond the compressed model's table, "
                          "extrapolated linearly (pairs much closer than the training set's minimum distance); "
                          "reported once per object, totals in table_overflow_total", TableOverflowWarning,
                          stacklevel=3)


class DeepDipole(DeepTensor):
    """A dipole model (``fitting_net.type`` "dipole"): atomic dipoles ``(nframes, natoms, 3)``,
    global ``(nframes, 3)``; see :class:`DeepTensor`."""

    KIND = "dipole"
    WIDTH = 3


class DeepPolar(DeepTensor):
    """A polarizability model (``fitting_net.type`` "polar"): atomic polarizabilities
    ``(nframes, natoms, 9)``, global ``(nframes, 9)``, row-major 3x3; see :class:`DeepTensor`."""

    KIND = "polar"
    WIDTH = 9
