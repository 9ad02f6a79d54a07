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

    def evaluate(self, coords, cell, types, n_threads=1):
        comm = self.comm
        natoms = len(types)
        buf = np.zeros(4 + 13 * natoms)  # beyond_fine, beyond_table, overflow total, 0 | e, F, W per atom
        stat = np.zeros(5, dtype=np.int64)  # overflow worst, part, atom, block (global index) + 0
        error = None
        try:
            owner = owners(np.asarray(coords, dtype=np.float64), cell, comm.size)
            mine = np.flatnonzero(owner == comm.rank)
            order = np.concatenate([mine, np.flatnonzero(owner != comm.rank)])
            x = np.ascontiguousarray(np.asarray(coords, dtype=np.float64)[order])
            cand = find_candidates(x, cell, self.rcut, n_centers=len(mine), n_threads=n_threads)
            t = np.ascontiguousarray(np.asarray(types)[order], dtype=np.int32)
            e, f, w, info = self.runtime.compute(cand, t, n_threads, tag=order.astype(np.int64), nlocal=len(mine))
            buf[0], buf[1], buf[2] = info["beyond_fine"], info["beyond_table"], info["overflow"]
            buf[4 + mine] = e
            buf[4 + natoms :][np.add.outer(3 * order, np.arange(3)).ravel()] = f.ravel()
            buf[4 + 4 * natoms :][np.add.outer(9 * order, np.arange(9)).ravel()] = w.ravel()
            o = overflow_of(info)
            if o.worst:
                stat[:4] = o.worst, o.part, order[o.atom], o.block
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
        worst = comm.allgather(tuple(stat[:4]))
        best = max(worst, key=lambda s: (s[0], -s[1], -s[2], -s[3]))
        atom_energy = total[4 : 4 + natoms].copy()
        force = total[4 + natoms : 4 + 4 * natoms].reshape(natoms, 3).copy()
        atom_virial = total[4 + 4 * natoms :].reshape(natoms, 9)
        overflow = Overflow(int(total[2]), int(best[0]), int(best[1]), int(best[2]), int(best[3]))
        if not overflow.worst:
            overflow = Overflow(int(total[2]))
        return result_from_atoms(atom_energy, force, atom_virial, overflow=overflow, beyond_fine=int(total[0]),
                                 beyond_table=int(total[1]))

    def close(self):
        self.runtime.close()
