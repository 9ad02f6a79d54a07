"""Mixed periodicity (slabs, wires) in ``Potential.eval(pbc=...)`` and the ASE calculator, and the
calculator's keywords.

Reference: the same atoms in a fully periodic cell with a vacuum gap wider than the cutoff along the
non-periodic directions, where no periodic image along them is within the cutoff, evaluated by the
plain periodic path.  Its pair vectors are the partly periodic system's, so every output (energy,
forces, virial, per-atom energies and virials) must agree to rounding: 1e-12 relative.  The NEP slab
is also checked against GPUMD's stored outputs of that frame (1e-8, as tests/test_nep.py).
"""

import os

import numpy as np
import pytest

from conftest import DATA, TINY
from dpcompress import Potential, compress
from dpcompress.core.errors import InputError
from dpcompress.core.lattice import vacuum_cell

NEP = os.path.join(DATA, "nep", "PbTe_NEP4_example")
RTOL = 1e-12


@pytest.fixture(scope="module")
def potentials():
    """Compressed DP (C runtime), uncompressed DP (exact numpy evaluator) and NEP."""
    dp = os.path.join(TINY, "frozen.dp")
    return {"dpc": Potential(compress(dp), n_threads=1), "exact": Potential(dp, n_threads=1),
            "nep": Potential(os.path.join(NEP, "nep.txt"), n_threads=1)}


def water_slab(natoms=192):
    """The tiny fixture's first water frame as a slab: its a, b rows, atoms wherever they are along z."""
    frames = np.load(os.path.join(TINY, "test_frames.npz"))
    return frames["coord"][0][:natoms].astype(float), frames["box"][0].astype(float), frames["atype"][:natoms]


def padded(cell, pbc, x, gap):
    """The reference cell: each non-periodic row replaced by an axis-aligned vector ``gap`` Å longer
    than the atoms' extent (the periodic rows here lie in the complementary axes)."""
    out = np.array(cell, dtype=float)
    for c in range(3):
        if not pbc[c]:
            out[c] = 0.0
            out[c, c] = np.ptp(x[:, c]) + gap
    return out


def assert_same(a, b, rtol=RTOL):
    for name, p, q in zip(("energy", "force", "virial", "atom_energy", "atom_virial"), a, b):
        scale = max(1.0, float(np.abs(q).max()))
        assert np.abs(p - q).max() <= rtol * scale, (name, float(np.abs(p - q).max()))


def frames_for(kind):
    if kind == "nep":
        z = np.load(os.path.join(NEP, "slab001_vacuum_96.npz"))
        return z["positions"], z["cell"], z["type_index"]
    return water_slab(64 if kind == "exact" else 192)


@pytest.mark.parametrize("kind", ["dpc", "exact", "nep"])
@pytest.mark.parametrize("pbc", [(True, True, False), (True, False, True), (False, True, False), (True, False, False)])
def test_mixed_pbc_equals_vacuum_padded_periodic_cell(potentials, kind, pbc):
    pot = potentials[kind]
    x, cell, types = frames_for(kind)
    rcut = pot.get_rcut()
    ref = pot.eval(x[None], padded(cell, pbc, x, 1.5 * rcut)[None], types, atomic=True)
    # the non-periodic rows as the caller wrote them (the bulk cell), zero (ASE's slab), or short and
    # skewed (would put many images within rcut if they counted): all ignored
    for junk in (cell, np.zeros((3, 3)), np.full((3, 3), 0.7) + np.eye(3)):
        c = np.where(np.array(pbc)[:, None], cell, junk)
        assert_same(pot.eval(x[None], c[None], types, atomic=True, pbc=pbc), ref)


def test_nep_slab_against_gpumd(potentials):
    """GPUMD's outputs of the (vacuum-padded) PbTe slab, from the slab as a 2D-periodic system."""
    z = np.load(os.path.join(NEP, "slab001_vacuum_96.npz"))
    cell = z["cell"].copy()
    cell[2] = [0.0, 0.0, 3.0]  # the stored 36 Å c is irrelevant with pbc along a, b only
    e, f, v = potentials["nep"].eval(z["positions"][None], cell[None], z["type_index"], pbc=(True, True, False))
    n = len(z["positions"])
    assert abs(e[0, 0] - z["energy"]) <= 1e-9 * n
    assert np.abs(f[0] - z["forces"]).max() <= 1e-8
    assert np.abs(v[0] - z["virial"].ravel()).max() / n <= 1e-8


def test_sheared_slab_reduces_only_the_periodic_lattice(potentials):
    """A slab written with a sheared in-plane basis (b + 3a) and a c row tilted into the plane: the
    periodic lattice of a, b is the plain one, so the result is the plain slab's."""
    pot = potentials["dpc"]
    x, cell, types = water_slab()
    pbc = (True, True, False)
    ref = pot.eval(x[None], padded(cell, pbc, x, 9.0)[None], types, atomic=True)
    sheared = np.array([cell[0], cell[1] + 3 * cell[0], cell[0] + 0.5 * cell[2]])
    assert_same(pot.eval(x[None], sheared[None], types, atomic=True, pbc=pbc), ref)


def test_translation_along_the_vacuum_changes_nothing(potentials):
    """The virial is a sum over pair vectors: moving the slab 1000 Å along z leaves it unchanged."""
    pot = potentials["dpc"]
    x, cell, types = water_slab()
    a = pot.eval(x[None], cell[None], types, atomic=True, pbc=(True, True, False))
    b = pot.eval((x + [0.0, 0.0, 1000.0])[None], cell[None], types, atomic=True, pbc=(True, True, False))
    assert_same(a, b, rtol=1e-10)


def test_no_periodic_direction_is_a_cluster(potentials):
    pot = potentials["dpc"]
    x, cell, types = water_slab(48)
    assert_same(pot.eval(x[None], cell[None], types, atomic=True, pbc=False),
                pot.eval(x[None], None, types, atomic=True), rtol=0.0)
    assert_same(pot.eval(x[None], cell[None], types, atomic=True, pbc=(True,) * 3),
                pot.eval(x[None], cell[None], types, atomic=True), rtol=0.0)


def test_vacuum_cell_geometry():
    x = np.random.default_rng(1).normal(size=(20, 3)) * 4.0
    cell = np.array([[5.0, 0.5, 1.0], [1.0, 6.0, -2.0], [0.0, 0.0, 0.0]])
    for pbc in ((True, True, False), (True, False, False)):
        out = vacuum_cell(cell, pbc, x, 6.0)
        assert np.linalg.det(out) > 0
        per = [c for c in range(3) if pbc[c]]
        free = [c for c in range(3) if not pbc[c]]
        assert np.array_equal(out[per], cell[per])
        for c in free:
            n = out[c] / np.linalg.norm(out[c])
            assert np.abs(out[per] @ n).max() < 1e-12  # orthogonal to the periodic rows
            assert np.linalg.norm(out[c]) >= np.ptp(x @ n) + 2 * 6.0 - 1e-9  # no image within rcut


@pytest.mark.parametrize("pbc, cells, match", [
    ((True, True, False), None, "cells is None"),
    ((True, True), np.eye(3) * 10, "3 bools"),
    ("yes", np.eye(3) * 10, "3 bools"),
    ((True, 2, False), np.eye(3) * 10, "3 bools"),
    ((True, True, False), np.array([[5.0, 0, 0], [10.0, 0, 0], [0, 0, 0]]), "parallel or zero"),
    ((False, True, False), np.array([[5.0, 0, 0], [0, 0, 0], [0, 0, 1]]), "zero"),
    ((True, True, False), np.array([[5.0, 0, 0], [0, 5.0, 0], [np.nan, 0, 0]]), "not finite"),
])
def test_bad_pbc_and_cells_are_refused(potentials, pbc, cells, match):
    x, _, types = water_slab(3)
    with pytest.raises(InputError, match=match):
        potentials["dpc"].eval(x[None], None if cells is None else cells[None], types, pbc=pbc)


# ---------------------------------------------------------------------------------- ASE calculator

@pytest.fixture
def Atoms():
    """ASE's Atoms, or skip (ASE is optional: pip install 'dpcompress[ase]')."""
    return pytest.importorskip("ase").Atoms


def slab_atoms(pbc=(True, True, False)):
    from ase import Atoms

    x, cell, types = water_slab()
    cell = cell.copy()
    cell[2] = 0.0  # ASE's usual slab: no c vector
    return Atoms([("O", "H")[t] for t in types], positions=x, cell=cell, pbc=pbc)


def test_calculator_on_a_slab(potentials, Atoms):
    from ase.calculators.calculator import PropertyNotImplementedError

    from dpcompress import Calculator

    atoms = slab_atoms()
    atoms.calc = Calculator(potentials["dpc"])
    x, cell, types = water_slab()
    ref = potentials["dpc"].eval(x[None], padded(cell, (True, True, False), x, 9.0)[None], types, atomic=True)
    assert abs(atoms.get_potential_energy() - ref[0][0, 0]) <= RTOL * abs(ref[0][0, 0])
    assert np.abs(atoms.get_forces() - ref[1][0]).max() <= RTOL * np.abs(ref[1]).max()
    assert np.abs(atoms.get_potential_energies() - ref[3][0, :, 0]).max() <= RTOL * np.abs(ref[3]).max()
    with pytest.raises(PropertyNotImplementedError, match="fully periodic"):
        atoms.get_stress()


def test_calculator_import_paths(Atoms):
    import dpcompress
    from dpcompress.calculators.ase_calculator import DPCompressCalculator

    assert dpcompress.Calculator is DPCompressCalculator
    assert "Calculator" in dir(dpcompress)


def test_calculator_accepts_its_keywords(potentials, Atoms):
    from dpcompress import Calculator

    model = potentials["dpc"].model
    calc = Calculator(model, comm=None, device="cpu", n_threads=1, check_frequency=5, overflow="error",
                      type_dict={"O": 0, "H": 1}, label="water")
    assert calc.potential.check_frequency == 5 and calc.potential.overflow == "error"
    atoms = slab_atoms(pbc=True)
    atoms.set_cell(water_slab()[1])
    atoms.calc = calc
    x, cell, types = water_slab()
    assert atoms.get_potential_energy() == potentials["dpc"].eval(x[None], cell[None], types)[0][0, 0]


def test_type_dict_maps_symbols_to_types(potentials, Atoms):
    """type_dict (DeePMD-kit's calculator's keyword) names the types: other symbols for the same types."""
    from dpcompress import Calculator

    x, cell, types = water_slab(48)
    atoms = Atoms([("Ne", "He")[t] for t in types], positions=x, cell=cell, pbc=True)
    atoms.calc = Calculator(potentials["dpc"], type_dict={"Ne": 0, "He": 1})
    assert atoms.get_potential_energy() == potentials["dpc"].eval(x[None], cell[None], types)[0][0, 0]
    for bad, match in (({"O": 2}, r"type index in \[0, 2\)"), ({"O": True}, "type index"), ([("O", 0)], "dict"),
                       ({0: 0}, "element symbol")):
        with pytest.raises(InputError, match=match):
            Calculator(potentials["dpc"], type_dict=bad)


@pytest.mark.parametrize("kwargs, names", [({"n_thread": 2}, ["'n_thread'"]),
                                           ({"overfow": "error", "restart": "x"}, ["'overfow'", "'restart'"])])
def test_unknown_keywords_are_refused(potentials, kwargs, names, Atoms):
    from dpcompress import Calculator

    with pytest.raises(TypeError) as info:
        Calculator(potentials["dpc"].model, **kwargs)
    text = str(info.value)
    for name in names:
        assert name in text
    assert "n_threads" in text and "type_dict" in text and "check_frequency" in text  # the accepted ones


def test_options_with_a_ready_potential_and_set_are_refused(potentials, Atoms):
    from dpcompress import Calculator

    with pytest.raises(InputError, match="n_threads"):
        Calculator(potentials["dpc"], n_threads=2)
    calc = Calculator(potentials["dpc"])
    with pytest.raises(TypeError, match="n_threads"):
        calc.set(n_threads=2)
