"""Training data: DeePMD-kit's ``deepmd/npy`` and ``deepmd/hdf5`` layouts (plain numpy), extxyz, VASP and dpdata's formats; scan files.

One reader for the whole package, in three steps:

* :mod:`.catalog` opens a system from its headers only (:class:`SystemInfo`: atoms, types,
  sets, frame counts), checking every shape; :mod:`.discovery` finds the systems below folders;
* :mod:`.frames` reads ranges of frames of an opened system (:class:`FrameReader`: ``.npy``
  memory maps, HDF5 slices), what each rank of the MPI scan does for its own frames;
* :mod:`.systems` reads whole systems with their labels into memory (:class:`System`):
  :func:`read_systems` ``(paths, fmt=None)`` is the reader of ``eval`` and ``test``.

Other formats (extxyz, VASP OUTCAR / vasprun.xml, and every dpdata format) are parsed into
memory by :mod:`.formats` (dpdata, ASE, or :mod:`.extxyz`) and wrapped as the same
:class:`SystemInfo` (:mod:`.memory`), so the three steps above read them as they read files.

:mod:`.checks` holds the checks of the untrusted files, :mod:`.type_maps` the global type
numbering of several systems, :mod:`.min_distance` the smallest pair distance of a training
set, :mod:`.scan_file` the JSON file of ``dpcompress scan``.
"""

from .catalog import LABEL_KEYS, ArrayRef, SetInfo, SystemInfo, open_hdf5_systems, open_npy_system
from .checks import MAX_TYPES
from .discovery import HDF5_SUFFIXES, discover_systems, find_systems
from .formats import format_from_name, normalize_format, open_foreign_systems
from .frames import CHUNK_FRAMES, FrameBlock, FrameReader
from .systems import System, load_system, read_hdf5_systems, read_npy_system, read_systems
from .type_maps import resolve_type_map

__all__ = [
    "System", "load_system", "read_npy_system", "read_hdf5_systems", "read_systems",
    "SystemInfo", "SetInfo", "ArrayRef", "open_npy_system", "open_hdf5_systems", "LABEL_KEYS",
    "discover_systems", "find_systems", "HDF5_SUFFIXES",
    "FrameReader", "FrameBlock", "CHUNK_FRAMES",
    "resolve_type_map", "MAX_TYPES",
    "normalize_format", "format_from_name", "open_foreign_systems",
]
