"""The compressed DPA-2 in the C runtime (part kind 7, ``src_c/dpc_dpa2_frame.c``; issue 16).

References: DeePMD-kit 3.2.0's compressed and uncompressed models' ``DeepPot.eval`` on two periodic water
frames of 192 atoms (``tests/data/deepmd/dpa2_tiny``, README there); the numpy twin of the compressed model
(the exact frame evaluator, :mod:`dpcompress.evaluators.exact.dpa2`, on the tabulated descriptor); central
finite differences of the runtime's own energy.
"""

import os

import numpy as np
import pytest

from conftest import DATA, water_frames

import dpcompress
from dpcompress import Potential
from dpcompress.evaluators.exact import dpa2 as exact_dpa2
from dpcompress.modelfile import load_model, model_bytes, save_model

pytest.importorskip("dpcompress._ext.runtime")

FIXTURE = os.path.join(DATA, "deepmd", "dpa2_tiny")
MODEL = os.path.join(FIXTURE, "frozen.dp")
#: DeePMD-kit's tolerances of the issue (per atom for the energy)
TOL = dict(energy_per_atom=1e-10, force=1e-9, virial=1e-9, atom_energy=1e-10, atom_virial=1e-9)


@pytest.fixture(scope="module")
def compressed():
    """DeePMD-kit's dp compress defaults (step 0.01, extrapolate 5, quintic)."""
    return dpcompress.compress(MODEL, n_threads=1)


@pytest.fixture(scope="module")
def dpc(compressed, tmp_path_factory):
    path = tmp_path_factory.mktemp("dpa2") / "dpa2.dpc"
    save_model(compressed, path)
    return str(path)


@pytest.fixture(scope="module")
def frames():
    coords, cells, types = water_frames()
    return coords[:2], cells[:2], types


@pytest.fixture(scope="module")
def ours(dpc, frames):
    coords, cells, types = frames
    return Potential(dpc, n_threads=1).eval(coords, cells, types, atomic=True)


def _check(out, ref, n, tol):
    e, f, v, ae, av = out
    assert np.abs(e[:, 0] - ref["energy"]).max() / n <= tol["energy_per_atom"]
    assert np.abs(f - ref["force"]).max() <= tol["force"]
    assert np.abs(v - ref["virial"].reshape(-1, 9)).max() <= tol["virial"]
    assert np.abs(ae[..., 0] - ref["atom_energy"]).max() <= tol["atom_energy"]
    assert np.abs(av - ref["atom_virial"].reshape(len(e), n, 9)).max() <= tol["atom_virial"]


def test_matches_deepmd_compressed(ours, frames):
    """Energy, forces, virial, atomic energies and virials of DeePMD-kit's compressed model, to the issue's
    tolerances (measured: E 3.6e-12 eV of 192 atoms, F 4.5e-15 eV/Å, V 1.3e-14 eV, e_i 2.8e-14, W_i 1.9e-14)."""
    with np.load(os.path.join(FIXTURE, "ref_compressed_pth.npz"), allow_pickle=False) as ref:
        _check(ours, ref, len(frames[2]), TOL)


def test_matches_deepmd_uncompressed_as_its_own_compressed_does(ours, frames):
    """Against DeePMD-kit's uncompressed model: within its own compressed-vs-uncompressed difference
    (errors.json: F 4.1e-15 eV/Å) plus round-off, 1e-13."""
    import json

    with open(os.path.join(FIXTURE, "errors.json")) as fh:
        theirs = json.load(fh)["max_abs_compressed_minus_uncompressed"]
    with np.load(os.path.join(FIXTURE, "ref_uncompressed_pth.npz"), allow_pickle=False) as ref:
        assert np.abs(ours[1] - ref["force"]).max() <= theirs["force"] + 1e-13
        _check(ours, ref, len(frames[2]), TOL)


def test_runtime_equals_its_numpy_twin(compressed, ours, frames):
    """The C frame path = the exact frame evaluator on the same tabulated descriptor (1e-12; measured ~1e-14)."""
    coords, cells, types = frames
    for k in range(2):
        twin = exact_dpa2.evaluate_frame(compressed, coords[k], cells[k], types)
        assert abs(ours[0][k, 0] - twin.energy) < 1e-10
        np.testing.assert_allclose(ours[1][k], twin.force, rtol=0, atol=1e-12)
        np.testing.assert_allclose(ours[2][k].reshape(3, 3), twin.virial, rtol=0, atol=1e-11)
        np.testing.assert_allclose(ours[4][k].reshape(-1, 3, 3), twin.atom_virial, rtol=0, atol=1e-12)


def test_any_thread_count_gives_the_same_bits(dpc, ours, frames):
    coords, cells, types = frames
    for nt in (2, 3):
        other = Potential(dpc, n_threads=nt).eval(coords, cells, types, atomic=True)
        for a, b in zip(ours, other):
            np.testing.assert_array_equal(a, b)


def test_read_back_file_and_memory_model_agree(compressed, dpc, ours, frames):
    """The .dpc on disk and the model in memory give the same bits (one file serves every front end)."""
    coords, cells, types = frames
    again = Potential(compressed, n_threads=1).eval(coords, cells, types, atomic=True)
    for a, b in zip(ours, again):
        np.testing.assert_array_equal(a, b)
    assert load_model(dpc).descriptor.is_compressed


def _small_cell(frames):
    """A 6 Å cell of 21 water-like atoms cut from frame 0: messages cross periodic images (6 < 2 x 4 Å)."""
    coords, cells, types = frames
    keep = np.all((coords[0] >= 0) & (coords[0] < 6.0), axis=1)
    return coords[0][keep], np.eye(3) * 6.0, types[keep]


def test_forces_and_virial_match_finite_differences_in_a_small_cell(dpc, frames):
    """Central differences (h 1e-5 Å) of the runtime's own energy: forces to 1e-6 eV/Å; the virial from
    a strain of the cell and the atoms, W = -dE/dε, to 1e-6 eV."""
    c, cell, t = _small_cell(frames)
    pot = Potential(dpc, n_threads=1)
    e0, f0, v0 = pot.eval(c[None], cell[None], t)[:3]
    h = 1e-5
    rng = np.random.default_rng(3)
    for i in rng.choice(len(t), 4, replace=False):
        for d in range(3):
            cp, cm = c.copy(), c.copy()
            cp[i, d] += h
            cm[i, d] -= h
            fd = -(pot.eval(cp[None], cell[None], t)[0][0, 0] - pot.eval(cm[None], cell[None], t)[0][0, 0]) / (2 * h)
            assert abs(fd - f0[0, i, d]) < 1e-6
    W = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            eps = np.zeros((3, 3))
            eps[a, b] = h
            ep = pot.eval((c @ (np.eye(3) + eps))[None], (cell @ (np.eye(3) + eps))[None], t)[0][0, 0]
            em = pot.eval((c @ (np.eye(3) - eps))[None], (cell @ (np.eye(3) - eps))[None], t)[0][0, 0]
            W[a, b] = -(ep - em) / (2 * h)
    np.testing.assert_allclose(v0[0].reshape(3, 3), W, rtol=0, atol=1e-6)


def test_small_cell_equals_its_supercell(dpc, frames):
    """The 6 Å cell and its 2x1x1 supercell: energy per atom and forces equal (1e-10): images are handled as
    the atoms they copy."""
    c, cell, t = _small_cell(frames)
    pot = Potential(dpc, n_threads=2)
    e1, f1 = pot.eval(c[None], cell[None], t)[:2]
    c2 = np.concatenate([c, c + cell[0]])
    cell2 = cell.copy()
    cell2[0] *= 2
    e2, f2 = pot.eval(c2[None], cell2[None], np.concatenate([t, t]))[:2]
    assert abs(e2[0, 0] - 2 * e1[0, 0]) < 1e-10
    np.testing.assert_allclose(f2[0, : len(t)], f1[0], rtol=0, atol=1e-10)


def test_descriptor_is_g1_and_the_type_embedding(dpc, compressed, frames):
    """eval_descriptor: [g1, E_t] of the last layer = the twin's (1e-12)."""
    coords, cells, types = frames
    D = Potential(dpc).eval_descriptor(coords[:1], cells[:1], types)
    twin = exact_dpa2.descriptors(compressed, coords[0], cells[0], types)
    np.testing.assert_allclose(D[0], twin, rtol=0, atol=1e-12)


def test_overflow_of_the_repformer_slots_is_reported(frames, tmp_path):
    """A repformer nsel too small for the frame: the runtime counts the dropped neighbors (as DeePMD-kit cuts
    them) and Potential warns, naming the atom."""
    from dpcompress.models.serialized_tree import load_tree
    from dpcompress.models.deepmd_reader import model_from_tree

    tree = load_tree(MODEL)
    tree["model"]["descriptor"]["repformer_args"]["nsel"] = 8
    for k in ("repformers_variable",):
        v = tree["model"]["descriptor"][k]["@variables"]
        for name in ("davg", "dstd"):
            v[name] = np.ascontiguousarray(v[name][:, :8])
    small = dpcompress.compress(model_from_tree(tree, source="small.dp"), n_threads=1)
    coords, cells, types = frames
    twin = exact_dpa2.evaluate_frame(small, coords[0], cells[0], types)
    pot = Potential(small)
    with pytest.warns(dpcompress.NeighborOverflowWarning, match=r"neighbors inside rcut were dropped .*dpa2 repformer rcut=4.0 Å nsel=8"):
        f = pot.eval(coords[:1], cells[:1], types)[1]
    assert pot.last_overflow == twin.overflow.total > 0
    np.testing.assert_allclose(f[0], twin.force, rtol=0, atol=1e-12)


def test_ase_calculator_and_dpcompress_test(dpc, frames, tmp_path):
    """The ASE calculator on the .dpc: DeePMD-kit's compressed energy and forces (1e-9); `dpcompress test`
    runs on it (exit 0)."""
    ase = pytest.importorskip("ase")
    from dpcompress.calculators.ase_calculator import DPCompressCalculator
    from dpcompress.cli import main

    coords, cells, types = frames
    atoms = ase.Atoms([("O", "H")[t] for t in types], positions=coords[0], cell=cells[0], pbc=True)
    atoms.calc = DPCompressCalculator(dpc)
    with np.load(os.path.join(FIXTURE, "ref_compressed_pth.npz"), allow_pickle=False) as ref:
        assert abs(atoms.get_potential_energy() - ref["energy"][0]) < 1e-9
        np.testing.assert_allclose(atoms.get_forces(), ref["force"][0], rtol=0, atol=1e-9)
    system = os.path.join(DATA, "dp_test", "systems", "water_pbc")
    assert main(["test", "-m", dpc, "-s", system, "-n", "1", "--no-progress"]) in (0, None)


def test_cli_compress_writes_a_model_the_runtime_reads(tmp_path):
    from dpcompress.cli import main

    out = tmp_path / "x.dpc"
    assert main(["compress", "-i", MODEL, "-o", str(out)]) in (0, None)
    assert Potential(str(out)).model.descriptor.is_compressed
    assert model_bytes(load_model(str(out)))


def test_gpu_path_refuses_with_the_name(compressed):
    """The CUDA kernels have no repformer layers: device="gpu" names DPA-2 before any device is touched."""
    from dpcompress.core.errors import UnsupportedModelError
    from dpcompress.evaluators.gpu import GpuEvaluator

    with pytest.raises(UnsupportedModelError, match=r"DPA-2 \(repformer layers\) runs on the CPU only"):
        GpuEvaluator(compressed, "gpu")


def test_ipi_adapter_gives_the_potential_in_ipi_units(dpc, frames):
    """The i-PI front end (IPIAdapter, atomic units, transposed cell) is the same runtime: energy and forces
    equal Potential's, converted (1e-12 relative)."""
    from dpcompress.ipi import BOHR_PER_ANGSTROM, HARTREE_PER_EV, IPIAdapter

    coords, cells, types = frames
    pot = Potential(dpc)
    e, f = pot.eval(coords[:1], cells[:1], types)[:2]
    adapter = IPIAdapter(pot, [("O", "H")[t] for t in types])
    e_ipi, f_ipi = adapter(cells[0].T * BOHR_PER_ANGSTROM, coords[0] * BOHR_PER_ANGSTROM)[:2]
    assert abs(e_ipi - e[0, 0] * HARTREE_PER_EV) < 1e-12 * abs(e_ipi)
    np.testing.assert_allclose(f_ipi, f[0] * HARTREE_PER_EV / BOHR_PER_ANGSTROM, rtol=0, atol=1e-12)


def test_without_atomic_outputs_the_virial_is_the_same(dpc, ours, frames):
    """atomic=False skips the per-atom virial's three weighted backward passes: energy and forces are the same
    bits, the virial (the runtime's sum of pair terms) equals the per-atom sum to round-off (1e-12 eV)."""
    coords, cells, types = frames
    e, f, v = Potential(dpc, n_threads=1).eval(coords, cells, types)
    np.testing.assert_array_equal(e, ours[0])
    np.testing.assert_array_equal(f, ours[1])
    np.testing.assert_allclose(v, ours[2], rtol=0, atol=1e-12)
