"""Compressed DP models and NEP models through the C model runtime (``src_c/dpc_model.h``).

Per frame: candidate neighbors from the cell list (:func:`dpcompress.neighbors.find_candidates`),
then one call of the runtime, which builds the neighbor rows, runs the fused kernels, the fitting
net and the scatter.  The per-atom outputs come back from C; the totals are numpy's sums of them.
"""

import threading

import numpy as np

from .._ext import runtime as _rt
from .._ext.blas import blas_single_thread
from ..core.errors import InputError
from ..core.inputs import check_cutoff
from ..neighbors import candidates_of_checked, cell_geometry, coincidence_message, find_candidates
from ..models.fitting_params import FittingParams, parameter_columns
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

    #: the model's frame/atomic parameters (:class:`~dpcompress.models.fitting_params.FittingParams`), set by
    #: the front end from the file's header; None: the model takes none
    fitting_params = None

    def compute(self, candidates, types, n_threads, tag=None, nlocal=None, blas_guard=True, fit_params=None):
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
                                   tag=tag, blas_guard=blas_guard, fit_params=fit_params, **candidates.frame_arrays())
            except InputError as exc:
                atoms = getattr(exc, "atoms", None)
                if atoms is None:
                    raise
                i, j, shift, d2 = atoms
                if tag is not None:
                    i, j = int(tag[i]), int(tag[j])
                raise InputError(coincidence_message(i, j, shift, d2)) from None
        return atom_energy, force, atom_virial, info

    def evaluate(self, coords, cell, types, n_threads=1, fparam=None, aparam=None):
        cand = find_candidates(coords, cell, self.rcut, n_threads=n_threads)
        params = None  # normalised frame/atomic parameters: the fitting input after D (candidates keep atom order)
        if self.fitting_params is not None or fparam is not None or aparam is not None:
            params = parameter_columns(self.fitting_params or FittingParams(), len(types), fparam, aparam)
        e, f, w, info = self.compute(cand, np.ascontiguousarray(types, dtype=np.int32), n_threads, fit_params=params)
        return result_from_atoms(e, f, w, overflow=overflow_of(info), beyond_fine=int(info["beyond_fine"]),
                                 beyond_table=int(info["beyond_table"]))

    def evaluate_frames(self, xyz, cells, types, n_threads=1):
        """Frames one after another with the per-frame Python work of :meth:`evaluate` amortized.

        Yields the :class:`FrameResult` of each frame, bit for bit :meth:`evaluate`'s (the same
        candidate search and runtime call); what is hoisted out of the loop is what does not depend
        on the frame: the cutoff check, the type array, the thread count, the BLAS one-thread
        limit, entered once for the whole batch (it costs more than a 3-atom frame), and the cell's
        inverse and face distances while consecutive frames share a cell
        (:func:`~dpcompress.neighbors.cell_geometry`).  ``cells`` are checked and *reduced* already
        (:meth:`dpcompress.Potential.eval` does both).
        """
        rcut = check_cutoff(self.rcut)
        nframes = xyz.shape[0]
        shared_types = np.ascontiguousarray(types, dtype=np.int32) if types.ndim == 1 else None
        last_cell, geometry = None, None
        with blas_single_thread():
            for f in range(nframes):
                t = shared_types if shared_types is not None else np.ascontiguousarray(types[f], dtype=np.int32)
                cell = None if cells is None else cells[f]
                if cell is not None and not (cell is last_cell or (last_cell is not None
                                                                   and cell.tobytes() == last_cell.tobytes())):
                    last_cell, geometry = cell, cell_geometry(cell)  # bit-identical cells share it
                cand = candidates_of_checked(xyz[f], cell, rcut, xyz.shape[1], n_threads, geometry)
                e, force, w, info = self.compute(cand, t, n_threads, blas_guard=False)
                yield result_from_atoms(e, force, w, overflow=overflow_of(info), beyond_fine=int(info["beyond_fine"]),
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
