"""NEP (GPUMD ``nep.txt``) models: reader and writer, quintic tables of the radial functions, the
kernel's packing, conversions.

>>> from dpcompress import Potential
>>> pot = Potential("nep.txt")          # or a NEP .dpc from ``dpcompress compress -i nep.txt -o nep.dpc``
>>> e, f, v = pot.eval(coords, cells, atom_types)

See docs/nep.md.
"""

from .model import NEPModel, is_nep_text_file, parse_nep_text, read_nep, write_nep
from .tables import DEFAULT_STEP, NEPTables, build_tables

__all__ = ["NEPModel", "NEPTables", "read_nep", "parse_nep_text", "write_nep", "is_nep_text_file", "build_tables",
           "DEFAULT_STEP"]
