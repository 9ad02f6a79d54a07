"""The training-set scan under ``mpiexec -n 2`` and ``-n 4``: same JSON bytes as one plain process; errors end the job.

Launched from pytest as subprocesses (``mpiexec`` next to this Python, from the
``mpich`` wheel), so the plain ``python -m pytest`` runs them; skipped with the
reason when mpi4py or mpiexec is missing (``pip install 'dpcompress[mpi]'``).
"""

import os
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from conftest import DATA, REPO, TINY, mpiexec_or_skip
from dpcompress.scan import main
from test_scan import _frames, write_npy

pytestmark = pytest.mark.mpi

MODEL = os.path.join(TINY, "frozen.dp")


def run_mpi(ranks, args, timeout=120):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [mpiexec_or_skip(), "-n", str(ranks), sys.executable, "-m", "dpcompress.scan", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=env,
    )
    return proc, time.perf_counter() - t0


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """11 frames in 4 systems of different sizes (npy with two sets, cluster, HDF5)."""
    root = tmp_path_factory.mktemp("scan_mpi") / "data"
    coords, boxes, types = _frames()
    write_npy(str(root / "a"), coords[:4], boxes[:4], types, split=2)
    keep = np.linalg.norm(coords[4] - coords[4][0], axis=1) < 8.0
    write_npy(str(root / "cluster"), coords[4:6, keep], None, types[keep])
    write_npy(str(root / "z"), coords[5:8], boxes[5:8], types)
    with h5py.File(root / "b.h5", "w") as fh:
        g = fh.create_group("sys")
        g["type.raw"] = types
        g["type_map.raw"] = np.array([b"O", b"H"])
        g["set.000/coord.npy"] = coords[6:8].reshape(2, -1)
        g["set.000/box.npy"] = boxes[6:8].reshape(2, 9)
    return root


@pytest.fixture(scope="module")
def serial_json(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "scan.json"
    assert main([str(data), "-m", MODEL, "-o", str(out), "--no-mpi", "-q"]) == 0
    return out.read_bytes()


@pytest.mark.parametrize("ranks", [2, 4])
def test_same_json_as_serial(data, serial_json, tmp_path, ranks):
    out = tmp_path / f"scan{ranks}.json"
    proc, _ = run_mpi(ranks, [data, "-m", MODEL, "-o", out])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.read_bytes() == serial_json
    assert f"[rank 0/{ranks}]" in proc.stderr and "wrote" in proc.stderr  # progress and log on rank 0 only
    assert f"[rank 1/{ranks}]" not in proc.stderr


def test_error_while_scanning_aborts_all_ranks(data, tmp_path):
    """A NaN in the last frame (scanned by the last rank): that rank names the file and the job ends, fast."""
    bad = tmp_path / "bad"
    shutil.copytree(data, bad)
    coord = bad / "z" / "set.000" / "coord.npy"
    a = np.load(coord)
    a[-1, 0] = np.nan
    np.save(coord, a)
    proc, elapsed = run_mpi(4, [bad, "--rcut", 6, "-o", tmp_path / "x.json"], timeout=60)
    assert proc.returncode != 0
    assert str(coord) in proc.stderr and "frame 2" in proc.stderr and "[rank 3/4]" in proc.stderr
    assert elapsed < 10, elapsed
    assert not (tmp_path / "x.json").exists()


def test_corrupt_file_found_before_scanning(data, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(data, bad)
    coord = bad / "a" / "set.001" / "coord.npy"
    coord.write_bytes(b"\0garbage" * 64)
    proc, elapsed = run_mpi(2, [bad, "--rcut", 6, "-o", tmp_path / "x.json"], timeout=60)
    assert proc.returncode != 0 and str(coord) in proc.stderr and elapsed < 10
    assert proc.stderr.count(str(coord)) == 1  # reported once (by rank 0), every rank exits


def test_bare_command_same_stdout_and_json_as_serial(data, tmp_path):
    """``mpiexec -n 2 python -m dpcompress.scan DIR FILE.extxyz``, no option: the summary and the JSON of one process.

    Run in ``tmp_path`` so the default ``scan.json`` lands there; the statistics (integer
    histograms, minima, maxima) merge exactly, so stdout and the file are byte-identical.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    serial_dir, mpi_dir = tmp_path / "serial", tmp_path / "mpi"
    serial_dir.mkdir()
    mpi_dir.mkdir()
    extxyz = os.path.join(DATA, "formats", "water.extxyz")  # parsed into memory by rank 0, sent to the others
    serial = subprocess.run([sys.executable, "-m", "dpcompress.scan", str(data), extxyz, "--no-mpi"], cwd=serial_dir,
                            capture_output=True, text=True, timeout=120, env=env)
    assert serial.returncode == 0, serial.stderr[-3000:]
    parallel = subprocess.run([mpiexec_or_skip(), "-n", "2", sys.executable, "-m", "dpcompress.scan", str(data), extxyz], cwd=mpi_dir,
                              capture_output=True, text=True, timeout=120, env=env)
    assert parallel.returncode == 0, parallel.stderr[-3000:]
    assert parallel.stdout == serial.stdout and "min_nbor_dist" in serial.stdout
    assert (mpi_dir / "scan.json").read_bytes() == (serial_dir / "scan.json").read_bytes()
    assert "[rank 0/2]" in parallel.stderr
