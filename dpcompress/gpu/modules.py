"""CUDA sources of dpcompress and their compiled modules.

The kernels live in ``src_c/cuda/*.cu`` and include the C kernels' headers
(``src_c/dpc_table.h``, ``src_c/dpc_env_mat.h``, ``src_c/dpc_common.h``): one
source of truth for the table layout, the polynomial and the environment
matrix.  Where they are: :mod:`dpcompress.core.sources` (package data in a wheel,
``<repo>/src_c/`` in a source checkout).

:func:`load_source` returns a module's source with every ``#include "..."``
inlined (with ``#line`` markers, so compiler messages name the original file
and line).  Inlining makes the text self-contained: NVRTC needs no include
path, and CuPy's on-disk kernel cache, keyed by the source text, can never
serve a binary built from an older header.

:func:`get_function` compiles a module with NVRTC through
:class:`cupy.RawModule` the first time a kernel of it is asked for on a device,
and keeps it (``functools.lru_cache`` per module and device; CuPy also caches
the binary on disk across processes).
"""

import functools
import hashlib
import os
import re

from ..core import sources

#: module -> (file under src_c/cuda/, extern "C" kernels, template kernels as NVRTC name expressions).
#: Every kernel carries the name of its C twin (docs/gpu.md has the table); ``_radial`` is the
#: C kernels' one-row mode and ``_bin_*`` the binning step of ``dpc_cell_candidates``.
MODULES = {
    "neighbors": (
        "neighbors.cu",
        ("dpc_cell_candidates_bin_periodic", "dpc_cell_candidates_bin_open", "dpc_neighbor_rows",
         "dpc_scatter_pair_gradients"),
        (),
    ),
    "se_a_tab": (
        "se_a_tab.cu",
        ("dpc_descriptor_from_T", "dpc_descriptor_gradient_to_T"),
        tuple(f"dpc_se_a_tab_forward{mode}<{nc},{cpl}>" for mode in ("", "_radial") for nc in (4, 6)
              for cpl in (1, 2, 3, 4))
        + tuple(f"dpc_se_a_tab_backward{mode}<{nc},{g}>" for mode in ("", "_radial") for nc in (4, 6)
                for g in (4, 8, 16, 32)),
    ),
}

#: NVRTC options (CuPy adds the target architecture of the device)
NVRTC_OPTIONS = ("-std=c++17",)

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def source_root():
    """Folder holding the C headers (``dpc_table.h`` ...) with the CUDA sources in ``cuda/`` below it."""
    return sources.source_root(os.path.join("cuda", "se_a_tab.cu"))


def kernel_files():
    """Paths of every ``.cu`` file, one per module."""
    root = source_root()
    return {name: os.path.join(root, "cuda", spec[0]) for name, spec in MODULES.items()}


def _resolve(name, including_dir, root):
    for d in (including_dir, root, os.path.join(root, "cuda")):
        path = os.path.join(d, name)
        if os.path.isfile(path):
            return os.path.normpath(path)
    raise FileNotFoundError(f'#include "{name}" not found next to {including_dir} nor in {root}')


def _inline(path, root, seen, out):
    if path in seen:  # every header has include guards; inlining it once is enough
        return
    seen.add(path)
    rel = os.path.relpath(path, root)
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    out.append(f'#line 1 "{rel}"')
    for number, line in enumerate(lines, start=1):
        m = _INCLUDE.match(line)
        if m:
            _inline(_resolve(m.group(1), os.path.dirname(path), root), root, seen, out)
            out.append(f'#line {number + 1} "{rel}"')
        else:
            out.append(line)


@functools.lru_cache(maxsize=None)
def load_source(module):
    """Self-contained source text of ``module`` (a key of :data:`MODULES`)."""
    root = source_root()
    out = []
    _inline(os.path.join(root, "cuda", MODULES[module][0]), root, set(), out)
    return "\n".join(out) + "\n"


def source_digest():
    """SHA-256 of every module's inlined source (names a build of the kernels)."""
    h = hashlib.sha256()
    for name in sorted(MODULES):
        h.update(load_source(name).encode())
    return h.hexdigest()


def name_expressions(module):
    _, plain, templates = MODULES[module]
    return tuple(plain) + tuple(templates)


@functools.lru_cache(maxsize=None)
def _raw_module(module, device_id):
    import cupy

    with cupy.cuda.Device(device_id):
        mod = cupy.RawModule(
            code=load_source(module), options=NVRTC_OPTIONS, name_expressions=list(MODULES[module][2]) or None
        )
        mod.compile()  # compile now, on this device, so that errors surface here
    return mod


@functools.lru_cache(maxsize=None)
def _kernel(module, kernel, device_id):
    return _raw_module(module, device_id).get_function(kernel)


def get_function(module, kernel):
    """The :class:`cupy.RawKernel` ``kernel`` of ``module`` on the current device (compiled once, kept)."""
    import cupy

    return _kernel(module, kernel, cupy.cuda.Device().id)


def nvrtc_compile(module, arch="sm_90", extra_options=()):
    """Compile ``module`` with NVRTC through CuPy's low-level bindings; no device needed.

    Returns ``(cubin, log)``: the CUBIN (bytes) and NVRTC's log (warnings).  Raises
    ``RuntimeError`` with the log when the source does not compile.  Needs CuPy and an NVRTC library (``nvidia-cuda-nvrtc``).
    Used by the tests as the NVRTC twin of the ``nvcc -cubin`` compile check.
    """
    from cupy.cuda import nvrtc

    src = load_source(module)
    prog = nvrtc.createProgram(src, MODULES[module][0], [], [])
    try:
        for expr in MODULES[module][2]:
            nvrtc.addNameExpression(prog, expr)
        options = [f"-arch={arch}", *NVRTC_OPTIONS, *extra_options]
        try:
            nvrtc.compileProgram(prog, options)
        except nvrtc.NVRTCError as exc:
            raise RuntimeError(f"NVRTC failed on {MODULES[module][0]} ({exc}):\n{nvrtc.getProgramLog(prog)}") from None
        for expr in MODULES[module][2]:
            nvrtc.getLoweredName(prog, expr)  # every name expression must resolve
        return nvrtc.getCUBIN(prog), nvrtc.getProgramLog(prog)
    finally:
        nvrtc.destroyProgram(prog)
