"""Frames for the LAMMPS tests: LAMMPS data files and the same frame for ``Potential``.

LAMMPS boxes are restricted triclinic (cell rows a = (ax, 0, 0), b = (bx, by, 0), c = (cx, cy, cz));
the frames here are built in that form, so coordinates and forces need no rotation.
"""

import numpy as np

MASSES = {"H": 1.008, "O": 15.999, "Si": 28.085, "Ba": 137.327, "Ti": 47.867, "Pb": 207.2, "Te": 127.6}


def _f(x):
    return repr(float(x))  # shortest text that reads back to the same double


def sheared(coords, cell, tilt=(0.15, -0.1, 0.12)):
    """The frame's fractional coordinates (wrapped) placed in a triclinic cell built from its
    orthorhombic one by the tilts (xy, xz, yz) in units of the box lengths."""
    lengths = np.diag(cell)
    frac = np.mod(coords / lengths, 1.0)
    new = np.diag(lengths).astype(float)
    new[1, 0] = tilt[0] * lengths[1]
    new[2, 0] = tilt[1] * lengths[2]
    new[2, 1] = tilt[2] * lengths[2]
    return frac @ new, new


def write_data(path, coords, types, elements, cell=None, velocities=None, pad=10.0):
    """A LAMMPS data file (atom_style atomic): ``types`` index ``elements`` (LAMMPS type k + 1).

    Without a cell, the box encloses the atoms with ``pad`` Å to spare (for ``boundary f f f``).
    """
    coords = np.asarray(coords, dtype=float)
    lines = ["frame for dpcompress tests", "", f"{len(coords)} atoms", f"{len(elements)} atom types", ""]
    if cell is None:
        lo, hi = coords.min(axis=0) - pad, coords.max(axis=0) + pad
        for k, ax in enumerate("xyz"):
            lines.append(f"{_f(lo[k])} {_f(hi[k])} {ax}lo {ax}hi")
    else:
        cell = np.asarray(cell, dtype=float)
        if abs(cell[0, 1]) + abs(cell[0, 2]) + abs(cell[1, 2]) > 0:
            raise ValueError("cell rows must be lower-triangular (LAMMPS restricted triclinic)")
        for k, ax in enumerate("xyz"):
            lines.append(f"0.0 {_f(cell[k, k])} {ax}lo {ax}hi")
        if abs(cell[1, 0]) + abs(cell[2, 0]) + abs(cell[2, 1]) > 0:
            lines.append(f"{_f(cell[1, 0])} {_f(cell[2, 0])} {_f(cell[2, 1])} xy xz yz")
    lines += ["", "Masses", ""]
    lines += [f"{k + 1} {MASSES[e]}" for k, e in enumerate(elements)]
    lines += ["", "Atoms # atomic", ""]
    lines += [f"{i + 1} {int(t) + 1} {_f(p[0])} {_f(p[1])} {_f(p[2])}" for i, (t, p) in enumerate(zip(types, coords))]
    if velocities is not None:
        lines += ["", "Velocities", ""]
        lines += [f"{i + 1} {_f(v[0])} {_f(v[1])} {_f(v[2])}" for i, v in enumerate(np.asarray(velocities, dtype=float))]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
