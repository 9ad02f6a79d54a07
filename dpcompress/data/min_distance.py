"""Smallest pair distance in training data (what DeePMD-kit stores as ``min_nbor_dist``)."""

import os

import numpy as np

from ..core.bounded_yaml import load_json, load_yaml
from ..core.errors import DataFormatError
from .systems import read_systems


def frame_min_distance(coords, cell, cutoff):
    """Smallest distance between two atoms (or an atom and a periodic image) of one frame.

    Returns ``inf`` when no pair lies within ``cutoff``.
    """
    import vesin

    if cell is None:
        span = np.ptp(coords, axis=0) + 2 * cutoff + 1.0
        box, periodic = np.diag(span), True  # an empty margin of > 2 cutoff rules out images
        coords = coords - coords.min(axis=0) + cutoff
    else:
        box, periodic = cell, True
    (d,) = vesin.NeighborList(cutoff=cutoff, full_list=False).compute(coords, box, periodic, "d")
    return float(d.min()) if d.size else float("inf")


def min_neighbor_distance(systems, cutoff=6.0):
    """Global minimum pair distance over every frame of ``systems`` (list of :class:`System`)."""
    best = float("inf")
    for system in systems:
        for f in range(system.nframes):
            best = min(best, frame_min_distance(system.coords[f], None if system.cells is None else system.cells[f], cutoff))
    return best


def systems_from_training_script(script):
    """Training systems named by a DeePMD-kit input script (``training.training_data.systems``).

    JSON, or YAML when the name ends in ``.yaml``/``.yml`` (as ``dp`` reads them); read with the
    bounded loaders (an input script is untrusted like any file).  Relative paths are resolved
    against the script's folder first, then the working directory.
    """
    try:
        with open(script, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{script}: cannot read the training script ({exc})") from None
    is_yaml = os.path.splitext(script)[1].lower() in (".yaml", ".yml")
    cfg = load_yaml(text, script) if is_yaml else load_json(text, script, what="training script")
    try:
        systems = cfg["training"]["training_data"]["systems"]
    except (KeyError, TypeError):
        raise DataFormatError(f"{script}: no 'training.training_data.systems' entry") from None
    if isinstance(systems, str):
        systems = [systems]
    base = os.path.dirname(os.path.abspath(script))
    paths = []
    for s in systems:
        cand = s if os.path.isabs(s) else os.path.join(base, s)
        paths.append(cand if os.path.exists(cand) else s)
    return read_systems(paths)
