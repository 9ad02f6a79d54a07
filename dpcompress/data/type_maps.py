"""One global type numbering for systems that name (or number) their elements differently."""

import numpy as np

from ..core.errors import DataFormatError


def resolve_type_map(systems, type_map=None):
    r"""Global type names, and each system's local -> global type index map (``SystemInfo.to_global``).

    ``type_map`` (a user's or a model's) wins; otherwise the systems' ``type_map.raw`` names,
    in order of first appearance; otherwise (no names anywhere) the integer types of
    ``type.raw`` as they are, :math:`n_\mathrm{types} = 1 + \max` over the systems.

    Parameters
    ----------
    systems : list of SystemInfo
        Their ``to_global`` is set.
    type_map : sequence of str, optional

    Returns
    -------
    type_map : tuple of str or None
    ntypes : int

    Raises
    ------
    DataFormatError
        A system names an element the type map lacks, or has a type beyond its names.
    """
    named = [s for s in systems if s.type_map is not None]
    if type_map is None and named:
        names = []
        for s in named:
            names.extend(n for n in s.type_map if n not in names)
        type_map = tuple(names)
    if type_map is not None:
        type_map = tuple(type_map)
        index = {n: k for k, n in enumerate(type_map)}
        for s in systems:
            if s.type_map is None:
                if s.types.max() >= len(type_map) and not s.mixed:
                    raise DataFormatError(f"{s.name}: atom type {s.types.max()} but the type map {list(type_map)} has {len(type_map)} types")
                s.to_global = np.arange(len(type_map), dtype=np.int64)
                continue
            missing = [n for n in s.type_map if n not in index]
            if missing:
                raise DataFormatError(f"{s.name}: elements {missing} of its type_map.raw are not in the type map {list(type_map)}")
            if s.types.max() >= len(s.type_map):
                raise DataFormatError(f"{s.name}: atom type {s.types.max()} but type_map.raw lists only {len(s.type_map)} elements")
            s.to_global = np.array([index[n] for n in s.type_map], dtype=np.int64)
        return type_map, len(type_map)
    ntypes = max(int(s.types.max()) + 1 for s in systems)
    for s in systems:
        s.to_global = np.arange(ntypes, dtype=np.int64)
    return None, ntypes
