"""The examples run and print what the README promises."""

import os
import subprocess
import sys

from conftest import REPO


def test_quickstart():
    # the package under test is the one pytest imports (the repository's)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run(
        [sys.executable, os.path.join(REPO, "examples", "quickstart.py")], capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "energy (compressed):   -29941.7232008" in out.stdout
    line = [l for l in out.stdout.splitlines() if l.startswith("energy (DeePMD-kit)")][0]
    assert float(line.split("|difference|")[1].split()[0]) < 1e-9


def test_md_nve_example_conserves_energy():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    water = os.path.join(REPO, "examples", "data", "water")
    out = subprocess.run(
        [sys.executable, os.path.join(REPO, "examples", "md_nve.py"), os.path.join(water, "model.dp"), os.path.join(water, "frame"), "--steps", "20"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert out.returncode == 0, out.stderr
    totals = [float(l.split("total")[1].split()[0]) for l in out.stdout.splitlines() if l.startswith("step")]
    assert len(totals) == 3 and max(totals) - min(totals) < 1e-3
