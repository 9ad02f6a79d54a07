"""Where the GPU pipeline runs: CuPy on a CUDA device, or the CPU emulator.

Both backends offer the same small interface, which is all that
:mod:`dpcompress.gpu.se_a_compressed` uses:

``xp``                    the array module (cupy, or numpy for the emulator)
``launch(module, kernel, grid, args)``  run a kernel of ``src_c/cuda/<module>.cu`` with
                          ``grid`` blocks of ``block`` threads; scalars are passed as numpy
                          scalars of the kernel's C type (np.int64 = long long, np.int32 = int,
                          np.float64 = double), arrays as C-contiguous arrays
``argsort(a)``            stable argsort
``to_host(a)`` / ``asarray(a, dtype)``  copies between host and device
``max_blocks`` / ``block``  launch geometry (every kernel is grid-stride)
"""

from . import modules


class CupyBackend:
    """The real thing: CuPy arrays on the current CUDA device, kernels compiled by NVRTC."""

    name = "cupy"

    def __init__(self, device=None):
        from . import require_gpu

        require_gpu()
        import cupy

        self.xp = cupy
        self.device = cupy.cuda.Device(device) if device is not None else cupy.cuda.Device()
        props = cupy.cuda.runtime.getDeviceProperties(self.device.id)
        self.sm_count = int(props["multiProcessorCount"])
        self.block = 128
        # enough resident blocks to fill the device; the grid-stride loops do the rest
        self.max_blocks = 16 * self.sm_count

    def launch(self, module, kernel, grid, args):
        with self.device:
            fn = modules.get_function(module, kernel)
            fn((max(1, min(int(grid), self.max_blocks)),), (self.block,), tuple(args))

    def argsort(self, a):
        return self.xp.argsort(a)  # CuPy's argsort is a stable radix sort

    def to_host(self, a):
        return self.xp.asnumpy(a)

    def asarray(self, a, dtype=None):
        with self.device:
            return self.xp.ascontiguousarray(self.xp.asarray(a, dtype=dtype))

    def is_device_array(self, a):
        return isinstance(a, self.xp.ndarray)

    def synchronize(self):
        self.device.synchronize()


def default_backend():
    """CuPy on the current device (raises :class:`~dpcompress.gpu.GPUUnavailableError` naming what is missing)."""
    return CupyBackend()
