"""Where the C, C++ and CUDA sources are, for what compiles them after installation.

The CUDA kernels (compiled by NVRTC at run time) and the LAMMPS plugin (compiled by
``python -m dpcompress.lammps build`` against the LAMMPS the user has) are built from the same
``src_c/`` as the Python extensions.  A wheel carries that folder as package data in
``dpcompress/_src_c/`` (``setup.py`` copies it); a source checkout or an editable install reads
``<repo>/src_c/`` directly.
"""

import os

_HERE = os.path.dirname(os.path.abspath(__file__))
_PACKAGED = os.path.join(os.path.dirname(_HERE), "_src_c")
_REPO = os.path.join(os.path.dirname(os.path.dirname(_HERE)), "src_c")

#: the list of the model runtime's C sources (shared with setup.py)
RUNTIME_LIST = "runtime_sources.txt"


def source_root(marker="dpc_model.h"):
    """The folder holding the sources (the one that has ``marker``, a path relative to it)."""
    for root in (_PACKAGED, _REPO):
        if os.path.isfile(os.path.join(root, marker)):
            return root
    raise FileNotFoundError(
        f"the C sources of dpcompress ({marker}) were not found in {_PACKAGED} or {_REPO}; "
        "reinstall dpcompress from a wheel or use a source checkout"
    )


def runtime_sources(root=None):
    """Paths of the model runtime's C files, from ``runtime_sources.txt``."""
    root = root or source_root(RUNTIME_LIST)
    with open(os.path.join(root, RUNTIME_LIST), encoding="utf-8") as fh:
        names = [line.split("#")[0].strip() for line in fh]
    return [os.path.join(root, n) for n in names if n]
