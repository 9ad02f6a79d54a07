"""Outputs pinned bit for bit before the model runtime moved the per-frame step into C.

See :mod:`pinned_outputs`: every case is recomputed with 1 and 2 threads and must give
the same bytes (SHA-256 of energy, forces, virial, per-atom energies and virials) as
the commit recorded in ``tests/data/pinned/outputs.json``.
"""

import json

import numpy as np
import pytest

from pinned_outputs import NAMES, PINNED, cases, evaluate

with open(PINNED) as _fh:
    _TABLE = json.load(_fh)["cases"]

_CASES = {name: (model, frames) for name, model, frames in cases()}


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("name", sorted(_TABLE))
def test_pinned_outputs_bitwise(name, n_threads):
    model, frames = _CASES[name]
    got = evaluate(model, frames, n_threads)
    want = _TABLE[name]
    diff = np.max(np.abs(np.subtract(got["energy"], want["energy"])))
    bad = [k for k in NAMES if got["digests"][k] != want["digests"][k]]
    assert not bad, f"{name}: {bad} differ from the pinned bytes (max |dE| = {diff:.3g} eV)"
