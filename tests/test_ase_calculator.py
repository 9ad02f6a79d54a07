"""The ASE calculator: conventions checked by finite differences, and a short NVE run."""

import os

import numpy as np
import pytest

ase = pytest.importorskip("ase")
from ase import Atoms, units  # noqa: E402
from ase.md.verlet import VelocityVerlet  # noqa: E402

from conftest import TINY  # noqa: E402
from dpcompress.calculators.ase_calculator import DPCompressCalculator  # noqa: E402
from dpcompress import compress  # noqa: E402
from dpcompress.core.errors import InputError  # noqa: E402


@pytest.fixture(scope="module")
def compressed():
    return compress(os.path.join(TINY, "frozen.dp"))


def water_atoms(frame=0):
    frames = np.load(os.path.join(TINY, "test_frames.npz"))
    symbols = [str(frames["type_map"][t]) for t in frames["atype"]]
    return Atoms(symbols, positions=frames["coord"][frame].astype(float), cell=frames["box"][frame].astype(float), pbc=True)


def test_energy_forces_stress_conventions(compressed):
    atoms = water_atoms()[:48]  # a 48-atom periodic cut keeps finite differences cheap
    atoms.calc = DPCompressCalculator(compressed)
    e = atoms.get_potential_energy()
    assert np.isclose(atoms.get_potential_energies().sum(), e, atol=1e-9)
    assert atoms.get_potential_energy(force_consistent=True) == e
    f = atoms.get_forces()
    h = 1e-4
    for a, c in [(0, 0), (5, 1), (30, 2)]:
        p = atoms.copy()
        p.calc = atoms.calc
        p.positions[a, c] += h
        ep = p.get_potential_energy()
        p.positions[a, c] -= 2 * h
        em = p.get_potential_energy()
        assert abs(-(ep - em) / (2 * h) - f[a, c]) < 1e-6
    # stress = (1/V) dE/dε (symmetric strain), ASE's sign convention
    s = atoms.get_stress()
    cell0, pos0 = atoms.cell.array.copy(), atoms.positions.copy()
    for i, j, voigt in [(0, 0, 0), (1, 2, 3), (0, 1, 5)]:
        vals = []
        for sign in (1, -1):
            eps = np.zeros((3, 3))
            eps[i, j] = eps[j, i] = sign * h / (2 if i != j else 1)
            p = atoms.copy()
            p.calc = atoms.calc
            p.set_cell(cell0 @ (np.eye(3) + eps), scale_atoms=False)
            p.positions = pos0 @ (np.eye(3) + eps)
            vals.append(p.get_potential_energy())
        fd = (vals[0] - vals[1]) / (2 * h) / atoms.get_volume()
        assert abs(fd - s[voigt]) < 1e-7, (voigt, fd, s[voigt])


def test_short_nve_run_conserves_energy(compressed):
    atoms = water_atoms()
    atoms.calc = DPCompressCalculator(compressed)
    rng = np.random.default_rng(0)
    masses = atoms.get_masses()[:, None]
    atoms.set_momenta(rng.normal(size=(len(atoms), 3)) * np.sqrt(masses * units.kB * 300))
    e0 = atoms.get_total_energy()
    VelocityVerlet(atoms, timestep=0.25 * units.fs).run(20)
    assert np.isfinite(atoms.positions).all()
    assert abs(atoms.get_total_energy() - e0) < 1e-3 * len(atoms) ** 0.5


def test_unknown_element(compressed):
    calc = DPCompressCalculator(compressed)
    atoms = Atoms("OC", positions=[[0, 0, 0], [1.2, 0, 0]])
    atoms.calc = calc
    with pytest.raises(InputError, match="'C'"):
        atoms.get_potential_energy()
    # mixed periodicity is supported: tests/test_ase_slab.py


def test_non_periodic_molecule(compressed):
    atoms = Atoms("OHH", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    atoms.calc = DPCompressCalculator(compressed)
    assert np.isfinite(atoms.get_potential_energy())
    assert np.abs(atoms.get_forces().sum(axis=0)).max() < 1e-12
