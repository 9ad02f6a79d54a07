"""The layers of docs/design.md hold: no import runs up the layers, no two modules import each
other (import-linter, configured in pyproject.toml), and the public API looks as documented."""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO


def test_import_contracts_are_kept():
    pytest.importorskip("importlinter", reason="import-linter is in the test extra: pip install -e '.[test]'")
    exe = shutil.which("lint-imports") or os.path.join(os.path.dirname(sys.executable), "lint-imports")
    out = subprocess.run([exe, "--config", os.path.join(REPO, "pyproject.toml")], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_public_api_is_typed():
    import dpcompress

    assert os.path.isfile(os.path.join(os.path.dirname(dpcompress.__file__), "py.typed"))
    for obj in (dpcompress.Potential.__init__, dpcompress.Potential.eval, dpcompress.compress, dpcompress.load_model,
                dpcompress.save_model):
        assert obj.__annotations__, obj
