"""``Potential.eval`` follows DeePMD-kit's ``DeepPot.eval`` contract."""

import numpy as np
import pytest

from dpcompress import Potential
from dpcompress.core.networks import embedding_with_derivatives, network_forward


def test_shapes_and_atomic_sums(tiny_potential, water_frame):
    coords, cell, types = water_frame
    n = len(types)
    xyz = np.stack([coords, coords + 0.01])
    e, f, v, ae, av = tiny_potential.eval(xyz.reshape(2, -1), np.stack([cell, cell]).reshape(2, 9), types, atomic=True)
    assert e.shape == (2, 1) and f.shape == (2, n, 3) and v.shape == (2, 9)
    assert ae.shape == (2, n, 1) and av.shape == (2, n, 9)
    np.testing.assert_allclose(ae.sum(axis=1), e, rtol=0, atol=1e-9)
    np.testing.assert_allclose(av.sum(axis=1), v, rtol=0, atol=1e-10)
    np.testing.assert_allclose(f.sum(axis=1), 0.0, atol=1e-12)  # Newton's third law
    e3, f3, v3 = tiny_potential.eval(xyz, np.stack([cell, cell]), types)  # (nframes, natoms, 3) input too
    np.testing.assert_array_equal(e3, e)
    np.testing.assert_array_equal(f3, f)


def test_element_names_as_types(tiny_potential, water_frame):
    coords, cell, types = water_frame
    names = np.array(tiny_potential.get_type_map())[types]
    np.testing.assert_array_equal(
        tiny_potential.eval(coords[None], cell[None], names)[0], tiny_potential.eval(coords[None], cell[None], types)[0]
    )


def test_introspection(tiny_potential):
    assert tiny_potential.get_type_map() == ["O", "H"]
    assert tiny_potential.get_rcut() == 6.0
    assert tiny_potential.get_ntypes() == 2


def isolated_atom_energy(model, t):
    """Energy of an atom without neighbors, computed by hand: every slot is padding.

    Padding rows are R~ = (-davg_r/dstd_r, 0, 0, 0), so T = [x G(x); 0; 0; 0] with x = -davg/dstd
    (all slots identical, the 1/N cancels the slot count) — but per block the net differs.
    """
    d = model.descriptor
    M, A = d.n_channels, d.axis_neuron
    T = np.zeros((4, M))
    offsets = np.concatenate([[0], np.cumsum(d.sel)])
    for b in range(d.ntypes):
        x = -d.davg[t, offsets[b], 0] / d.dstd[t, offsets[b], 0]
        g, _, _ = embedding_with_derivatives(d.embedding_net(t, b), np.array([x]))
        T[0] += d.sel[b] * x * g[0] / d.nnei
    D = (T.T @ T[:, :A]).reshape(1, -1)
    y, _ = network_forward(model.fitting.network(t), D)
    return y[0, 0] + model.fitting.bias_atom_e[t] + model.out_bias[t]


@pytest.mark.parametrize("t", [0, 1])
def test_single_atom(tiny_potential, t):
    e, f, v = tiny_potential.eval(np.array([[1.0, 2.0, 3.0]]), None, [t])
    assert np.isfinite(e).all()
    assert abs(e[0, 0] - isolated_atom_energy(tiny_potential.model, t)) < 1e-10
    assert np.all(f == 0) and np.all(v == 0)


def test_atom_without_neighbors_beside_a_molecule(tiny_potential):
    """A lone O 20 Å from a water molecule: its energy is the isolated-atom value."""
    coords = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0], [20.0, 0.0, 0.0]])
    types = np.array([0, 1, 1, 0])
    e, f, v, ae, av = tiny_potential.eval(coords[None], None, types, atomic=True)
    assert abs(ae[0, 3, 0] - isolated_atom_energy(tiny_potential.model, 0)) < 1e-10
    assert np.all(f[0, 3] == 0)
    water = tiny_potential.eval(coords[None, :3], None, types[:3])[0][0, 0]
    assert abs(e[0, 0] - (water + ae[0, 3, 0])) < 1e-9


def test_periodic_single_atom_sees_its_images(tiny_potential):
    """One atom in a 3 Å cubic cell (cell < 2 rcut): many images, zero net force by symmetry."""
    e, f, v = tiny_potential.eval(np.array([[0.3, 0.1, 0.2]]), np.eye(3) * 3.0, [0])
    assert np.isfinite(e).all() and e[0, 0] != isolated_atom_energy(tiny_potential.model, 0)
    assert np.abs(f).max() < 1e-10


def test_neighbor_overflow_warns(tiny_model):
    """Squeezing water until an O sees more than sel=46 O neighbors must warn, not pass silently."""
    from dpcompress.potential import NeighborOverflowWarning

    rng = np.random.default_rng(0)
    coords = rng.uniform(0, 9.0, size=(300, 3))
    with pytest.warns(NeighborOverflowWarning, match="dropped"):
        Potential(tiny_model).eval(coords[None], np.eye(3)[None] * 9.0, np.zeros(300, dtype=int))
