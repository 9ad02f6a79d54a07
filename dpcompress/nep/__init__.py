"""NEP (GPUMD ``nep.txt``) models: reader/writer, numpy reference, C kernel, quintic tables, conversions.

>>> from dpcompress import Potential
>>> pot = Potential("nep.txt")          # or a NEP .dpc from ``dpcompress compress -i nep.txt -o nep.dpc``
>>> e, f, v = pot.eval(coords, cells, atom_types)

See docs/nep.md.
"""

from .model import NEPModel, is_nep_text_file, load_nep, read_nep, write_nep
from .tables import build_tables, is_nep_table_file, save_nep_tables

__all__ = ["NEPModel", "read_nep", "load_nep", "write_nep", "is_nep_text_file", "is_nep_file", "build_tables",
           "save_nep_tables", "compress_nep"]


def is_nep_file(path):
    """True for a ``nep.txt`` text model or a dpcompress NEP ``.dpc`` table file."""
    import os

    return isinstance(path, (str, os.PathLike)) and (is_nep_text_file(path) or is_nep_table_file(path))


def compress_nep(path, output, step=None):
    """Read ``path`` (nep.txt), tabulate its radial functions, write ``output`` (.dpc); returns the model."""
    from .tables import DEFAULT_STEP

    m = read_nep(path)
    m.tables = build_tables(m, step=DEFAULT_STEP if step is None else step)
    save_nep_tables(m, m.tables, output)
    return m
