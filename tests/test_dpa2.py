"""DPA-2 (issue 16): the exact numpy evaluator against DeePMD-kit and finite differences.

References: ``tests/data/deepmd/dpa2_tiny`` (DeePMD-kit 3.2.0's ``DeepPot.eval`` on two periodic water
frames of 192 atoms, README there); the non-default options are checked on edited copies of its tree
(``tests/data/deepmd/dpa2_options.py``) by central finite differences of our own energy, and against
DeePMD-kit itself where ``dpa2_options_reference.npz`` holds its outputs
(``tests/data/deepmd/make_dpa2_options_reference.py``).
"""

import os

import numpy as np
import pytest

from conftest import DATA, water_frames, dpa2_options

from dpcompress import Potential, load_model
from dpcompress.core.errors import UnsupportedModelError
from dpcompress.evaluators.exact import ExactEvaluator
from dpcompress.models.deepmd_reader import model_from_tree
from dpcompress.models.serialized_tree import load_tree

FIXTURE = os.path.join(DATA, "deepmd", "dpa2_tiny")
MODEL = os.path.join(FIXTURE, "frozen.dp")
OPTIONS_REF = os.path.join(DATA, "deepmd", "dpa2_options_reference.npz")


OPTS = dpa2_options()


@pytest.fixture(scope="module")
def frames():
    return water_frames()


@pytest.fixture(scope="module")
def tree():
    return load_tree(MODEL)


def _evaluate(model, coords, cell, types):
    return ExactEvaluator(model).evaluate(coords, cell, types)


def test_matches_deepmd_references(frames):
    """Energy per atom to 1e-10 eV, forces to 1e-9 eV/Å, virial and per-atom energies/virials to 1e-9 eV
    (measured: 4e-12 eV, 3e-16 eV/Å, 5e-15 eV, 3e-14 eV, 2e-15 eV)."""
    coords, cells, types = frames
    model = load_model(MODEL)
    with np.load(os.path.join(FIXTURE, "ref_uncompressed_pth.npz"), allow_pickle=False) as ref:
        for f in range(2):
            res = _evaluate(model, coords[f], cells[f], types)
            n = len(types)
            assert abs(res.energy - ref["energy"][f]) / n < 1e-10
            np.testing.assert_allclose(res.force, ref["force"][f], rtol=0, atol=1e-9)
            np.testing.assert_allclose(res.virial, ref["virial"][f].reshape(3, 3), rtol=0, atol=1e-9)
            np.testing.assert_allclose(res.atom_energy, ref["atom_energy"][f], rtol=0, atol=1e-9)
            np.testing.assert_allclose(res.atom_virial, ref["atom_virial"][f].reshape(n, 3, 3), rtol=0, atol=1e-9)


H = 1e-4  # finite-difference step (Å); Richardson-extrapolated central differences, error O(H^4)


def _richardson(f, x, a, c, h=H):
    """d f / d x[a, c] by central differences at h and h/2, extrapolated: (4 D(h/2) - D(h)) / 3."""

    def central(step):
        p, m = x.copy(), x.copy()
        p[a, c] += step
        m[a, c] -= step
        return (f(p) - f(m)) / (2 * step)

    return (4 * central(h / 2) - central(h)) / 3


def _fd_forces(model, coords, cell, types):
    """-dE/dx over every coordinate."""
    ev = ExactEvaluator(model)
    energy = lambda x: ev.evaluate(x, cell, types).energy  # noqa: E731
    return np.array([[-_richardson(energy, coords, a, c) for c in range(3)] for a in range(len(coords))])


def _fd_atom_energy_gradients(model, coords, types, atoms):
    """d e_i / d x_{a,c} of an open cluster for the atoms a in ``atoms``, shape (len(atoms), 3, n)."""
    ev = ExactEvaluator(model)
    atom_energies = lambda x: ev.evaluate(x, None, types).atom_energy  # noqa: E731
    return np.array([[_richardson(atom_energies, coords, a, c) for c in range(3)] for a in atoms])


def _atomic_virial_from(de, coords, atoms):
    r"""DeePMD-kit's per-atom virial of an open cluster from the atom energies' gradients:
    :math:`W_a = -\sum_i \partial e_i/\partial x_a \otimes (x_a - x_i)`, for the atoms a in ``atoms``."""
    rel = coords[atoms][:, None, :] - coords[None, :, :]  # (a, i, 3) = x_a - x_i
    return -np.einsum("aci,aib->acb", de, rel)


def _fd_virial(model, coords, cell, types, h=1e-5):  # plain central differences: E is smooth in the strain
    """-(dE/dε)^T for positions and cell deformed as r -> r (1 + ε)."""
    ev = ExactEvaluator(model)
    dE = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            eps = np.zeros((3, 3))
            eps[a, b] = h
            ep = ev.evaluate(coords @ (np.eye(3) + eps), cell @ (np.eye(3) + eps), types).energy
            em = ev.evaluate(coords @ (np.eye(3) - eps), cell @ (np.eye(3) - eps), types).energy
            dE[a, b] = (ep - em) / (2 * h)
    return -dE.T


def _small_cell(frames, n_keep=12, edge=6.0):
    """A periodic cell smaller than the repinit cutoff (6 Å) and far below the energy's reach (14 Å):
    every atom sees many images of every other atom, and g1 passes through images."""
    coords, _, types = frames
    c, t = OPTS.cluster(coords[0], types, radius=3.2)
    c, t = c[:n_keep], t[:n_keep]
    return c - c.min(axis=0) + 0.3, np.diag([edge, edge * 1.05, edge * 0.95]) + 0.2 * np.eye(3)[[1, 2, 0]], t


def test_forces_and_virial_match_finite_differences_in_a_small_periodic_cell(frames):
    """Forces vs extrapolated central differences (to 1e-7 eV/Å), virial vs the strain derivative,
    in a triclinic cell with 6 Å edges (atoms interact with their own images, messages cross the cell)."""
    model = load_model(MODEL)
    coords, cell, types = _small_cell(frames)
    res = _evaluate(model, coords, cell, types)
    assert np.abs(res.force).max() > 0.1
    np.testing.assert_allclose(res.force, _fd_forces(model, coords, cell, types), rtol=0, atol=1e-7)
    np.testing.assert_allclose(res.virial, _fd_virial(model, coords, cell, types), rtol=0, atol=1e-7)


def test_small_cell_equals_its_supercell(frames):
    """The 2x1x1 supercell of the small cell: the same per-atom energies and forces (1e-10), twice the
    energy; an independent check of the periodic images and of the per-layer message passing."""
    model = load_model(MODEL)
    coords, cell, types = _small_cell(frames)
    one = _evaluate(model, coords, cell, types)
    big = np.concatenate([coords, coords + cell[0]])
    two = _evaluate(model, big, cell * np.array([[2.0], [1.0], [1.0]]), np.concatenate([types, types]))
    n = len(types)
    np.testing.assert_allclose(two.atom_energy, np.concatenate([one.atom_energy] * 2), rtol=0, atol=1e-10)
    np.testing.assert_allclose(two.force, np.concatenate([one.force] * 2), rtol=0, atol=1e-10)
    np.testing.assert_allclose(two.virial, 2 * one.virial, rtol=0, atol=1e-9)
    assert abs(two.energy - 2 * one.energy) < 1e-9 * n


OPTION_SETS = [(name,) for name in OPTS.OPTIONS] + [("update_h2", "attn2_has_gate", "res_residual"),
                                                  ("repinit_concat", "exclude_types", "smooth_false")]


@pytest.mark.parametrize("names", OPTION_SETS, ids=["+".join(s) for s in OPTION_SETS])
def test_option_gradients_match_finite_differences(frames, tree, names):
    """Each non-default option on an edited model (new weights random; small_sel: both neighbor lists
    truncated): forces of an open cluster vs
    extrapolated central differences (to 1e-7 eV/Å), per-atom virials vs finite differences of
    the per-atom energies; the option changes the energy (it is not a no-op)."""
    coords, _, types = frames
    c, t = OPTS.cluster(coords[0], types, radius=4.0)
    base = _evaluate(load_model(MODEL), c, None, t)
    model = model_from_tree(OPTS.edited_tree(tree, names), source="+".join(names))
    res = _evaluate(model, c, None, t)
    assert abs(res.energy - base.energy) > 1e-6, "the option changed nothing"
    atoms = list(range(0, len(t), 4))  # every fourth atom (the centre, 0, among them): keeps the test short
    de = _fd_atom_energy_gradients(model, c, t, atoms)
    np.testing.assert_allclose(res.force[atoms], -de.sum(axis=-1), rtol=0, atol=1e-7)
    np.testing.assert_allclose(res.atom_virial[atoms], _atomic_virial_from(de, c, atoms), rtol=0, atol=1e-7)


@pytest.mark.skipif(not os.path.exists(OPTIONS_REF), reason="dpa2_options_reference.npz not made")
@pytest.mark.parametrize("names", OPTION_SETS, ids=["+".join(s) for s in OPTION_SETS])
def test_options_match_deepmd(frames, tree, names):
    """The edited models against DeePMD-kit 3.2.0's numpy backend on the same open cluster: energy to
    1e-10 eV/atom, forces to 1e-9 eV/Å, per-atom energies and virials to 1e-9 eV."""
    coords, _, types = frames
    c, t = OPTS.cluster(coords[0], types, radius=4.0)
    key = "+".join(names)
    with np.load(OPTIONS_REF, allow_pickle=False) as ref:
        if f"{key}/energy" not in ref.files:
            pytest.skip(f"no DeePMD-kit reference for {key}")
        r = {k.split("/", 1)[1]: ref[k] for k in ref.files if k.startswith(key + "/")}
        np.testing.assert_array_equal(ref["cluster/coord"], c)  # the script's cluster is this one
    res = _evaluate(model_from_tree(OPTS.edited_tree(tree, names), source=key), c, None, t)
    assert abs(res.energy - float(r["energy"])) / len(t) < 1e-10
    np.testing.assert_allclose(res.force, r["force"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.atom_energy, r["atom_energy"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.atom_virial, r["atom_virial"].reshape(-1, 3, 3), rtol=0, atol=1e-9)


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["repinit_args"].update(use_three_body=True), r"repinit_args.use_three_body' = True"),
    (lambda d: d.update(use_econf_tebd=True), r"use_econf_tebd' = True"),
    (lambda d: d["repinit_args"].update(tebd_input_mode="bogus"), r"tebd_input_mode' = 'bogus'"),
    (lambda d: d["repformers_variable"]["@variables"]["davg"].__setitem__((0, 0, 0), 0.1), r"davg' = 'nonzero'"),
    (lambda d: d["repformer_args"].update(update_style="res_bogus"), r"update_style' = 'res_bogus'"),
])
def test_unimplemented_options_are_refused_naming_the_key(tree, edit, match):
    import copy

    t = copy.deepcopy(tree)
    edit(t["model"]["descriptor"])
    if "res_bogus" in match:
        for layer in t["model"]["descriptor"]["repformers_variable"]["repformer_layers"]:
            layer["update_style"] = "res_bogus"
    with pytest.raises(UnsupportedModelError, match=match):
        model_from_tree(t, source="edited.dp")


def test_potential_on_the_dp_model(frames):
    """Potential on the .dp (both frames in one call, atomic=True): DeePMD-kit's references (1e-9).
    (The compressed model: test_dpa2_compressed.py.)"""
    coords, cells, types = frames
    pot = Potential(MODEL)
    e, f, v, ae, av = pot.eval(coords[:2], cells[:2], types, atomic=True)
    with np.load(os.path.join(FIXTURE, "ref_uncompressed_pth.npz"), allow_pickle=False) as ref:
        np.testing.assert_allclose(e[:, 0], ref["energy"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(f, ref["force"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(av, ref["atom_virial"].reshape(2, -1, 9), rtol=0, atol=1e-9)
    D = pot.eval_descriptor(coords[:1], cells[:1], types)  # [g1, T[t_i]] (concat_output_tebd)
    assert D.shape == (1, len(types), 12)
    np.testing.assert_array_equal(D[0, :, 8:], pot.model.descriptor.type_embedding[types])


def test_ase_calculator(frames):
    """The ASE calculator on the .dp model: DeePMD-kit's reference energy and forces (1e-9), stress = -W/V."""
    ase = pytest.importorskip("ase")
    from dpcompress.calculators.ase_calculator import DPCompressCalculator

    coords, cells, types = frames
    atoms = ase.Atoms([("O", "H")[t] for t in types], positions=coords[0], cell=cells[0], pbc=True)
    atoms.calc = DPCompressCalculator(MODEL)
    with np.load(os.path.join(FIXTURE, "ref_uncompressed_pth.npz"), allow_pickle=False) as ref:
        assert abs(atoms.get_potential_energy() - ref["energy"][0]) < 1e-9
        np.testing.assert_allclose(atoms.get_forces(), ref["force"][0], rtol=0, atol=1e-9)
        W = ref["virial"][0].reshape(3, 3)
    stress = atoms.get_stress(voigt=False)
    np.testing.assert_allclose(stress, -0.5 * (W + W.T) / atoms.get_volume(), rtol=0, atol=1e-10)


def test_dpcompress_test_command(tmp_path, frames):
    """``dpcompress test`` on the .dp model and a small periodic system: exit 0, and the energy error it
    reports is |E - label| of our own evaluation of that frame (1e-9 eV)."""
    from dpcompress.cli import main

    system = os.path.join(DATA, "dp_test", "systems", "water_pbc")
    out = tmp_path / "errors.json"
    assert main(["test", "-m", MODEL, "-s", system, "-n", "1", "--no-progress", "--json", str(out)]) in (0, None)
    import json

    with open(out) as fh:
        doc = json.load(fh)
    coord = np.load(os.path.join(system, "set.000", "coord.npy"))[0].reshape(-1, 3).astype(np.float64)
    box = np.load(os.path.join(system, "set.000", "box.npy"))[0].reshape(3, 3).astype(np.float64)
    label = float(np.load(os.path.join(system, "set.000", "energy.npy"))[0])
    with open(os.path.join(system, "type.raw")) as fh:
        types = np.array(fh.read().split(), dtype=np.int64)
    e = _evaluate(load_model(MODEL), coord, box, types).energy
    assert abs(doc["weighted"]["energy_mae"] - abs(e - label)) < 1e-9


@pytest.mark.skipif(not os.path.exists(OPTIONS_REF), reason="dpa2_options_reference.npz not made")
@pytest.mark.parametrize("names", [("use_sqrt_nnei_false",), ("smooth_false",)], ids=["smooth", "not_smooth"])
def test_atoms_without_neighbors_match_deepmd(frames, tree, names):
    """An atom with repinit neighbors but none within the repformer cutoff, and an atom with no neighbor
    at all (every attention row empty; not smooth: every logit masked): DeePMD-kit's outputs to 1e-9."""
    coords, _, types = frames
    c, t = OPTS.lonely(coords[0], types)
    key = "lonely/" + "+".join(names)
    with np.load(OPTIONS_REF, allow_pickle=False) as ref:
        np.testing.assert_array_equal(ref["lonely/coord"], c)
        r = {k.rsplit("/", 1)[1]: ref[k] for k in ref.files if k.startswith(key + "/")}
    res = _evaluate(model_from_tree(OPTS.edited_tree(tree, names), source=key), c, None, t)
    assert np.all(np.isfinite(res.atom_virial))
    assert abs(res.energy - float(r["energy"])) / len(t) < 1e-10
    np.testing.assert_allclose(res.force, r["force"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.atom_energy, r["atom_energy"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.atom_virial, r["atom_virial"].reshape(-1, 3, 3), rtol=0, atol=1e-9)


def test_dpa2_inside_a_hybrid_is_refused(tree):
    import copy

    t = copy.deepcopy(tree)
    t["model"]["descriptor"] = {"type": "hybrid", "list": [t["model"]["descriptor"]]}
    # the fitting input width is unchanged (12): the hybrid of one part reads, the evaluator refuses it
    with pytest.raises(UnsupportedModelError, match="DPA-2 inside a hybrid descriptor is not supported"):
        ExactEvaluator(model_from_tree(t, source="hybrid.dp"))


def test_pair_exclude_types_with_dpa2_is_refused(tree):
    import copy

    t = copy.deepcopy(tree)
    t["model"]["pair_exclude_types"] = [[0, 1]]
    with pytest.raises(UnsupportedModelError, match=r"pair_exclude_types' = \[\(0, 1\), \(1, 0\)\] with DPA-2"):
        ExactEvaluator(model_from_tree(t, source="excl.dp"))
