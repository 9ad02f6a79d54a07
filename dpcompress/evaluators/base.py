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

from ..core.errors import InputError


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


#: The per-frame counters of a :class:`FrameBatch`, in column order (the C runtime's order).
FRAME_COUNTS = ("beyond_fine", "beyond_table", "overflow", "overflow_worst", "overflow_atom", "overflow_block",
                "overflow_part")


@dataclass
class FrameBatch:
    """Energies, forces and virials of many frames of the same atoms, as arrays.

    Attributes
    ----------
    atom_energy : ndarray (nframes, natoms)
    force : ndarray (nframes, natoms, 3)
    atom_virial : ndarray (nframes, natoms, 3, 3)
    counts : ndarray, int64 (nframes, len(FRAME_COUNTS))
        Table and neighbor overflow counters of each frame (:data:`FRAME_COUNTS`).
    energy : ndarray (nframes,);  virial : ndarray (nframes, 3, 3)
        Numpy's sums of the per-atom arrays, frame by frame (:func:`result_from_atoms`'s sums).
    """

    atom_energy: np.ndarray
    force: np.ndarray
    atom_virial: np.ndarray
    counts: np.ndarray
    energy: np.ndarray = None
    virial: np.ndarray = None

    def __post_init__(self):
        if self.energy is None:
            self.energy = np.array([a.sum() for a in self.atom_energy])
        if self.virial is None:
            self.virial = np.stack([v.sum(axis=0) for v in self.atom_virial]) if len(self.atom_virial) \
                else np.zeros((0, 3, 3))

    @property
    def nframes(self):
        return self.force.shape[0]

    def frame(self, f):
        """Frame ``f`` as a :class:`FrameResult` (views of the arrays)."""
        c = [int(v) for v in self.counts[f]]
        return FrameResult(float(self.energy[f]), self.force[f], self.virial[f], self.atom_energy[f],
                           self.atom_virial[f], Overflow(c[2], c[3], c[6], c[4], c[5]), c[0], c[1])

    @classmethod
    def of_results(cls, results, natoms):
        """The batch of a list of :class:`FrameResult` (the default path of :meth:`Evaluator.evaluate_batch`)."""
        n = len(results)
        counts = np.array([[r.beyond_fine, r.beyond_table, r.overflow.total, r.overflow.worst, r.overflow.atom,
                            r.overflow.block, r.overflow.part] for r in results], dtype=np.int64).reshape(n, 7)
        return cls(np.array([np.asarray(r.atom_energy).reshape(natoms) for r in results]).reshape(n, natoms),
                   np.array([r.force for r in results]).reshape(n, natoms, 3),
                   np.array([np.asarray(r.atom_virial).reshape(natoms, 3, 3) for r in results]).reshape(n, natoms, 3, 3),
                   counts,
                   np.array([r.energy for r in results], dtype=np.float64).reshape(n),
                   np.array([np.asarray(r.virial).reshape(3, 3) for r in results]).reshape(n, 3, 3))


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

    def evaluate_batch(self, xyz, cells, types, n_threads=1, atomic=True):
        """Every frame at once, as a :class:`FrameBatch`: :meth:`evaluate_frames` collected.

        ``cells``: a list with a reduced cell or None per frame, or None (all clusters).  An
        evaluator that computes many frames in one call (the C runtime) overrides it; the results
        must stay those of :meth:`evaluate`, bit for bit.  An :class:`InputError` names the frame.
        ``atomic=False``: the caller reads no per-atom virial (an evaluator may skip it; this one does not).
        """
        frames = self.evaluate_frames(xyz, cells, types, n_threads)
        results = []
        while True:
            try:
                results.append(next(frames))
            except StopIteration:
                return FrameBatch.of_results(results, xyz.shape[1])
            except InputError as exc:
                raise InputError(f"frame {len(results)}: {exc}") from None

    def descriptors(self, xyz, cells, types, n_threads=1):
        """Every atom's descriptor (the fitting net's input), (nframes, natoms, dim); arguments as
        :meth:`evaluate_batch`."""
        raise InputError(f"{type(self).__name__} has no descriptor output")

    def close(self):
        """Free what the evaluator holds (idempotent)."""


def result_from_atoms(atom_energy, force, atom_virial, **extra):
    """A :class:`FrameResult` whose totals are numpy's sums of the per-atom arrays."""
    av = np.asarray(atom_virial).reshape(-1, 3, 3)
    return FrameResult(float(atom_energy.sum()), force, av.sum(axis=0), atom_energy, av, **extra)


__all__ = ["Evaluator", "FrameBatch", "FrameResult", "FRAME_COUNTS", "Overflow", "result_from_atoms"]
