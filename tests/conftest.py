"""Shared test fixtures and helpers.

Test data live in ``tests/data`` (small, shipped).  The large DeePMD-kit fixtures
of the project's shared folder (``../shared/fixtures/deepmd`` next to the
repository) are used when present, by tests marked ``slow``; without them
those tests skip.
"""

import os

import numpy as np
import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(TESTS, "data")
REPO = os.path.dirname(TESTS)
SHARED_DEEPMD = os.environ.get(
    "DPCOMPRESS_SHARED_FIXTURES", os.path.join(os.path.dirname(REPO), "shared", "fixtures", "deepmd")
)

TINY = os.path.join(DATA, "deepmd", "se_e2_a_tiny")


def shared_fixture(name):
    """Path of a shared DeePMD-kit fixture folder, or skip the test when absent."""
    path = os.path.join(SHARED_DEEPMD, name)
    if not os.path.isdir(path):
        pytest.skip(f"shared fixture {name} not found at {SHARED_DEEPMD}")
    return path


def mpiexec_or_skip():
    """The mpiexec next to this Python (pip install mpich), or skip the test: MPI runs need mpi4py and it."""
    import sysconfig

    pytest.importorskip("mpi4py", reason="mpi4py not installed (pip install 'dpcompress[mpi]')")
    mpiexec = os.path.join(sysconfig.get_path("scripts"), "mpiexec")
    if not os.path.exists(mpiexec):
        pytest.skip(f"no mpiexec next to this Python ({mpiexec}): pip install mpich")
    return mpiexec


def dpa2_options():
    """``tests/data/deepmd/dpa2_options.py`` as a module: the DPA-2 option sets and their edited trees."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("dpa2_options", os.path.join(DATA, "deepmd", "dpa2_options.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load_frames(folder, stress=False):
    """Test frames and DeePMD-kit's uncompressed reference outputs of a fixture folder."""
    suffix = "_stress" if stress else ""
    frames = np.load(os.path.join(folder, f"test_frames{suffix}.npz"))
    ref = np.load(os.path.join(folder, f"ref_uncompressed_pth{suffix}.npz"))
    return frames, ref


@pytest.fixture(scope="session")
def tiny_model():
    from dpcompress import load_model

    return load_model(os.path.join(TINY, "frozen.dp"))


@pytest.fixture(scope="session")
def tiny_potential(tiny_model):
    from dpcompress import Potential

    return Potential(tiny_model)


def water_frames():
    """The tiny fixture's water frames (the attention fixtures' test frames too), float64:
    (coords (nframes, 192, 3), cells (nframes, 3, 3), types (192,))."""
    with np.load(os.path.join(TINY, "test_frames.npz"), allow_pickle=False) as f:
        coords = f["coord"].astype(np.float64).reshape(len(f["coord"]), -1, 3)
        cells = f["box"].astype(np.float64).reshape(-1, 3, 3)
        types = f["atype"].astype(np.int64)
    return coords, cells, types


@pytest.fixture(scope="session")
def water_frame():
    """Frame 0 of the tiny fixture: (coords (192,3), cell (3,3), types (192,))."""
    frames = np.load(os.path.join(TINY, "test_frames.npz"))
    return (
        frames["coord"][0].astype(np.float64),
        frames["box"][0].astype(np.float64),
        frames["atype"].astype(np.int64),
    )


def random_rotation(rng):
    """A uniformly random proper rotation matrix."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q
