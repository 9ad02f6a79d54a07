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
