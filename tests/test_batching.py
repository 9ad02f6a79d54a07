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


# ------------------------------------------------------------- the C frame loop (dpc_compute_frames)

def test_c_bins_equal_the_numpy_twin():
    """``dpc_cell_list_bins`` against :func:`dpcompress.reference.neighbors.cell_list_bins`: the same
    bins, reach, wraps and screened count; fractional coordinates to round-off (adjugate vs LAPACK)."""
    from dpcompress._ext import neighbors as kernel
    from dpcompress.reference import neighbors as twin

    rng = np.random.default_rng(11)
    for trial in range(40):
        n = int(rng.integers(1, 60))
        x = rng.normal(scale=6.0, size=(n, 3)) + (rng.uniform(-40, 40, 3) if trial % 3 else 0.0)
        cell = None if trial % 4 == 0 else reduce_cell(np.diag(rng.uniform(3, 20, 3)) + rng.uniform(-2, 2, (3, 3))).cell
        search = float(rng.uniform(1.0, 7.0))
        frac, wrapped, wrap, nbins, reach, screened, far = kernel.cell_list_bins(x, cell, search)
        t_frac, t_wrapped, t_wrap, t_nbins, t_reach, t_screened = twin.cell_list_bins(x, cell, search)
        assert far == -1
        assert (nbins, reach) == (t_nbins, t_reach)
        assert screened == pytest.approx(t_screened, rel=1e-12)
        np.testing.assert_allclose(frac, t_frac, rtol=0, atol=1e-12)
        np.testing.assert_allclose(wrapped, t_wrapped, rtol=0, atol=1e-10)
        if cell is None:
            assert wrap is None and t_wrap is None
        else:
            assert np.array_equal(wrap, t_wrap)
        assert kernel.search_radius(x, search) == twin.search_radius(x, search)


def test_c_frame_loop_equals_the_numpy_twin(compressed_potential):
    """``compute_frames`` against :func:`dpcompress.reference.runtime.compute_frames` (the readable
    per-frame twin): per-atom energies to 1e-12 eV, forces and virials to 1e-10."""
    from dpcompress._ext import runtime as rt
    from dpcompress._ext.blas import blas_single_thread
    from dpcompress.reference.runtime import compute_frames as twin

    coords, cells, types = _small_frames(5, seed=8)
    reduced = np.stack([reduce_cell(c).cell for c in cells])
    ev = compressed_potential.evaluator
    with blas_single_thread():
        ae, f, av, counts, _, failed, status, message, _ = rt.compute_frames(
            ev.runtime, rt.Workspace(), coords, types.astype(np.int32), reduced, None, n_threads=1)
    assert (failed, status, message) == (-1, 0, "")
    t_ae, t_f, t_av = twin(compressed_potential.model, coords, reduced, types)
    np.testing.assert_allclose(ae, t_ae, rtol=0, atol=1e-12)
    np.testing.assert_allclose(f, t_f, rtol=0, atol=1e-10)
    np.testing.assert_allclose(av.reshape(t_av.shape), t_av, rtol=0, atol=1e-10)


@pytest.mark.parametrize("periodic", [True, False])
def test_frame_parallel_threads_are_bit_identical(tiny_model, periodic):
    """Small frames go one per thread (each with its own workspace): the bits of the one-thread batch."""
    compressed = compress(tiny_model)
    coords, cells, types = _small_frames(20, seed=9)
    cells = cells if periodic else None
    one = Potential(compressed, n_threads=1).eval(coords, cells, types, atomic=True)
    for n in (2, 3, 7):
        many = Potential(compressed, n_threads=n).eval(coords, cells, types, atomic=True)
        for a, b in zip(one, many):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("threads", [1, 3])
def test_frame_loop_errors_name_the_first_bad_frame(tiny_model, threads):
    """A refused frame stops the C loop; the error is the single-frame path's, naming the lowest bad frame."""
    pot = Potential(compress(tiny_model), n_threads=threads)
    coords, cells, types = _small_frames(12, seed=10)
    coords[9, 1] = coords[9, 0]  # coincident in frames 9 and 5
    coords[5, 3] = coords[5, 2]
    with pytest.raises(InputError, match=r"frame 5: .*atoms 2 and 3"):
        pot.eval(coords, cells, types)
    coords, cells, types = _small_frames(6, seed=10)
    cells[4] = np.eye(3) * 0.05  # far too small a cell for the cutoff
    with pytest.raises(InputError, match=r"frame 4: cell too small"):
        pot.eval(coords, cells, types)


def test_slab_batch_equals_single_frames(compressed_potential):
    """Mixed periodicity: each frame's vacuum-padded cell goes to the C loop with the others."""
    coords, cells, types = _small_frames(8, seed=12)
    batch = compressed_potential.eval(coords, cells, types, pbc=[True, True, False], atomic=True)
    single = [compressed_potential.eval(coords[f:f + 1], cells[f:f + 1], types, pbc=[True, True, False], atomic=True)
              for f in range(8)]
    for k in range(5):
        assert np.array_equal(batch[k], np.concatenate([s[k] for s in single]))


# ----------------------------------------------------------------------------- eval_descriptor

DESCRIPTOR_FIXTURES = ("se_e2_a_tiny", "se_e2_r_tiny", "se_e3_tiny", "se_atten_v2_tiny", "hybrid_tiny")
DESCRIPTOR_FIXTURES += ("se_e3_tebd_tiny",)  # issue 16


@pytest.mark.parametrize("name", DESCRIPTOR_FIXTURES)
def test_eval_descriptor_equals_deepmd_kit(name):
    """``eval_descriptor`` of the exact and the compressed model against DeePMD-kit's own
    ``DeepPot.eval_descriptor`` (tests/data/deepmd/descriptors, first 12 atoms of frame 0): exact
    to 1e-12; compressed to 1e-12 relative to the descriptor's scale (se_e3's tables: 1e-10)."""
    import os

    here = os.path.join(os.path.dirname(__file__), "data", "deepmd")
    ref = np.load(os.path.join(here, "descriptors", f"{name}.npy"), allow_pickle=False)
    frames = np.load(os.path.join(here, "se_e2_a_tiny", "test_frames.npz"), allow_pickle=False)
    x, cell, types = frames["coord"][:1], frames["box"][:1], frames["atype"]
    model = os.path.join(here, name, "frozen.dp")
    exact = Potential(model).eval_descriptor(x, cell, types)
    packed = Potential(compress(model), n_threads=2).eval_descriptor(x, cell, types)
    assert exact.shape == packed.shape == (1, len(types), ref.shape[1])
    scale = np.abs(ref).max()
    np.testing.assert_allclose(exact[0, :12], ref, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(packed[0, :12], ref, rtol=0, atol=(1e-10 if name.startswith("se_e3") else 1e-12) * scale)


def test_eval_descriptor_batches_and_refusals(compressed_potential):
    coords, cells, types = _small_frames(5, seed=13)
    many = compressed_potential.eval_descriptor(coords, cells, types)
    for f in range(5):
        assert np.array_equal(many[f], compressed_potential.eval_descriptor(coords[f:f + 1], cells[f:f + 1], types)[0])
    assert compressed_potential.eval_descriptor(np.zeros((2, 0, 3)), None, np.zeros(0, dtype=int)).shape[:2] == (2, 0)
    with pytest.raises(InputError, match="fparam"):
        compressed_potential.eval_descriptor(coords, cells, types, fparam=np.zeros(1))


def test_eval_descriptor_refused_for_nep():
    import os

    nep = os.path.join(os.path.dirname(__file__), "data", "nep")
    path = next((os.path.join(nep, d, "nep.txt") for d in sorted(os.listdir(nep))
                 if os.path.exists(os.path.join(nep, d, "nep.txt"))), None) if os.path.isdir(nep) else None
    if path is None:
        pytest.skip("no NEP model in tests/data/nep")
    pot = Potential(path)
    with pytest.raises(InputError, match="NEP"):
        pot.eval_descriptor(np.zeros((1, 1, 3)), None, [pot.get_type_map()[0]])


def test_frames_with_parameters_in_one_call():
    """A model with frame and atomic parameters: the C frame loop takes each frame's normalised
    parameters; the batch is bit for bit the single-frame calls, on 1 and 3 threads, and
    ``eval_descriptor`` accepts the parameters (the descriptor does not depend on them)."""
    import os

    here = os.path.join(os.path.dirname(__file__), "data", "deepmd")
    coords, cells, types = _small_frames(7, seed=14)
    rng = np.random.default_rng(15)
    fparam = rng.uniform(0.5, 1.5, size=(7, 1))
    aparam = rng.uniform(0.0, 1.0, size=(7, coords.shape[1], 1))
    packed = compress(os.path.join(here, "se_e2_a_fparam_tiny", "frozen.dp"))
    one = Potential(packed, n_threads=1)
    batch = one.eval(coords, cells, types, atomic=True, fparam=fparam, aparam=aparam)
    for f in range(7):
        single = one.eval(coords[f:f + 1], cells[f:f + 1], types, atomic=True, fparam=fparam[f], aparam=aparam[f])
        for a, b in zip(batch, single):
            assert np.array_equal(a[f:f + 1], b)
    many = Potential(packed, n_threads=3).eval(coords, cells, types, atomic=True, fparam=fparam, aparam=aparam)
    for a, b in zip(batch, many):
        assert np.array_equal(a, b)
    d = one.eval_descriptor(coords, cells, types, fparam=fparam, aparam=aparam)
    assert d.shape[:2] == coords.shape[:2] and np.isfinite(d).all()
    with pytest.raises(InputError, match="aparam"):
        one.eval(coords, cells, types, fparam=fparam)
