"""Analytic forces and virials of the reference evaluator against finite differences,
and the symmetries every potential energy must have."""

import numpy as np
import pytest

from conftest import random_rotation


def energy(pot, coords, cell, types):
    return pot.eval(coords[None], None if cell is None else cell[None], types)[0][0, 0]


def test_forces_are_minus_energy_gradient(tiny_potential, water_frame):
    coords, cell, types = water_frame
    _, force, _ = tiny_potential.eval(coords[None], cell[None], types)
    rng = np.random.default_rng(1)
    h = 1e-4
    # central differences: error O(h^2 E''') ~ 1e-9 here; roundoff ~ 1e-16*|E|/h ~ 3e-8 eV/Å
    for atom, comp in zip(rng.choice(len(types), 6, replace=False), rng.integers(0, 3, 6)):
        plus, minus = coords.copy(), coords.copy()
        plus[atom, comp] += h
        minus[atom, comp] -= h
        fd = -(energy(tiny_potential, plus, cell, types) - energy(tiny_potential, minus, cell, types)) / (2 * h)
        assert abs(fd - force[0, atom, comp]) < 1e-6, (atom, comp, fd, force[0, atom, comp])


def test_virial_is_minus_strain_derivative(tiny_potential, water_frame):
    r"""W = -(dE/dε)^T for positions and cell deformed as r -> r (1 + ε)."""
    coords, cell, types = water_frame
    _, _, virial = tiny_potential.eval(coords[None], cell[None], types)
    h = 1e-5
    dEde = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            eps = np.zeros((3, 3))
            eps[a, b] = h
            ep = energy(tiny_potential, coords @ (np.eye(3) + eps), cell @ (np.eye(3) + eps), types)
            em = energy(tiny_potential, coords @ (np.eye(3) - eps), cell @ (np.eye(3) - eps), types)
            dEde[a, b] = (ep - em) / (2 * h)
    np.testing.assert_allclose(virial[0].reshape(3, 3), -dEde.T, atol=1e-6)


def test_translation_and_lattice_shift_invariance(tiny_potential, water_frame):
    coords, cell, types = water_frame
    e0, f0, v0 = tiny_potential.eval(coords[None], cell[None], types)
    shifted = coords + np.array([0.37, -1.2, 2.9])
    shifted[::3] += cell[1] - 2 * cell[2]  # unwrapped input: whole lattice vectors
    e1, f1, v1 = tiny_potential.eval(shifted[None], cell[None], types)
    assert abs(e1[0, 0] - e0[0, 0]) < 1e-9
    np.testing.assert_allclose(f1, f0, atol=1e-11)
    np.testing.assert_allclose(v1, v0, atol=1e-10)


def test_rotation_invariance(tiny_potential, water_frame):
    coords, cell, types = water_frame
    rot = random_rotation(np.random.default_rng(7))
    e0, f0, v0 = tiny_potential.eval(coords[None], cell[None], types)
    e1, f1, v1 = tiny_potential.eval((coords @ rot.T)[None], (cell @ rot.T)[None], types)
    assert abs(e1[0, 0] - e0[0, 0]) < 1e-9
    np.testing.assert_allclose(f1[0], f0[0] @ rot.T, atol=1e-11)
    np.testing.assert_allclose(v1[0].reshape(3, 3), rot @ v0[0].reshape(3, 3) @ rot.T, atol=1e-10)


def test_permutation_invariance(tiny_potential, water_frame):
    coords, cell, types = water_frame
    perm = np.random.default_rng(3).permutation(len(types))
    e0, f0, v0, ae0, av0 = tiny_potential.eval(coords[None], cell[None], types, atomic=True)
    e1, f1, v1, ae1, av1 = tiny_potential.eval(coords[perm][None], cell[None], types[perm], atomic=True)
    assert abs(e1[0, 0] - e0[0, 0]) < 1e-9
    np.testing.assert_allclose(f1[0], f0[0][perm], atol=1e-12)
    np.testing.assert_allclose(ae1[0], ae0[0][perm], atol=1e-11)
    np.testing.assert_allclose(av1[0], av0[0][perm], atol=1e-12)


@pytest.mark.parametrize("periodic", [True, False])
def test_small_cluster_finite_differences_all_components(tiny_potential, periodic):
    """Every force component of a small (possibly periodic, cell < 2 rcut) system."""
    rng = np.random.default_rng(11)
    cell = np.array([[4.2, 0.0, 0.0], [0.7, 4.0, 0.0], [-0.5, 0.9, 4.4]]) if periodic else None
    while True:  # well separated atoms: forces of a few eV/Å, so FD truncation stays small
        coords = rng.uniform(0, 4.0, size=(6, 3))
        if min(np.linalg.norm(a - b) for k, a in enumerate(coords) for b in coords[k + 1 :]) > 1.0:
            break
    types = np.array([0, 1, 1, 0, 1, 1])
    _, force, _ = tiny_potential.eval(coords[None], None if cell is None else cell[None], types)
    h = 1e-4
    fd = np.zeros_like(coords)
    for a in range(len(types)):
        for c in range(3):
            p, m = coords.copy(), coords.copy()
            p[a, c] += h
            m[a, c] -= h
            fd[a, c] = -(energy(tiny_potential, p, cell, types) - energy(tiny_potential, m, cell, types)) / (2 * h)
    np.testing.assert_allclose(force[0], fd, rtol=1e-6, atol=1e-6)
