r"""What the scan needs of a model: type map, cutoffs, and the normalisation of each descriptor part.

For an se_e2_a / se_e2_r part, the table input of neighbor type :math:`n` of center type
:math:`c` is :math:`x = (s - \bar R_{c,n}) / \sigma_{c,n}`, with :math:`\bar R_{c,n}`,
:math:`\sigma_{c,n}` the radial component (index 0) of ``davg``/``dstd`` at the first slot of
neighbor type :math:`n`.  These plain arrays travel to every rank (``bcast``), not the model.
"""

import os

import numpy as np

from ..core.errors import InputError
from ..descriptors import parts as descriptor_parts
from ..modelfile import load_model

#: Descriptors whose table input is the radial s(r) normalised per (center, neighbor type) slot.
RADIAL_TABLE_DESCRIPTORS = ("se_e2_a", "se_e2_r")


def part_info(part, k):
    """Plain data of descriptor part ``k``: name, cutoffs, ``sel``, and ``avg``/``std`` (ntypes, ntypes) or None."""
    info = dict(part=k, descriptor=getattr(part, "type_name", type(part).__name__))
    for name in ("rcut", "rcut_smth", "env_protection"):
        value = getattr(part, name, None)
        info[name] = None if value is None else float(value)
    sel = getattr(part, "sel", None)
    info["sel"] = None if sel is None else [int(s) for s in np.ravel(sel)]
    info["mixed_types"] = bool(getattr(part, "mixed_types", False))
    info["avg"] = info["std"] = None
    davg, dstd = getattr(part, "davg", None), getattr(part, "dstd", None)
    if info["descriptor"] in RADIAL_TABLE_DESCRIPTORS and davg is not None and sel is not None and not info["mixed_types"]:
        davg, dstd = np.asarray(davg, dtype=np.float64), np.asarray(dstd, dtype=np.float64)
        offsets = np.concatenate([[0], np.cumsum(info["sel"])])[:-1]
        nt = len(info["sel"])
        avg = np.full((davg.shape[0], nt), np.nan)
        std = np.full((davg.shape[0], nt), np.nan)
        for n in range(nt):
            if info["sel"][n] > 0:  # a type with no slot has no statistics
                avg[:, n] = davg[:, offsets[n], 0]
                std[:, n] = dstd[:, offsets[n], 0]
        info["avg"], info["std"] = avg, std
    return info


def model_setup(path):
    """Type map, cutoff, switch start and per-part data of the model file ``path``.

    ``rcut_smth`` is that of the (first) part whose cutoff is the model's.

    Raises
    ------
    ModelFormatError, UnsupportedModelError
        From :func:`dpcompress.modelfile.load_model`.
    InputError
        Not a Deep Potential model (a NEP model has no descriptor parts to scan for).
    """
    model = load_model(path)
    if getattr(model, "descriptor", None) is None:
        raise InputError(f"{path}: not a Deep Potential model ({type(model).__name__}); the scan reads DeePMD-kit models")
    found = descriptor_parts(model.descriptor)
    return dict(
        file=os.fspath(path),
        type_map=tuple(model.type_map),
        rcut=float(model.rcut),
        rcut_smth=float(next(p.rcut_smth for p in found if float(p.rcut) == float(model.rcut))),
        parts=[part_info(p, k) for k, p in enumerate(found)],
    )
