"""The systems of a DeePMD-kit training input, for ``dpcompress test --train-data / --valid-data``.

``dp test --train-data input.json`` tests on ``training.training_data.systems`` and
``--valid-data`` on ``training.validation_data.systems`` (DeePMD-kit 3.2, ``deepmd/entrypoints/test.py``):
one path or a list, each relative to the input file's folder, each searched for systems (folders
holding ``type.raw``), or, when the data section has ``rglob_patterns``, for the folders below it
matching one of the patterns (``pathlib.Path.rglob``) that hold ``type.raw``.
"""

import json
import os
from pathlib import Path

from ..core.errors import InputError

#: The data section each option reads.
SECTIONS = {"train": "training_data", "valid": "validation_data"}


def systems_from_input(path, which):
    """The system paths ``dp test --train-data/--valid-data path`` tests.

    Parameters
    ----------
    path : str
        The training input (JSON, the current ``training.*_data`` layout).
    which : {"train", "valid"}

    Returns
    -------
    list of str
        Folders and files for :func:`~dpcompress.data.discover_systems` (a folder is searched
        recursively); with ``rglob_patterns``, the matching system folders, sorted.

    Raises
    ------
    InputError
        An unreadable file, no such section or no systems in it (the message names the key).
    """
    option = f"--{which}-data"
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{option} {path}: cannot read the training input as JSON ({exc})") from None
    key = SECTIONS[which]
    section = doc.get("training", {}).get(key, {}) if isinstance(doc, dict) and isinstance(doc.get("training"), dict) else {}
    systems = section.get("systems") if isinstance(section, dict) else None
    if not systems or not (isinstance(systems, str) or all(isinstance(s, str) for s in systems)):
        raise InputError(f"{option} {path}: no systems in training.{key}.systems (a path or a list of paths expected)")
    root = Path(os.path.dirname(os.path.abspath(path)))
    roots = [str((root / s).resolve()) for s in ([systems] if isinstance(systems, str) else systems)]
    patterns = section.get("rglob_patterns")
    if not patterns:
        return roots
    if isinstance(patterns, str) or not all(isinstance(p, str) for p in patterns):
        raise InputError(f"{option} {path}: training.{key}.rglob_patterns must be a list of glob patterns")
    found = sorted({str(d) for r in roots for p in patterns for d in Path(r).rglob(p) if (d / "type.raw").is_file()})
    if not found:
        raise InputError(f"{option} {path}: no system (folder with type.raw) below {roots} matches {patterns}")
    return found
