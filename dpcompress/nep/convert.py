"""Conversions between NEP flavours.

* PWMLFF ``nep_to_lmps.txt`` / NEP5 per-element output biases → one GPUMD NEP4
  bias for a given composition: b_com = Σ_t b_t N_t / Σ_t N_t (exact total
  energy for that composition only; forces and virials unchanged).
* :func:`to_gpumd` writes a ``nep.txt`` current GPUMD reads (standard cutoff
  line with neighbour caps, which PWMLFF files lack).
"""

import numpy as np

from ..core.errors import InputError
from .model import write_nep


def common_bias(model, counts):
    """b_com for a composition: ``counts`` maps element symbol (or type index) → number of atoms."""
    b = model.b1_type + model.b1
    n = np.zeros(model.ntypes)
    for k, v in dict(counts).items():
        t = model.elements.index(k) if isinstance(k, str) and k in model.elements else k
        if not isinstance(t, (int, np.integer)) or not 0 <= t < model.ntypes:
            raise InputError(f"unknown element {k!r}; the model has {model.elements}")
        if v < 0:
            raise InputError(f"negative atom count for {k!r}")
        n[t] += v
    if n.sum() <= 0:
        raise InputError("counts must hold at least one atom")
    return float((b * n).sum() / n.sum())


def with_common_bias(model, counts):
    """A copy of ``model`` as plain NEP4 with the composition-weighted shared bias."""
    import copy

    m = copy.deepcopy(model)
    m.b1 = common_bias(model, counts)
    m.b1_type = np.zeros(model.ntypes)
    m.pwmlff_biases = False
    m.version = 4 if model.version == 5 else model.version
    m.tables = None
    return m


def to_gpumd(model, path, counts=None, caps=None):
    """Write ``model`` as a GPUMD-readable ``nep.txt``.

    Per-element biases (PWMLFF, NEP5) are folded into one bias for ``counts``
    (required then); ``caps`` = (MN_R, MN_A) neighbour caps, default the file's
    or (500, 300).
    """
    m = model
    if np.any(m.b1_type != 0):
        if counts is None:
            raise InputError("the model has per-element output biases: give counts={element: N} for the common bias")
        m = with_common_bias(model, counts)
    write_nep(m, path, version=m.version, caps=caps)
    return m
