"""The examples run and print what the README promises."""

import os
import subprocess
import sys

from conftest import REPO


def test_quickstart():
    out = subprocess.run(
        [sys.executable, os.path.join(REPO, "examples", "quickstart.py")], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "energy (compressed):   -29941.7232008" in out.stdout
    line = [l for l in out.stdout.splitlines() if l.startswith("energy (DeePMD-kit)")][0]
    assert float(line.split("|difference|")[1].split()[0]) < 1e-9
