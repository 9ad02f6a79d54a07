"""Training data in DeePMD-kit's ``deepmd/npy`` and ``deepmd/hdf5`` layouts (plain numpy)."""

from .deepmd_systems import System, find_systems, read_hdf5_systems, read_npy_system, read_systems

__all__ = ["System", "find_systems", "read_npy_system", "read_hdf5_systems", "read_systems"]
