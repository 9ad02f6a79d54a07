"""Many frames in one ``Potential.eval`` call: bit for bit the single-frame results.

``Potential.eval`` hands all its frames to the evaluator at once
(:meth:`~dpcompress.evaluators.base.Evaluator.evaluate_frames`), which amortizes the per-frame
Python work (docs/performance.md, benchmarks/bench_small_frames.py).  Reference here: the
evaluator's own single-frame path (``evaluate``) and single-frame ``eval`` calls; equality is exact
(``np.array_equal``), not a tolerance: batching must not change a bit.  Also DeePMD-kit's
``DeepPot`` methods users call and the inputs we refuse.
"""

import warnings

import numpy as np
import pytest

from dpcompress import Potential, compress
from dpcompress.core.errors import InputError
from dpcompress.core.lattice import reduce_cell


@pytest.fixture(scope="module")
def compressed_potential(tiny_model):
    return Potential(compress(tiny_model), n_threads=1)


def _small_frames(n, seed=0):
    """``n`` frames of 6 atoms, in varied cells (every fourth sheared: reduced before the search)."""
    rng = np.random.default_rng(seed)
    natoms = 6
    coords = rng.uniform(0.0, 4.0, size=(n, natoms, 3))
    coords[:, 1:] += np.arange(1, natoms)[None, :, None] * 0.9  # no two atoms nearly coincide
    cells = np.empty((n, 3, 3))
    for f in range(n):
        cells[f] = np.diag(rng.uniform(7.0, 11.0, size=3))
        if f % 4 == 3:  # a sheared cell of the same lattice: reduced before the search
            cells[f, 2] += 3 * cells[f, 0]
    types = np.array([0, 1, 1, 0, 1, 1])
    return coords, cells, types


def _single_frame_outputs(pot, coords, cells, types, atomic):
    """Outputs of one ``eval`` call per frame, stacked."""
    outs = [pot.eval(coords[f:f + 1], None if cells is None else cells[f:f + 1],
                     types if types.ndim == 1 else types[f:f + 1], atomic=atomic, mixed_type=types.ndim == 2)
            for f in range(coords.shape[0])]
    return tuple(np.concatenate([o[k] for o in outs]) for k in range(len(outs[0])))


@pytest.mark.parametrize("periodic", [True, False])
def test_batch_equals_single_frame_calls(compressed_potential, periodic):
    coords, cells, types = _small_frames(24)
    cells = cells if periodic else None
    batch = compressed_potential.eval(coords, cells, types, atomic=True)
    single = _single_frame_outputs(compressed_potential, coords, cells, types, atomic=True)
    for name, a, b in zip(("energy", "force", "virial", "atom_energy", "atom_virial"), batch, single):
        assert np.array_equal(a, b), name


def test_batch_sharing_one_cell(compressed_potential):
    """Frames of one cell (its reduction, inverse and face distances made once) and runs of repeated cells."""
    coords, cells, types = _small_frames(12, seed=6)
    for shared in (cells[3], np.repeat(cells[:4], 3, axis=0)):  # one sheared cell for all; runs of three
        batch = compressed_potential.eval(coords, shared, types)
        per_frame = shared if shared.ndim == 3 else np.broadcast_to(shared, (12, 3, 3))
        single = _single_frame_outputs(compressed_potential, coords, per_frame, types, atomic=False)
        for a, b in zip(batch, single):
            assert np.array_equal(a, b)


def test_batch_equals_the_evaluators_single_frame_path(compressed_potential):
    """The batched runtime path against ``RuntimeEvaluator.evaluate`` (the path of every other front end)."""
    coords, cells, types = _small_frames(16, seed=1)
    e, f, v = compressed_potential.eval(coords, cells, types)
    ev = compressed_potential.evaluator
    for k in range(coords.shape[0]):
        r = ev.evaluate(coords[k], reduce_cell(cells[k]).cell, types, 1)
        assert e[k, 0] == r.energy
        assert np.array_equal(f[k], r.force)
        assert np.array_equal(v[k], r.virial.reshape(9))


def test_batch_with_per_frame_types(compressed_potential):
    coords, cells, _ = _small_frames(12, seed=2)
    rng = np.random.default_rng(3)
    types = rng.integers(0, 2, size=(12, coords.shape[1]))
    batch = compressed_potential.eval(coords, cells, types, mixed_type=True)
    single = _single_frame_outputs(compressed_potential, coords, cells, types, atomic=False)
    for a, b in zip(batch, single):
        assert np.array_equal(a, b)


def test_batch_of_the_exact_evaluator(tiny_potential, water_frame):
    """The default per-frame loop of other evaluators (here the exact numpy one) is unchanged."""
    x, cell, types = water_frame
    coords = np.stack([x, x + 0.01])
    batch = tiny_potential.eval(coords, np.stack([cell, cell]), types)
    single = _single_frame_outputs(tiny_potential, coords, np.stack([cell, cell]), types, atomic=False)
    for a, b in zip(batch, single):
        assert np.array_equal(a, b)


def test_error_names_the_frame(compressed_potential):
    coords, cells, types = _small_frames(6, seed=4)
    coords[4, 2] = coords[4, 0]  # coincident atoms in frame 4
    with pytest.raises(InputError, match="frame 4"):
        compressed_potential.eval(coords, cells, types)


def test_counts_every_frame(compressed_potential):
    coords, cells, types = _small_frames(10, seed=5)
    before = compressed_potential.n_evaluations
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compressed_potential.eval(coords, cells, types)
    assert compressed_potential.n_evaluations == before + 10


def test_deeppot_methods(compressed_potential, water_frame):
    pot = compressed_potential
    assert pot.get_sel_type() == []
    assert pot.get_dim_fparam() == 0 and pot.get_dim_aparam() == 0
    x, cell, types = water_frame
    with pytest.raises(NotImplementedError, match="DeepPot"):
        pot.eval_descriptor(x[None], cell[None], types)
    e0 = pot.eval(x[None], cell[None], types)[0]
    pot.close()  # buffers freed; the Potential stays usable
    assert np.array_equal(pot.eval(x[None], cell[None], types)[0], e0)


@pytest.mark.parametrize("key", ["efield", "spin", "charge_spin", "fparam", "aparam"])
def test_unsupported_inputs_raise(compressed_potential, water_frame, key):
    x, cell, types = water_frame
    with pytest.raises(InputError, match=key.split("_")[0]):
        compressed_potential.eval(x[None], cell[None], types, **{key: np.zeros((1, 3))})
    compressed_potential.eval(x[None], cell[None], types, **{key: None})  # None: DeePMD-kit's default, accepted


def test_unknown_keyword_is_a_type_error(compressed_potential, water_frame):
    x, cell, types = water_frame
    with pytest.raises(TypeError, match="no_such_option"):
        compressed_potential.eval(x[None], cell[None], types, no_such_option=1)
