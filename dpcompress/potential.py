"""``Potential``: evaluate a model with DeePMD-kit's ``DeepPot.eval`` contract.

Switching from DeePMD-kit is one import::

    # from deepmd.infer import DeepPot as Potential
    from dpcompress import Potential

    pot = Potential("model.dp")
    energy, force, virial = pot.eval(coords, cells, atom_types)
    e, f, v, atom_energy, atom_virial = pot.eval(coords, cells, atom_types, atomic=True)

Units: Å, eV, eV/Å; the virial is DeePMD-kit's :math:`W = \\sum_i \\mathbf r_i \\otimes \\mathbf F_i` in eV.
"""

import os
import warnings

import numpy as np

from .errors import InputError
from .frame_inputs import as_atom_types, as_cells, as_coords
from .models import DPModel, load_model
from .evaluate.frame import descriptor_parts, evaluate_frame, make_plan
from .threads import blas_threads, effective_n_threads


class NeighborOverflowWarning(RuntimeWarning):
    """An atom had more neighbors of a type inside rcut than the model's ``sel`` holds."""


class TableOverflowWarning(RuntimeWarning):
    """Neighbors were closer than anything in the training set: their table input left the fine grid or the table."""


def threads_per_rank(comm):
    """Cores of this node divided among the ranks that share it (at least 1)."""
    from mpi4py import MPI

    from .threads import available_cores

    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return max(1, available_cores() // node.size)
    finally:
        node.Free()


class Potential:
    """A Deep Potential energy model ready to evaluate.

    Parameters
    ----------
    model : str, os.PathLike or DPModel
        A DeePMD-kit ``.dp`` / ``.yaml`` file (evaluated exactly, uncompressed),
        a dpcompress ``.dpc`` file (compressed: fused table kernels), or a
        model already loaded.
    n_threads : int or None
        Threads of the compiled kernels and of BLAS; ``None`` uses every available core.
    check_frequency : int or None
        Compressed models only: every ``check_frequency`` evaluations, count the
        neighbors whose table input fell beyond the fine grid and beyond the
        whole table (pairs closer than the training set's minimum distance) and
        warn with the counts (:class:`TableOverflowWarning`).  ``None``: the
        value stored in the file (``dpcompress compress -f``); ``-1`` or 0: never.
    comm : mpi4py communicator or None
        Domain decomposition over the ranks of ``comm``: every rank passes the
        whole frame to :meth:`eval`, evaluates the atoms of its spatial block
        (with ghosts within rcut), and every rank gets the full result (energy,
        virial and forces of all atoms, reduced over ranks).  With
        ``n_threads=None`` each rank uses cores-per-node ÷ ranks-per-node
        threads unless ``OMP_NUM_THREADS`` is set.

    device : str
        ``"cpu"`` (default: C/OpenMP kernels) or ``"gpu"`` / ``"gpu:N"``: the whole
        step on a CUDA GPU through CuPy (compressed se_e2_a/se_e2_r models; inputs may be
        NumPy or CuPy arrays; results are NumPy arrays).  Raises
        :class:`~dpcompress.gpu.GPUUnavailableError` naming what is missing
        (CuPy, a device) when it cannot run; see ``docs/gpu.md``.

    Notes
    -----
    Neighbors beyond ``sel`` are dropped (the nearest are kept, as in DeePMD-kit)
    and a :class:`NeighborOverflowWarning` reports how many.
    """

    def __init__(self, model, *, n_threads=None, check_frequency=None, comm=None, device="cpu"):
        # --- device="gpu": dpcompress/gpu/ (validated first, attached at the end of __init__) ---
        from .gpu.potential import check_device

        self.device, self._gpu = check_device(device, model), None
        # --- end GPU ---
        # --- NEP models (GPUMD nep.txt / NEP .dpc): dpcompress/nep/ ---
        from .nep import NEPModel, is_nep_file

        self._nep = None
        if isinstance(model, NEPModel) or is_nep_file(model):
            from .nep import load_nep
            from .nep.evaluator import NEPEvaluator

            self.model = model if isinstance(model, NEPModel) else load_nep(model)
            self.comm = None
            self.n_threads = effective_n_threads(n_threads)
            self.last_overflow = 0
            self.check_frequency = -1
            self.n_evaluations = 0
            self.table_overflow = {"beyond_fine": 0, "beyond_table": 0}
            self._nep = NEPEvaluator(self.model)
            return
        # --- end NEP ---
        if isinstance(model, DPModel):
            self.model = model
        elif isinstance(model, (str, os.PathLike)):
            self.model = load_model(model)
        else:
            raise InputError(f"model must be a file path or a DPModel, got {type(model).__name__}")
        self.comm = comm if comm is not None and comm.size > 1 else None
        if self.comm is not None and n_threads is None and "OMP_NUM_THREADS" not in os.environ:
            n_threads = threads_per_rank(self.comm)
        self.n_threads = effective_n_threads(n_threads)
        self.last_overflow = 0
        self._plan = make_plan(self.model)
        if self.model.is_compressed and check_frequency is None:
            check_frequency = int((self.model.compression or {}).get("check_frequency", -1))
        if check_frequency is None:
            check_frequency = -1
        if isinstance(check_frequency, bool) or not isinstance(check_frequency, (int, np.integer)):
            raise InputError(f"check_frequency must be an integer, got {check_frequency!r}")
        self.check_frequency = int(check_frequency)
        self.n_evaluations = 0
        self.table_overflow = {"beyond_fine": 0, "beyond_table": 0}
        if self.device != "cpu":  # --- GPU: the whole step on the device (dpcompress/gpu/potential.py) ---
            from .gpu.potential import GpuPotential

            self._gpu = GpuPotential(self, self.device)

    # DeepPot's introspection API
    def get_type_map(self):
        """Element names, in type-index order."""
        return list(self.model.type_map)

    def get_rcut(self):
        """Cutoff radius, Å."""
        return float(self.model.rcut)

    def get_ntypes(self):
        return self.model.ntypes

    def get_sel(self):
        """Neighbor slots per type (a list of such lists for a hybrid descriptor)."""
        if self._nep is not None:  # NEP: no fixed neighbor slots
            return []
        sel = self.model.descriptor.sel
        return [list(x) for x in sel] if sel and isinstance(sel[0], tuple) else list(sel)

    def get_dim_fparam(self):
        return 0

    def get_dim_aparam(self):
        return 0

    def eval(self, coords, cells, atom_types, atomic=False, fparam=None, aparam=None, mixed_type=False):
        """Energy, forces and virial of one or more frames.

        Parameters
        ----------
        coords : array_like, shape (nframes, natoms * 3) or (nframes, natoms, 3)
            Cartesian coordinates, Å; need not be wrapped into the cell.
        cells : array_like, shape (nframes, 9) or (nframes, 3, 3), or None
            Rows are the cell vectors, Å; ``None`` for a non-periodic system.
        atom_types : array_like, shape (natoms,)
            Type indices into :meth:`get_type_map` (or element names).  With
            ``mixed_type=True``, shape (nframes, natoms).
        atomic : bool
            Also return per-atom energies and virials.
        fparam, aparam : None
            Not supported by the models dpcompress reads; must be None.

        Returns
        -------
        energy : ndarray, shape (nframes, 1)
        force : ndarray, shape (nframes, natoms, 3)
        virial : ndarray, shape (nframes, 9)
        atom_energy : ndarray, shape (nframes, natoms, 1)
            Only with ``atomic=True``.
        atom_virial : ndarray, shape (nframes, natoms, 9)
            Only with ``atomic=True``.
        """
        if self._gpu is not None:  # device="gpu" (dpcompress/gpu/potential.py)
            return self._gpu.eval(coords, cells, atom_types, atomic, fparam, aparam, mixed_type)
        if fparam is not None or aparam is not None:
            raise InputError("fparam/aparam given, but this model takes none (numb_fparam = numb_aparam = 0)")
        types = as_atom_types(atom_types, self.model.type_map)
        if types.ndim == 2 and not mixed_type:
            if not np.all(types == types[:1]):
                raise InputError("atom_types has one row per frame but mixed_type=False; pass mixed_type=True")
            types = types[0]
        natoms = types.shape[-1]
        xyz = as_coords(coords, natoms)
        nframes = xyz.shape[0]
        if types.ndim == 2 and types.shape[0] != nframes:
            raise InputError(f"atom_types has {types.shape[0]} frames, coords {nframes}")
        box = as_cells(cells, nframes)
        with blas_threads(self.n_threads):
            results = [
                self._eval_frame(xyz[f], None if box is None else box[f], types if types.ndim == 1 else types[f])
                for f in range(nframes)
            ]
        energy = np.array([[r["energy"]] for r in results])
        force = np.stack([r["force"] for r in results])
        virial = np.stack([r["virial"].reshape(9) for r in results])
        if not atomic:
            return energy, force, virial
        atom_energy = np.stack([r["atom_energy"][:, None] for r in results])
        atom_virial = np.stack([r["atom_virial"].reshape(natoms, 9) for r in results])
        return energy, force, virial, atom_energy, atom_virial

    @property
    def _packed(self):
        """Packed tables of the first descriptor part (compressed models), for diagnostics."""
        return self._plan.parts[0].packed

    def _eval_frame(self, coords, cell, types):
        if self._nep is not None:  # NEP model: dpcompress/nep/evaluator.py
            return self._nep.evaluate(coords, cell, types, self.n_threads)
        if self.comm is not None:
            from .parallel.domain import evaluate_decomposed

            result = evaluate_decomposed(self._plan, coords, cell, types, self.comm, self.model.rcut, self.n_threads)
            if result["overflow_total"]:
                warnings.warn(
                    f"{result['overflow_total']} neighbors inside rcut were dropped because sel is too small",
                    NeighborOverflowWarning,
                    stacklevel=4,
                )
            return result
        check = False
        if self._plan.compressed:
            self.n_evaluations += 1
            check = self.check_frequency > 0 and self.n_evaluations % self.check_frequency == 0
        result = evaluate_frame(self._plan, coords, cell, types, self.n_threads, check)
        self._warn_neighbor_overflow(result["overflow"])
        if check:
            self.table_overflow = {k: result[k] for k in ("beyond_fine", "beyond_table")}
            if result["beyond_fine"] or result["beyond_table"]:
                warnings.warn(
                    f"evaluation {self.n_evaluations}: {result['beyond_fine']} neighbor entries beyond the fine table "
                    f"(closer than the training set's minimum distance {self.model.min_nbor_dist:.4g} Å) and "
                    f"{result['beyond_table']} beyond the whole table (linear extrapolation); accuracy may suffer",
                    TableOverflowWarning,
                    stacklevel=4,
                )
        return result

    def _warn_neighbor_overflow(self, overflows):
        self.last_overflow = int(sum(o.sum() for o in overflows))
        if not self.last_overflow:
            return
        parts = descriptor_parts(self.model.descriptor)
        k = max(range(len(overflows)), key=lambda q: overflows[q].max())
        o, d = overflows[k], parts[k]
        atom, block = np.unravel_index(np.argmax(o), o.shape)
        what = "neighbors" if d.mixed_types else f"neighbors of type {self.model.type_map[block]}"
        warnings.warn(
            f"{self.last_overflow} neighbors inside rcut were dropped because sel is too small "
            f"(worst: atom {atom} lost {o[atom, block]} {what}; {d.type_name} rcut={d.rcut} Å sel={list(d.sel)}); "
            "results differ from a model with a larger sel",
            NeighborOverflowWarning,
            stacklevel=4,
        )
