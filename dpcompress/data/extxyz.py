r"""A small extended-XYZ reader that needs neither dpdata nor ASE.

Each frame is a line with the atom count, a comment line of ``key=value`` pairs, and one line
per atom whose columns the ``Properties`` key names (default ``species:S:1:pos:R:3``, plain
XYZ).  Read here:

``Lattice="ax ay az bx by bz cx cy cz"``
    Cell, rows = cell vectors, Å; the frame is periodic unless ``pbc="F F F"``.  No
    ``Lattice``: a non-periodic cluster.
``energy`` (or ``Energy``, ``free_energy``, ``REF_energy``: the first present, as dpdata)
    eV.
``virial="9 numbers"``, or ``stress`` (9 or 6 Voigt numbers ``xx yy zz yz xz xy``, eV/Å³)
    Virial :math:`W = -V \sigma`, :math:`V = |\det A|` (ASE's and dpdata's convention); 9
    numbers are read row by row, as dpdata reads them (ASE reads them column by column; the
    same for the symmetric virials of DFT codes).
Columns ``species`` (``S:1``), ``pos`` (``R:3``), ``forces`` or ``force`` (``R:3``)
    Element, position (Å) and force (eV/Å) of each atom; other columns are skipped.

Partially periodic frames (``pbc="T T F"``) are refused: the evaluators know whole cells or
clusters only.
"""

import re

import numpy as np

from ..core.errors import DataFormatError

ENERGY_KEYS = ("energy", "Energy", "free_energy", "REF_energy")
FORCE_COLUMNS = ("forces", "force", "REF_forces")

_PAIR = re.compile(r"""([A-Za-z_][\w\-]*)\s*(?:=\s*("[^"]*"|'[^']*'|\{[^}]*\}|\S+))?""")


def parse_comment(line):
    """``key=value`` pairs of an extxyz comment line (quotes and braces removed); bare keys map to ``"T"``."""
    out = {}
    for m in _PAIR.finditer(line):
        value = m.group(2)
        if value is None:
            out[m.group(1)] = "T"
            continue
        if value[:1] in "\"'{" and len(value) >= 2:
            value = value[1:-1]
        out[m.group(1)] = value
    return out


def _numbers(text, count, where, key):
    try:
        values = [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise DataFormatError(f"{where}: {key}={text!r} is not a list of numbers") from None
    if len(values) not in count:
        raise DataFormatError(f"{where}: {key} has {len(values)} numbers, expected {' or '.join(map(str, count))}")
    return np.array(values)


def _flag(text):
    return text.strip().upper() in ("T", "TRUE", "1")


def _columns(props, where):
    """``(name, type, count, first column)`` of each ``Properties`` entry."""
    fields = props.split(":")
    if len(fields) % 3:
        raise DataFormatError(f"{where}: Properties={props!r} is not name:type:count triples")
    cols, start = {}, 0
    for k in range(0, len(fields), 3):
        name, kind, count = fields[k], fields[k + 1], fields[k + 2]
        try:
            n = int(count)
        except ValueError:
            raise DataFormatError(f"{where}: Properties={props!r}: count {count!r} of {name} is not an integer") from None
        cols[name] = (kind.upper(), n, start)
        start += n
    return cols, start


def read_extxyz(path):
    """Every frame of an extended-XYZ file.

    Returns
    -------
    list of dict
        Per frame: ``symbols`` (tuple of str), ``coords`` (natoms, 3), ``cell`` (3, 3) or None,
        ``energy`` (float or None), ``force`` (natoms, 3) or None, ``virial`` (3, 3) or None.

    Raises
    ------
    DataFormatError
        A malformed frame (the message names the file and the line).
    """
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: cannot read ({exc})") from None
    frames = []
    k = 0
    while k < len(lines):
        if not lines[k].strip():
            k += 1
            continue
        where = f"{path}, line {k + 1}"
        try:
            natoms = int(lines[k].split()[0])
        except ValueError:
            raise DataFormatError(f"{where}: expected the atom count of a frame, found {lines[k][:60]!r}") from None
        if natoms <= 0 or k + 2 + natoms > len(lines):
            raise DataFormatError(f"{where}: {natoms} atoms announced, {max(len(lines) - k - 2, 0)} lines follow")
        info = parse_comment(lines[k + 1])
        cwhere = f"{path}, line {k + 2}"
        cols, ncols = _columns(info.get("Properties", "species:S:1:pos:R:3"), cwhere)
        if "species" not in cols or "pos" not in cols or cols["pos"][1] != 3:
            raise DataFormatError(f"{cwhere}: Properties must name species:S:1 and pos:R:3")
        rows = [line.split() for line in lines[k + 2 : k + 2 + natoms]]
        for r, row in enumerate(rows):
            if len(row) < ncols:
                raise DataFormatError(f"{path}, line {k + 3 + r}: {len(row)} columns, Properties names {ncols}")
        _, _, sc = cols["species"]
        symbols = tuple(row[sc] for row in rows)

        def block(name):
            _, n, start = cols[name]
            try:
                return np.array([[float(x) for x in row[start : start + n]] for row in rows])
            except ValueError:
                raise DataFormatError(f"{path}, lines {k + 3}..{k + 2 + natoms}: column {name} is not numeric") from None

        coords = block("pos")
        force_col = next((c for c in FORCE_COLUMNS if c in cols), None)
        force = block(force_col) if force_col is not None and cols[force_col][1] == 3 else None
        cell = None
        if "Lattice" in info:
            cell = _numbers(info["Lattice"], (9,), cwhere, "Lattice").reshape(3, 3)
        pbc = info.get("pbc")
        if pbc is not None:
            flags = [_flag(x) for x in pbc.split()]
            if len(flags) != 3:
                raise DataFormatError(f"{cwhere}: pbc={pbc!r}, expected three T/F flags")
            if any(flags) and not all(flags):
                raise DataFormatError(f"{cwhere}: partially periodic frame (pbc={pbc!r}): only 3-D periodic or non-periodic frames are read")
            if not any(flags):
                cell = None
            elif cell is None:
                raise DataFormatError(f"{cwhere}: pbc={pbc!r} but no Lattice")
        energy = None
        for key in ENERGY_KEYS:
            if key in info:
                try:
                    energy = float(info[key])
                except ValueError:
                    raise DataFormatError(f"{cwhere}: {key}={info[key]!r} is not a number") from None
                break
        virial = None
        if "virial" in info:
            virial = _numbers(info["virial"], (9,), cwhere, "virial").reshape(3, 3)
        elif "stress" in info and cell is not None:
            s = _numbers(info["stress"], (9, 6), cwhere, "stress")
            if s.size == 6:  # Voigt xx yy zz yz xz xy
                s = np.array([[s[0], s[5], s[4]], [s[5], s[1], s[3]], [s[4], s[3], s[2]]])
            virial = -abs(np.linalg.det(cell)) * s.reshape(3, 3)
        frames.append(dict(symbols=symbols, coords=coords, cell=cell, energy=energy, force=force, virial=virial))
        k += 2 + natoms
    if not frames:
        raise DataFormatError(f"{path}: no frames")
    return frames
