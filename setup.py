"""Build the compiled kernels of dpcompress.

The kernels live in ``src_c/`` (plain C99 with OpenMP pragmas); the Cython
modules in ``dpcompress/_ext/`` only validate, release the GIL and call them.

Environment switches
--------------------
DPCOMPRESS_NO_OPENMP=1
    Build without OpenMP even when the compiler supports it.
DPCOMPRESS_DEBUG=1
    ``-O0 -g`` and Cython bounds checks, for debugging.

OpenMP is probed by compiling and linking a tiny program with ``-fopenmp``.
When that fails the extensions are built serially and the build says so; at run
time ``dpcompress.show_config()`` reports it too.  No ``-march=native`` and no
``-ffast-math``: the first makes non-portable binaries, the second changes the
floating-point mode of the whole Python process (flush-to-zero) on import.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_C = "src_c"

# (module name, pyx, C sources it drives)


def _runtime_sources():
    """The model runtime's C files (src_c/runtime_sources.txt; the LAMMPS plugin build reads it too)."""
    with open(os.path.join(HERE, SRC_C, "runtime_sources.txt"), encoding="utf-8") as fh:
        names = [line.split("#")[0].strip() for line in fh]
    return [f"{SRC_C}/{n}" for n in names if n]


_RUNTIME = _runtime_sources()
EXTENSIONS = [
    ("dpcompress._ext.openmp_info", "dpcompress/_ext/openmp_info.pyx", ["src_c/dpc_openmp.c"]),
    ("dpcompress._ext.blas", "dpcompress/_ext/blas.pyx", []),
    # the model runtime: every front end computes frames through it
    ("dpcompress._ext.runtime", "dpcompress/_ext/runtime.pyx", _RUNTIME),
    ("dpcompress._ext.neighbors", "dpcompress/_ext/neighbors.pyx", ["src_c/dpc_neighbors.c", "src_c/dpc_rows.c"]),
    ("dpcompress._ext.table_build", "dpcompress/_ext/table_build.pyx", ["src_c/dpc_table_build.c", "src_c/dpc_openmp.c"]),
    # single kernels, for the tests that hold them equal to their numpy twins (dpcompress/reference/)
    ("dpcompress._ext.se_a_tab", "dpcompress/_ext/se_a_tab.pyx", ["src_c/dpc_se_a_tab.c"]),
    ("dpcompress._ext.se_t_tab", "dpcompress/_ext/se_t_tab.pyx", ["src_c/dpc_se_t_tab.c"]),
    ("dpcompress._ext.fitting_net", "dpcompress/_ext/fitting_net.pyx", ["src_c/dpc_fitting.c"]),
    ("dpcompress._ext.nep_kernel", "dpcompress/_ext/nep_kernel.pyx", ["src_c/dpc_nep.c"]),
    ("dpcompress._ext.repformer_kernel", "dpcompress/_ext/repformer_kernel.pyx", ["src_c/dpc_repformer.c"]),
]


def _openmp_works():
    """Return True when the C compiler builds and links a ``-fopenmp`` program."""
    if os.environ.get("DPCOMPRESS_NO_OPENMP", "0") not in ("", "0"):
        return False
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()
    code = "#include <omp.h>\nint main(void){int n=0;\n#pragma omp parallel reduction(+:n)\nn+=1;\nreturn omp_get_max_threads()>0?0:1;}\n"
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as fh:
            fh.write(code)
        cmd = cc + ["-fopenmp", src, "-o", os.path.join(tmp, "probe")]
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _extensions():
    use_omp = _openmp_works()
    debug = os.environ.get("DPCOMPRESS_DEBUG", "0") not in ("", "0")
    cflags = ["-O0", "-g"] if debug else ["-O3"]
    cflags += ["-std=c99", "-fno-math-errno", "-ffp-contract=fast"]
    lflags = []
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    if use_omp:
        cflags.append("-fopenmp")
        lflags.append("-fopenmp")
        macros.append(("DPC_BUILT_WITH_OPENMP", "1"))
    else:
        sys.stderr.write(
            "\n*** dpcompress: OpenMP not available (or DPCOMPRESS_NO_OPENMP set); "
            "kernels are built single-threaded. ***\n\n"
        )
    exts = []
    for name, pyx, csrc in EXTENSIONS:
        exts.append(
            Extension(
                name,
                sources=[pyx] + csrc,
                include_dirs=[np.get_include(), SRC_C],
                define_macros=macros,
                extra_compile_args=cflags,
                extra_link_args=lflags,
                # libm by name: an unversioned exp/log/pow binds to glibc's oldest (SVID-wrapper) versions,
                # 8% of the DPA-1 attention kernel's time in exp's wrapper alone; same values either way
                libraries=[] if sys.platform == "win32" else ["m"],
                depends=[os.path.join(SRC_C, f) for f in os.listdir(os.path.join(HERE, SRC_C))],
            )
        )
    directives = {
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": False,
        "cdivision": True,
        "initializedcheck": debug,
    }
    return cythonize(exts, compiler_directives=directives)


class BuildPyWithSources(build_py):
    """Also ship src_c/ (C, C++ and CUDA sources, headers, the runtime's file list) as package data
    in dpcompress/_src_c/: the GPU kernels are compiled from it at run time (NVRTC) and the LAMMPS
    plugin by ``python -m dpcompress.lammps build`` (a source checkout or an editable install reads
    src_c/ directly; dpcompress.core.sources finds either)."""

    SUFFIXES = (".c", ".h", ".cpp", ".cu", ".cuh", ".txt")

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = os.path.join(self.build_lib, "dpcompress", "_src_c")
        for folder, _, files in os.walk(os.path.join(HERE, SRC_C)):
            rel = os.path.relpath(folder, os.path.join(HERE, SRC_C))
            for name in files:
                if name.endswith(self.SUFFIXES):
                    os.makedirs(os.path.join(dest, rel), exist_ok=True)
                    self.copy_file(os.path.join(folder, name), os.path.join(dest, rel, name))


setup(ext_modules=_extensions(), cmdclass={"build_py": BuildPyWithSources})
