"""Write the small extxyz and OUTCAR files of ``tests/test_data_formats.py`` (run from the repository root).

Frames: the water frames of ``tests/data/deepmd/se_e2_a_tiny/test_frames.npz`` (192 atoms, PBC);
labels: DeePMD-kit's outputs for them (``ref_uncompressed_pth.npz``: energy, force, virial), so
evaluating the tiny model on these files must give the labels back.  Numbers are written with
``repr`` (every digit), so every parser reads back the same float64 values:

* ``water.extxyz``: frames 0 and 1, ``Lattice``, ``Properties=species:S:1:pos:R:3:forces:R:3``,
  ``energy``, ``virial`` (9 numbers), ``pbc="T T T"``;
* ``OUTCAR``: frames 2 and 3 as VASP 6 writes an ionic step, reduced to the lines that dpdata
  (``vasp/outcar``) and ASE (``vasp-out``) read: the ``POTCAR:`` and ``ions per type`` header,
  ``NELM``/``NWRITE``/``ISPIN``, and per step the stress block (``in kB``), the cell
  (``direct lattice vectors``), ``POSITION ... TOTAL-FORCE`` and the energies (``TOTEN`` = the
  label).  ``in kB`` = virial / V x 1602.1766208 (dpdata's conversion back: x V / 1602.176621).
"""

import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "..", "deepmd", "se_e2_a_tiny")
KB_PER_EV_A3 = 1602.1766208


def load():
    f = np.load(os.path.join(TINY, "test_frames.npz"))
    r = np.load(os.path.join(TINY, "ref_uncompressed_pth.npz"))
    names = [str(x) for x in f["type_map"]]
    symbols = [names[t] for t in f["atype"]]
    return (f["coord"].astype(np.float64), f["box"].astype(np.float64), symbols,
            r["energy"], r["force"], r["virial"])


def write_extxyz(path, frames):
    coords, boxes, symbols, energy, force, virial = load()
    lines = []
    for k in frames:
        lines.append(str(len(symbols)))
        lattice = " ".join(repr(float(x)) for x in boxes[k].ravel())
        vir = " ".join(repr(float(x)) for x in virial[k].ravel())
        lines.append(f'Lattice="{lattice}" Properties=species:S:1:pos:R:3:forces:R:3 energy={float(energy[k])!r} '
                     f'virial="{vir}" pbc="T T T"')
        for s, x, fo in zip(symbols, coords[k], force[k]):
            lines.append(" ".join([s] + [repr(float(v)) for v in x] + [repr(float(v)) for v in fo]))
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def write_outcar(path, frames):
    coords, boxes, symbols, energy, force, virial = load()
    species = list(dict.fromkeys(symbols))
    counts = [symbols.count(s) for s in species]
    assert symbols == [s for s, n in zip(species, counts) for _ in range(n)], "OUTCAR atoms come sorted by species"
    potcar = {"O": " POTCAR:    PAW_PBE O 08Apr2002", "H": " POTCAR:    PAW_PBE H 15Jun2001"}
    out = [" vasp.6.3.2 18Feb22 (build synthetic) complex", " synthetic OUTCAR for dpcompress tests (tests/data/formats/make_files.py)"]
    out += [potcar[s] for s in species]
    out += ["   NELM   =     60;   NELMIN=  2; NELMDL= -5     # of ELM steps",
            "   NWRITE =      2    write-flag & timer",
            "   ISPIN  =      1    spin polarized calculation?",
            "   ions per type =           " + "".join(f"{n:5d}" for n in counts)]
    out += [potcar[s] for s in species]
    for step, k in enumerate(frames):
        cell = boxes[k]
        vol = abs(np.linalg.det(cell))
        v = virial[k] / vol * KB_PER_EV_A3  # XX YY ZZ XY YZ ZX
        kb = [v[0, 0], v[1, 1], v[2, 2], v[0, 1], v[1, 2], v[0, 2]]
        out += [f"--------------------------------------- Iteration {step + 1:6d}(   1)  ---------------------------------------",
                "",
                "  FORCE on cell =-STRESS in cart. coord.  units (eV):",
                "  Direction    XX          YY          ZZ          XY          YZ          ZX",
                "  --------------------------------------------------------------------------------------"]
        for name in ("Alpha Z", "Ewald", "Hartree", "E(xc)", "Local", "n-local", "augment", "Kinetic", "Fock"):
            out.append(f"  {name:9s}" + "     0.00000" * 6)
        out += ["  -----------------------------------------------------------------------------------",
                "  Total    " + "".join(f" {float(x)!r}" for x in (np.array(kb) * vol / KB_PER_EV_A3)),
                "  in kB    " + "".join(f" {float(x)!r}" for x in kb),
                "  external pressure =        0.00 kB  Pullay stress =        0.00 kB",
                "",
                " VOLUME and BASIS-vectors are now :",
                " -----------------------------------------------------------------------------",
                "  energy-cutoff  :      400.00",
                f"  volume of cell :  {vol:12.4f}",
                "      direct lattice vectors                 reciprocal lattice vectors"]
        rec = np.linalg.inv(cell).T
        for a, b in zip(cell, rec):
            row = " ".join(repr(float(x)) for x in a)
            assert "e" not in row, "dpdata splits the cell rows at '-': no exponents"
            out.append("    " + row + "    " + " ".join(f"{x:.12f}" for x in b))
        out += ["",
                " POSITION                                       TOTAL-FORCE (eV/Angst)",
                " -----------------------------------------------------------------------------------"]
        for x, fo in zip(coords[k], force[k]):
            out.append("     " + " ".join(repr(float(c)) for c in x) + "      " + " ".join(repr(float(c)) for c in fo))
        out += [" -----------------------------------------------------------------------------------",
                "    total drift:                                0.000000      0.000000      0.000000",
                "",
                "  FREE ENERGIE OF THE ION-ELECTRON SYSTEM (eV)",
                "  ---------------------------------------------------",
                f"  free  energy   TOTEN  =  {float(energy[k])!r} eV",
                "",
                f"  energy  without entropy=  {float(energy[k])!r}  energy(sigma->0) =  {float(energy[k])!r}",
                ""]
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")


if __name__ == "__main__":
    write_extxyz(os.path.join(HERE, "water.extxyz"), [0, 1])
    write_outcar(os.path.join(HERE, "OUTCAR"), [2, 3])
