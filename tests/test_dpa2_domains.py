"""DPA-2 across domains: the ghost width of message passing, in ``Potential(comm=...)`` and in LAMMPS.

A DPA-2 center's energy depends on its repformer neighbors' states of the previous layer, so on atoms
up to ``ghost_width`` = rcut(repinit) + nlayers x rcut(repformer) away (14 Å for tests/data/deepmd/
dpa2_tiny: 6 + 2 x 4).  A domain evaluates the atoms within ``ghost_width - rcut`` of its centers as
senders (``dpc_frame.nsender``): ``DecomposedEvaluator.senders`` for ``Potential(comm=)``, and
``pair_style dpcompress`` with ghosts' neighbor lists and a communication cutoff of ghost_width +
2 skin in LAMMPS (docs/lammps.md).

Against serial ``Potential.eval`` of the compressed dpa2_tiny on the 192-atom water frame (a 12.44 Å
cube, so messages cross the periodic boundaries as well as the domain boundaries): the shares of 2 and
3 virtual ranks summed, ``Potential(comm=)`` under ``mpiexec -n 2`` and ``-n 3``, and LAMMPS ``run 0``
serial and on 2 ranks, newton on and off, orthorhombic and triclinic.  Tolerances: per-atom energies
1e-10 eV, total energy 1e-10 eV per atom, forces 1e-10 eV/Å, virial 1e-10 eV (global, and per atom for
``Potential(comm=)``; in LAMMPS the per-atom virials' sum: their split depends on which periodic copy of a
sender carries its row).  The results differ only by summation order and, in LAMMPS, by pair vectors
formed from ghost coordinates.

Also, with any model: the sender search against brute force over periodic images; ``nsender``
at the Python boundary (0 and None are the call of every other model, bit for bit; a bad value is
refused with its name); a model that does not pass messages keeps ``nsender`` = 0 and its shares; and
the LAMMPS message path itself (REQ_GHOST lists, the raised communication cutoff, the reordered frame,
the forces' way back) through a test build of the plugin (``DPC_LAMMPS_TEST_SENDERS``: every model takes
that path, with senders within rcut) against ``Potential``.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import DATA, REPO, TINY, mpiexec_or_skip
from dpcompress import Potential, compress, save_model
from dpcompress.evaluators.decomposed import DecomposedEvaluator, combine
from dpcompress.evaluators.runtime import RuntimeEvaluator
from dpcompress.modelfile import model_bytes
from dpcompress.parallel.domain import owners
from lammps_frames import sheared, write_data

DPA2 = os.path.join(DATA, "deepmd", "dpa2_tiny", "frozen.dp")
FRAMES = os.path.join(TINY, "test_frames.npz")


def water(triclinic=False):
    """The 192-atom water frame 0: coords, cell (rows), types, element names."""
    z = np.load(FRAMES)
    coords, cell = z["coord"][0].astype(float), z["box"][0].astype(float)
    if triclinic:
        coords, cell = sheared(coords, cell)
    return coords, cell, z["atype"].astype(np.int64), [str(e) for e in z["type_map"]]


def evaluator(model):
    """A DecomposedEvaluator without communicator (its shares are computed one rank at a time) of a
    compressed model or a .dpc path."""
    if isinstance(model, str):
        with open(model, "rb") as fh:
            return DecomposedEvaluator(RuntimeEvaluator(fh.read(), model), comm=None)
    return DecomposedEvaluator(RuntimeEvaluator(model_bytes(model)), comm=None)


def shares(model, coords, cell, types, size):
    """The shares of ``size`` virtual ranks summed (``DecomposedEvaluator.share``, no MPI)."""
    ev = evaluator(model)
    parts = [ev.share(coords, cell, types, r, size) for r in range(size)]
    return combine(sum(b for b, _ in parts), [w for _, w in parts], len(types))


def assert_close(got, want, natoms):
    """``got``/``want``: (energy, force, virial (9,), atom_energy, atom_virial (n, 9)); the module's bounds."""
    e, f, v, ae, av = want
    assert abs(got[0] - e) <= 1e-10 * natoms
    np.testing.assert_allclose(got[1], f, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.ravel(got[2]), np.ravel(v), rtol=0, atol=1e-10)
    if got[3] is not None:
        np.testing.assert_allclose(np.ravel(got[3]), np.ravel(ae), rtol=0, atol=1e-10)
    if got[4] is not None:
        np.testing.assert_allclose(np.reshape(got[4], (-1, 9)), np.reshape(av, (-1, 9)), rtol=0, atol=1e-10)


def serial(model, coords, cell, types):
    e, f, v, ae, av = Potential(model, n_threads=1).eval(coords[None], None if cell is None else cell.reshape(1, 9),
                                                         types, atomic=True)
    return float(e[0, 0]), f[0], v[0], ae[0].ravel(), av[0].reshape(-1, 9)


# --- the sender search and the Python boundary, with any model ---------------------------------------------


@pytest.fixture(scope="module")
def se_e2_a():
    return compress(os.path.join(TINY, "frozen.dp"))


def brute_senders(coords, cell, mine, width):
    """Atoms not in ``mine`` with a periodic image (shifts -1..1: width < every face distance) within
    ``width`` of an atom of ``mine``."""
    shifts = np.array([[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]) @ cell
    others = np.setdiff1d(np.arange(len(coords)), mine)
    d = coords[others][:, None, None, :] + shifts[None, :, None, :] - coords[mine][None, None, :, :]
    near = (np.linalg.norm(d, axis=-1) <= width).any(axis=(1, 2))
    return others[near]


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("width", [3.0, 8.0])
def test_senders_are_the_atoms_within_the_width_of_a_center(se_e2_a, size, width):
    """``DecomposedEvaluator.senders``: every atom with an image within ``width`` of a center, and none
    beyond it by more than the cell list's margin (1e-6 Å here)."""
    coords, cell, types, _ = water(triclinic=True)
    ev = evaluator(se_e2_a)
    ev.sender_width = width
    for rank in range(size):
        mine = np.flatnonzero(owners(coords, cell, size) == rank)
        got = ev.senders(coords, cell, mine)
        assert np.all(np.diff(got) > 0) and not np.isin(got, mine).any()
        assert np.isin(brute_senders(coords, cell, mine, width), got).all()
        assert np.isin(got, brute_senders(coords, cell, mine, width + 1e-6)).all()


def test_a_model_without_messages_has_no_senders(se_e2_a):
    """se_e2_a: ghost_width = rcut, no message passing, so ``nsender`` stays unset (0) and the shares are
    the serial per-atom energies bit for bit (as before message passing existed)."""
    runtime = RuntimeEvaluator(model_bytes(se_e2_a))
    assert not runtime.runtime.passes_messages and runtime.runtime.ghost_width == runtime.rcut
    ev = DecomposedEvaluator(runtime, comm=None)
    assert not ev.passes_messages and ev.sender_width == 0.0
    coords, cell, types, _ = water(triclinic=True)
    r = shares(se_e2_a, coords, cell, types, 3)
    np.testing.assert_array_equal(r.atom_energy.ravel(), serial(se_e2_a, coords, cell, types)[3])


def test_nsender_at_the_python_boundary(se_e2_a):
    """``runtime.compute(nsender=)``: None and 0 are the same call (bitwise); a value outside
    [nlocal, natoms] and rows that do not cover the senders are refused, naming them."""
    from dpcompress._ext import runtime as rt
    from dpcompress.neighbors import find_candidates

    ev = RuntimeEvaluator(model_bytes(se_e2_a))
    coords, cell, types, _ = water()
    cand = find_candidates(coords, cell, ev.rcut, n_centers=100)
    t = types.astype(np.int32)
    outs = [ev.compute(cand, t, 1, nlocal=100, nsender=n) for n in (None, 0)]
    for a, b in zip(outs[0][:3], outs[1][:3]):
        np.testing.assert_array_equal(a, b)
    base = dict(force=np.zeros((192, 3)), **cand.frame_arrays())
    with pytest.raises(ValueError, match="nsender must be 0 or lie in"):
        rt.compute(ev.runtime, rt.Workspace(), cand.x, t, 100, nsender=50, **base)
    with pytest.raises(ValueError, match="offsets: expected"):
        rt.compute(ev.runtime, rt.Workspace(), cand.x, t, 100, nsender=120, **base)


# --- DPA-2 (the runtime's frame path) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def dpa2(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("dpa2_domains") / "dpa2.dpc")
    save_model(compress(DPA2), path)
    return path


def test_the_frame_crosses_periodic_and_domain_boundaries(dpa2):
    """The test geometry does what the module claims: ghost_width exceeds the cell (messages reach
    periodic images) and every rank of 2 and 3 has senders owned by another rank."""
    coords, cell, types, _ = water()
    ev = evaluator(dpa2)
    assert ev.passes_messages and ev.runtime.runtime.ghost_width == pytest.approx(14.0)
    assert ev.runtime.runtime.ghost_width > cell[0, 0] and ev.sender_width == pytest.approx(8.0)
    for size in (2, 3):
        own = owners(coords, cell, size)
        for rank in range(size):
            assert len(ev.senders(coords, cell, np.flatnonzero(own == rank))) > 0


@pytest.mark.parametrize("triclinic", [False, True], ids=["ortho", "triclinic"])
@pytest.mark.parametrize("size", [2, 3])
def test_decomposed_shares_equal_serial(dpa2, size, triclinic):
    coords, cell, types, _ = water(triclinic)
    r = shares(dpa2, coords, cell, types, size)
    assert_close((r.energy, r.force, r.virial, r.atom_energy, r.atom_virial), serial(dpa2, coords, cell, types),
                 len(types))


MPI_SCRIPT = """
import sys, numpy as np
from mpi4py import MPI
sys.path.insert(0, {tests!r})
from test_dpa2_domains import water
from dpcompress import Potential
comm = MPI.COMM_WORLD
out = {{}}
for name, tri in (("ortho", False), ("triclinic", True)):
    c, cell, t, _ = water(tri)
    e, f, v, ae, av = Potential({model!r}, comm=comm, n_threads=1).eval(c[None], cell.reshape(1, 9), t, atomic=True)
    out[name] = np.concatenate([e.ravel(), f.ravel(), v.ravel(), ae.ravel(), av.ravel()])
if comm.rank == 0:
    np.savez(sys.argv[1], **out)
"""


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_potential_comm_under_mpiexec_equals_serial(dpa2, tmp_path, ranks):
    mpiexec = mpiexec_or_skip()
    script = tmp_path / "run.py"
    script.write_text(MPI_SCRIPT.format(tests=os.path.join(REPO, "tests"), model=dpa2))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    out = tmp_path / "out.npz"
    proc = subprocess.run([mpiexec, "-n", str(ranks), sys.executable, "-m", "mpi4py", str(script), str(out)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(out)
    for name, tri in (("ortho", False), ("triclinic", True)):
        coords, cell, types, _ = water(tri)
        n = len(types)
        flat = got[name]
        parts = np.split(flat, np.cumsum([1, 3 * n, 9, n]))
        assert_close((parts[0][0], parts[1].reshape(n, 3), parts[2], parts[3], parts[4].reshape(n, 9)),
                     serial(dpa2, coords, cell, types), n)


# --- LAMMPS ------------------------------------------------------------------------------------------------


def lammps_cases(model, tmp, boxes=("ortho", "triclinic")):
    """The LAMMPS cases (newton on and off) of ``model`` on the water frame, and the expected outputs."""
    cases, expected = {}, {}
    for box in boxes:
        coords, cell, types, elements = water(box == "triclinic")
        data = os.path.join(tmp, f"water_{box}.data")
        write_data(data, coords, types, elements, cell)
        expected[box] = serial(model, coords, cell, types)
        for newton in ("on", "off"):
            cases[f"{box}/{newton}"] = dict(data=data, newton=newton, boundary="p p p",
                                            pair=[f"pair_style dpcompress {model}",
                                                  "pair_coeff * * " + " ".join(elements)])
    return cases, expected


def assert_lammps_equals(out, want, natoms, atom_virial=True):
    """LAMMPS's outputs against Potential's ``want``.  ``atom_virial`` False: the per-atom virials are
    checked by their sum (the global virial) only (see :func:`test_lammps_dpa2_run0_equals_potential`)."""
    assert "error" not in out, out.get("error")
    e, f, v, ae, av = want
    W = np.array(out["pressure"]) * out["volume"] / out["nktv2p"]  # (xx, yy, zz, xy, xz, yz)
    V = np.reshape(v, (3, 3))
    centroid = -np.array(out["centroid_stress_atom"]) / out["nktv2p"]  # (xx, yy, zz, xy, xz, yz, yx, zx, zy)
    assert abs(out["energy"] - e) <= 1e-10 * natoms
    np.testing.assert_allclose(np.array(out["force"]), f, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.array(out["atom_energy"]), ae, rtol=0, atol=1e-10)
    np.testing.assert_allclose(W, [V[0, 0], V[1, 1], V[2, 2], V[0, 1], V[0, 2], V[1, 2]], rtol=0, atol=1e-10)
    full = V.ravel()[[0, 4, 8, 1, 2, 5, 3, 6, 7]]
    np.testing.assert_allclose(centroid.sum(axis=0), full, rtol=0, atol=1e-10 * natoms)
    if atom_virial:
        np.testing.assert_allclose(centroid, np.reshape(av, (-1, 9))[:, [0, 4, 8, 1, 2, 5, 3, 6, 7]], rtol=0,
                                   atol=1e-10)


@pytest.fixture(scope="module")
def test_build_plugin(tmp_path_factory):
    """A plugin built with ``DPC_LAMMPS_TEST_SENDERS`` (every model on the message-passing path)."""
    from test_lammps import _require_lammps

    _require_lammps()
    from dpcompress.lammps.build import build

    folder = str(tmp_path_factory.mktemp("plugin_senders"))
    build(folder, defines=["DPC_LAMMPS_TEST_SENDERS"])
    return folder


@pytest.mark.lammps
def test_lammps_message_path_equals_potential(se_e2_a, test_build_plugin, tmp_path):
    """The message path of the pair style with se_e2_a (senders within rcut; the runtime gets nsender = 0,
    the model passing no messages): ghosts' lists, the raised communication cutoff (2 rcut + 2 skin > the
    12.44 Å cell), the reordered frame and the forces' way back to LAMMPS's order and to the owners, serial
    and on 2 ranks, newton on and off, orthorhombic and triclinic: equal to Potential."""
    from test_lammps import _run_check

    model = str(tmp_path / "se_e2_a.dpc")
    save_model(se_e2_a, model)
    cases, expected = lammps_cases(model, str(tmp_path))
    multi = dict(cases["ortho/on"], pair=["neighbor 2.0 multi", "comm_modify mode multi"] + cases["ortho/on"]["pair"])
    for ranks in (1, 2):
        got = _run_check(dict(cases, multi=multi) if ranks == 1 else cases, str(tmp_path), test_build_plugin, ranks)
        for name, out in got.items():
            if name == "multi":  # message passing needs one communication cutoff
                assert "comm_modify mode single" in out.get("error", ""), out
                continue
            assert_lammps_equals(out, expected[name.split("/")[0]], 192)


@pytest.mark.lammps
def test_lammps_dpa2_run0_equals_potential(dpa2, tmp_path):
    """``pair_style dpcompress`` with the compressed dpa2_tiny: ``run 0`` serial and under ``mpiexec -n 2``,
    newton on and off, orthorhombic and triclinic, equals serial Potential: energy, per-atom energies,
    forces, global virial, and the per-atom virials' sum.

    Not the per-atom virials one by one: the runtime's split of the message-passing term among atoms
    depends on where each sender's row sits (W_k += G x_k for the row's atom k), and LAMMPS evaluates a
    sender that is a periodic image at the image's place, where Potential evaluates the atom of the frame
    (:func:`test_dpa2_atom_virial_depends_on_the_copy` shows it within Potential itself)."""
    from test_lammps import _require_lammps, _run_check

    _require_lammps()
    from dpcompress.lammps import ensure_plugin

    plugin = ensure_plugin(quiet=True)
    cases, expected = lammps_cases(dpa2, str(tmp_path))
    for ranks in (1, 2):
        got = _run_check(cases, str(tmp_path), plugin, ranks)
        for name, out in got.items():
            assert_lammps_equals(out, expected[name.split("/")[0]], 192, atom_virial=False)


def test_dpa2_atom_virial_depends_on_the_copy(dpa2):
    """Why the LAMMPS test leaves the per-atom virials of DPA-2 out: moving one atom of the frame by a cell
    vector (the same periodic system) keeps Potential's energy, forces and virial, and the per-atom
    virials' sum, but changes how the virial is split among the atoms (se_e2_a's split does not change)."""
    coords, cell, types, _ = water()
    moved = coords.copy()
    moved[5] += cell[0]
    a, b = serial(dpa2, coords, cell, types), serial(dpa2, moved, cell, types)
    assert_close(b[:4] + (None,), a, len(types))
    np.testing.assert_allclose(b[4].sum(axis=0), a[4].sum(axis=0), rtol=0, atol=1e-10 * len(types))
    assert np.abs(b[4] - a[4]).max() > 1e-3


def test_lammps_dpa2_md_across_reneighborings(dpa2, tmp_path):
    """Twelve NVE steps at 600 K with a 0.3 Å skin (LAMMPS reneighbors every few steps; the senders and the
    ghosts' lists are only as fresh as the last reneighboring, the case the ghost width + 2 skin
    communication cutoff is for), serial and on 2 ranks: the last step's energy, per-atom energies and
    forces equal Potential's on LAMMPS's final positions."""
    from test_lammps import _require_lammps, _run_check

    _require_lammps()
    from dpcompress.lammps import ensure_plugin

    plugin = ensure_plugin(quiet=True)
    cases, _ = lammps_cases(dpa2, str(tmp_path), boxes=("triclinic",))
    case = dict(cases["triclinic/on"], positions=True,
                run=["velocity all create 600.0 4928 loop geom", "neighbor 0.3 bin",
                     "neigh_modify every 1 delay 0 check yes", "timestep 0.0005", "fix nve all nve", "run 12"])
    _, cell, types, _ = water(triclinic=True)
    for ranks in (1, 2):
        out = _run_check({"md": case}, str(tmp_path), plugin, ranks)["md"]
        assert "error" not in out, out.get("error")
        e, f, _, ae, _ = serial(dpa2, np.array(out["positions"]), cell, types)
        assert abs(out["energy"] - e) <= 1e-10 * len(types)
        np.testing.assert_allclose(np.array(out["force"]), f, rtol=0, atol=1e-10)
        np.testing.assert_allclose(np.array(out["atom_energy"]), ae, rtol=0, atol=1e-10)
