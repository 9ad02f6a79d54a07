"""``Potential``: evaluate a model with DeePMD-kit's ``DeepPot.eval`` contract.

Switching from DeePMD-kit is one import::

    # from deepmd.infer import DeepPot as Potential
    from dpcompress import Potential

    pot = Potential("model.dpc")
    energy, force, virial = pot.eval(coords, cells, atom_types)
    e, f, v, atom_energy, atom_virial = pot.eval(coords, cells, atom_types, atomic=True)

Units: Å, eV, eV/Å; the virial is DeePMD-kit's :math:`W = \\sum_i \\mathbf r_i \\otimes \\mathbf F_i` in eV.

``Potential`` is a thin front end: it validates the user's arrays (:mod:`dpcompress.core.inputs`),
hands each frame to one evaluator (:mod:`dpcompress.evaluators`: the C model runtime for
compressed and NEP models, alone or over MPI ranks; numpy for uncompressed DeePMD-kit models; the
GPU path) and stacks the results.
"""

import functools
import os
import warnings
from typing import List, Optional, Tuple, Union

import numpy as np

from .core.errors import InputError, NumericalError, UnsupportedModelError
from .core.inputs import as_atom_types, as_cells, as_coords, as_pbc, warn_far_coordinates
from .core.lattice import frame_cell, reduce_cell
from ._ext.threads import effective_n_threads, kernel_threads, threads_per_rank
from .core.warnings import NeighborOverflowWarning, TableOverflowWarning
from .descriptors import parts
from .evaluators.decomposed import DecomposedEvaluator
from .evaluators.exact import ExactEvaluator
from .evaluators.exact.dp_zbl import DPZBLExactEvaluator
from .evaluators.frame_params import frame_parameters, with_parameters
from .evaluators.gpu import GpuEvaluator, check_device
from .evaluators.runtime import RuntimeEvaluator
from .modelfile import is_dpc_file, load_model, model_bytes, read_dpc, unpack
from .modelfile.dp import params_from_arrays, refuse_fitting_params
from .models.fitting_params import FittingParams, params_of
from .models.tensor_fitting import refuse_tensor_model
from .models import DPModel, DPZBLModel
from .nep import NEPModel
from .parallel.agreement import agree

__all__ = ["Potential", "NeighborOverflowWarning", "TableOverflowWarning", "TableOverflowError"]

#: Values of ``Potential(overflow=...)``: the words of the LAMMPS plugin's ``overflow`` keyword.
OVERFLOW_ACTIONS = ("warn", "error", "ignore")


class TableOverflowError(InputError):
    """A frame had a neighbor beyond a compressed model's table (``Potential(overflow="error")``)."""


def _agreed_under_comm(method):
    """Under ``comm``, a rank that fails before the call's first agreement still joins it.

    Argument checks run on each rank before any communication, so one rank can fail them alone (a
    NaN in its copy of the frame) while the others wait in :meth:`DecomposedEvaluator.start
    <dpcompress.evaluators.decomposed.DecomposedEvaluator.start>`: the failing rank takes its error
    there, and every rank raises the same one.  Errors after that agreement are already common to
    all ranks and pass through.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self.comm is None:
            return method(self, *args, **kwargs)
        self.evaluator.pending = True
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            if not self.evaluator.pending:
                raise
            self.evaluator.start(error=exc)  # raises on every rank
            raise  # pragma: no cover - start() raised already

    return wrapper


class Potential:
    """A Deep Potential (or NEP) energy model ready to evaluate.

    Parameters
    ----------
    model : str, os.PathLike, DPModel or NEPModel
        A dpcompress ``.dpc`` file (compressed: the C model runtime), a DeePMD-kit ``.dp`` /
        ``.yaml`` file (evaluated exactly, uncompressed), a GPUMD ``nep.txt``, or a model
        already loaded.
    n_threads : int or None
        Threads of the compiled kernels; ``None`` uses every available core.  Results do not
        depend on it.  In a process forked from one that had loaded dpcompress (``multiprocessing``
        with the fork start method) every kernel runs one thread (libgomp's pool does not survive
        ``fork``); an explicit ``n_threads > 1`` there warns once
        (:class:`~dpcompress.core.warnings.ForkThreadsWarning`).
    check_frequency : int or None
        DeePMD-kit's ``-f`` ("overflow check frequency"), for compressed models: every
        ``check_frequency``-th evaluation (frame) is checked, and a :class:`TableOverflowWarning`
        says how many of its neighbors fell beyond the fine table (the first range: pairs
        closer than the training set's minimum distance) and beyond the whole table (the
        second range).  ``None``: the value stored in the file (``dpcompress compress -f``);
        ``-1`` or 0: no periodic check (DeePMD-kit's default).  Counting never stops: the
        last frame's counts are in :attr:`table_overflow`, the totals in
        :attr:`table_overflow_total`, whatever the setting.
    overflow : {"warn", "error", "ignore"}
        What the first neighbor beyond a compressed model's whole table (extrapolated linearly,
        so less accurate) does: ``"warn"`` (default) gives one :class:`TableOverflowWarning`
        per ``Potential`` naming the frame and the count; ``"error"`` raises
        :class:`TableOverflowError` naming the frame; ``"ignore"`` stays silent.  These are the
        words of the LAMMPS plugin's ``overflow`` keyword.  The periodic check
        (``check_frequency``) is independent of this option.
    comm : mpi4py communicator or None
        Domain decomposition over the ranks of ``comm``: every rank passes the whole frame to
        :meth:`eval`, evaluates the atoms of its spatial block, and every rank gets the full
        result (the same as the serial one, overflow counts included).  With ``n_threads=None``
        each rank uses cores-per-node ÷ ranks-per-node threads unless ``OMP_NUM_THREADS`` is set.
        Compressed DP models and NEP models.  Every rank of ``comm`` must make the ``Potential``
        and each :meth:`eval` call; errors are agreed on collectively
        (:mod:`dpcompress.parallel.agreement`): when one rank fails (a bad argument, a model that
        does not load, coincident atoms in its domain) every rank raises the same exception with
        the same message, naming the frame's atom indices and the reporting rank, and none is
        left waiting.  Ranks given different models (their arrays differ) or different frames
        raise :class:`InputError` on every rank.  Not detectable: a rank that never makes the
        call (the others wait in the first collective; use the MPI launcher's timeout:
        ``MPIEXEC_TIMEOUT=600`` with MPICH, ``mpirun --timeout 600`` with Open MPI), or one that
        makes another collective on ``comm`` meanwhile.
    device : str
        ``"cpu"`` (default) or ``"gpu"`` / ``"gpu:N"``: the whole step on a CUDA GPU through
        CuPy (compressed se_e2_a / se_e2_r models; inputs may be NumPy or CuPy arrays; results are
        NumPy arrays); see ``docs/gpu.md``.

    Raises
    ------
    InputError, UnsupportedModelError, ModelFormatError
        A bad argument, or an option the model's evaluator does not support (never ignored).

    Notes
    -----
    Neighbors beyond ``sel`` are dropped (the nearest are kept, as in DeePMD-kit) and a
    :class:`NeighborOverflowWarning` reports how many.
    """

    def __init__(
        self,
        model: Union[str, os.PathLike, DPModel, NEPModel],
        *,
        n_threads: Optional[int] = None,
        check_frequency: Optional[int] = None,
        comm=None,
        device: str = "cpu",
        overflow: str = "warn",
    ):
        if overflow not in OVERFLOW_ACTIONS:  # from the argument alone: every rank agrees without communicating
            raise InputError(f"overflow must be one of {', '.join(map(repr, OVERFLOW_ACTIONS))}, got {overflow!r}")
        self.overflow = overflow
        self.comm = comm if comm is not None and comm.size > 1 else None
        self._threads_explicit = n_threads is not None and n_threads != -1
        if self.comm is not None and not (isinstance(device, str) and device == "cpu"):
            # decided by the arguments alone, before any communication (a rank passing other
            # arguments than the rest is, like a rank that never calls, beyond detection)
            raise InputError('device="gpu" does not combine with comm (MPI domain decomposition); use one or the other')
        error, model_digest = None, None
        try:
            self.device = check_device(device, model)
            self.n_threads = effective_n_threads(n_threads)
            self._model = None
            self._header = {}
            if isinstance(model, (DPModel, NEPModel, DPZBLModel)):
                self._model = model
                source = model.source or "<memory>"
            elif isinstance(model, (str, os.PathLike)):
                source = os.fspath(model)
            else:
                raise InputError(f"model must be a file path, a DPModel or a NEPModel, got {type(model).__name__}")
            self.evaluator = self._evaluator(model, source)
            self.check_frequency = self._check_frequency(check_frequency)
            if self.comm is not None:
                model_digest = self.evaluator.model_digest()
        except Exception as exc:
            if self.comm is None:
                raise
            error = exc
        if self.comm is not None:
            # one rank's failure (a file missing on its node) must not leave the others in a later
            # collective; ranks given different models would sum parts of different potentials
            agree(self.comm, error=error, inputs_digest=model_digest, what="models",
                  compared="the arrays of the model file, not its header")
            # a collective, so every rank makes it whatever its environment says
            per_rank = threads_per_rank(self.comm)
            if n_threads is None and "OMP_NUM_THREADS" not in os.environ:
                self.n_threads = effective_n_threads(per_rank)
        self.n_evaluations = 0
        self.last_overflow = 0
        self.table_overflow = {"beyond_fine": 0, "beyond_table": 0}
        self.table_overflow_total = {"beyond_fine": 0, "beyond_table": 0}
        self._overflow_reported = False

    def _evaluator(self, model, source):
        """The evaluator of this model, device and communicator."""
        evaluator = self._evaluator_of(model, source)
        if isinstance(evaluator, (ExactEvaluator, DPZBLExactEvaluator)):
            self._fit_params = params_of(evaluator.model.fitting)
        return evaluator

    def _evaluator_of(self, model, source):
        self._fit_params = FittingParams()
        if isinstance(model, (str, os.PathLike)) and is_dpc_file(model):
            container = read_dpc(model)
            self._header = container.header
            self._container = container
            if container.header.get("kind") == "dp_tensor":  # DeepDipole / DeepPolar
                refuse_tensor_model(unpack(container, source), "dpcompress.Potential evaluates")
            if container.header.get("kind") == "dp_energy":
                self._fit_params = params_from_arrays(container.arrays)
            runtime = RuntimeEvaluator(container.buffer, source)
        else:
            if self._model is None:
                self._model = load_model(model)
            m = self._model
            refuse_tensor_model(m, "dpcompress.Potential evaluates")  # DeepDipole / DeepPolar
            if isinstance(m, DPZBLModel) and not m.is_compressed:  # DP + ZBL (docs/dp-zbl.md)
                if self.comm is not None or self.device != "cpu":
                    raise UnsupportedModelError("an uncompressed DP + ZBL model runs on the CPU without comm: "
                                                "compress it first")
                self._host_evaluator = DPZBLExactEvaluator(m)
                return self._host_evaluator
            if isinstance(m, DPModel) and not m.is_compressed:
                if self.comm is not None:
                    raise UnsupportedModelError(
                        "domain decomposition (comm=...) runs compressed models: compress the model first "
                        "(dpcompress compress -i model.dp -o model.dpc)"
                    )
                if self.device != "cpu":
                    raise UnsupportedModelError('device="gpu" runs compressed models: compress the model first')
                self._host_evaluator = ExactEvaluator(m)
                return self._host_evaluator
            self._header = {"compression": getattr(m, "compression", None) or {}}
            if isinstance(m, (DPModel, DPZBLModel)):
                self._fit_params = params_of(m.fitting)
            runtime = RuntimeEvaluator(model_bytes(m), source)
        self._host_evaluator = runtime  # the one that serves eval_descriptor on any device or communicator
        if self.device != "cpu":
            if isinstance(self.model, DPZBLModel):  # the CUDA kernels have no pair table
                raise UnsupportedModelError('device="gpu" does not run DP + ZBL models (docs/dp-zbl.md)')
            refuse_fitting_params(self._fit_params, 'device="gpu"', source)
            return GpuEvaluator(self.model, self.device)
        if self.comm is not None:
            refuse_fitting_params(self._fit_params, "domain decomposition (comm=...)", source)
            return DecomposedEvaluator(runtime, self.comm)
        return runtime

    def _check_frequency(self, value):
        compressed = getattr(self.evaluator, "compressed", False)
        if value is None:
            value = int((self._header.get("compression") or {}).get("check_frequency", -1)) if compressed else -1
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InputError(f"check_frequency must be an integer, got {value!r}")
        if value > 0 and not compressed:
            raise InputError(
                f"check_frequency={value} applies to compressed DP models only: this model has no embedding tables "
                "(NEP tables cover [0, rc] entirely; an uncompressed model is exact)"
            )
        return int(value)

    @property
    def model(self) -> Union[DPModel, NEPModel]:
        """The model as Python objects (read from a ``.dpc`` file the first time it is asked for)."""
        if self._model is None:
            self._model = unpack(self._container, self._container_source())
        return self._model

    def _container_source(self):
        return getattr(self.evaluator, "source", "<memory>")

    # DeepPot's introspection API
    def get_type_map(self) -> List[str]:
        """Element names, in type-index order."""
        return list(self.evaluator.type_map)

    def get_rcut(self) -> float:
        """Cutoff radius, Å."""
        return float(self.evaluator.rcut)

    def get_ntypes(self) -> int:
        return len(self.evaluator.type_map)

    def get_sel(self):
        """Neighbor slots per type (a list of such lists for a hybrid descriptor); [] for NEP."""
        if isinstance(self.model, NEPModel):
            return []
        sel = self.model.descriptor.sel
        return [list(x) for x in sel] if sel and isinstance(sel[0], tuple) else list(sel)

    def get_dim_fparam(self) -> int:
        """Frame parameters per frame the model takes (``numb_fparam``)."""
        return int(self._fit_params.numb_fparam)

    def get_dim_aparam(self) -> int:
        """Atomic parameters per atom the model takes (``numb_aparam``)."""
        return int(self._fit_params.numb_aparam)

    def has_default_fparam(self) -> bool:
        """Whether the model stores ``default_fparam`` (then ``fparam`` may be omitted)."""
        return self._fit_params.default_fparam is not None

    def get_sel_type(self) -> List[int]:
        """Atom types a tensor model predicts for: ``[]``, as DeePMD-kit gives for energy models."""
        return []

    def eval_descriptor(self, coords, cells, atom_types, fparam=None, aparam=None, mixed_type=False, *, pbc=None,
                        **kwargs) -> np.ndarray:
        r"""Each atom's descriptor :math:`D_i`: the fitting net's input, DeePMD-kit's ``DeepPot.eval_descriptor``.

        For se_e2_a and se_atten, :math:`D_i = (\mathcal G_i^\top \tilde R_i)(\tilde R_i^\top
        \mathcal G_i^<) / N_c^2` flattened (the type embedding appended where the model concatenates
        it); other descriptors their own (docs/compress-spec.md); a hybrid concatenates its parts.  A compressed
        model gives the tables' descriptor (the C runtime's, on the host whatever ``device`` or
        ``comm``), an uncompressed one the exact one.  Arguments as :meth:`eval` (a model with frame or
        atomic parameters takes them too, as DeePMD-kit's does, though the descriptor does not
        depend on them).

        Returns
        -------
        ndarray, shape (nframes, natoms, dim)

        Raises
        ------
        InputError
            A NEP model (no DeePMD descriptor), or bad arrays as in :meth:`eval`.
        """
        _check_unsupported(kwargs)
        if isinstance(self.model, NEPModel):
            raise InputError("a NEP model has no DeePMD descriptor: eval_descriptor is for DP models")
        types, xyz, box, periodic, fparam, aparam = self._checked_inputs(coords, cells, atom_types, fparam, aparam,
                                                                          mixed_type, pbc, on_device=False)
        natoms, nframes = types.shape[-1], int(xyz.shape[0])
        if natoms == 0:
            return np.zeros((nframes, 0, int(self.model.descriptor.dim_out)))
        n_threads = kernel_threads(self.n_threads, self._threads_explicit)
        cells_of = _reduced_cells(box, xyz, periodic, self.get_rcut(), self._host)
        evaluator = with_parameters(self._host_evaluator, fparam, aparam, bool(self._fit_params.n_params))
        return evaluator.descriptors(np.ascontiguousarray(xyz), cells_of, types, n_threads)

    @_agreed_under_comm
    def eval(
        self,
        coords,
        cells,
        atom_types,
        atomic: bool = False,
        fparam=None,
        aparam=None,
        mixed_type: bool = False,
        *,
        pbc=None,
        **kwargs,
    ) -> Tuple[np.ndarray, ...]:
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
        fparam : array_like or None
            Frame parameters of a model with ``numb_fparam`` = nf > 0: shape (nframes, nf), or (nf,) for
            every frame; None takes the model's ``default_fparam`` (an :class:`InputError` when it has
            none).  Must be None for a model without frame parameters.
        aparam : array_like or None
            Atomic parameters of a model with ``numb_aparam`` = na > 0: shape (nframes, natoms, na),
            (natoms, na) for every frame, or (na,) for every atom (DeePMD-kit's ``DeepPot`` rules,
            :mod:`dpcompress.evaluators.frame_params`).  Required by such a model; must be None otherwise.
        pbc : None, bool or sequence of 3 bool, keyword-only
            Periodicity along the cell vectors a, b, c (dpcompress's extension; DeePMD-kit's
            ``DeepPot`` has no such argument).  ``None`` (default): DeePMD-kit's contract, periodic
            in all three directions when ``cells`` is given.  ``(True, True, False)``: a slab,
            periodic along a and b only, no images along c, whose row in ``cells`` is ignored (it
            may be zero, as ASE writes it); ``(True, False, False)``: a wire.  The result equals
            that of a fully periodic cell with a vacuum gap wider than the cutoff along the
            non-periodic directions (:func:`dpcompress.core.lattice.vacuum_cell` builds one
            internally), virial included.
        **kwargs
            DeePMD-kit's other keywords (``efield``, ``spin``, ``charge_spin``): accepted as None
            only, since no model dpcompress reads takes them; a value raises :class:`InputError`.

        Returns
        -------
        energy : ndarray, shape (nframes, 1)
        force : ndarray, shape (nframes, natoms, 3)
        virial : ndarray, shape (nframes, 9)
        atom_energy : ndarray, shape (nframes, natoms, 1)
            Only with ``atomic=True``.
        atom_virial : ndarray, shape (nframes, natoms, 9)
            Only with ``atomic=True``.

        Raises
        ------
        InputError
            Bad arrays (naming the frame and the atom), a singular cell, or a cell too small for the
            cutoff (:data:`dpcompress.neighbors.candidates.MAX_SCREENED_PER_ATOM`).
        NumericalError
            A non-finite energy, force or virial (naming the frame and the first atom): never
            returned.

        Notes
        -----
        Frames with zero atoms give energy 0, forces of shape ``(nframes, 0, 3)`` and a zero virial
        (DeePMD-kit's behaviour).  Each cell is reduced first (:func:`dpcompress.core.lattice.reduce_cell`):
        a sheared cell of the same lattice gives the same numbers at the same cost.  Coordinates
        beyond :data:`dpcompress.core.inputs.FAR_COORDINATE` warn
        (:class:`~dpcompress.core.warnings.CoordinatePrecisionWarning`).
        """
        _check_unsupported(kwargs)
        types, xyz, box, periodic, fparam, aparam = self._checked_inputs(coords, cells, atom_types, fparam, aparam,
                                                                          mixed_type, pbc, on_device=True)
        natoms, nframes = types.shape[-1], int(xyz.shape[0])
        if self.comm is not None:  # every rank's inputs valid and the same frames, or every rank raises
            self.evaluator.start((xyz, box, types) + (() if periodic is None else (np.array(periodic),)))
        if natoms == 0:
            return _empty_result(nframes, atomic)
        if not isinstance(self.evaluator, GpuEvaluator):
            warn_far_coordinates(xyz)
        n_threads = kernel_threads(self.n_threads, self._threads_explicit)
        evaluator = with_parameters(self.evaluator, fparam, aparam, bool(self._fit_params.n_params))
        batch = _evaluate_frames(evaluator, xyz, box, types, n_threads, periodic, self.get_rcut(), self._host,
                                 atomic=atomic)
        _check_finite_batch(batch)
        self._after_frames(batch)
        energy = batch.energy.reshape(nframes, 1)
        force = batch.force
        virial = batch.virial.reshape(nframes, 9)
        if not atomic:
            return energy, force, virial
        return energy, force, virial, batch.atom_energy[:, :, None], batch.atom_virial.reshape(nframes, natoms, 9)

    def _checked_inputs(self, coords, cells, atom_types, fparam, aparam, mixed_type, pbc, on_device):
        """The arguments of :meth:`eval` checked and shaped: (types, xyz, box, periodic, fparam, aparam).

        ``on_device``: the GPU evaluator keeps the coordinates on its device (else they come to
        the host); cells always come to the host.
        """
        types = _frame_types(atom_types, self.get_type_map(), mixed_type)
        natoms = types.shape[-1]
        if on_device and isinstance(self.evaluator, GpuEvaluator) and natoms:
            xyz = self.evaluator.coords(coords, natoms)
        else:
            xyz = as_coords(self._host(coords) if natoms else coords, natoms)
        nframes = int(xyz.shape[0])
        if types.ndim == 2 and types.shape[0] != nframes:
            raise InputError(f"atom_types has {types.shape[0]} frames, coords {nframes}")
        fparam, aparam = frame_parameters(fparam, aparam, nframes, natoms, self.get_dim_fparam(),
                                          self.get_dim_aparam(), self.has_default_fparam())
        periodic = as_pbc(pbc, cells)
        box = as_cells(self._host(cells) if cells is not None else None, nframes, periodic)
        return types, xyz, box, periodic, fparam, aparam

    def _host(self, coords):
        """A frame's coordinates on the host (the GPU path may hold them on the device)."""
        return self.evaluator.host(coords) if isinstance(self.evaluator, GpuEvaluator) else coords

    def close(self) -> None:
        """Free the evaluator's buffers (the object stays usable: they are made again when needed)."""
        self.evaluator.close()

    # ------------------------------------------------------------------ warnings

    def _after_frames(self, batch):
        """:meth:`_after_frame` of every frame of a batch; frames without any overflow are only counted."""
        flagged = np.flatnonzero(batch.counts[:, :3].any(axis=1))  # beyond_fine, beyond_table, overflow
        done = 0
        for f in flagged:
            self.n_evaluations += int(f) - done  # the clean frames before it
            self._after_frame(batch.frame(int(f)), int(f))
            done = int(f) + 1
        if done < batch.nframes:
            self.n_evaluations += batch.nframes - done - 1
            self._after_frame(batch.frame(batch.nframes - 1), batch.nframes - 1)

    def _after_frame(self, r, frame=0):
        self.n_evaluations += 1
        self._warn_neighbor_overflow(r.overflow)
        self.table_overflow = {"beyond_fine": r.beyond_fine, "beyond_table": r.beyond_table}
        self.table_overflow_total["beyond_fine"] += r.beyond_fine
        self.table_overflow_total["beyond_table"] += r.beyond_table
        # always on, whatever check_frequency: close contacts must not be extrapolated silently
        if r.beyond_table and self.overflow != "ignore" and not self._overflow_reported:
            what = (
                f"frame {frame} (evaluation {self.n_evaluations}): {r.beyond_table} neighbor entries beyond the "
                f"compressed model's table, extrapolated linearly (pairs much closer than the training set's "
                f"minimum distance {self._min_nbor_dist_text()}); accuracy may suffer"
            )
            if self.overflow == "error":
                raise TableOverflowError(f"{what}. Recompress with a larger -e, or pass overflow='warn'")
            self._overflow_reported = True
            warnings.warn(
                f"{what}. Reported once per Potential; counts in table_overflow / table_overflow_total; "
                "overflow='error' stops, overflow='ignore' silences",
                TableOverflowWarning,
                stacklevel=5,  # the caller of eval (through _agreed_under_comm and _after_frames)
            )
        # DeePMD-kit's -f: every check_frequency evaluations, that evaluation is checked
        check = self.check_frequency > 0 and self.n_evaluations % self.check_frequency == 0
        if check and (r.beyond_fine or r.beyond_table):
            warnings.warn(
                f"evaluation {self.n_evaluations}: {r.beyond_fine} neighbor entries beyond the fine table "
                f"(closer than the training set's minimum distance {self._min_nbor_dist_text()}) and "
                f"{r.beyond_table} beyond the whole table (linear extrapolation); accuracy may suffer",
                TableOverflowWarning,
                stacklevel=5,  # the caller of eval (through _agreed_under_comm and _after_frames)
            )

    def _min_nbor_dist_text(self):
        mnd = getattr(self.model, "min_nbor_dist", None)
        return "unknown" if mnd is None else f"{mnd:.4g} Å"

    def _warn_neighbor_overflow(self, o):
        self.last_overflow = int(o.total)
        if not o.total:
            return
        if isinstance(self.model, NEPModel):
            detail = ""
        else:
            d = parts(self.model.descriptor)[o.part]
            what = "neighbors" if d.mixed_types else f"neighbors of type {self.get_type_map()[o.block]}"
            where = f"{d.type_name} rcut={d.rcut} Å sel={list(d.sel)}"
            if d.type_name == "dpa2" and o.block == 1:  # the runtime's block 1 of a DPA-2: its repformer slots
                where = f"dpa2 repformer rcut={d.rf_rcut} Å nsel={d.rf_nsel}"
            detail = f" (worst: atom {o.atom} lost {o.worst} {what}; {where})"
        warnings.warn(
            f"{o.total} neighbors inside rcut were dropped because sel is too small{detail}; "
            "results differ from a model with a larger sel",
            NeighborOverflowWarning,
            stacklevel=6,  # the caller of eval (through _after_frames)
        )


#: DeePMD-kit's ``DeepPot.eval`` keywords for inputs no model dpcompress reads takes (None is accepted).
UNSUPPORTED_EVAL_INPUTS = ("efield", "spin", "charge_spin")


def _frame_types(atom_types, type_map, mixed_type):
    """``atom_types`` as type indices: one row (natoms,), or one per frame with ``mixed_type`` (a
    per-frame array whose rows are all equal is taken as one row without it)."""
    types = as_atom_types(atom_types, type_map)
    if types.ndim == 2 and not mixed_type:
        if not np.all(types == types[:1]):
            raise InputError("atom_types has one row per frame but mixed_type=False; pass mixed_type=True")
        types = types[0]
    return types


def _check_unsupported(kwargs):
    """Raise :class:`InputError` for a DeePMD-kit input these models lack, or an unknown keyword."""
    for key, value in kwargs.items():
        if key not in UNSUPPORTED_EVAL_INPUTS:
            raise TypeError(f"eval() got an unexpected keyword argument {key!r}")
        if value is not None:
            raise InputError(f"{key} given, but this model takes no {key} input (dpcompress reads energy models "
                             f"without electric-field, spin or charge inputs); pass {key}=None")


def _evaluate_frames(evaluator, xyz, box, types, n_threads, periodic=None, rcut=None, host=None, atomic=True):
    """Every frame's result, as a :class:`~dpcompress.evaluators.base.FrameBatch`, in one call of the evaluator.

    The frames go to :meth:`~dpcompress.evaluators.base.Evaluator.evaluate_batch` together, so an
    evaluator can compute them without a per-frame Python loop (docs/performance.md: many small frames); each result
    is the single-frame one bit for bit (tests/test_batching.py).  An evaluator's
    :class:`InputError` names the frame.  ``periodic`` (a partly periodic ``pbc``), ``rcut`` and
    ``host`` (coordinates to numpy) size the vacuum of a slab or a wire per frame
    (:func:`~dpcompress.core.lattice.frame_cell`).  ``atomic=False``: no per-atom virial is read.
    """
    cells = _reduced_cells(box, xyz, periodic, rcut, host)
    if isinstance(xyz, np.ndarray):  # (a CuPy array stays on its device for the GPU evaluator)
        xyz = np.ascontiguousarray(xyz)
    return evaluator.evaluate_batch(xyz, cells, types, n_threads, atomic=atomic)


def _reduced_cells(box, xyz, periodic, rcut, host):
    """Each frame's reduced cell (None: a cluster), or None when no frame has a cell.

    A slab or a wire gets its vacuum sized by each frame's atoms
    (:func:`~dpcompress.core.lattice.frame_cell`); a fully periodic cell is reduced once per run of
    bit-identical cells (:func:`~dpcompress.core.lattice.reduce_cell` is deterministic).
    """
    if box is None:
        return None
    if periodic is not None:
        cells = [frame_cell(box[f], periodic, host(xyz[f]), rcut) for f in range(box.shape[0])]
        return [None if c is None else np.ascontiguousarray(c, dtype=np.float64) for c in cells]
    cells = []
    for f in range(box.shape[0]):
        same = f > 0 and box[f].tobytes() == box[f - 1].tobytes()
        cells.append(cells[-1] if same else np.ascontiguousarray(reduce_cell(box[f]).cell, dtype=np.float64))
    return cells


def _empty_result(nframes, atomic):
    """Outputs of frames without atoms: energy 0, no forces, zero virial (DeePMD-kit's)."""
    out = (np.zeros((nframes, 1)), np.zeros((nframes, 0, 3)), np.zeros((nframes, 9)))
    return out + (np.zeros((nframes, 0, 1)), np.zeros((nframes, 0, 9))) if atomic else out


def _check_finite_batch(batch):
    """:func:`_check_finite` of the first frame holding a NaN or an infinity, if any (one pass over the arrays)."""
    bad = ~(np.isfinite(batch.energy) & np.isfinite(batch.force).all(axis=(1, 2))
            & np.isfinite(batch.atom_energy).all(axis=1) & np.isfinite(batch.atom_virial).all(axis=(1, 2, 3))
            & np.isfinite(batch.virial).all(axis=(1, 2)))
    if bad.any():
        f = int(np.flatnonzero(bad)[0])
        _check_finite(batch.frame(f), f)


def _check_finite(r, frame):
    """Raise :class:`NumericalError` when a frame's result holds NaN or infinity (O(atoms)).

    Names the first atom whose force, energy or virial is not finite: the model's weights or tables
    overflow for that atom's environment (or hold NaN), which no input check can see.
    """
    per_atom = (np.isfinite(r.force).all(axis=1) & np.isfinite(r.atom_energy)
                & np.isfinite(np.asarray(r.atom_virial).reshape(len(r.force), 9)).all(axis=1))
    totals_ok = bool(np.isfinite(r.energy)) and bool(np.isfinite(r.virial).all())
    if totals_ok and per_atom.all():
        return
    if per_atom.all():  # finite per atom, infinite in the sum: the total overflowed
        raise NumericalError(f"frame {frame}: the total energy or virial overflows (energy {r.energy}, "
                             f"virial {np.asarray(r.virial).ravel().tolist()})")
    k = int(np.flatnonzero(~per_atom)[0])
    raise NumericalError(
        f"frame {frame}: the model gives a non-finite result at atom {k} "
        f"(energy {r.atom_energy[k]}, force {np.asarray(r.force[k]).tolist()}; "
        f"{int((~per_atom).sum())} atoms affected): its weights or tables hold NaN or overflow for this "
        "environment"
    )
