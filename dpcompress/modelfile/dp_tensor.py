r"""A compressed dipole / polarizability model as a ``.dpc`` file (kind ``dp_tensor``), and back.

The layout is the energy model's (:mod:`dpcompress.modelfile.dp`: descriptor parts, fitting nets)
with these differences (docs/model-file.md, "Tensor models"):

* ``model.int[0]`` = 3 (:data:`~dpcompress.modelfile.dp.KIND_DP_TENSOR`), header ``kind`` "dp_tensor";
* the fitting nets end with ``net_out`` = M outputs (M² for a polarizability without ``fit_diag``);
  ``fit.bias`` is (ntypes, net_out), ``model.out_bias`` (ntypes, 3 or 9);
* header ``model.tensor``: ``kind`` ("dipole" / "polar"), ``embedding_width`` M, ``fit_diag``,
  ``shift_diag``; a polarizability adds the arrays ``tensor.scale`` and ``tensor.constant_matrix``
  (ntypes,).

The C model runtime computes energies and forces, so it does not open these files (its reader
refuses model kind 3, naming DeepDipole / DeepPolar); they are checked by the numpy twin of its checks
(:func:`dpcompress.modelfile.dp.check`, plus the tensor fields here) and evaluated by
:class:`dpcompress.DeepDipole` / :class:`dpcompress.DeepPolar` on the same compiled table kernel.
"""

import dataclasses

import numpy as np

from ..core.errors import ModelFormatError
from ..descriptors.base import KIND_SE_A, KIND_SE_ATTEN
from ..models import EnergyFitting
from ..models.fitting_params import PARAM_FIELDS
from ..models.tensor_fitting import TENSOR_WIDTH, TensorFitting
from . import dp

_POLAR_ARRAYS = ("tensor.scale", "tensor.constant_matrix")


def is_tensor_model(model):
    """Whether ``model`` is a DP model with a dipole / polar fitting."""
    return isinstance(getattr(model, "fitting", None), TensorFitting)


def pack(model):
    """``(header, arrays)`` of a compressed tensor model (the energy layout with the tensor fields)."""
    fit = model.fitting
    nt = model.ntypes
    # the energy writer packs the descriptor and the nets; the tensor fields replace its biases
    as_energy = EnergyFitting(networks=fit.networks, bias_atom_e=np.zeros(nt), exclude_types=fit.exclude_types,
                              **{k: getattr(fit, k) for k in PARAM_FIELDS})
    header, arrays = dp.pack(dataclasses.replace(model, fitting=as_energy, out_bias=np.zeros(nt)))
    arrays["model.int"][0] = dp.KIND_DP_TENSOR
    arrays["model.out_bias"] = np.ascontiguousarray(model.out_bias, dtype=np.float64).reshape(nt, fit.width)
    arrays["fit.bias"] = np.ascontiguousarray(fit.bias_atom_e, dtype=np.float64).reshape(nt, fit.net_out)
    if fit.kind == "polar":
        arrays["tensor.scale"] = np.asarray(fit.scale, dtype=np.float64).reshape(nt)
        arrays["tensor.constant_matrix"] = np.asarray(fit.constant_matrix, dtype=np.float64).reshape(nt)
    header["kind"] = "dp_tensor"
    header["model"]["tensor"] = {"kind": fit.kind, "embedding_width": int(fit.embedding_width),
                                 "fit_diag": bool(fit.fit_diag), "shift_diag": bool(fit.shift_diag)}
    return header, arrays


def _settings(header, source):
    """The checked header entry ``model.tensor``: (kind, M, fit_diag, shift_diag)."""
    def fail(msg):
        raise ModelFormatError(f"{source}: {msg}")

    t = (header.get("model") or {}).get("tensor")
    if not isinstance(t, dict):
        fail("header key 'model.tensor' is missing (a dp_tensor model)")
    kind, M = t.get("kind"), t.get("embedding_width")
    if kind not in TENSOR_WIDTH:
        fail(f"header key 'model.tensor.kind' = {kind!r}, expected one of {sorted(TENSOR_WIDTH)}")
    if not isinstance(M, int) or isinstance(M, bool) or not 1 <= M <= 1 << 16:
        fail(f"header key 'model.tensor.embedding_width' = {M!r}, expected an integer in [1, 65536]")
    flags = [t.get("fit_diag"), t.get("shift_diag")]
    if not all(isinstance(f, bool) for f in flags) or (kind == "dipole" and any(flags)):
        fail(f"header keys 'model.tensor.fit_diag/shift_diag' = {flags!r}: booleans, false for a dipole")
    return kind, M, flags[0], flags[1]


def check(header, arrays, source=""):
    """Refuse a ``dp_tensor`` file whose arrays or header are inconsistent (the energy checks, then the tensor fields).

    Raises
    ------
    ModelFormatError
        Naming the file and the array or header key.
    """
    kind, M, fit_diag, _ = _settings(header, source)
    net_out = M * M if kind == "polar" and not fit_diag else M
    polar = kind == "polar"
    dp.check(header, arrays, source, tensor=(net_out, TENSOR_WIDTH[kind], _POLAR_ARRAYS if polar else ()))
    c = dp.Checker(header, arrays, source)
    I = arrays["model.int"]
    nt = int(I[1])
    if int(I[2]) != 1 or int(arrays["part0.int"][0]) not in (KIND_SE_A, KIND_SE_ATTEN):
        c.fail("a tensor model needs one se_e2_a or se_atten_v2 descriptor part (its rotation matrix)")
    if int(arrays["part0.int"][5]) != M:
        c.fail(f"header key 'model.tensor.embedding_width' = {M}, the descriptor has {int(arrays['part0.int'][5])} "
               "channels")
    if polar:
        for name in _POLAR_ARRAYS:
            c.finite(name, "f8", (nt,))


def unpack(header, arrays, source=""):
    """The compressed tensor :class:`~dpcompress.models.DPModel` of a file checked by :func:`check`."""
    kind, M, fit_diag, shift_diag = _settings(header, source)
    model = dp.unpack(header, arrays, source)
    e = model.fitting
    polar = kind == "polar"
    fitting = TensorFitting(
        kind=kind, networks=e.networks, bias_atom_e=np.array(arrays["fit.bias"]), embedding_width=M,
        exclude_types=e.exclude_types, fit_diag=fit_diag, shift_diag=shift_diag,
        scale=np.array(arrays["tensor.scale"]) if polar else None,
        constant_matrix=np.array(arrays["tensor.constant_matrix"]) if polar else None,
        **{k: getattr(e, k) for k in PARAM_FIELDS})
    return dataclasses.replace(model, fitting=fitting)


__all__ = ["is_tensor_model", "pack", "check", "unpack"]
