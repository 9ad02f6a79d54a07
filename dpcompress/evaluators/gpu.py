"""``Potential(path, device="gpu")``: the GPU path (:mod:`dpcompress.gpu`) behind the evaluator
interface.

Inputs may be NumPy or CuPy arrays.  Coordinates given as CuPy arrays stay on the device (their
validation happens there too; a bad value is reported when the results are read back).  Cells
(9 numbers a frame) and atom types are taken to the host: they fix the cell list's geometry and
the per-type grouping of the fitting net.  Results come back as NumPy arrays, as from the CPU
path; for results that stay on the device use :class:`dpcompress.gpu.se_a_compressed.GpuEvaluator`.
"""

import re

import numpy as np

from ..core.errors import InputError, UnsupportedModelError
from ..core.inputs import as_coords
from ..descriptors import parts
from ..gpu.backend import CupyBackend
from ..gpu.se_a_compressed import GpuEvaluator as GpuDriver
from ..nep import NEPModel, is_nep_text_file
from .base import Evaluator, FrameResult, Overflow

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
        if isinstance(model, NEPModel) or (isinstance(model, str) and is_nep_text_file(model)):
            raise UnsupportedModelError('NEP models run on the CPU only; use device="cpu"')
    return device


def host(a):
    """A host (numpy) view or copy of a NumPy/CuPy array or sequence."""
    if a is None:
        return None
    if type(a).__module__.split(".")[0] == "cupy":
        return a.get()
    return a


class GpuEvaluator(Evaluator):
    """A compressed model on one CUDA device (or a test backend)."""

    compressed = True

    def __init__(self, model, device):
        if isinstance(model, NEPModel):
            raise UnsupportedModelError('NEP models run on the CPU only; use device="cpu"')
        if any(getattr(p, "attention", None) is not None for p in parts(model.descriptor)):
            raise UnsupportedModelError('dpa1 with attention layers runs on the CPU only; use device="cpu"')
        if any(p.type_name == "dpa2" for p in parts(model.descriptor)):
            raise UnsupportedModelError('DPA-2 (repformer layers) runs on the CPU only; use device="cpu"')
        if _is_backend(device):
            backend = device
        else:
            backend = CupyBackend(int(device.split(":")[1]) if ":" in device else None)
        self.driver = GpuDriver(model, backend)
        self.be = backend
        self.type_map = tuple(model.type_map)
        self.rcut = float(model.rcut)

    host = staticmethod(host)

    def coords(self, coords, natoms):
        """Validated coordinates: on the host as the CPU path, or a device array kept on the device."""
        be = self.be
        if not be.is_device_array(coords):
            return as_coords(coords, natoms)
        if coords.dtype.kind not in "fiu":
            raise InputError(f"coords must be a real numeric array, got dtype {coords.dtype}")
        if coords.size == 0 or coords.size % (3 * natoms) != 0 or coords.ndim > 3:
            raise InputError(
                f"coords has shape {coords.shape}; expected (nframes, {natoms}*3) or (nframes, {natoms}, 3) for {natoms} atoms"
            )
        if coords.ndim == 3 and coords.shape[1:] != (natoms, 3):
            raise InputError(f"coords has shape {coords.shape}; expected (nframes, {natoms}, 3)")
        return be.xp.ascontiguousarray(coords.reshape(-1, natoms, 3), dtype=np.float64)

    def evaluate(self, coords, cell, types, n_threads=1):
        out = self.driver.evaluate(coords, cell, types, True).to_host(self.be, True)
        overflow = Overflow()
        for k, o in enumerate(out["overflow"]):
            overflow.total += int(o.sum())
            if o.size and o.max() > overflow.worst:
                atom, block = np.unravel_index(np.argmax(o), o.shape)
                overflow = Overflow(overflow.total, int(o.max()), k, int(atom), int(block))
        return FrameResult(out["energy"], out["force"], out["virial"], out["atom_energy"], out["atom_virial"],
                           overflow, out.get("beyond_fine", 0), out.get("beyond_table", 0))
