"""Write the small extxyz and OUTCAR files of ``tests/test_data_formats.py`` (run from the repository root).

Frames: the water frames of ``tests/data/deepmd/se_e2_a_tiny/test_frames.npz`` (192 atoms, PBC);
labels: DeePMD-kit's outputs for them (``ref_uncompressed_pth.npz``: energy, force, virial), so
evaluating the tiny model on these files must give the labels back.  Numbers are written with
``repr`` (every digit), so every parser reads back the same float64 values:

* ``water.extxyz``: frames 0 and 1, ``Lattice``, ``Properties=species:S:1:pos:R:3:forces:R:3``,
  ``energy``, ``virial`` (9 numbers), ``pbc="T T T"``;
* ``water.MOVEMENT`` (``--movement``): frames 4 and 5 as PWmat's MOVEMENT (:func:`write_movement`);
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


#: Cells of the small frames (rows: cell vectors, Å): triclinic, so no component of the stress is trivial.
SMALL_CELLS = np.array([[[7.5, 0.0, 0.0], [0.4, 7.8, 0.0], [-0.3, 0.2, 8.1]],
                        [[7.6, 0.0, 0.0], [0.3, 7.7, 0.0], [-0.2, 0.3, 8.0]],
                        [[7.7, 0.0, 0.0], [0.2, 7.9, 0.0], [-0.1, 0.1, 8.2]]])


def small_frames():
    """Three frames of two water molecules in the cells :data:`SMALL_CELLS`.

    From frames 0-2 of the fixture: O atom 0 and the O nearest to it (minimum image), each with
    its two nearest H, unwrapped around the first O and shifted to the cell's centre.  Returns
    ``symbols`` (O O H H H H, VASP's species order), ``frac`` (3, 6, 3) fractional coordinates
    and ``cells`` (3, 3, 3); the Cartesian positions are ``frac @ cell``.
    """
    f = np.load(os.path.join(TINY, "test_frames.npz"))
    atype = f["atype"]
    frac, cells = [], []
    for k in range(3):
        box = f["box"][k].astype(np.float64)
        xyz = f["coord"][k].astype(np.float64)
        inv = np.linalg.inv(box)

        def image(d):
            s = d @ inv
            return (s - np.round(s)) @ box

        oxy = np.flatnonzero(atype == 0)
        hyd = np.flatnonzero(atype == 1)
        d_o = np.linalg.norm(image(xyz[oxy] - xyz[oxy[0]]), axis=1)
        d_o[0] = np.inf
        pair = [oxy[0], oxy[int(np.argmin(d_o))]]
        pos = [image(xyz[o] - xyz[pair[0]]) for o in pair]
        for o, po in zip(pair, list(pos)):
            d_h = image(xyz[hyd] - xyz[o])
            near = np.argsort(np.linalg.norm(d_h, axis=1))[:2]
            pos += [po + d_h[j] for j in near]
        pos = np.array(pos)
        pos += SMALL_CELLS[k].sum(axis=0) / 2 - pos.mean(axis=0)
        frac.append(pos @ np.linalg.inv(SMALL_CELLS[k]))
        cells.append(SMALL_CELLS[k])
    return ("O", "O", "H", "H", "H", "H"), np.array(frac), np.array(cells)


def deepmd_labels(symbols, coords, cells):
    """DeePMD-kit's energy (n,), forces (n, natoms, 3) and virial (n, 3, 3) of the tiny model."""
    import subprocess
    import sys
    import tempfile

    from deepmd.infer import DeepPot

    with tempfile.TemporaryDirectory() as tmp:
        pth = os.path.join(tmp, "frozen.pth")
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "dp"), "convert-backend",
                        os.path.join(TINY, "frozen.dp"), pth], check=True, capture_output=True)
        dp = DeepPot(pth)
        types = [dp.get_type_map().index(s) for s in symbols]
        n = len(coords)
        e, f, v = dp.eval(coords.reshape(n, -1), cells.reshape(n, 9), types)[:3]
    return e.reshape(n), f.reshape(n, -1, 3), v.reshape(n, 3, 3)


def write_vasprun(path):
    symbols, frac, cells = small_frames()
    coords = np.einsum("fai,fij->faj", frac, cells)
    energy, force, virial = deepmd_labels(symbols, coords, cells)
    species = list(dict.fromkeys(symbols))

    def varray(name, rows, indent="   "):
        out = [f'{indent}<varray name="{name}" >']
        out += [f"{indent} <v>" + " ".join(f"{float(x)!r:>24}" for x in r) + " </v>" for r in rows]
        return out + [f"{indent}</varray>"]

    def structure(k, name=None):
        head = f' <structure name="{name}" >' if name else "  <structure>"
        return [head, "   <crystal>"] + varray("basis", cells[k], "    ") + ["   </crystal>"] + varray("positions", frac[k]) + [
            "  </structure>" if not name else " </structure>"]

    out = ['<?xml version="1.0" encoding="ISO-8859-1"?>', "<modeling>",
           " <!-- synthetic vasprun.xml for dpcompress tests (tests/data/formats/make_files.py) -->",
           ' <generator>', '  <i name="program" type="string">vasp </i>', '  <i name="version" type="string">6.3.2  </i>',
           " </generator>",
           " <kpoints>", '  <generation param="Gamma">', '   <v type="int" name="divisions">       1        1        1 </v>',
           "  </generation>", '  <varray name="kpointlist" >', "   <v>       0.00000000       0.00000000       0.00000000 </v>",
           "  </varray>", '  <varray name="weights" >', "   <v>       1.00000000 </v>", "  </varray>", " </kpoints>",
           " <parameters>", '  <separator name="electronic" >', '   <separator name="electronic convergence" >',
           '    <i type="int" name="NELM">    60</i>', "   </separator>", "  </separator>", " </parameters>",
           " <atominfo>", f"  <atoms>{len(symbols):8d} </atoms>", f"  <types>{len(species):8d} </types>",
           '  <array name="atoms" >', '   <dimension dim="1">ion</dimension>', '   <field type="string">element</field>',
           '   <field type="int">atomtype</field>', "   <set>"]
    out += [f"    <rc><c>{s:2s}</c><c>{species.index(s) + 1:4d}</c></rc>" for s in symbols]
    out += ["   </set>", "  </array>", " </atominfo>"]
    out += structure(0, "initialpos")
    for k in range(len(frac)):
        vol = abs(np.linalg.det(cells[k]))
        stress = 0.5 * (virial[k] + virial[k].T) / vol * KB_PER_EV_A3
        e = f"{float(energy[k])!r}"
        out += [" <calculation>", "  <scstep>", "   <energy>", f'    <i name="e_fr_energy">{e:>20} </i>',
                f'    <i name="e_wo_entrp">{e:>20} </i>', f'    <i name="e_0_energy">{e:>20} </i>', "   </energy>",
                "  </scstep>"]
        out += structure(k)
        out += varray("forces", force[k], "  ") + varray("stress", stress, "  ")
        out += ["  <energy>", f'   <i name="e_fr_energy">{e:>20} </i>', f'   <i name="e_wo_entrp">{e:>20} </i>',
                f'   <i name="e_0_energy">{e:>20} </i>', "  </energy>", " </calculation>"]
    out += ["</modeling>"]
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")


def write_movement(path, frames):
    """PWmat MOVEMENT frames: the blocks :mod:`dpcompress.data.pwmat` and dpdata read.

    ``Etot,Ep,Ek``: Ep = the label, Ek = 0; ``stress (eV)`` = the virial; ``Position``: fractional
    coordinates ``coord @ inv(box)`` (read back as ``frac @ box``, to 1e-13 Å); ``Force
    (-force, ...)``: minus the force label, as PWmat writes the gradient.
    """
    coords, boxes, symbols, energy, force, virial = load()
    z = {"O": 8, "H": 1}
    out = []
    for step, k in enumerate(frames):
        e = float(energy[k])
        out += [f"{len(symbols):5d} atoms,Iteration (fs) =    {step + 1:.10E}, Etot,Ep,Ek (eV) =   {e!r}  {e!r}   0.0, SCF =    10",
                " Lattice vector (Angstrom)"]
        for a, v in zip(boxes[k].reshape(3, 3), virial[k].reshape(3, 3)):
            out.append("   " + "    ".join(repr(float(x)) for x in a) + "     stress (eV):  " + "  ".join(repr(float(x)) for x in v))
        frac = coords[k].reshape(-1, 3) @ np.linalg.inv(boxes[k].reshape(3, 3))
        out.append(" Position (normalized), move_x, move_y, move_z")
        out += [f"{z[s]:4d}   " + "   ".join(repr(float(x)) for x in r) + "     1  1  1" for s, r in zip(symbols, frac)]
        out.append(" Force (-force, eV/Angstrom)")
        out += [f"{z[s]:4d}   " + "   ".join(repr(-float(x)) for x in r) for s, r in zip(symbols, force[k].reshape(-1, 3))]
        out.append(" -------------------------------------------------")
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")


if __name__ == "__main__":
    import sys

    if "--movement" in sys.argv[1:]:
        write_movement(os.path.join(HERE, "water.MOVEMENT"), [4, 5])
    elif "--vasprun" in sys.argv[1:]:  # needs DeePMD-kit (its labels)
        write_vasprun(os.path.join(HERE, "vasprun.xml"))
    else:
        write_extxyz(os.path.join(HERE, "water.extxyz"), [0, 1])
        write_outcar(os.path.join(HERE, "OUTCAR"), [2, 3])
