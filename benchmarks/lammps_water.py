"""LAMMPS data files of the water fixture frame, replicated nx × ny × nz.

    python benchmarks/lammps_water.py OUT.data [--rep 2 2 2] [--frame 0] [--frames FILE.npz] [--reduce]

Writes a LAMMPS data file (``atom_style atomic``, ``units metal``) of one frame of a
DeePMD-kit-style ``test_frames.npz`` (keys ``coord``, ``box``, ``atype`` and optionally
``type_map``; by default the se_e2_a water fixture, ``../shared/fixtures/deepmd/se_e2_a/
test_frames.npz`` relative to the repository, or ``$DPC_WATER_FRAMES``), replicated
``nx × ny × nz``: 2×2×2 = 1536 atoms, 4×4×4 = 12288, 8×8×8 = 98304 for the 192-atom frame.
LAMMPS atom type ``t + 1`` is fixture type ``t`` (water: 1 = O, 2 = H; masses 15.999 / 1.008).

Boxes: ``box`` rows are the cell vectors (a, b, c). An orthorhombic cell is written as it is.
Any other right-handed cell is rotated into LAMMPS's restricted triclinic form
(a along x, b in the xy plane: ``a = (lx, 0, 0)``, ``b = (xy, ly, 0)``, ``c = (xz, yz, lz)``)
with the ``xy xz yz`` header line; :func:`lammps_cell` returns the rotation so that forces
and virials can be compared with references in the original frame. Coordinates are wrapped
into the cell (fractional coordinates in [0, 1)) and written with 17 significant digits.
:func:`reduce_tilt` (``--reduce``) swaps a strongly skewed cell for the equivalent one with
``|tilt| <= length/2``.
"""

import argparse
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_FRAMES = os.environ.get(
    "DPC_WATER_FRAMES",
    os.path.join(REPO, "..", "shared", "fixtures", "deepmd", "se_e2_a", "test_frames.npz"),
)

#: Atomic masses (g/mol) used for the ``Masses`` section, by element symbol.
MASSES = {"H": 1.008, "O": 15.999}

#: Type names of the water fixture when the npz file has no ``type_map``.
WATER_TYPE_MAP = ("O", "H")


def load_frame(path=DEFAULT_FRAMES, frame=0):
    """Read one frame of a DeePMD-kit-style frames file.

    Parameters
    ----------
    path : str
        ``.npz`` file with ``coord`` ((nframes, natoms*3) or (nframes, natoms, 3), Å),
        ``box`` ((nframes, 9) or (nframes, 3, 3), rows = cell vectors, Å) and ``atype``
        ((natoms,) or (nframes, natoms)); ``type_map`` is optional.
    frame : int
        Frame index.

    Returns
    -------
    coord : ndarray, shape (natoms, 3), float64
    cell : ndarray, shape (3, 3), float64
        Rows are the cell vectors.
    atype : ndarray, shape (natoms,), int64
        Types counted from 0.
    type_map : tuple of str
        Type names (``("O", "H")`` when the file has none).
    """
    with np.load(path) as f:
        coord = np.asarray(f["coord"][frame], dtype=np.float64).reshape(-1, 3)
        cell = np.asarray(f["box"][frame], dtype=np.float64).reshape(3, 3)
        atype = np.asarray(f["atype"], dtype=np.int64)
        if atype.ndim == 2:
            atype = atype[frame]
        type_map = tuple(str(t) for t in f["type_map"]) if "type_map" in f.files else WATER_TYPE_MAP
    if atype.shape != (coord.shape[0],):
        raise ValueError(f"atype has shape {atype.shape}, coord has {coord.shape[0]} atoms")
    return coord, cell, atype, type_map


def replicate(coord, cell, atype, rep):
    """Replicate a periodic frame ``rep = (nx, ny, nz)`` times along its cell vectors.

    Parameters
    ----------
    coord : ndarray, shape (natoms, 3)
        Cartesian coordinates, Å (need not be wrapped).
    cell : ndarray, shape (3, 3)
        Rows are the cell vectors.
    atype : ndarray, shape (natoms,)
    rep : sequence of 3 int

    Returns
    -------
    coord : ndarray, shape (natoms*nx*ny*nz, 3)
        Image-major order: all atoms of image (0, 0, 0), then (0, 0, 1), ... (z fastest).
        Every image is the wrapped frame shifted by ``i a + j b + k c``.
    cell : ndarray, shape (3, 3)
        ``diag(rep) @ cell``.
    atype : ndarray, shape (natoms*nx*ny*nz,)
    """
    rep = np.asarray(rep, dtype=np.int64)
    if rep.shape != (3,) or (rep < 1).any():
        raise ValueError(f"rep must be 3 positive integers, got {rep.tolist()}")
    frac = _wrap(coord @ np.linalg.inv(cell))
    shifts = np.array([[i, j, k] for i in range(rep[0]) for j in range(rep[1]) for k in range(rep[2])], dtype=np.float64)
    frac_big = ((frac[None, :, :] + shifts[:, None, :]) / rep).reshape(-1, 3)
    cell_big = rep[:, None] * cell
    return frac_big @ cell_big, cell_big, np.tile(atype, len(shifts))


def _wrap(frac):
    """Fractional coordinates wrapped into [0, 1)."""
    frac = frac - np.floor(frac)
    return np.where(frac >= 1.0, frac - 1.0, frac)


def lammps_cell(cell):
    """Restricted triclinic (lower-triangular) form of a cell and the rotation to it.

    Parameters
    ----------
    cell : ndarray, shape (3, 3)
        Rows are the cell vectors a, b, c; must be right-handed (``det > 0``).

    Returns
    -------
    lcell : ndarray, shape (3, 3)
        Rows ``(lx, 0, 0)``, ``(xy, ly, 0)``, ``(xz, yz, lz)`` with ``lx, ly, lz > 0``; tilts
        below ``1e-12`` times the largest length (rounding residue) are set to 0.
    rot : ndarray, shape (3, 3)
        Orthogonal, ``det = +1``, with ``lcell = cell @ rot``: a vector (coordinate, force)
        ``v`` in the original frame is ``v @ rot`` in LAMMPS's, a tensor ``T`` is
        ``rot.T @ T @ rot``.

    Raises
    ------
    ValueError
        For a singular or left-handed cell (LAMMPS cannot represent it by a rotation).
    """
    cell = np.asarray(cell, dtype=np.float64)
    det = np.linalg.det(cell)
    if not det > 0:
        raise ValueError(f"cell must be right-handed and non-singular (det = {det:g})")
    a, b, c = cell
    lx = np.linalg.norm(a)
    xy = b @ a / lx
    ly = np.sqrt(max(b @ b - xy * xy, 0.0))
    xz = c @ a / lx
    yz = (b @ c - xy * xz) / ly
    lz = np.sqrt(max(c @ c - xz * xz - yz * yz, 0.0))
    tiny = 1e-12 * max(lx, ly, lz)  # rounding residue of a rotated orthorhombic cell
    xy, xz, yz = (0.0 if abs(v) < tiny else v for v in (xy, xz, yz))
    lcell = np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])
    if is_orthorhombic(cell) and (np.diag(cell) > 0).all():
        return cell.copy(), np.eye(3)  # orthorhombic: keep the numbers bit for bit
    rot = np.linalg.solve(cell, lcell)  # cell @ rot = lcell
    return lcell, rot


def reduce_tilt(lcell):
    """An equivalent restricted triclinic cell with ``|xy| <= lx/2``, ``|xz| <= lx/2``, ``|yz| <= ly/2``.

    Parameters
    ----------
    lcell : ndarray, shape (3, 3)
        Lower-triangular cell (rows a, b, c), as from :func:`lammps_cell`.

    Returns
    -------
    ndarray, shape (3, 3)
        The same lattice with b and c replaced by b - n a and c - m b - k a (integers n, m, k),
        so that LAMMPS needs no large tilt factors. Coordinates stay valid modulo the lattice.
    """
    a, b, c = (np.array(v, dtype=np.float64) for v in lcell)
    c = c - np.round(c[1] / b[1]) * b
    c = c - np.round(c[0] / a[0]) * a
    b = b - np.round(b[0] / a[0]) * a
    out = np.array([a, b, c])
    tilt = np.tril(np.ones((3, 3), dtype=bool), -1)
    out[tilt & (np.abs(out) < 1e-12 * np.abs(np.diag(out)).max())] = 0.0  # rounding residue
    return out


def is_orthorhombic(cell):
    """True when the off-diagonal elements of ``cell`` are exactly zero."""
    cell = np.asarray(cell)
    return not np.any(cell[~np.eye(3, dtype=bool)])


def write_data(path, coord, cell, atype, type_map=WATER_TYPE_MAP, masses=None, title=None, reduce=False):
    """Write a LAMMPS data file (``atom_style atomic``) of a periodic frame.

    Parameters
    ----------
    path : str
        File to write.
    coord : ndarray, shape (natoms, 3)
        Cartesian coordinates in the frame of ``cell``, Å (wrapped here).
    cell : ndarray, shape (3, 3)
        Rows are the cell vectors; rotated to restricted triclinic form if not orthorhombic.
    atype : ndarray, shape (natoms,)
        Types counted from 0; LAMMPS type ``t + 1``.
    type_map : sequence of str
        Type names, for the masses and the comment of the ``Masses`` section.
    masses : sequence of float, optional
        Masses per type (default: :data:`MASSES` by name).
    title : str, optional
        First line of the file.
    reduce : bool
        Replace the cell by the equivalent one of :func:`reduce_tilt` (small tilt factors).

    Returns
    -------
    dict
        ``natoms``, ``ntypes``, ``cell`` (the LAMMPS cell written, rows), ``rot`` (original
        frame → LAMMPS frame, see :func:`lammps_cell`), ``triclinic`` (bool), ``coord``
        (the coordinates written, LAMMPS frame, in file order).
    """
    coord = np.asarray(coord, dtype=np.float64).reshape(-1, 3)
    atype = np.asarray(atype, dtype=np.int64)
    ntypes = max(len(type_map), int(atype.max()) + 1)
    if masses is None:
        try:
            masses = [MASSES[type_map[t]] for t in range(ntypes)]
        except (KeyError, IndexError) as exc:
            raise ValueError(f"no mass known for a type of {list(type_map)}: pass masses") from exc
    lcell, rot = lammps_cell(cell)
    if reduce:
        lcell = reduce_tilt(lcell)
        frac = _wrap(coord @ rot @ np.linalg.inv(lcell))
    else:
        frac = _wrap(coord @ np.linalg.inv(cell))
    triclinic = not is_orthorhombic(lcell)
    lcoord = frac @ lcell
    lines = [title or f"water frame, {len(atype)} atoms (dpcompress benchmarks/lammps_water.py)", ""]
    lines += [f"{len(atype)} atoms", f"{ntypes} atom types", ""]
    lx, ly, lz = (float(v) for v in np.diag(lcell))
    lines += [f"0.0 {lx!r} xlo xhi", f"0.0 {ly!r} ylo yhi", f"0.0 {lz!r} zlo zhi"]
    if triclinic:
        xy, xz, yz = float(lcell[1, 0]), float(lcell[2, 0]), float(lcell[2, 1])
        lines.append(f"{xy!r} {xz!r} {yz!r} xy xz yz")
    lines += ["", "Masses", ""]
    lines += [f"{t + 1} {float(masses[t])!r}  # {type_map[t] if t < len(type_map) else '?'}" for t in range(ntypes)]
    lines += ["", "Atoms  # atomic", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
        f.writelines(f"{i + 1} {t + 1} {x!r} {y!r} {z!r}\n" for i, (t, (x, y, z)) in enumerate(zip(atype.tolist(), lcoord.tolist())))
    return dict(natoms=len(atype), ntypes=ntypes, cell=lcell, rot=rot, triclinic=triclinic, coord=lcoord)


def write_water(path, rep=(1, 1, 1), frames=DEFAULT_FRAMES, frame=0, reduce=False):
    """Write the fixture frame replicated ``rep`` as a LAMMPS data file.

    Parameters
    ----------
    path : str
        Data file to write.
    rep : sequence of 3 int
        Replication ``(nx, ny, nz)``.
    frames : str
        Frames file (see :func:`load_frame`).
    frame : int
        Frame index.
    reduce : bool
        See :func:`write_data`.

    Returns
    -------
    dict
        As :func:`write_data`, plus ``type_map`` and ``rep``.
    """
    coord, cell, atype, type_map = load_frame(frames, frame)
    coord, cell, atype = replicate(coord, cell, atype, rep)
    info = write_data(path, coord, cell, atype, type_map,
                      title=f"frame {frame} of {os.path.basename(frames)} replicated {'x'.join(map(str, rep))}: {len(atype)} atoms",
                      reduce=reduce)
    info.update(type_map=list(type_map), rep=list(rep))
    return info


def main(argv=None):
    """Command line: write one data file; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("output", help="LAMMPS data file to write")
    p.add_argument("--rep", type=int, nargs=3, default=(1, 1, 1), metavar=("NX", "NY", "NZ"), help="replication [1 1 1]")
    p.add_argument("--frames", default=DEFAULT_FRAMES, help="test_frames.npz [%(default)s]")
    p.add_argument("--frame", type=int, default=0, help="frame index [0]")
    p.add_argument("--reduce", action="store_true", help="triclinic cells: use the equivalent cell with the smallest tilts")
    args = p.parse_args(argv)
    info = write_water(args.output, args.rep, args.frames, args.frame, args.reduce)
    kind = "triclinic" if info["triclinic"] else "orthorhombic"
    print(f"{args.output}: {info['natoms']} atoms, {kind} cell diag {np.diag(info['cell']).round(6).tolist()}, types {info['type_map']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
