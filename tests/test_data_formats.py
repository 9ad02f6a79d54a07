"""Data formats besides deepmd/npy and deepmd/hdf5: extxyz, VASP OUTCAR and vasprun.xml, dpdata's formats,
with and without dpdata.

The files in ``tests/data/formats`` (``make_files.py`` writes them, every number with ``repr``)
hold water frames of the tiny fixture with DeePMD-kit's own outputs as labels.  References:

* the source arrays themselves (``test_frames.npz``, ``ref_uncompressed_pth.npz``): every
  reader (dpdata, ASE, the native extxyz parser) must give them back; exact for positions,
  cells, energies and forces (the same decimal strings parsed by ``float``), rtol 1e-9 for the
  OUTCAR virial (written in kB and converted back with dpdata's or ASE's constants, which
  differ by 1.3e-10);
* DeePMD-kit: evaluating the tiny model on the files must give its stored outputs (the labels),
  to the tolerances of ``tests/test_reference_vs_deepmd.py`` (|ΔE|/atom ≤ 1e-10 eV,
  |ΔF| ≤ 1e-9 eV/Å);
* ASE's own extxyz writer, for the native parser (an independent writer of the format).

``vasprun.xml`` holds three frames of 6 atoms in small triclinic cells (``make_files.small_frames``)
labelled by DeePMD-kit itself (``make_files.py --vasprun``): dpdata and ASE must read the same
arrays (positions ``frac @ cell`` to 1e-12 Å of the source, energies and forces exactly, the virial
to the two packages' kB constants, 1e-9), and the tiny model must give the labels back.

Readers are forced with ``monkeypatch`` (``dpcompress.data.formats._dpdata`` / ``_ase_io``
returning None = not installed); those needing dpdata or ASE skip when it is absent.
"""

import os

import numpy as np
import pytest

from conftest import DATA, TINY
from dpcompress.cli import main as cli_main
from dpcompress.core.errors import DataFormatError, InputError
from dpcompress.data import discover_systems, format_from_name, read_systems
from dpcompress.data import formats

FORMATS = os.path.join(DATA, "formats")
EXTXYZ = os.path.join(FORMATS, "water.extxyz")
OUTCAR = os.path.join(FORMATS, "OUTCAR")
VASPRUN = os.path.join(FORMATS, "vasprun.xml")
MODEL = os.path.join(TINY, "frozen.dp")


def make_files():
    """tests/data/formats/make_files.py as a module (the source frames of vasprun.xml)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_files", os.path.join(FORMATS, "make_files.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def source(frames):
    f = np.load(os.path.join(TINY, "test_frames.npz"))
    r = np.load(os.path.join(TINY, "ref_uncompressed_pth.npz"))
    return dict(coords=f["coord"][frames].astype(np.float64), cells=f["box"][frames].astype(np.float64),
                types=f["atype"], energy=r["energy"][frames], force=r["force"][frames], virial=r["virial"][frames])


def use_reader(monkeypatch, which):
    """Make ``which`` ("dpdata", "ase", "native") the reader the package picks."""
    if which == "dpdata":
        pytest.importorskip("dpdata", reason="dpdata not installed (pip install 'dpcompress[data]')")
    else:
        monkeypatch.setattr(formats, "_dpdata", lambda: None)
    if which == "ase":
        pytest.importorskip("ase.io", reason="ASE not installed (pip install 'dpcompress[ase]')")
    elif which == "native":
        monkeypatch.setattr(formats, "_ase_io", lambda: None)


def check_system(system, ref, virial_rtol=0.0):
    assert system.type_map == ("O", "H")
    np.testing.assert_array_equal(system.atom_types, ref["types"])
    np.testing.assert_array_equal(system.coords, ref["coords"])
    np.testing.assert_array_equal(system.cells, ref["cells"])
    np.testing.assert_array_equal(system.energy, ref["energy"])
    np.testing.assert_array_equal(system.force, ref["force"])
    np.testing.assert_allclose(system.virial, ref["virial"], rtol=virial_rtol, atol=1e-12 if virial_rtol else 0)


@pytest.mark.parametrize("reader", ["dpdata", "ase", "native"])
def test_extxyz_every_reader_gives_the_source_arrays(monkeypatch, reader):
    use_reader(monkeypatch, reader)
    assert formats.reader_for("extxyz") == reader
    (system,) = read_systems(EXTXYZ)
    assert system.nframes == 2 and system.natoms == 192 and system.name == EXTXYZ
    check_system(system, source([0, 1]))


@pytest.mark.parametrize("reader", ["dpdata", "ase"])
def test_outcar_dpdata_and_ase(monkeypatch, reader):
    use_reader(monkeypatch, reader)
    (system,) = read_systems(OUTCAR)
    ref = source([2, 3])
    # an OUTCAR holds the six independent stress components: the symmetric part of the virial
    ref["virial"] = np.triu(ref["virial"]) + np.triu(ref["virial"], 1).transpose(0, 2, 1)
    check_system(system, ref, virial_rtol=1e-9)


def test_outcar_without_dpdata_or_ase_names_the_extras(monkeypatch):
    use_reader(monkeypatch, "native")
    with pytest.raises(InputError, match=r"dpcompress\[data\]"):
        read_systems(OUTCAR)
    with pytest.raises(InputError, match=r"dpcompress\[data\]"):
        read_systems(FORMATS, fmt="lammps/dump")
    assert cli_main(["eval", MODEL, OUTCAR]) == 2


def test_format_detection_and_errors(tmp_path):
    for name, fmt in [("a.xyz", "extxyz"), ("b.EXTXYZ", "extxyz"), ("OUTCAR", "vasp/outcar"), ("OUTCAR.3", "vasp/outcar"),
                      ("vasprun.xml", "vasp/xml"), ("vasprun_1.xml", "vasp/xml"), ("d.h5", "deepmd/hdf5"),
                      ("e.hdf5", "deepmd/hdf5"), ("POSCAR", None), ("data.txt", None)]:
        assert format_from_name(name) == fmt, name
    assert formats.normalize_format("xyz") == "extxyz" and formats.normalize_format("OUTCAR") == "vasp/outcar"
    junk = tmp_path / "frames.dat"
    junk.write_text("not a data file\n")
    with pytest.raises(DataFormatError, match="--format"):
        read_systems(junk)
    # a folder of extxyz files is searched for them when --format says so; without it, for deepmd data only
    folder = tmp_path / "xyz"
    folder.mkdir()
    (folder / "one.xyz").write_bytes(open(EXTXYZ, "rb").read())
    with pytest.raises(DataFormatError, match="--format"):
        read_systems(folder)
    (system,) = read_systems(folder, fmt="extxyz")
    assert system.nframes == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFormatError, match="no extxyz file"):
        read_systems(empty, fmt="extxyz")


def test_native_extxyz_parser_against_ase_writer(monkeypatch, tmp_path):
    """ASE writes the file (an independent writer); the native parser reads what ASE's reader reads."""
    ase_io = pytest.importorskip("ase.io", reason="ASE not installed")
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    ref = source([0, 1])
    symbols = ["O" if t == 0 else "H" for t in ref["types"]]
    images = []
    for k in range(2):
        a = Atoms(symbols, positions=ref["coords"][k], cell=ref["cells"][k], pbc=True)
        vol = abs(np.linalg.det(ref["cells"][k]))
        # symmetric, as a DFT stress: ASE writes and reads 3x3 matrices column by column, dpdata
        # and the native reader row by row (docs/data-formats.md); a symmetric matrix reads the same
        stress = -0.5 * (ref["virial"][k] + ref["virial"][k].T) / vol
        a.calc = SinglePointCalculator(a, energy=ref["energy"][k], forces=ref["force"][k], stress=stress)
        images.append(a)
    # a cluster with another composition (a second system) and no labels
    keep = np.linalg.norm(ref["coords"][0] - ref["coords"][0][0], axis=1) < 3.5
    images.append(Atoms([s for s, k in zip(symbols, keep) if k], positions=ref["coords"][0][keep], pbc=False))
    path = tmp_path / "ase.extxyz"
    ase_io.write(path, images, format="extxyz")
    use_reader(monkeypatch, "ase")
    with_ase = read_systems(path)
    use_reader(monkeypatch, "native")
    native = read_systems(path)
    assert [s.nframes for s in native] == [2, 1] and [s.periodic for s in native] == [True, False]
    assert native[1].energy is None and native[1].type_map == ("O", "H")
    for a, b in zip(with_ase, native):
        assert a.type_map == b.type_map and a.name == b.name
        np.testing.assert_array_equal(a.atom_types, b.atom_types)
        for key in ("coords", "cells", "energy", "force", "virial"):
            x, y = getattr(a, key), getattr(b, key)
            assert (x is None) == (y is None), key
            if x is not None:
                np.testing.assert_array_equal(x, y)
    # ASE writes 8 decimals: the frames come back to that precision
    np.testing.assert_allclose(native[0].coords, ref["coords"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(native[0].virial, 0.5 * (ref["virial"] + ref["virial"].transpose(0, 2, 1)), rtol=1e-6, atol=1e-8)


def test_native_extxyz_errors_name_the_line(monkeypatch, tmp_path):
    use_reader(monkeypatch, "native")
    bad = tmp_path / "bad.xyz"
    bad.write_text("3\nLattice=\"1 0 0 0 1 0 0 0 1\" Properties=species:S:1:pos:R:3\nO 0 0 0\nH 0.5 0 0\n")
    with pytest.raises(DataFormatError, match=r"bad.xyz, line 1: 3 atoms announced"):
        read_systems(bad)
    bad.write_text("1\nLattice=\"1 0 0 0 1 0 0 0 1\" pbc=\"T T F\"\nO 0 0 0\n")
    with pytest.raises(DataFormatError, match="partially periodic"):
        read_systems(bad)
    bad.write_text("1\nProperties=species:S:1:pos:R:3\nO 0 x 0\n")
    with pytest.raises(DataFormatError, match="not numeric"):
        read_systems(bad)
    bad.write_text("1\nenergy=nan\nO 0 0 0\n")
    with pytest.raises(DataFormatError, match="NaN or inf"):
        read_systems(bad)


def test_dpdata_passes_other_formats_through(tmp_path):
    """Any dpdata format name reaches dpdata: a deepmd/raw folder written by dpdata itself."""
    dpdata = pytest.importorskip("dpdata", reason="dpdata not installed (pip install 'dpcompress[data]')")
    ref = source([0, 1])
    ls = dpdata.LabeledSystem(EXTXYZ, fmt="quip/gap/xyz")  # first frame only, as dpdata's single-system reader does
    ls.to("deepmd/raw", str(tmp_path / "raw"))
    (system,) = read_systems(tmp_path / "raw", fmt="deepmd/raw")
    assert system.nframes == 1
    np.testing.assert_array_equal(system.coords[0], ref["coords"][0])
    np.testing.assert_array_equal(system.energy, ref["energy"][:1])


@pytest.mark.parametrize("reader", ["dpdata", "native"])
def test_eval_on_extxyz_and_outcar_gives_deepmd_outputs(monkeypatch, capsys, reader):
    """The tiny model on the files: DeePMD-kit's outputs (the labels) back, through `dpcompress eval`."""
    from dpcompress import Potential

    use_reader(monkeypatch, reader)
    pot = Potential(MODEL)
    files = [EXTXYZ] + ([OUTCAR] if reader == "dpdata" else [])
    for path in files:
        for system in read_systems(path):
            names = np.asarray(system.type_map)[system.atom_types]
            e, f, v = pot.eval(system.coords, system.cells, names)
            assert np.max(np.abs(e[:, 0] - system.energy)) / system.natoms <= 1e-10
            np.testing.assert_allclose(f.reshape(system.force.shape), system.force, rtol=0, atol=1e-9)
    assert cli_main(["eval", MODEL, *files]) == 0
    out = capsys.readouterr().out
    lines = [x for x in out.splitlines() if x.startswith("frame")]
    assert len(lines) == 2 * len(files)
    for line in lines:
        err = float(line.split("vs label")[1].split()[0])
        assert err < 1e-10, line
    assert cli_main(["eval", MODEL, EXTXYZ, "--format", "extxyz"]) == 0


def test_scan_reads_extxyz_as_npy(tmp_path, monkeypatch):
    """The scan of the extxyz file equals the scan of the same frames as deepmd/npy (native reader too)."""
    from dpcompress.scan import run_scan
    from test_scan import write_npy

    ref = source([0, 1])
    write_npy(str(tmp_path / "npy"), ref["coords"], ref["cells"], ref["types"])

    def stats(path, **kw):
        d = run_scan([str(path)], rcut=[4.0, 6.0], rcut_smth=0.5, show_progress=False, **kw)
        return {k: v for k, v in d.items() if k not in ("data", "data_format")}

    a = stats(tmp_path / "npy")
    assert stats(EXTXYZ) == a
    use_reader(monkeypatch, "native")
    assert stats(EXTXYZ, fmt="extxyz") == a


def test_discover_systems_labels_only_when_asked():
    (info,) = discover_systems(EXTXYZ)
    assert info.kind == "extxyz" and info.labels() == () and info.nframes == 2
    (info,) = discover_systems(EXTXYZ, labels=True)
    assert info.labels() == ("energy", "force", "virial")


def _vasprun_arrays(monkeypatch, reader):
    use_reader(monkeypatch, reader)
    assert formats.reader_for("vasp/xml") == reader
    (system,) = read_systems(VASPRUN)
    return system


def test_vasprun_dpdata_and_ase_read_the_same_arrays(monkeypatch):
    """Both readers: the source frames (positions to 1e-12 Å: written fractional), the same labels."""
    pytest.importorskip("dpdata", reason="dpdata not installed (pip install 'dpcompress[data]')")
    pytest.importorskip("ase.io", reason="ASE not installed (pip install 'dpcompress[ase]')")
    a = _vasprun_arrays(monkeypatch, "dpdata")
    monkeypatch.undo()
    b = _vasprun_arrays(monkeypatch, "ase")
    symbols, frac, cells = make_files().small_frames()
    for system in (a, b):
        assert system.nframes == 3 and system.natoms == 6 and system.type_map == ("O", "H") and system.periodic
        np.testing.assert_array_equal(np.asarray(system.type_map)[system.atom_types], symbols)
        np.testing.assert_array_equal(system.cells, cells)
        np.testing.assert_allclose(system.coords, np.einsum("fai,fij->faj", frac, cells), rtol=0, atol=1e-12)
        vir = system.virial
        np.testing.assert_array_equal(vir, vir.transpose(0, 2, 1))  # VASP's stress is symmetric
    for key in ("coords", "energy", "force"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    np.testing.assert_allclose(a.virial, b.virial, rtol=1e-9, atol=1e-14)


def test_vasprun_without_dpdata_or_ase_names_the_extras(monkeypatch, capsys, tmp_path):
    use_reader(monkeypatch, "native")
    with pytest.raises(InputError, match=r"dpcompress\[data\].*dpcompress\[ase\]"):
        read_systems(VASPRUN)
    capsys.readouterr()
    for argv in (["eval", MODEL, VASPRUN], ["test", "-m", MODEL, "-s", VASPRUN, "--no-progress"],
                 ["scan", VASPRUN, "--rcut", "6", "-o", str(tmp_path / "scan.json")]):
        assert cli_main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "dpcompress[data]" in err and len(err.strip().splitlines()) == 1, argv


@pytest.mark.parametrize("reader", ["dpdata", "ase"])
def test_eval_on_vasprun_gives_deepmd_outputs(monkeypatch, capsys, reader):
    """The tiny model on vasprun.xml: DeePMD-kit's energies and forces (the labels) back."""
    from dpcompress import Potential

    system = _vasprun_arrays(monkeypatch, reader)
    names = np.asarray(system.type_map)[system.atom_types]
    e, f, v = Potential(MODEL).eval(system.coords, system.cells, names)
    assert np.max(np.abs(e[:, 0] - system.energy)) / system.natoms <= 1e-10
    np.testing.assert_allclose(f.reshape(system.force.shape), system.force, rtol=0, atol=1e-9)
    # the label is the symmetric part of DeePMD-kit's virial
    sym = 0.5 * (v.reshape(-1, 3, 3) + v.reshape(-1, 3, 3).transpose(0, 2, 1))
    np.testing.assert_allclose(sym, system.virial, rtol=0, atol=1e-8)
    assert cli_main(["eval", MODEL, VASPRUN]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("frame")]
    assert len(lines) == 3 and all(float(x.split("vs label")[1].split()[0]) < 1e-10 for x in lines)


def _test_numbers(monkeypatch, reader, paths):
    from dpcompress.validation import run_test

    use_reader(monkeypatch, reader)
    result = run_test(MODEL, paths, progress=False)
    monkeypatch.undo()
    return result


def test_dp_test_on_vasprun_outcar_extxyz_same_numbers_both_ways(monkeypatch, tmp_path):
    """`dpcompress test` on the three files: dpdata's and ASE's readings give the same errors, and
    the labels being DeePMD-kit's outputs, energy and force errors at round-off."""
    pytest.importorskip("dpdata", reason="dpdata not installed (pip install 'dpcompress[data]')")
    pytest.importorskip("ase.io", reason="ASE not installed (pip install 'dpcompress[ase]')")
    paths = [VASPRUN, OUTCAR, EXTXYZ]
    a = _test_numbers(monkeypatch, "dpdata", paths)
    b = _test_numbers(monkeypatch, "ase", paths)
    assert [s.name for s in a.systems] == [s.name for s in b.systems] == paths
    for sa, sb in zip(a.systems + [None], b.systems + [None]):
        ea = a.weighted() if sa is None else sa.errors
        eb = b.weighted() if sb is None else sb.errors
        assert set(ea) == set(eb) == {"energy", "energy_per_atom", "force", "virial", "virial_per_atom", "stress"}
        for q in ea:
            # the readers' kB -> eV/Å³ constants differ by 1.2e-10 relative: up to 5e-10 eV on the
            # OUTCAR's virials (~7 eV), 4e-12 on vasprun's; ASE's readings give virial errors of 1e-15
            atol = 1e-9 if q == "virial" else 1e-10
            np.testing.assert_allclose(ea[q][:2], eb[q][:2], rtol=1e-8, atol=atol, err_msg=q)
            assert ea[q][2] == eb[q][2]
        assert ea["energy_per_atom"][1] < 1e-10 and ea["force"][1] < 1e-9
    rc = cli_main(["test", "-m", MODEL, "-s", VASPRUN, "--format", "vasp/xml", "-d", str(tmp_path / "d"),
                   "--no-progress"])
    assert rc == 0
    rows = np.loadtxt(tmp_path / "d.e.out")
    np.testing.assert_allclose(rows[:, 0], a.systems[0].labels["energy"], rtol=0, atol=0)


@pytest.mark.parametrize("reader", ["dpdata", "ase"])
def test_scan_reads_vasprun_as_npy(tmp_path, monkeypatch, reader):
    """The scan of vasprun.xml equals the scan of the same frames written as deepmd/npy."""
    from dpcompress.scan import run_scan
    from test_scan import write_npy

    system = _vasprun_arrays(monkeypatch, reader)
    write_npy(str(tmp_path / "npy"), system.coords, system.cells, system.atom_types)

    def stats(path, **kw):
        d = run_scan([str(path)], rcut=[4.0, 6.0], rcut_smth=0.5, show_progress=False, **kw)
        return {k: v for k, v in d.items() if k not in ("data", "data_format")}

    assert stats(VASPRUN) == stats(tmp_path / "npy")
    assert stats(VASPRUN, fmt="vasp/xml") == stats(tmp_path / "npy")
