"""Compressed DP models and NEP models through the C model runtime (``src_c/dpc_model.h``).

Per frame: candidate neighbors from the cell list (:func:`dpcompress.neighbors.find_candidates`),
then one call of the runtime, which builds the neighbor rows, runs the fused kernels, the fitting
net and the scatter.  The per-atom outputs come back from C; the totals are numpy's sums of them.
"""

import threading

import numpy as np

from .._ext import runtime as _rt
from ..core.errors import InputError
from ..neighbors import coincidence_message, find_candidates
from .base import Evaluator, Overflow, result_from_atoms


class RuntimeEvaluator(Evaluator):
    """A model opened by the C runtime.

    Parameters
    ----------
    data : bytes-like
        The ``.dpc`` bytes (a read-only memory map of the file, or :func:`dpcompress.modelfile.model_bytes`).
    source : str
        Named in the errors.
    """

    def __init__(self, data, source="<memory>"):
        self.runtime = _rt.Model(data, source)
        self.source = source
        self.type_map = self.runtime.type_map
        self.rcut = self.runtime.rcut
        self.kind = "nep" if self.runtime.kind == _rt.KIND_NEP else "dp_energy"
        self.compressed = self.kind == "dp_energy"
        self._workspace = _rt.Workspace()
        self._lock = threading.Lock()  # the workspace serves one call at a time

    def compute(self, candidates, types, n_threads, tag=None, nlocal=None):
        """One runtime call on prepared candidates; returns (atom_energy, force, atom_virial, info).

        ``tag`` (int64, one per atom) breaks distance ties and names the atoms in errors (the
        frame's own indices when the atoms were reordered).
        """
        natoms = candidates.x.shape[0]
        nlocal = candidates.ncenter if nlocal is None else nlocal
        force = np.zeros((natoms, 3))
        atom_energy = np.full(nlocal, -0.0)  # the additive identity that keeps every value, a zero's sign too
        atom_virial = np.zeros((natoms, 9))
        with self._lock:
            try:
                info = _rt.compute(self.runtime, self._workspace, candidates.x, types, nlocal,
                                   n_threads=n_threads, force=force, atom_energy=atom_energy, atom_virial=atom_virial,
                                   tag=tag, **candidates.frame_arrays())
            except InputError as exc:
                atoms = getattr(exc, "atoms", None)
                if atoms is None:
                    raise
                i, j, shift, d2 = atoms
                if tag is not None:
                    i, j = int(tag[i]), int(tag[j])
                raise InputError(coincidence_message(i, j, shift, d2)) from None
        return atom_energy, force, atom_virial, info

    def evaluate(self, coords, cell, types, n_threads=1):
        cand = find_candidates(coords, cell, self.rcut, n_threads=n_threads)
        e, f, w, info = self.compute(cand, np.ascontiguousarray(types, dtype=np.int32), n_threads)
        return result_from_atoms(e, f, w, overflow=overflow_of(info), beyond_fine=int(info["beyond_fine"]),
                                 beyond_table=int(info["beyond_table"]))

    @property
    def workspace_bytes(self):
        """Bytes of scratch the runtime holds for this model."""
        return self._workspace.nbytes

    def close(self):
        self._workspace = _rt.Workspace()


def overflow_of(info):
    """The :class:`Overflow` of a runtime result."""
    return Overflow(int(info["overflow"]), int(info["overflow_worst"]), int(info["overflow_part"]),
                    int(info["overflow_atom"]), int(info["overflow_block"]))
