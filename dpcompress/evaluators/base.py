"""The one interface every evaluator implements, and the one result type they return.

An evaluator computes frames of one model: ``evaluate(coords, cell, types, n_threads)`` with
validated inputs (:mod:`dpcompress.core.inputs`) returns a :class:`FrameResult`.  Evaluators:
:class:`~dpcompress.evaluators.exact.ExactEvaluator` (uncompressed DeePMD-kit models, numpy),
:class:`~dpcompress.evaluators.runtime.RuntimeEvaluator` (compressed DP and NEP models, the C
runtime), :class:`~dpcompress.evaluators.decomposed.DecomposedEvaluator` (the runtime over MPI
ranks) and :class:`~dpcompress.evaluators.gpu.GpuEvaluator`.  An option an evaluator does not
support raises :class:`~dpcompress.core.errors.InputError` when it is made, never later and
never silently.
"""

from dataclasses import dataclass, field
from typing import Tuple

import numpy as np


@dataclass
class Overflow:
    """Neighbors within a cutoff that ``sel`` could not hold, and the worst (center, block)."""

    total: int = 0
    worst: int = 0
    part: int = -1
    atom: int = -1
    block: int = -1


@dataclass
class FrameResult:
    """Energy, forces and virials of one frame (eV, eV/Å; virial :math:`W = \\sum_i r_i \\otimes F_i`).

    Attributes
    ----------
    energy : float
    force : ndarray (natoms, 3)
    virial : ndarray (3, 3)
    atom_energy : ndarray (natoms,)
    atom_virial : ndarray (natoms, 3, 3)
    overflow : Overflow
    beyond_fine, beyond_table : int
        Neighbor entries past the fine table and past the whole table (compressed models).
    """

    energy: float
    force: np.ndarray
    virial: np.ndarray
    atom_energy: np.ndarray
    atom_virial: np.ndarray
    overflow: Overflow = field(default_factory=Overflow)
    beyond_fine: int = 0
    beyond_table: int = 0


class Evaluator:
    """Base class: what :class:`dpcompress.Potential` needs of an evaluator."""

    #: element names, in type-index order
    type_map: Tuple[str, ...] = ()
    #: largest cutoff, Å
    rcut: float = 0.0
    #: whether the model's embedding nets are tables (table-overflow counts are meaningful)
    compressed: bool = False

    def evaluate(self, coords, cell, types, n_threads=1) -> FrameResult:  # pragma: no cover - interface
        raise NotImplementedError

    def evaluate_frames(self, xyz, cells, types, n_threads=1):
        """:meth:`evaluate` of each frame in turn, yielding its :class:`FrameResult`.

        ``xyz`` (nframes, natoms, 3), ``cells`` (nframes, 3, 3) reduced cells or None, ``types``
        (natoms,) or (nframes, natoms).  Evaluators override it to amortize per-frame work; the
        results must stay those of :meth:`evaluate`, bit for bit.
        """
        for f in range(xyz.shape[0]):
            yield self.evaluate(xyz[f], None if cells is None else cells[f], types if types.ndim == 1 else types[f],
                                n_threads)

    def close(self):
        """Free what the evaluator holds (idempotent)."""


def result_from_atoms(atom_energy, force, atom_virial, **extra):
    """A :class:`FrameResult` whose totals are numpy's sums of the per-atom arrays."""
    av = np.asarray(atom_virial).reshape(-1, 3, 3)
    return FrameResult(float(atom_energy.sum()), force, av.sum(axis=0), atom_energy, av, **extra)


__all__ = ["Evaluator", "FrameResult", "Overflow", "result_from_atoms"]
