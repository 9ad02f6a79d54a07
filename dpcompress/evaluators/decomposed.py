r"""The model runtime over MPI ranks: spatial domain decomposition of one frame.

Every rank receives the whole frame (the :meth:`Potential.eval` contract), owns the atoms of
its spatial block (:func:`dpcompress.parallel.domain.owners`) and computes them as centers,
the other atoms and the periodic images serving as neighbors: exactly what a halo exchange would
deliver.  Each center's neighbors, their order and its energy are the ones the serial runtime
computes (ties are broken by the frame's atom index, passed as tags).  Then one ``Allreduce``
sums per-atom energies, forces and per-atom virials, so every rank returns the full result.

Errors are agreed on collectively before the result collective: a rank that fails (a coincident
pair in its domain, say) reports it in a cheap status reduction, and every rank raises the same
error, naming global atom indices; no rank is left waiting.
"""

import numpy as np

from ..core.errors import DPCompressError, InputError
from ..neighbors import find_candidates
from ..parallel.domain import owners
from .base import Evaluator, Overflow, result_from_atoms
from .runtime import overflow_of


class DecomposedEvaluator(Evaluator):
    """A :class:`~dpcompress.evaluators.runtime.RuntimeEvaluator` spread over the ranks of ``comm``."""

    def __init__(self, runtime, comm):
        self.runtime = runtime
        self.comm = comm
        self.type_map = runtime.type_map
        self.rcut = runtime.rcut
        self.compressed = runtime.compressed
        self.source = runtime.source

    def share(self, coords, cell, types, rank, size, n_threads=1):
        """This rank's part of the frame, packed for one sum over ranks (no communication).

        Returns
        -------
        buf : ndarray
            [beyond_fine, beyond_table, overflow total, 0, atom energies, forces, atom virials];
            the buffers of all ranks sum to the whole frame's.
        worst : tuple
            (count, part, atom, block) of the worst sel overflow of this rank's centers.
        """
        natoms = len(types)
        buf = np.zeros(4 + 13 * natoms)
        coords = np.asarray(coords, dtype=np.float64)
        mine = np.flatnonzero(owners(coords, cell, size) == rank)
        order = np.concatenate([mine, np.setdiff1d(np.arange(natoms), mine, assume_unique=True)])
        cand = find_candidates(np.ascontiguousarray(coords[order]), cell, self.rcut, n_centers=len(mine),
                               n_threads=n_threads)
        t = np.ascontiguousarray(np.asarray(types)[order], dtype=np.int32)
        e, f, w, info = self.runtime.compute(cand, t, n_threads, tag=order.astype(np.int64), nlocal=len(mine))
        buf[0], buf[1], buf[2] = info["beyond_fine"], info["beyond_table"], info["overflow"]
        buf[4 + mine] = e
        buf[4 + natoms : 4 + 4 * natoms].reshape(natoms, 3)[order] = f
        buf[4 + 4 * natoms :].reshape(natoms, 9)[order] = w
        o = overflow_of(info)
        worst = (o.worst, o.part, int(order[o.atom]), o.block) if o.worst else (0, -1, -1, -1)
        return buf, worst

    def evaluate(self, coords, cell, types, n_threads=1):
        comm = self.comm
        error, buf, worst = None, None, None
        try:
            buf, worst = self.share(coords, cell, types, comm.rank, comm.size, n_threads)
        except (DPCompressError, ValueError, MemoryError) as exc:
            error = exc
        # collective agreement on errors first: nobody waits in the result collective
        status = comm.allgather(None if error is None else (type(error).__name__, str(error)))
        failed = [(r, s) for r, s in enumerate(status) if s is not None]
        if failed:
            rank, (kind, msg) = failed[0]
            if error is not None and comm.rank == rank:
                raise error
            raise InputError(f"rank {rank} failed ({kind}): {msg}")
        total = np.empty_like(buf)
        comm.Allreduce(buf, total)
        return combine(total, comm.allgather(worst), len(types))

    def close(self):
        self.runtime.close()


def combine(total, worsts, natoms):
    """The :class:`FrameResult` of the summed buffers of :meth:`DecomposedEvaluator.share`."""
    best = max(worsts, key=lambda w: (w[0], -w[1], -w[2], -w[3]))
    overflow = Overflow(int(total[2]), *(int(v) for v in best)) if best[0] else Overflow(int(total[2]))
    return result_from_atoms(total[4 : 4 + natoms].copy(), total[4 + natoms : 4 + 4 * natoms].reshape(natoms, 3).copy(),
                             total[4 + 4 * natoms :].reshape(natoms, 9), overflow=overflow,
                             beyond_fine=int(total[0]), beyond_table=int(total[1]))
