"""The whole compressed step on an NVIDIA GPU, through CuPy (``Potential(path, device="gpu")``).

Compressed se_e2_a and se_e2_r models and hybrids of them; other descriptors raise
:class:`~dpcompress.UnsupportedModelError` (use ``device="cpu"``).

Neighbor list, environment matrix, fused tabulate/contract forward and backward,
``D = TᵀT_<``, the fitting net (cuBLAS through CuPy), forces and virials all
run on the device; the tables are uploaded once.  The kernels are the CUDA
sources in ``src_c/cuda/`` (sharing ``src_c/dpc_table.h`` and
``src_c/dpc_env_mat.h`` with the C kernels), compiled at run time by NVRTC
through ``cupy.RawModule``, once per device.  Design: ``docs/gpu.md``.

CuPy is optional (``pip install "dpcompress[gpu]"``); this package imports it
lazily, so ``import dpcompress.gpu`` works everywhere and :func:`is_available`
answers False, without raising, where CuPy or a CUDA device is missing.

Without a GPU the same kernels and the same Python orchestration run on the
CPU emulator (:mod:`dpcompress.gpu.emulator`), which is how they are tested
where no device exists.
"""

from ..core.errors import DPCompressError


class GPUUnavailableError(DPCompressError, RuntimeError):
    """``device="gpu"`` was asked for but CuPy or a CUDA device is missing."""


def _import_cupy():
    try:
        import cupy
    except ImportError:
        return None
    return cupy


def cupy_installed():
    """True when ``import cupy`` works (a device may still be missing)."""
    return _import_cupy() is not None


def is_available():
    """True when CuPy is installed and sees at least one usable CUDA device; never raises."""
    cupy = _import_cupy()
    if cupy is None:
        return False
    try:
        return bool(cupy.is_available())
    except Exception:  # a broken driver/runtime pairing raises from deep inside CuPy
        return False


def unavailable_reason():
    """Why :func:`is_available` is False (a sentence naming what is missing), or None."""
    cupy = _import_cupy()
    if cupy is None:
        return (
            "CuPy is not installed: install the wheel that matches your CUDA driver, "
            "e.g. pip install 'dpcompress[gpu]' (cupy-cuda13x) or pip install cupy-cuda12x"
        )
    try:
        if cupy.is_available():
            return None
    except Exception as exc:  # pragma: no cover - depends on the machine
        return f"CuPy {cupy.__version__} is installed but cannot use CUDA: {exc}"
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"CuPy {cupy.__version__} is installed but no CUDA device is usable: {exc}"
    return f"CuPy {cupy.__version__} is installed but reports no CUDA device"


def require_gpu():
    """Raise :class:`GPUUnavailableError` naming what is missing unless a GPU can be used."""
    reason = unavailable_reason()
    if reason is not None:
        raise GPUUnavailableError(f'device="gpu" is unavailable: {reason}')


__all__ = ["GPUUnavailableError", "cupy_installed", "is_available", "unavailable_reason", "require_gpu"]
