"""Which element each atom is: i-PI sends positions only, so the driver learns the atoms' order
from the user (an element list, or the file i-PI itself starts from) and maps it through the
model's ``type_map``.
"""

import os
from typing import List, Sequence

import numpy as np

from ..core.errors import InputError


def parse_elements(text: str) -> List[str]:
    """Element names from a comma-separated list (``"O,H,H"``); blanks around names are ignored.

    Raises
    ------
    InputError
        An empty list or an empty name (``"O,,H"``).
    """
    names = [s.strip() for s in str(text).split(",")]
    if not names or not any(names):
        raise InputError(f"the element list {text!r} is empty: give one name per atom, e.g. O,H,H")
    empty = [k for k, s in enumerate(names) if not s]
    if empty:
        raise InputError(f"the element list {text!r} has an empty name at position {empty[0]}")
    return names


def _xyz_names(path):
    """Names of the first frame of an xyz file (i-PI's or ASE's flavour), or None if ASE must read it."""
    with open(path, encoding="utf-8") as f:
        first = f.readline()
        try:
            natoms = int(first.split()[0])
        except (IndexError, ValueError):
            raise InputError(f"{path}: line 1 should be the number of atoms, got {first.strip()!r}") from None
        if natoms <= 0:
            raise InputError(f"{path}: line 1 gives {natoms} atoms")
        comment = f.readline()
        # extended xyz may put the species anywhere; only ASE knows the whole grammar
        if "properties=" in comment.lower() and "properties=species:s:1" not in comment.lower().replace(" ", ""):
            return None
        names = []
        for k in range(natoms):
            line = f.readline()
            fields = line.split()
            if len(fields) < 4:
                raise InputError(f"{path}: line {k + 3} should be 'element x y z' (atom {k} of {natoms}), got {line.strip()!r}")
            names.append(fields[0])
    return names


def read_elements(path) -> List[str]:
    """Element names, in order, of the first structure in a file.

    ``.xyz`` files (i-PI's format, plain or extended xyz with the species first) are read here;
    other formats (``.extxyz``, ``.pdb``, ``.cif``, POSCAR, ...) through ASE when it is installed.

    Raises
    ------
    InputError
        A missing or malformed file, or a format that needs ASE when ASE is absent.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"init file {path!r} does not exist")
    names = _xyz_names(path) if path.lower().endswith(".xyz") else None
    if names is not None:
        return names
    try:
        import ase.io
    except ImportError:
        raise InputError(
            f"reading {path!r} needs ASE (pip install ase); or give an .xyz file, or the element list itself"
        ) from None
    try:
        atoms = ase.io.read(path, index=0)
    except Exception as exc:  # ASE raises many types for one problem: say which file failed
        raise InputError(f"ASE could not read {path!r}: {exc}") from exc
    return list(atoms.get_chemical_symbols())


def atom_types(elements: Sequence[str], type_map: Sequence[str]) -> np.ndarray:
    """Type indices of ``elements`` in the model's ``type_map``.

    Raises
    ------
    InputError
        Names the first atom whose element the model does not know, and every such element.
    """
    lookup = {name: k for k, name in enumerate(type_map)}
    unknown = sorted({e for e in elements if e not in lookup})
    if unknown:
        first = next(k for k, e in enumerate(elements) if e not in lookup)
        raise InputError(
            f"element(s) {unknown} (first at atom {first}) are not in the model's type_map {list(type_map)}"
        )
    if not len(elements):
        raise InputError("no atoms: the element list is empty")
    return np.array([lookup[e] for e in elements], dtype=np.int64)


def elements_from(init=None, elements=None) -> List[str]:
    """The element list from exactly one of two sources: an init file or a list (or ``"O,H,H"``).

    Raises
    ------
    InputError
        Both or neither given, or what :func:`read_elements` / :func:`parse_elements` raise.
    """
    if (init is None) == (elements is None):
        raise InputError("give the atoms' elements either as an init file (the structure i-PI starts from) "
                         "or as a list, not " + ("both" if init is not None else "neither"))
    if init is not None:
        return read_elements(init)
    if isinstance(elements, str):
        return parse_elements(elements)
    names = [str(e).strip() for e in elements]
    if not names or not all(names):
        raise InputError(f"the element list {list(elements)!r} is empty or has an empty name")
    return names
