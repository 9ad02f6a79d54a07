"""Every dotted ``dpcompress.…`` name in the docs, docstrings and comments points at something real.

Modules move; a docstring that still names the old place sends a reader nowhere.  Quoted strings
(``"dpcompress.model"``, a file-format tag) are data, not references, and are skipped.
"""

import importlib
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r"(?<![\"'\w.])dpcompress(?:\.[A-Za-z_]\w*)+")


def _files():
    try:
        out = subprocess.run(["git", "ls-files", "*.py", "*.pyx", "*.pxd", "*.md"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the file list comes from git")
    return [ROOT / f for f in out]


def _resolves(dotted):
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        try:
            for name in parts[k:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


def test_dotted_references_resolve():
    stale = {}
    for path in _files():
        for match in REFERENCE.finditer(path.read_text(encoding="utf-8")):
            ref = match.group(0).rstrip(".")
            if not _resolves(ref):
                stale.setdefault(ref, set()).add(str(path.relative_to(ROOT)))
    assert not stale, "names that point nowhere: " + "; ".join(f"{r} in {sorted(f)}" for r, f in stale.items())
