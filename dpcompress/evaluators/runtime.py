"""Compressed DP models and NEP models through the C model runtime (``src_c/dpc_model.h``).

Per frame: candidate neighbors from the cell list (:func:`dpcompress.neighbors.find_candidates`),
then one call of the runtime, which builds the neighbor rows, runs the fused kernels, the fitting
net and the scatter.  Many frames: one call of ``dpc_compute_frames``, which does both for every
frame in C (:meth:`RuntimeEvaluator.evaluate_batch`).  The per-atom outputs come back from C; the
totals are numpy's sums of them.
"""

import threading

import numpy as np

from .._ext import runtime as _rt
from .._ext.blas import blas_single_thread
from ..core.errors import InputError, status_error
from ..core.inputs import check_cutoff
from ..neighbors import candidates_of_checked, coincidence_message, find_candidates
from .base import Evaluator, FrameBatch, Overflow, result_from_atoms


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

    #: :meth:`evaluate_batch` and :meth:`descriptors` take every frame's ``fparam``/``aparam``
    batches_parameters = True

    def compute(self, candidates, types, n_threads, tag=None, nlocal=None, blas_guard=True, fparam=None, aparam=None,
                nsender=None):
        """One runtime call on prepared candidates; returns (atom_energy, force, atom_virial, info).

        ``nsender`` (message passing, ``dpc_frame.nsender``): atoms ``nlocal .. nsender-1`` are senders,
        whose candidate rows follow the centers' in ``candidates``; None: no senders.

        ``tag`` (int64, one per atom) breaks distance ties and names the atoms in errors (the
        frame's own indices when the atoms were reordered).  ``fparam`` (numb_fparam,) and ``aparam``
        (nlocal, numb_aparam): the frame's parameters, raw (the runtime normalises them; None: the
        model's default_fparam, or a model without).
        """
        natoms = candidates.x.shape[0]
        nlocal = candidates.ncenter if nlocal is None else nlocal
        extra = {} if nsender is None else {"nsender": nsender}  # absent: the call of every other model, unchanged
        force = np.zeros((natoms, 3))
        atom_energy = np.full(nlocal, -0.0)  # the additive identity that keeps every value, a zero's sign too
        atom_virial = np.zeros((natoms, 9))
        with self._lock:
            try:
                info = _rt.compute(self.runtime, self._workspace, candidates.x, types, nlocal,
                                   n_threads=n_threads, force=force, atom_energy=atom_energy, atom_virial=atom_virial,
                                   tag=tag, blas_guard=blas_guard, fparam=fparam, aparam=aparam,
                                   **candidates.frame_arrays(), **extra)
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
        fp, ap = self._raw_params(1, len(types), fparam, aparam)  # candidates keep the atoms' order
        e, f, w, info = self.compute(cand, np.ascontiguousarray(types, dtype=np.int32), n_threads,
                                     fparam=None if fp is None else fp[0], aparam=None if ap is None else ap[0])
        return result_from_atoms(e, f, w, overflow=overflow_of(info), beyond_fine=int(info["beyond_fine"]),
                                 beyond_table=int(info["beyond_table"]))

    def evaluate_frames(self, xyz, cells, types, n_threads=1):
        """:meth:`evaluate_batch`'s frames one by one (the interface of every evaluator)."""
        batch = self.evaluate_batch(xyz, cells, types, n_threads)
        for f in range(batch.nframes):
            yield batch.frame(f)

    def evaluate_batch(self, xyz, cells, types, n_threads=1, fparam=None, aparam=None, atomic=True):
        """Every frame in one call of the runtime (``dpc_compute_frames``, ``src_c/dpc_frames.h``).

        The candidate search and the model of each frame run in C one frame after another, so the
        per-frame cost of a small frame is the runtime's, not Python's (docs/performance.md: many
        small frames).  Frame f is computed as :meth:`evaluate` computes it (the same binning,
        candidates and ``dpc_compute``), bit for bit; the totals are numpy's sums of the per-atom
        arrays, frame by frame.  ``cells``: a reduced cell or None per frame (checked already, as
        :meth:`dpcompress.Potential.eval` does), or None.

        ``fparam`` (nframes, numb_fparam) and ``aparam`` (nframes, natoms, numb_aparam), or None
        (:func:`~dpcompress.evaluators.frame_params.frame_parameters` shapes them): each frame's
        parameters, raw: the runtime normalises them into the fitting net's extra columns.

        A frame the runtime refuses stops the batch; it is re-run alone through :meth:`evaluate`'s
        path, whose error (a coincident pair, a cell too small, ...) is raised naming the frame.

        ``atomic=False`` lets a model that passes messages (DPA-2) skip its per-atom virial, whose split
        costs three more backward passes: the batch's ``atom_virial`` is then zero and its ``virial`` the
        runtime's sum of the pair terms (equal to the per-atom sum up to round-off).
        """
        per_atom = atomic or not self.runtime.passes_messages
        ae, force, av, counts, _, virial = self._run_frames(xyz, cells, types, n_threads, False, fparam, aparam,
                                                            per_atom)
        nframes, natoms = xyz.shape[0], xyz.shape[1]
        av = av.reshape(nframes, natoms, 3, 3)
        return FrameBatch(ae, force, av, counts, ae.sum(axis=1),
                          av.sum(axis=1) if per_atom else virial.reshape(nframes, 3, 3))

    def descriptors(self, xyz, cells, types, n_threads=1, fparam=None, aparam=None):
        """Every atom's descriptor :math:`D_i` (the fitting net's input) of every frame, (nframes, natoms, dim),
        from the same runtime call as :meth:`evaluate_batch` (the compressed tables' descriptor)."""
        if self.kind == "nep":
            raise InputError("a NEP model has no DeePMD descriptor (eval_descriptor is for DP models)")
        return self._run_frames(xyz, cells, types, n_threads, True, fparam, aparam)[4]

    def _raw_params(self, nframes, natoms, fparam, aparam):
        """``fparam`` (nframes, numb_fparam) and ``aparam`` (nframes, natoms, numb_aparam) as float64 C arrays
        (None stays None), checked against what the model takes: the runtime normalises them."""
        nf, na = self.runtime.dim_fparam, self.runtime.dim_aparam
        out = []
        for name, value, n, shape in (("fparam", fparam, nf, (nframes, nf)), ("aparam", aparam, na, (nframes, natoms, na))):
            if value is None:
                if n and (name == "aparam" or not self.runtime.has_default_fparam):
                    raise InputError(f"this model takes {name} (numb_{name} = {n})"
                                     + ("" if name == "aparam" else " and stores no default_fparam") + f"; pass {name}")
                out.append(None)
                continue
            if n == 0:
                raise InputError(f"{name} given, but this model takes no {'frame' if name == 'fparam' else 'atomic'} "
                                 f"parameters (numb_{name} = 0)")
            arr = np.asarray(value, dtype=np.float64)
            if arr.size != int(np.prod(shape)):
                raise InputError(f"{name} has {arr.size} values, expected {' x '.join(map(str, shape))}")
            out.append(np.ascontiguousarray(arr.reshape(shape)))
        return out

    def _run_frames(self, xyz, cells, types, n_threads, descriptor, fparam=None, aparam=None, atom_virial=True):
        check_cutoff(self.rcut)
        nframes = xyz.shape[0]
        t = np.ascontiguousarray(types, dtype=np.int32)
        fparam, aparam = self._raw_params(nframes, xyz.shape[1], fparam, aparam)
        box = periodic = None
        if cells is not None and any(c is not None for c in cells):
            box = np.zeros((nframes, 3, 3))
            periodic = np.zeros(nframes, dtype=np.uint8)
            for f, c in enumerate(cells):
                if c is not None:
                    box[f], periodic[f] = c, 1
            periodic = None if periodic.all() else periodic
        with self._lock, blas_single_thread():
            ae, force, av, counts, desc, failed, status, message, virial = _rt.compute_frames(
                self.runtime, self._workspace, xyz, t, box, periodic, n_threads=n_threads, descriptor=descriptor,
                fparam=fparam, aparam=aparam, per_atom_virial=atom_virial)
        if failed >= 0:
            self._raise_for_frame(failed, xyz, cells, t, n_threads, status, message,
                                  None if fparam is None else fparam[failed], None if aparam is None else aparam[failed])
        return ae, force, av, counts, desc, virial

    def _raise_for_frame(self, f, xyz, cells, types, n_threads, status, message, fparam=None, aparam=None):
        """Raise frame ``f``'s error: its single-frame path's message, else the runtime's."""
        cell = None if cells is None else cells[f]
        try:
            cand = candidates_of_checked(xyz[f], cell, self.rcut, xyz.shape[1], n_threads)
            self.compute(cand, types if types.ndim == 1 else types[f], n_threads, fparam=fparam, aparam=aparam)
        except InputError as exc:
            raise InputError(f"frame {f}: {exc}") from None
        raise status_error(status, f"frame {f}: {message}", InputError)

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
