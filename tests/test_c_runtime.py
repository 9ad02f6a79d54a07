"""The model runtime from C alone: ``tests/c/runtime_frame.c`` against ``Potential.eval``.

The program is compiled here with the system C compiler, together with the runtime's sources
(no Python inside it, its own reference dgemm).  Every model (each tiny DeePMD-kit fixture
compressed, NEP models analytic and tabulated) computes one frame handed over two ways:

* ``ghost``: as LAMMPS hands it: wrapped local atoms, the periodic images near the cell as
  explicit ghost atoms (no cell), a full candidate list with skin and LAMMPS's special bits set on
  some indices; the ghosts' forces are folded onto their owners here;
* ``image``: the :func:`dpcompress.neighbors.find_candidates` frame that ``Potential`` uses (cell,
  lattice shifts, images).

Energy per atom, atom energies, forces and virial per atom must equal ``Potential.eval`` to 1e-12
(absolute); a repeated call on the same workspace and a 2-thread call must give the same bytes
(vacuous for the threads when the compiler has no OpenMP).
"""

import itertools
import os
import shutil
import subprocess
import sysconfig

import numpy as np
import pytest

import dpcompress
from dpcompress.modelfile import model_bytes
from dpcompress.neighbors import find_candidates
from dpcompress.nep import read_nep

from conftest import DATA, REPO

SRC_C = os.path.join(REPO, "src_c")
with open(os.path.join(SRC_C, "runtime_sources.txt")) as _fh:  # the runtime's C files, as setup.py reads them
    RUNTIME = [ln.strip() for ln in _fh if ln.strip() and not ln.startswith("#")]
DP_FIXTURES = ["se_e2_a_tiny", "se_e2_r_tiny", "se_e3_tiny", "se_atten_v2_tiny", "hybrid_tiny"]
# (model, structure): a ZBL model in a close contact, and a triclinic 2-atom cell smaller than rcut
NEP_CASES = [("BaTiO3_NEP4_zbl", "zbl_close_contact_40"), ("Si_2022_NEP4_5body", "crystal_prim2")]
TOL = 1e-12
SKIN = 1.0  # the candidates reach rcut + SKIN, as a LAMMPS list with skin does
NEIGHMASK = 0x1FFFFFFF  # LAMMPS's NEIGHMASK: the two top bits mark special neighbors


def _compiler():
    """The system C compiler as an argument list, or None."""
    for cc in (sysconfig.get_config_var("CC"), "cc"):
        if cc and shutil.which(cc.split()[0]):
            return cc.split()
    return None


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    """Path of the compiled ``runtime_frame`` (OpenMP when the compiler has it)."""
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler found (sysconfig CC or cc)")
    exe = str(tmp_path_factory.mktemp("c_runtime") / "runtime_frame")
    sources = [os.path.join(REPO, "tests", "c", "runtime_frame.c")] + [os.path.join(SRC_C, f) for f in RUNTIME]
    # the math flags of the extension's build (setup.py), so both compile the same arithmetic
    base = cc + ["-O2", "-std=c99", "-fno-math-errno", "-ffp-contract=fast", "-I", SRC_C] + sources + ["-o", exe, "-lm"]
    run = subprocess.run(base[:1] + ["-fopenmp"] + base[1:], capture_output=True, text=True)
    if run.returncode != 0:
        run = subprocess.run(base, capture_output=True, text=True)
    assert run.returncode == 0, f"compiling runtime_frame failed:\n{run.stderr}"
    return exe


def write_frame(path, x, types, offsets, index, *, tag=None, cell=None, lattice=None, image_owner=None,
                image_lattice=None, neighmask=0):
    """Write a frame in the binary layout ``tests/c/runtime_frame.c`` documents."""
    natoms, nimage = len(x), 0 if image_owner is None else len(image_owner)
    head = [natoms, len(offsets) - 1, nimage, len(index), neighmask, tag is not None, cell is not None,
            lattice is not None]
    parts = [(head, np.int64), (x, np.float64), (types, np.int32), (tag, np.int64), (cell, np.float64),
             (lattice, np.int32), (image_owner, np.int32), (image_lattice, np.int32), (offsets, np.int64),
             (index, np.int32)]
    with open(path, "wb") as fh:
        fh.write(b"DPCFRAME")
        for a, dtype in parts:
            if a is not None:
                fh.write(np.ascontiguousarray(a, dtype=dtype).tobytes())


def run_program(program, model_path, frame_path, natoms, nlocal, n_threads=1, n_calls=1):
    """Run the program; returns its records (list of dicts) and the workspace bytes after each call."""
    out = frame_path + f".out{n_threads}"
    run = subprocess.run([program, model_path, frame_path, out, str(n_threads), str(n_calls)],
                         capture_output=True, text=True)
    assert run.returncode == 0, f"runtime_frame failed ({run.returncode}): {run.stderr}"
    ws = [int(line.split()[3]) for line in run.stdout.splitlines()]
    raw = np.fromfile(out, dtype=np.float64).reshape(n_calls, -1)
    records = []
    for r in raw:
        e, v, ae, f, av = np.split(r, np.cumsum([1, 9, nlocal, 3 * natoms]))
        records.append(dict(energy=e[0], virial=v, atom_energy=ae, force=f.reshape(natoms, 3),
                            atom_virial=av.reshape(natoms, 9), raw=r.tobytes()))
    return records, ws


def ghost_frame(coords, cell, types, rcut):
    """A LAMMPS-style frame: wrapped locals, explicit ghosts within rcut + SKIN of the cell.

    A ghost is kept when its fractional coordinates lie within (rcut + SKIN) / h_c of the cell
    along every axis (h_c: plane spacing), LAMMPS's rule for triclinic boxes.

    Returns
    -------
    x, types, tag, owner, offsets, index
        ``owner[g]`` is the local atom that ghost ``len(coords) + g`` images; ``tag`` is the owner's index,
        as LAMMPS's tags are, so that distance ties order as in the image frame.
    """
    n = len(coords)
    frac = coords @ np.linalg.inv(cell)
    wrap = np.floor(frac)
    frac -= wrap
    # x - n L, as LAMMPS's remap: exact for these float32-born frames, so every pair vector equals
    # the image frame's; wrapping through frac @ cell moves them by an ulp, and se_e3's forces
    # (up to 113 eV/A) by 1.2e-12
    local = coords - wrap @ cell
    cut = rcut + SKIN
    h = abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(np.roll(cell, -1, 0), np.roll(cell, -2, 0)), axis=1)
    reach = np.ceil(cut / h).astype(int)
    gx, owner = [], []
    for s in itertools.product(*(range(-r, r + 1) for r in reach)):
        if s == (0, 0, 0):
            continue
        f = frac + np.array(s)
        keep = np.all((f >= -cut / h) & (f < 1 + cut / h), axis=1)
        gx.append(local[keep] + np.array(s, dtype=float) @ cell)
        owner.append(np.nonzero(keep)[0])
    owner = np.concatenate(owner)
    x = np.concatenate([local] + gx)
    d2 = ((x[None, :, :] - local[:, None, :]) ** 2).sum(-1)
    d2[np.arange(n), np.arange(n)] = np.inf
    near = d2 < cut * cut
    offsets = np.concatenate([[0], np.cumsum(near.sum(1))])
    index = np.nonzero(near)[1].astype(np.int32)
    index[1::2] |= 1 << 30  # a special bit that neighmask must drop
    tag = np.concatenate([np.arange(n), owner])
    return x, np.concatenate([types, types[owner]]), tag, owner, offsets, index


def _dp_case(name):
    """(.dpc bytes, coords, cell, types) of a compressed DeePMD-kit fixture and its first frame."""
    frames = np.load(os.path.join(DATA, "deepmd", name, "test_frames.npz"))
    model = dpcompress.compress(os.path.join(DATA, "deepmd", name, "frozen.dp"))
    return model_bytes(model), frames["coord"][0].astype(np.float64), frames["box"][0].astype(np.float64), \
        frames["atype"].astype(np.int32)


def _nep_case(name, structure, tabulated):
    """(.dpc bytes, coords, cell, types) of a NEP model (analytic or tabulated) and a structure."""
    path = os.path.join(DATA, "nep", name, "nep.txt")
    s = np.load(os.path.join(DATA, "nep", name, structure + ".npz"))
    assert s["pbc"].all()
    model = dpcompress.compress_nep(path) if tabulated else read_nep(path)
    return model_bytes(model), s["positions"], s["cell"], s["type_index"].astype(np.int32)


CASES = [pytest.param(_dp_case, (n,), id=n) for n in DP_FIXTURES] + [
    pytest.param(_nep_case, (m, s, tab), id=f"nep-{m}-{'tab' if tab else 'analytic'}")
    for m, s in NEP_CASES for tab in (False, True)]


@pytest.mark.parametrize("make, args", CASES)
def test_c_program_matches_potential(program, tmp_path, make, args):
    data, coords, cell, types = make(*args)
    model_path = str(tmp_path / "model.dpc")
    with open(model_path, "wb") as fh:
        fh.write(data)
    pot = dpcompress.Potential(model_path, n_threads=1)
    e_ref, f_ref, v_ref, ae_ref, _ = pot.eval(coords[None], cell.reshape(1, 9), types, atomic=True)
    n = len(coords)

    # (a) LAMMPS style: explicit ghosts, no cell; ghost forces folded onto their owners
    x, gtypes, tag, owner, offsets, index = ghost_frame(coords, cell, types, pot.get_rcut())
    ghost_path = str(tmp_path / "ghost.bin")
    write_frame(ghost_path, x, gtypes, offsets, index, tag=tag, neighmask=NEIGHMASK)
    # (b) the images of find_candidates, as Potential builds its frame
    c = find_candidates(coords, cell, pot.get_rcut())
    image_path = str(tmp_path / "image.bin")
    write_frame(image_path, c.x, types, c.offsets, c.index, cell=c.cell, lattice=c.lattice,
                image_owner=c.image_owner, image_lattice=c.image_lattice)

    for style, path, natoms in (("ghost", ghost_path, len(x)), ("image", image_path, n)):
        records, ws = run_program(program, model_path, path, natoms, n, n_threads=1, n_calls=2)
        two, _ = run_program(program, model_path, path, natoms, n, n_threads=2)
        assert records[1]["raw"] == records[0]["raw"], f"{style}: the repeated call differs"
        assert ws[1] == ws[0], f"{style}: the workspace grew on the repeated call ({ws})"
        assert two[0]["raw"] == records[0]["raw"], f"{style}: 2 threads differ from 1"
        r = records[0]
        force = r["force"][:n].copy()
        if style == "ghost":
            np.add.at(force, owner, r["force"][n:])
        de = abs(r["energy"] - e_ref[0, 0]) / n
        df = np.abs(force - f_ref[0]).max()
        dae = np.abs(r["atom_energy"] - ae_ref[0, :, 0]).max()
        dv = np.abs(r["virial"] - v_ref[0]).max() / n
        print(f"{style}: |dE|/atom {de:.2e}  max|dF| {df:.2e}  max|de_i| {dae:.2e}  max|dW|/atom {dv:.2e}")
        assert max(de, df, dae, dv) <= TOL, f"{style}: dE/atom {de:.3g}, dF {df:.3g}, de_i {dae:.3g}, dW/atom {dv:.3g}"


def test_c_program_reports_errors(program, tmp_path):
    """A frame the runtime refuses: exit status 1 and the runtime's message on stderr."""
    data, coords, cell, types = _nep_case(*NEP_CASES[1], False)
    model_path, frame_path = str(tmp_path / "model.dpc"), str(tmp_path / "bad.bin")
    with open(model_path, "wb") as fh:
        fh.write(data)
    write_frame(frame_path, coords, np.full(len(coords), 7), np.array([0, 1, 1]), np.array([1]))
    run = subprocess.run([program, model_path, frame_path, frame_path + ".out"], capture_output=True, text=True)
    assert run.returncode == 1
    assert "dpc_compute" in run.stderr and "type 7" in run.stderr
