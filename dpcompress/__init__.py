"""dpcompress: exact, fast compressed Deep Potential models.

Data flows one way::

    model file (.dp / .yaml / .dpc)  dpcompress.models      -> DPModel (plain data classes)
      -> tables                      dpcompress.compress    -> compressed DPModel, .dpc file
      -> neighbor list               dpcompress.neighbors   -> NeighborList (DeePMD per-type layout)
      -> kernels                     dpcompress.evaluate    (fused C kernels, src_c/ via dpcompress._ext)
                                     dpcompress.reference   (their numpy twins; the exact uncompressed evaluator)
      -> Potential.eval              dpcompress.potential   (DeePMD-kit's DeepPot.eval contract)
         ASE                         dpcompress.calculators

Training data (deepmd/npy, deepmd/hdf5) is read by ``dpcompress.data``.
"""

from ._version import __version__
from .errors import DataFormatError, DPCompressError, InputError, ModelFormatError, UnsupportedModelError

__all__ = [
    "__version__",
    "Potential",
    "load_model",
    "compress",
    "show_config",
    "DPCompressError",
    "ModelFormatError",
    "UnsupportedModelError",
    "InputError",
    "DataFormatError",
]


def __getattr__(name):
    # Lazy so that `import dpcompress` stays cheap and never imports h5py/vesin eagerly.
    if name == "Potential":
        from .potential import Potential

        return Potential
    if name == "load_model":
        from .models import load_model

        return load_model
    if name == "compress":
        from .compress import compress

        return compress
    raise AttributeError(f"module 'dpcompress' has no attribute {name!r}")


def show_config():
    """Return a dict describing this build (version, OpenMP, cores) and print it."""
    from .threads import available_cores, effective_n_threads, openmp_enabled

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
