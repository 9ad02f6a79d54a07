"""dpcompress: exact, fast compressed Deep Potential models.

Data flows one way (docs/design.md)::

    model file (.dp .yaml .dpc nep.txt)  models/, nep/, modelfile/ -> model objects
      -> tables                          descriptors/ (each unit tabulates its nets), tables/, compression/
      -> .dpc bytes                      modelfile/ (the one writer; C and C++ read the same bytes)
      -> kernels                         src_c/ (the C model runtime), _ext/ (thin Cython wrappers)
      -> evaluators                      evaluators/ (runtime, MPI domains, exact numpy, GPU)
      -> front ends                      Potential, calculators/ (ASE), cli, scan

Training data (deepmd/npy, deepmd/hdf5) is read by ``dpcompress.data``.
"""

from ._version import __version__
from .compression import compress, compress_nep
from .core.errors import DataFormatError, DPCompressError, InputError, ModelFormatError, UnsupportedModelError
from .core.warnings import NeighborOverflowWarning, TableAccuracyWarning, TableOverflowWarning
from ._ext.threads import available_cores, effective_n_threads, openmp_enabled
from .modelfile import load_model, save_model
from .potential import Potential
from .deep_tensor import DeepDipole, DeepPolar

__all__ = [
    "__version__",
    "Potential",
    "DeepDipole",
    "DeepPolar",
    "load_model",
    "save_model",
    "compress",
    "compress_nep",
    "show_config",
    "DPCompressError",
    "ModelFormatError",
    "UnsupportedModelError",
    "InputError",
    "DataFormatError",
    "NeighborOverflowWarning",
    "TableOverflowWarning",
    "TableAccuracyWarning",
]


def __getattr__(name):
    """``dpcompress.Calculator``: the ASE calculator, imported on first use (ASE is an optional dependency).

    Not in ``__all__``: ``from dpcompress import *`` must work without ASE.
    """
    if name == "Calculator":
        from .calculators.ase_calculator import Calculator

        return Calculator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"Calculator"})


def show_config():
    """Return a dict describing this build (version, OpenMP, cores) and print it."""
    cfg = {
        "version": __version__,
        "openmp": openmp_enabled(),
        "available_cores": available_cores(),
        "default_threads": effective_n_threads(None),
    }
    for k, v in cfg.items():
        print(f"{k}: {v}")
    if not cfg["openmp"]:
        print("note: built without OpenMP; every kernel runs on one thread")
    return cfg
