"""PWmat ``MOVEMENT`` and ``atom.config`` files (``dpcompress.data.pwmat``, ``--format pwmat/movement``).

References:

* dpdata's ``pwmat/movement`` and ``pwmat/atom.config`` readers (an independent parser of PWmat's
  real files, ``tests/data/formats/pwmat``, cut from the PWMLFF data library): the same energies
  (``Ep``), forces (minus the file's ``-force`` block), cells and positions, atoms matched after
  dpdata's sort by atomic number; positions to 1e-12 Å, energies and forces exactly, the virial to
  rtol 2e-4 (dpdata passes it through a pressure with the constants 160.2 and 1.602176621e6,
  a factor 0.99989);
* numbers of the file itself (frame 0 of ``MOVEMENT``, copied by hand from the text);
* DeePMD-kit: ``water.MOVEMENT`` holds water frames labelled with DeePMD-kit's outputs
  (``make_files.py --movement``), so the tiny model must give the labels back through
  ``dpcompress eval`` and ``dpcompress test`` (|ΔE|/atom <= 1e-10 eV, |ΔF| <= 1e-9 eV/Å, the
  tolerances of ``tests/test_reference_vs_deepmd.py``), and the scan of it equals the scan of the
  same frames as deepmd/npy.
"""

import os

import numpy as np
import pytest

from conftest import DATA, TINY
from dpcompress.cli import main as cli_main
from dpcompress.core.errors import DataFormatError
from dpcompress.data import discover_systems, format_from_name, formats, read_systems
from dpcompress.data.pwmat import read_pwmat

FORMATS = os.path.join(DATA, "formats")
MOVEMENT = os.path.join(FORMATS, "pwmat", "MOVEMENT")
ATOM_CONFIG = os.path.join(FORMATS, "pwmat", "atom.config")
WATER = os.path.join(FORMATS, "water.MOVEMENT")
MODEL = os.path.join(TINY, "frozen.dp")
WATER_FRAMES = [4, 5]  # make_files.py --movement


def test_movement_frame_0_numbers_from_the_text():
    frames = read_pwmat(MOVEMENT)
    assert len(frames) == 6
    f = frames[0]
    assert f["symbols"] == ("C", "H", "H", "H", "H")
    assert f["energy"] == -0.2198172551e03  # Ep, not Etot = -219.476
    np.testing.assert_array_equal(f["cell"], np.eye(3) * 10.0)
    np.testing.assert_allclose(f["coords"][0], [4.53522153693573, 4.89748210138009, 5.15704871018876], rtol=1e-15)
    # the block holds -force: the force is its negative
    np.testing.assert_array_equal(f["force"][0], [0.300994301726863, -0.975385981252998, 0.647147119917742])
    np.testing.assert_array_equal(f["virial"], [[0.223614, 0.913404, -0.941723], [0.913404, 0.466893, 0.417760],
                                                [-0.941723, 0.417760, 0.350859]])


def _sorted_by_z(symbols, *arrays):
    from dpcompress.core.elements import SYMBOLS

    z = np.array([SYMBOLS.index(s) for s in symbols])
    # dpdata sorts atoms by atomic number (not stably): match equal elements by position
    order = np.lexsort((arrays[0][:, 2], arrays[0][:, 1], arrays[0][:, 0], z))
    return [a[order] for a in arrays]


PLAIN_ATOM_CONFIG = """   3 atoms
 Lattice vector
   5.1  0.0  0.0
   0.3  5.2  0.0
  -0.2  0.1  5.3
 Position, move_x, move_y, move_z
  14   0.1  0.2  0.3   1  1  1
   8   0.4  0.5  0.6   1  1  1
   8   0.7  0.8  0.95  1  1  1
"""


@pytest.mark.parametrize("case", ["movement", "library atom.config", "plain atom.config"])
def test_same_arrays_as_dpdata(case, tmp_path):
    dpdata = pytest.importorskip("dpdata", reason="dpdata not installed (the reference parser)")
    path, fmt, labeled = {"movement": (MOVEMENT, "pwmat/movement", True),
                          # the library's atom.config is a MOVEMENT frame (dpdata's atom.config reader
                          # would also count its nonperiodic_Position block): its movement reader
                          "library atom.config": (ATOM_CONFIG, "pwmat/movement", True),
                          "plain atom.config": (None, "pwmat/atom.config", False)}[case]
    if path is None:
        path = _write(tmp_path, PLAIN_ATOM_CONFIG, "atom.config")
    ours = read_pwmat(path)
    ref = (dpdata.LabeledSystem if labeled else dpdata.System)(path, fmt=fmt)
    assert ref.get_nframes() == len(ours)
    names = list(ref["atom_names"])
    ref_symbols = [names[t] for t in ref["atom_types"]]
    for k, f in enumerate(ours):
        assert sorted(f["symbols"]) == sorted(ref_symbols)
        cell = np.asarray(ref["cells"][k])
        # dpdata rotates the cell to lower-triangular form: compare rotation-invariant quantities
        np.testing.assert_allclose(f["cell"] @ f["cell"].T, cell @ cell.T, rtol=0, atol=1e-10)
        rot = np.linalg.solve(f["cell"], cell)  # ours @ rot = dpdata's
        (x_ours,) = _sorted_by_z(f["symbols"], f["coords"] @ rot)
        (x_ref,) = _sorted_by_z(ref_symbols, np.asarray(ref["coords"][k]))
        np.testing.assert_allclose(x_ours, x_ref, rtol=0, atol=1e-12)
        if labeled:
            assert f["energy"] == ref["energies"][k]
            x_ours, f_ours = _sorted_by_z(f["symbols"], f["coords"] @ rot, f["force"] @ rot)
            x_ref, f_ref = _sorted_by_z(ref_symbols, np.asarray(ref["coords"][k]), np.asarray(ref["forces"][k]))
            if case == "movement":
                np.testing.assert_allclose(f_ours, f_ref, rtol=0, atol=1e-14)
            else:
                # dpdata 1.1.0 mis-sorts the Force block of a file whose atoms are not in
                # atomic-number order: here it gives the P atom of line 22 of the Position block the
                # force of the S atom of line 26 and vice versa (the blocks' atomic numbers agree line
                # by line, which read_pwmat checks).  The same set of forces, 2 atoms differing:
                np.testing.assert_allclose(np.sort(f_ours, axis=0), np.sort(f_ref, axis=0), rtol=0, atol=1e-14)
                assert np.sum(np.any(np.abs(f_ours - f_ref) > 1e-14, axis=1)) == 2
            if f["virial"] is None:
                assert "virials" not in ref.data
            else:
                np.testing.assert_allclose(rot.T @ f["virial"] @ rot, ref["virials"][k], rtol=2e-4, atol=1e-6)


def test_atom_config_structure_without_stress():
    (f,) = read_pwmat(ATOM_CONFIG)
    assert len(f["symbols"]) == 50 and set(f["symbols"]) == {"Li", "Ge", "P", "S"}
    assert f["virial"] is None and f["energy"] == -0.1516441872e05 and f["force"].shape == (50, 3)
    (system,) = read_systems(ATOM_CONFIG)
    assert system.natoms == 50
    (info,) = discover_systems(ATOM_CONFIG, labels=True)
    assert info.kind == "pwmat/atom.config" and info.labels() == ("energy", "force")


def test_names_and_aliases():
    for name, fmt in [("MOVEMENT", "pwmat/movement"), ("MOVEMENT.1", "pwmat/movement"), ("x.movement", "pwmat/movement"),
                      ("OUT.MLMD", "pwmat/movement"), ("atom.config", "pwmat/atom.config"),
                      ("final.config", "pwmat/atom.config")]:
        assert format_from_name(name) == fmt, name
    for alias in ("movement", "PWmat/MOVEMENT", "pwmat", "mlmd"):
        assert formats.normalize_format(alias) == "pwmat/movement"
    assert formats.normalize_format("atom.config") == "pwmat/atom.config"
    # the package's own reader even where dpdata is installed
    assert formats.reader_for("pwmat/movement") == "native"


def _write(tmp_path, text, name="MOVEMENT"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_malformed_files_name_file_and_line(tmp_path):
    lines = open(MOVEMENT).read().splitlines()
    head = lines.index(" Force (-force, eV/Angstrom)")
    cases = [
        ("\n".join(lines[: head + 3]) + "\n", "line 32: end of file inside the Force block (atom 2 of 5)"),
        ("\n".join(lines[:20] + ["   6   0.1  abc  0.3   1 1 1"] + lines[21:]), "line 21: Position of atom 3: 'abc' is not a number"),
        ("\n".join(lines[:20] + ["   0   0.1  0.2  0.3   1 1 1"] + lines[21:]), "line 21: Position of atom 3: '0' is not an atomic number"),
        ("\n".join(lines[:20] + ["   6   0.1  nan  0.3   1 1 1"] + lines[21:]), "is not finite"),
        ("99999999999 atoms, x\n", "line 1: atom count 99999999999 outside"),
        ("nothing here\n", "no PWmat frame"),
        ("   2 atoms\n Position\n 1 0 0 0\n 1 .5 .5 .5\n", "no Lattice vector block"),
    ]
    for text, msg in cases:
        with pytest.raises(DataFormatError) as exc:
            read_pwmat(_write(tmp_path, text))
        assert str(tmp_path / "MOVEMENT") in str(exc.value) and msg in str(exc.value), (msg, str(exc.value))
    bad = "\n".join(lines[:10] + ["   0.1E+02  0.0  0.0     stress (eV):  0.2"] + lines[11:])
    with pytest.raises(DataFormatError, match="line 11: stress row 1: expected 3 numbers"):
        read_pwmat(_write(tmp_path, bad))


def _source():
    f = np.load(os.path.join(TINY, "test_frames.npz"))
    r = np.load(os.path.join(TINY, "ref_uncompressed_pth.npz"))
    k = WATER_FRAMES
    return (f["coord"][k].astype(np.float64).reshape(len(k), -1, 3), f["box"][k].astype(np.float64).reshape(-1, 3, 3),
            f["atype"], r["energy"][k].reshape(-1), r["force"][k].reshape(len(k), -1, 3), r["virial"][k].reshape(-1, 3, 3))


def test_water_movement_gives_the_source_arrays():
    coords, cells, types, energy, force, virial = _source()
    (system,) = read_systems(WATER)
    assert system.type_map == ("O", "H")
    (info,) = discover_systems(WATER, labels=True)
    assert info.kind == "pwmat/movement" and info.labels() == ("energy", "force", "virial")
    np.testing.assert_array_equal(system.atom_types, types)
    np.testing.assert_array_equal(system.cells.reshape(-1, 3, 3), cells)
    np.testing.assert_allclose(system.coords.reshape(coords.shape), coords, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(system.energy, energy)
    np.testing.assert_array_equal(system.force.reshape(force.shape), force)
    np.testing.assert_array_equal(system.virial.reshape(virial.shape), virial)


def test_eval_and_test_on_movement_give_deepmd_outputs(capsys, tmp_path):
    assert cli_main(["eval", MODEL, WATER]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("frame")]
    assert len(lines) == 2
    for line in lines:
        assert float(line.split("vs label")[1].split()[0]) < 1e-10, line
    assert cli_main(["eval", MODEL, WATER, "--format", "pwmat/movement"]) == 0
    capsys.readouterr()
    rc = cli_main(["test", "-m", MODEL, "-s", WATER, "--format", "movement", "-d", str(tmp_path / "d"), "--no-progress"])
    assert rc == 0
    _, _, _, energy, force, _ = _source()
    rows = np.loadtxt(tmp_path / "d.e.out")
    np.testing.assert_array_equal(rows[:, 0], energy)
    assert np.max(np.abs(rows[:, 1] - energy)) / 192 <= 1e-10
    frows = np.loadtxt(tmp_path / "d.f.out")
    np.testing.assert_array_equal(frows[:, :3], force.reshape(-1, 3))
    assert np.max(np.abs(frows[:, 3:] - frows[:, :3])) <= 1e-9


def test_scan_reads_movement_as_npy(tmp_path):
    from dpcompress.scan import run_scan
    from test_scan import write_npy

    (system,) = read_systems(WATER)
    write_npy(str(tmp_path / "npy"), system.coords, system.cells, system.atom_types)

    def stats(path, **kw):
        d = run_scan([str(path)], rcut=[4.0, 6.0], rcut_smth=0.5, show_progress=False, **kw)
        return {k: v for k, v in d.items() if k not in ("data", "data_format")}

    assert stats(WATER) == stats(tmp_path / "npy")
    assert stats(WATER, fmt="pwmat/movement") == stats(tmp_path / "npy")
    assert cli_main(["scan", WATER, "--rcut", "6", "-q", "--no-mpi", "-o", str(tmp_path / "scan.json")]) == 0


def test_cli_bad_movement_exits_2_naming_the_file(tmp_path, capsys):
    bad = _write(tmp_path, "".join(open(WATER).readlines()[:5]), "bad.MOVEMENT")
    assert cli_main(["eval", MODEL, bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and bad in err[0] and "no Position block" in err[0]
