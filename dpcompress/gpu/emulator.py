"""Run the CUDA kernels of ``src_c/cuda/`` on the CPU, for tests on machines without a GPU.

The very same ``.cu`` sources are compiled as host C++ by ``g++`` with
``src_c/cuda/emu/dpc_cuda_emu.h`` force-included, which supplies the CUDA
built-ins (thread and block indices, ``__syncwarp``, shuffles, ballots,
atomics) on cooperative fibers: the threads of a block run on one OS thread
and switch at every warp collective, so warp-synchronous code runs as it would
on a GPU (and a collective reached by part of a warp is reported as a
deadlock).  Blocks run one after another; ``__shared__`` variables are statics.

:class:`EmulatorBackend` has the interface of the CuPy backend
(:mod:`dpcompress.gpu.backend`) with numpy arrays, so the whole GPU pipeline of
:mod:`dpcompress.gpu.se_a_compressed` runs unchanged on it.  Each launch also
checks the number and C types of its arguments against the kernel's signature
(a check CuPy cannot make), so a wrong ``np.int32``/``np.int64`` in the
orchestration is caught here rather than on a GPU.

It is slow (thousands of context switches per atom): meant for test frames of
a few hundred atoms.  The shared library is built once per source version
into ``$DPCOMPRESS_CACHE_DIR`` (default ``~/.cache/dpcompress``).
"""

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile

import numpy as np

from . import modules

_GLUE = r"""
#include "dpc_cuda_emu.h"
{includes}

template <class T> static constexpr char dpc_emu_code()
{{
    return std::is_pointer<T>::value ? 'p'
         : std::is_same<T, long long>::value ? 'q'
         : std::is_same<T, int>::value ? 'i'
         : std::is_same<T, double>::value ? 'd'
         : '?';
}}
template <class F> struct dpc_emu_sig;
template <class... A> struct dpc_emu_sig<void (*)(A...)> {{
    static const char *get() {{ static const char s[] = {{dpc_emu_code<typename std::remove_cv<A>::type>()..., 0}}; return s; }}
}};
#define DPC_EMU_ROW(NAME, ...) {{ DPC_EMU_KERNEL(NAME, __VA_ARGS__), dpc_emu_sig<decltype(&__VA_ARGS__)>::get }}

struct dpc_emu_row {{ dpc_emu::entry e; const char *(*sig)(); }};
static const dpc_emu_row DPC_EMU_TABLE[] = {{
{rows}
}};

extern "C" int dpc_emu_count(void) {{ return (int)(sizeof(DPC_EMU_TABLE) / sizeof(DPC_EMU_TABLE[0])); }}
extern "C" const char *dpc_emu_name(int k) {{ return DPC_EMU_TABLE[k].e.name; }}
extern "C" const char *dpc_emu_signature(int k) {{ return DPC_EMU_TABLE[k].sig(); }}
extern "C" int dpc_emu_launch(int k, unsigned grid, unsigned block, void **params)
{{
    return dpc_emu::launch(DPC_EMU_TABLE[k].e.call, params, grid, block);
}}
"""


def _glue_source():
    includes = "\n".join(f'#include "{spec[0]}"' for spec in modules.MODULES.values())
    rows = []
    for _, plain, templates in modules.MODULES.values():
        for name in tuple(plain) + tuple(templates):
            rows.append(f'    DPC_EMU_ROW("{name}", {name}),')
    return _GLUE.format(includes=includes, rows="\n".join(rows))


def cache_dir():
    """``$DPCOMPRESS_CACHE_DIR``, else ``~/.cache/dpcompress``, else a folder in the temporary directory."""
    explicit = os.environ.get("DPCOMPRESS_CACHE_DIR")
    if explicit:
        return explicit
    home = os.path.join(os.path.expanduser("~"), ".cache", "dpcompress")
    try:
        os.makedirs(home, exist_ok=True)
        if os.access(home, os.W_OK):
            return home
    except OSError:
        pass
    return os.path.join(tempfile.gettempdir(), f"dpcompress-{os.getuid() if hasattr(os, 'getuid') else 'user'}")


def compiler():
    """The C++ compiler the emulator is built with (``$CXX`` or g++), or None."""
    cxx = os.environ.get("CXX") or "g++"
    return shutil.which(cxx.split()[0]) and cxx


@functools.lru_cache(maxsize=None)
def library_path():
    """Build (once per source version) and return the emulator's shared library."""
    cxx = compiler()
    if not cxx:
        raise RuntimeError("the CUDA emulator needs a C++17 compiler (g++ or $CXX)")
    root = modules.source_root()
    glue = _glue_source()
    flags = ["-std=c++17", "-O1", "-fPIC", "-shared", "-ffp-contract=off", "-w"]
    digest = hashlib.sha256((modules.source_digest() + glue + " ".join(flags)).encode()).hexdigest()[:16]
    for name in ("dpc_cuda_emu.h",):
        with open(os.path.join(root, "cuda", "emu", name), "rb") as fh:
            digest = hashlib.sha256(digest.encode() + fh.read()).hexdigest()[:16]
    out_dir = os.path.join(cache_dir(), f"emu-{digest}")
    lib = os.path.join(out_dir, "libdpc_cuda_emu.so")
    if os.path.isfile(lib):
        return lib
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=out_dir)
    try:
        src = os.path.join(tmp, "glue.cpp")
        with open(src, "w") as fh:
            fh.write(glue)
        cmd = cxx.split() + flags + [
            "-I", root, "-I", os.path.join(root, "cuda"), "-I", os.path.join(root, "cuda", "emu"),
            src, "-o", os.path.join(tmp, "lib.so"),
        ]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"building the CUDA emulator failed:\n{' '.join(cmd)}\n{res.stderr[-8000:]}")
        os.replace(os.path.join(tmp, "lib.so"), lib)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return lib


_CTYPES = {"q": ctypes.c_longlong, "i": ctypes.c_int, "d": ctypes.c_double}
_NUMPY = {"q": np.int64, "i": np.int32, "d": np.float64}


class _Library:
    def __init__(self, path):
        self.dll = ctypes.CDLL(path)
        self.dll.dpc_emu_name.restype = ctypes.c_char_p
        self.dll.dpc_emu_signature.restype = ctypes.c_char_p
        self.dll.dpc_emu_launch.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)]
        self.kernels = {}
        for k in range(self.dll.dpc_emu_count()):
            name = self.dll.dpc_emu_name(k).decode()
            self.kernels[name.replace(" ", "")] = (k, self.dll.dpc_emu_signature(k).decode())

    def launch(self, name, grid, block, args):
        key = name.replace(" ", "")
        if key not in self.kernels:
            raise KeyError(f"no kernel {name!r} in the emulator (known: {sorted(self.kernels)})")
        k, sig = self.kernels[key]
        if len(args) != len(sig):
            raise TypeError(f"{name}: {len(args)} arguments given, the kernel takes {len(sig)}")
        keep, ptrs = [], []
        for pos, (code, a) in enumerate(zip(sig, args)):
            if code == "p":
                if not isinstance(a, np.ndarray):
                    raise TypeError(f"{name}: argument {pos} must be an array, got {type(a).__name__}")
                if not a.flags.c_contiguous:
                    raise TypeError(f"{name}: argument {pos} must be C-contiguous")
                c = ctypes.c_void_p(a.ctypes.data)
            else:
                if not isinstance(a, _NUMPY[code]):
                    raise TypeError(
                        f"{name}: argument {pos} must be {_NUMPY[code].__name__} (the kernel's C type), "
                        f"got {type(a).__name__}"
                    )
                c = _CTYPES[code](a.item())
            keep.append(c)
            ptrs.append(ctypes.cast(ctypes.pointer(c), ctypes.c_void_p))
        params = (ctypes.c_void_p * len(ptrs))(*ptrs)
        rc = self.dll.dpc_emu_launch(k, int(grid), int(block), params)
        if rc != 0:
            raise RuntimeError(f"emulated launch of {name} failed (code {rc}); see stderr")


@functools.lru_cache(maxsize=None)
def _library():
    return _Library(library_path())


class EmulatorBackend:
    """Numpy arrays + emulated kernels: the GPU pipeline on the CPU (tests only).

    ``max_blocks`` small grids make the grid-stride loops of every kernel go
    round several times; ``block`` threads per block (a multiple of 32, at most 128).
    """

    name = "emulator"

    def __init__(self, max_blocks=2, block=128):
        self.xp = np
        self.max_blocks = int(max_blocks)
        self.block = int(block)
        self._lib = _library()

    def launch(self, module, kernel, grid, args):
        self._lib.launch(kernel, max(1, min(int(grid), self.max_blocks)), self.block, args)

    def argsort(self, a):
        return np.argsort(a, kind="stable")

    def to_host(self, a):
        return np.asarray(a)

    def asarray(self, a, dtype=None):
        return np.ascontiguousarray(a, dtype=dtype)

    def is_device_array(self, a):
        return False

    def synchronize(self):
        pass
