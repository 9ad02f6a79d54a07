r"""PWmat's ``MOVEMENT`` (also ``OUT.MLMD``) and ``atom.config`` files, read without extra packages.

A ``MOVEMENT`` file is a sequence of frames, each closed by a line of dashes::

       5 atoms,Iteration (fs) =  0.1E+01, Etot,Ep,Ek (eV) =  -0.2194E+03  -0.2198E+03  0.3412E+00, SCF =  16
     ...
     Lattice vector (Angstrom)
       a1x a1y a1z     stress (eV):  v11 v12 v13
       a2x a2y a2z     stress (eV):  v21 v22 v23
       a3x a3y a3z     stress (eV):  v31 v32 v33
     ...
     Position (normalized), move_x, move_y, move_z
       Z  s1 s2 s3  1 1 1                   (natoms lines: atomic number, fractional coordinates)
     ...
     Force (-force, eV/Angstrom)
       Z  g1 g2 g3                          (natoms lines: the gradient dE/dr = -F)
     ...
     -------------------------------------------------

Read per frame (the facts dpdata's ``pwmat/movement`` reader also uses):

* energy: ``Ep``, the potential energy, the second of the three numbers after ``Etot,Ep,Ek (eV) =``
  (``Etot = Ep + Ek`` includes the ions' kinetic energy);
* cell: the three ``Lattice vector`` rows (Å), :math:`h` with rows :math:`a_i`;
* positions: :math:`r = s\,h` from the ``Position`` block's fractional coordinates :math:`s`
  (the ``nonperiodic_Position`` block repeats them unwrapped and is not read);
* forces: :math:`F = -g`, the ``Force (-force, ...)`` block holding the gradient :math:`g = \partial E/\partial r`;
* virial: the 3×3 ``stress (eV)`` numbers, already the virial :math:`\Xi` in eV (DeePMD's
  convention; dpdata converts it to a pressure and back with ``160.2`` and ``1.602176621e6``,
  which changes it by a factor 0.99989); frames without ``stress`` columns have no virial.

Other blocks (velocities, atomic energies, MD info) are skipped.  ``atom.config`` (PWmat's input
structure) has the same header, ``Lattice vector`` and ``Position`` blocks, with no labels; a
frame of a ``MOVEMENT`` file is also a valid ``atom.config``, whose labels are then read too.

Atoms keep the file's order (dpdata sorts them by atomic number) and every frame is kept (dpdata
drops frames whose ``SCF`` count reaches a guessed iteration limit, 40 or 100).

Files are untrusted: the atom count is bounded (:data:`MAX_ATOMS`), every block is checked for its
line count and numbers, and errors name the file and line.
"""

import math
import re

import numpy as np

from ..core.elements import SYMBOLS
from ..core.errors import DataFormatError

#: Largest atom count accepted in a frame header (a bound on memory before any block is read).
MAX_ATOMS = 10_000_000

_HEADER = re.compile(r"^\s*(\d+)\s+atoms?\b", re.IGNORECASE)


def _float(tok, path, lineno, what):
    try:
        x = float(tok.replace("D", "E").replace("d", "e"))
    except ValueError:
        raise DataFormatError(f"{path}: line {lineno}: {what}: {tok!r} is not a number") from None
    if not math.isfinite(x):
        raise DataFormatError(f"{path}: line {lineno}: {what}: {tok!r} is not finite")
    return x


class _Lines:
    """Numbered lines of a text file (1-based numbers for messages)."""

    def __init__(self, path):
        self.path = path
        self.fh = open(path, encoding="utf-8", errors="replace")
        self.lineno = 0

    def next(self, what=None):
        line = self.fh.readline()
        if not line:
            if what is None:
                return None
            raise DataFormatError(f"{self.path}: line {self.lineno + 1}: end of file inside {what}")
        self.lineno += 1
        return line

    def close(self):
        self.fh.close()


def _atom_rows(lines, natoms, what, ncols):
    """``natoms`` lines ``Z x y z ...`` of a block: atomic numbers (natoms,) and values (natoms, 3)."""
    zs = np.empty(natoms, dtype=np.int64)
    xs = np.empty((natoms, 3), dtype=np.float64)
    for i in range(natoms):
        line = lines.next(f"the {what} block (atom {i} of {natoms})")
        tok = line.split()
        if len(tok) < ncols:
            raise DataFormatError(f"{lines.path}: line {lines.lineno}: {what} of atom {i}: expected an atomic number "
                                  f"and 3 numbers, got {line.strip()!r}")
        if not tok[0].isdigit() or not 1 <= int(tok[0]) <= len(SYMBOLS):
            raise DataFormatError(f"{lines.path}: line {lines.lineno}: {what} of atom {i}: {tok[0]!r} is not an "
                                  f"atomic number (1..{len(SYMBOLS)})")
        zs[i] = int(tok[0])
        xs[i] = [_float(t, lines.path, lines.lineno, f"{what} of atom {i}") for t in tok[1:4]]
    return zs, xs


def _header_energy(line, path, lineno):
    """``Ep`` of a header line, or None when it has no ``Etot,Ep,Ek`` field (an atom.config)."""
    if "Etot,Ep,Ek" not in line:
        return None
    tail = line.split("Etot,Ep,Ek", 1)[1]
    tok = tail.split("=", 1)[1].replace(",", " ").split() if "=" in tail else []
    if len(tok) < 3:
        raise DataFormatError(f"{path}: line {lineno}: expected three energies after 'Etot,Ep,Ek (eV) ='")
    return _float(tok[1], path, lineno, "Ep")


def _read_frame(lines, header, start):
    """One frame from its header line to the closing dashes (or the end of the file)."""
    path = lines.path
    natoms = int(_HEADER.match(header).group(1))
    if not 1 <= natoms <= MAX_ATOMS:
        raise DataFormatError(f"{path}: line {start}: atom count {natoms} outside 1..{MAX_ATOMS}")
    frame = dict(energy=_header_energy(header, path, start), cell=None, coords=None, force=None, virial=None,
                 symbols=None, line=start)
    zs = None
    while True:
        line = lines.next()
        if line is None or line.lstrip().startswith("-----"):
            break
        key = line.strip()
        if key.startswith("Lattice vector"):
            cell, vir = [], []
            for d in range(3):
                row = lines.next(f"the Lattice vector block (row {d})")
                tok = row.split()
                if len(tok) < 3:
                    raise DataFormatError(f"{path}: line {lines.lineno}: lattice vector {d}: expected 3 numbers")
                cell.append([_float(t, path, lines.lineno, f"lattice vector {d}") for t in tok[:3]])
                if "stress" in row:
                    s = row.split(":", 1)[1].split() if ":" in row else []
                    if len(s) < 3:
                        raise DataFormatError(f"{path}: line {lines.lineno}: stress row {d}: expected 3 numbers after 'stress (eV):'")
                    vir.append([_float(t, path, lines.lineno, f"stress row {d}") for t in s[:3]])
            frame["cell"] = np.array(cell)
            if vir and len(vir) != 3:
                raise DataFormatError(f"{path}: line {lines.lineno}: 'stress (eV)' on only {len(vir)} of the 3 lattice rows")
            frame["virial"] = np.array(vir) if vir else None
        elif key.startswith("Position"):
            zs, frame["coords"] = _atom_rows(lines, natoms, "Position", 4)
        elif key.startswith("Force"):
            fz, grad = _atom_rows(lines, natoms, "Force", 4)
            if zs is not None and not np.array_equal(fz, zs):
                raise DataFormatError(f"{path}: line {lines.lineno}: the Force block's atomic numbers differ from the "
                                      f"Position block's (frame starting at line {start})")
            frame["force"] = -grad  # the block holds dE/dr
    for what in ("cell", "coords"):
        if frame[what] is None:
            block = "Lattice vector" if what == "cell" else "Position"
            raise DataFormatError(f"{path}: frame starting at line {start}: no {block} block")
    if abs(np.linalg.det(frame["cell"])) < 1e-12:
        raise DataFormatError(f"{path}: frame starting at line {start}: the lattice vectors are degenerate")
    frame["coords"] = frame["coords"] @ frame["cell"]
    frame["symbols"] = tuple(SYMBOLS[z - 1] for z in zs)
    return frame


def read_pwmat(path):
    r"""Frames of a PWmat ``MOVEMENT``/``OUT.MLMD`` or ``atom.config`` file.

    Parameters
    ----------
    path : str

    Returns
    -------
    list of dict
        Per frame ``symbols`` (file order), ``coords`` (natoms, 3) Å, ``cell`` (3, 3) Å (rows),
        ``energy`` (``Ep``, eV, or None), ``force`` (eV/Å, :math:`-\partial E/\partial r`, or None),
        ``virial`` (3, 3) eV or None, and ``line`` (the header's line number).

    Raises
    ------
    DataFormatError
        A malformed file (the message names the file and line), or one without any frame header.
    """
    try:
        lines = _Lines(path)
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot open ({exc.strerror or exc})") from None
    frames = []
    try:
        while True:
            line = lines.next()
            if line is None:
                break
            if _HEADER.match(line):
                frames.append(_read_frame(lines, line, lines.lineno))
    finally:
        lines.close()
    if not frames:
        raise DataFormatError(f"{path}: no PWmat frame (a line 'N atoms, ...' starting a MOVEMENT frame or an atom.config)")
    return frames
