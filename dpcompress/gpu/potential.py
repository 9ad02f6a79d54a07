"""``Potential(path, device="gpu")``: DeePMD-kit's ``DeepPot.eval`` contract on the GPU path.

:class:`dpcompress.Potential` validates ``device`` with :func:`check_device`
and, for a GPU, hands :meth:`~dpcompress.Potential.eval` to :class:`GpuPotential`.

Inputs may be NumPy or CuPy arrays.  Coordinates given as CuPy arrays stay on
the device (their validation happens there too; a bad value is reported when
the results are read back).  Cells (9 numbers a frame) and atom types are
taken to the host: they fix the cell list's geometry and the per-type grouping
of the fitting net (the device copy of the types is reused while they do not
change).  Results come back as NumPy arrays, as from the CPU path; for results
that stay on the device use :class:`dpcompress.gpu.se_a_compressed.GpuEvaluator`.
"""

import re
import warnings

import numpy as np

from ..errors import InputError, UnsupportedModelError
from ..frame_inputs import as_atom_types, as_cells, as_coords

_GPU = re.compile(r"gpu(:\d+)?")


def _is_backend(obj):
    return hasattr(obj, "launch") and hasattr(obj, "xp")


def check_device(device, model=None):
    """Validate ``Potential(device=...)``: ``"cpu"``, ``"gpu"`` or ``"gpu:N"`` (or a backend object, for tests)."""
    if _is_backend(device):
        kind = "gpu"
    elif isinstance(device, str) and (device == "cpu" or _GPU.fullmatch(device)):
        kind = "cpu" if device == "cpu" else "gpu"
    else:
        raise InputError(f"device must be 'cpu', 'gpu' or 'gpu:N' (N = CUDA device ordinal), got {device!r}")
    if kind == "gpu" and model is not None:
        from ..nep import NEPModel, is_nep_file

        if isinstance(model, NEPModel) or is_nep_file(model):
            raise UnsupportedModelError('NEP models run on the CPU only; use device="cpu"')
    return device


def _host(a):
    """A host (numpy) view or copy of a NumPy/CuPy array or sequence."""
    if a is None:
        return None
    if type(a).__module__.split(".")[0] == "cupy":
        return a.get()
    return a


class GpuPotential:
    """The GPU side of one :class:`~dpcompress.Potential` (holds the uploaded model)."""

    def __init__(self, pot, device):
        from .se_a_compressed import GpuEvaluator

        if pot.comm is not None:
            raise InputError('device="gpu" does not combine with comm (MPI domain decomposition); use one or the other')
        if _is_backend(device):
            backend = device
        else:
            from .backend import CupyBackend

            backend = CupyBackend(int(device.split(":")[1]) if ":" in device else None)
        self.pot = pot
        self.evaluator = GpuEvaluator(pot.model, backend)
        self.be = backend

    def _coords(self, coords, natoms):
        be = self.be
        if not be.is_device_array(coords):
            return as_coords(coords, natoms)  # host validation, as on the CPU path
        if coords.dtype.kind not in "fiu":
            raise InputError(f"coords must be a real numeric array, got dtype {coords.dtype}")
        if coords.size == 0 or coords.size % (3 * natoms) != 0 or coords.ndim > 3:
            raise InputError(
                f"coords has shape {coords.shape}; expected (nframes, {natoms}*3) or (nframes, {natoms}, 3) for {natoms} atoms"
            )
        if coords.ndim == 3 and coords.shape[1:] != (natoms, 3):
            raise InputError(f"coords has shape {coords.shape}; expected (nframes, {natoms}, 3)")
        return be.xp.ascontiguousarray(coords.reshape(-1, natoms, 3), dtype=np.float64)

    def eval(self, coords, cells, atom_types, atomic=False, fparam=None, aparam=None, mixed_type=False):
        pot = self.pot
        if fparam is not None or aparam is not None:
            raise InputError("fparam/aparam given, but this model takes none (numb_fparam = numb_aparam = 0)")
        types = as_atom_types(_host(atom_types), pot.model.type_map)
        if types.ndim == 2 and not mixed_type:
            if not np.all(types == types[:1]):
                raise InputError("atom_types has one row per frame but mixed_type=False; pass mixed_type=True")
            types = types[0]
        natoms = types.shape[-1]
        xyz = self._coords(coords, natoms)
        nframes = int(xyz.shape[0])
        if types.ndim == 2 and types.shape[0] != nframes:
            raise InputError(f"atom_types has {types.shape[0]} frames, coords {nframes}")
        box = as_cells(_host(cells), nframes)
        results = []
        for f in range(nframes):
            pot.n_evaluations += 1
            check = pot.check_frequency > 0 and pot.n_evaluations % pot.check_frequency == 0
            res = self.evaluator.evaluate(xyz[f], None if box is None else box[f], types if types.ndim == 1 else types[f], check)
            try:
                out = res.to_host(self.be, atomic)
            except InputError as exc:
                raise InputError(f"frame {f}: {exc}") from None
            pot._warn_neighbor_overflow(out["overflow"])
            if check:
                pot.table_overflow = {k: out[k] for k in ("beyond_fine", "beyond_table")}
                if out["beyond_fine"] or out["beyond_table"]:
                    from ..potential import TableOverflowWarning

                    mnd = pot.model.min_nbor_dist
                    mnd = "unknown" if mnd is None else f"{mnd:.4g} Å"
                    warnings.warn(
                        f"evaluation {pot.n_evaluations}: {out['beyond_fine']} neighbor entries beyond the fine table "
                        f"(closer than the training set's minimum distance {mnd}) and "
                        f"{out['beyond_table']} beyond the whole table (linear extrapolation); accuracy may suffer",
                        TableOverflowWarning,
                        stacklevel=3,
                    )
            results.append(out)
        energy = np.array([[r["energy"]] for r in results])
        force = np.stack([r["force"] for r in results])
        virial = np.stack([r["virial"].reshape(9) for r in results])
        if not atomic:
            return energy, force, virial
        atom_energy = np.stack([r["atom_energy"][:, None] for r in results])
        atom_virial = np.stack([r["atom_virial"].reshape(natoms, 9) for r in results])
        return energy, force, virial, atom_energy, atom_virial
