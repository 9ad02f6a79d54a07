"""The C model runtime (src_c/dpc_model.h) on its own: against its numpy twin
(:mod:`dpcompress.reference.runtime`), across thread counts and chunk boundaries, with a reused
workspace, with atoms the model does not handle, and on bad frames."""

import glob
import os
import warnings

import numpy as np
import pytest

from conftest import DATA, TINY
from dpcompress import TableAccuracyWarning, compress
from dpcompress._ext import runtime as rt
from dpcompress.core.errors import InputError
from dpcompress.evaluators.runtime import RuntimeEvaluator
from dpcompress.modelfile import model_bytes
from dpcompress.neighbors import find_candidates
from dpcompress.reference.runtime import compute as twin

FIXTURES = ["se_e2_a_tiny", "se_e2_r_tiny", "se_e3_tiny", "se_atten_v2_tiny", "hybrid_tiny"]
VARIANTS = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(DATA, "deepmd_variants", "*", "frames.npz")))


def water(folder=TINY, k=0, stress=False):
    z = np.load(os.path.join(folder, "test_frames_stress.npz" if stress else "test_frames.npz"))
    return z["coord"][k].astype(float), z["box"][k].astype(float), z["atype"].astype(np.int64)


@pytest.fixture(scope="module")
def models():
    out = {name: compress(os.path.join(DATA, "deepmd", name, "frozen.dp")) for name in FIXTURES}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TableAccuracyWarning)  # relu/relu6 kinks: the tables are what they are
        for name in VARIANTS:
            out[name] = compress(os.path.join(DATA, "deepmd_variants", name, "model.dp"))
    return out


def _close(a, b, rel=1e-12):
    scale = max(np.abs(b).max(), 1.0)
    assert np.abs(np.asarray(a) - np.asarray(b)).max() <= rel * scale, np.abs(np.asarray(a) - np.asarray(b)).max()


@pytest.mark.parametrize("name", FIXTURES + VARIANTS)
def test_runtime_equals_numpy_twin(models, name):
    model = models[name]
    if name in VARIANTS:
        z = np.load(os.path.join(DATA, "deepmd_variants", name, "frames.npz"))
        coords, types = z["coord"][0].astype(float), z["atype"].astype(np.int64)
        cell = z["box"][0].astype(float) if "box" in z.files else None
    else:
        coords, cell, types = water(os.path.join(DATA, "deepmd", name), k=5, stress=True)  # close contacts
    r = RuntimeEvaluator(model_bytes(model)).evaluate(coords, cell, types, 2)
    e, f, w, beyond = twin(model, coords, cell, types)
    _close(r.atom_energy, e)
    _close(r.force, f)
    _close(r.atom_virial.reshape(-1, 9), w)
    assert (r.beyond_fine, r.beyond_table) == beyond


def replicated(n):
    """The tiny water frame repeated n x 1 x 1: more than one chunk of centers for n >= 11."""
    coords, cell, types = water()
    shifts = np.arange(n)[:, None] * cell[0]
    big = (coords[None] + shifts[:, None]).reshape(-1, 3)
    return big, cell * np.array([[n], [1], [1]]), np.tile(types, n)


@pytest.mark.parametrize("name", ["se_e2_a_tiny", "hybrid_tiny"])
def test_chunks_threads_and_workspace(models, name):
    """A frame of 12 x 192 atoms spans two chunks: every replica's atoms get the energies of the
    192-atom frame; results are bit-identical for 1, 2 and 3 threads; the workspace stops growing."""
    assert rt.CHUNK < 12 * 192 < 2 * rt.CHUNK
    ev = RuntimeEvaluator(model_bytes(models[name]))
    coords, cell, types = water()
    small = ev.evaluate(coords, cell, types, 1)
    big = replicated(12)
    runs = [ev.evaluate(*big, n) for n in (1, 2, 3)]
    _close(runs[0].atom_energy.reshape(12, -1), np.tile(small.atom_energy, (12, 1)))
    _close(runs[0].force.reshape(12, -1, 3), np.tile(small.force, (12, 1, 1)), 1e-11)
    for r in runs[1:]:
        for a, b in ((r.atom_energy, runs[0].atom_energy), (r.force, runs[0].force), (r.atom_virial, runs[0].atom_virial)):
            np.testing.assert_array_equal(a, b)
    size = ev.workspace_bytes
    ev.evaluate(*big, 3)
    ev.evaluate(coords, cell, types, 2)
    assert ev.workspace_bytes == size


def test_nep_chunks_and_threads():
    path = os.path.join(DATA, "nep", "PbTe_NEP4_example")
    from dpcompress import compress_nep

    z = np.load(os.path.join(path, "crystal_conv8.npz"))
    ev = RuntimeEvaluator(model_bytes(compress_nep(os.path.join(path, "nep.txt"))))
    n = 7
    cell = z["cell"] * n
    grid = np.array([[i, j, k] for i in range(n) for j in range(n) for k in range(n)]) @ z["cell"]
    coords = (z["positions"][None] + grid[:, None]).reshape(-1, 3)
    types = np.tile(z["type_index"], n**3)
    assert len(types) > rt.CHUNK
    runs = [ev.evaluate(coords, cell, types, t) for t in (1, 2)]
    np.testing.assert_array_equal(runs[0].force, runs[1].force)
    one = ev.evaluate(z["positions"], z["cell"], z["type_index"], 1)
    _close(runs[0].atom_energy.reshape(n**3, -1), np.tile(one.atom_energy, (n**3, 1)))


def test_atoms_the_model_does_not_handle_are_skipped(models):
    """Type -1 (LAMMPS's NULL in pair_coeff): neither a center nor a neighbor."""
    model = models["se_e2_a_tiny"]
    coords, cell, types = water()
    ev = RuntimeEvaluator(model_bytes(model))
    ref = ev.evaluate(coords, cell, types, 1)
    extra = np.vstack([coords, coords[:5] + 0.37])  # five stray atoms, close to real ones
    cand = find_candidates(extra, cell, ev.rcut)
    t = np.concatenate([types, -np.ones(5, dtype=np.int64)]).astype(np.int32)
    e, f, w, _ = ev.compute(cand, t, 1)
    np.testing.assert_array_equal(e[:192], ref.atom_energy)
    np.testing.assert_array_equal(f[:192], ref.force)
    assert not f[192:].any()


def test_bad_frames_raise_named_errors(models):
    ev = RuntimeEvaluator(model_bytes(models["se_e2_a_tiny"]))
    coords, cell, types = water()
    cand = find_candidates(coords, cell, ev.rcut)
    bad = types.astype(np.int32).copy()
    bad[7] = 5
    with pytest.raises(InputError, match="atom 7 has type 5"):
        ev.compute(cand, bad, 1)
    index = cand.index.copy()
    index[3] = 10**6
    broken = type(cand)(cand.x, cand.cell, cand.lattice, cand.image_owner, cand.image_lattice, cand.offsets, index)
    with pytest.raises(InputError, match="outside the frame's atoms and images"):
        ev.compute(broken, types.astype(np.int32), 1)
    close = coords.copy()
    close[9] = close[2]
    with pytest.raises(InputError, match="atoms 2 and 9 coincide"):
        ev.evaluate(close, cell, types, 2)
