r"""Dipole and polarizability fittings of DeePMD-kit (``fitting_net.type`` "dipole" / "polar").

A tensor fitting's nets map an atom's net input :math:`x_i` (the descriptor :math:`D_i`, then any
frame/atomic parameters, as for energy models) to :math:`M` numbers (``embedding_width``, the
descriptor's embedding width; :math:`M^2` for a polarizability without ``fit_diag``), which are
contracted with the descriptor's rotation matrix :math:`\mathcal R_i \in \mathbb R^{M\times 3}`
(for se_e2_a and se_atten_v2 the last three rows of :math:`T_i = \frac1N\sum_j \tilde R_j^\top\otimes G_j`):

.. math::

    o_i = F_{t_i}(x_i) + b_{t_i},\qquad
    \mathbf d_i = o_i\,\mathcal R_i,\qquad
    \mathbf A_i = s_{t_i}\,\mathcal R_i^\top \operatorname{diag}(o_i)\,\mathcal R_i
        + s_{t_i}\,(c_{t_i} + \bar\beta_{t_i})\,\mathbf I

(dipole; polarizability with ``fit_diag``: without it :math:`\operatorname{diag}(o_i)` is the
symmetrised :math:`(O_i + O_i^\top)/2`, :math:`O_i` the :math:`M\times M` output).  :math:`s` is
``scale``, :math:`c` ``constant_matrix`` and :math:`\bar\beta_t` the mean diagonal of the model's
``out_bias`` (both only with ``shift_diag``); the dipole model ignores its ``out_bias``.  The
fitting's ``exclude_types`` zero :math:`o_i` (before the diagonal shift), the model's
``atom_exclude_types`` zero the whole atomic tensor.  Global tensors are the sums over atoms.
Facts from DeePMD-kit 3.2's numpy backend (``deepmd/dpmodel/fitting/{dipole,polarizability}_fitting.py``,
``atomic_model/{dipole,polar}_atomic_model.py``); docs/dp-file-params-tensors.md.
"""

from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np

from ..core.errors import ModelFormatError, UnsupportedModelError
from ..core.networks import Network
from ..descriptors.fields import network_list, type_set
from .fitting_params import FittingParams, read_fitting_params

#: fitting ``type`` -> width of the atomic tensor (3 for a vector, 9 for a 3x3 matrix, row-major)
TENSOR_WIDTH = {"dipole": 3, "polar": 9}
#: descriptors whose rotation matrix the evaluators compute
TENSOR_DESCRIPTORS = ("se_e2_a", "se_atten_v2")


@dataclass(frozen=True)
class TensorFitting(FittingParams):
    """The fitting of a dipole or polarizability model (see the module docstring for the math).

    Attributes
    ----------
    kind : {"dipole", "polar"}
    networks : tuple of Network
        One per atom type (or one shared), mapping ``dim_descrpt + n_params`` to ``net_out``.
    bias_atom_e : ndarray (ntypes, net_out)
    embedding_width : int
        :math:`M`, the descriptor's embedding width.
    exclude_types : frozenset of int
        Types whose net output is zero; the selected types (``sel_type``) are the others.
    fit_diag, shift_diag : bool
        Polarizability only (False for a dipole).
    scale : ndarray (ntypes,) or None
    constant_matrix : ndarray (ntypes,) or None
        Polarizability only.
    numb_fparam, numb_aparam, fparam_avg, fparam_inv_std, aparam_avg, aparam_inv_std, default_fparam
        Frame/atomic parameters (:class:`~dpcompress.models.fitting_params.FittingParams`).

    ``kind``, ``networks``, ``bias_atom_e`` and ``embedding_width`` are required (their defaults
    only keep the parameter fields first); a missing one raises ``ValueError``.
    """

    kind: str = ""
    networks: Tuple[Network, ...] = ()
    bias_atom_e: np.ndarray = None
    embedding_width: int = 0
    exclude_types: frozenset = field(default_factory=frozenset)
    fit_diag: bool = False
    shift_diag: bool = False
    scale: Optional[np.ndarray] = None
    constant_matrix: Optional[np.ndarray] = None

    def __post_init__(self):
        if self.kind not in TENSOR_WIDTH or not self.networks or self.bias_atom_e is None or self.embedding_width < 1:
            raise ValueError("TensorFitting needs kind ('dipole' or 'polar'), networks, bias_atom_e and embedding_width")

    @property
    def width(self):
        """Numbers per atomic tensor: 3 (dipole) or 9 (polarizability, row-major 3x3)."""
        return TENSOR_WIDTH[self.kind]

    @property
    def net_out(self):
        """Outputs of each net: M, or M*M for a polarizability without ``fit_diag``."""
        M = self.embedding_width
        return M * M if self.kind == "polar" and not self.fit_diag else M

    def network(self, atom_type):
        return self.networks[0] if len(self.networks) == 1 else self.networks[atom_type]

    def sel_type(self, ntypes):
        """DeePMD-kit's ``get_sel_type()``: the types not in ``exclude_types``, ascending."""
        return [t for t in range(ntypes) if t not in self.exclude_types]


def _per_type(var, key, ntypes, source):
    arr = var.array(key)
    if arr.size != ntypes:
        raise ModelFormatError(f"{source}: '{var.where}.{key}' has shape {arr.shape}, expected ({ntypes},) or "
                               f"({ntypes}, 1)")
    return arr.reshape(ntypes).astype(np.float64)


def read_tensor_fitting(node, ntypes, descriptor):
    """Read a ``dipole`` or ``polar`` fitting node on ``descriptor``.

    Raises
    ------
    UnsupportedModelError
        A descriptor without a rotation matrix here, ``dim_case_embd``, spin.
    ModelFormatError
        Nets or arrays whose sizes disagree with ``embedding_width`` and the descriptor width.
    """
    kind = node.raw("type")
    if descriptor.type_name not in TENSOR_DESCRIPTORS:
        raise UnsupportedModelError(
            f"{node.source}: a {kind!r} fitting on descriptor {descriptor.type_name!r} is not supported (tensor "
            f"models need the descriptor's rotation matrix; supported: {', '.join(TENSOR_DESCRIPTORS)})")
    if getattr(descriptor, "attention", None) is not None:
        raise UnsupportedModelError(f"{node.source}: a {kind!r} fitting on dpa1 with attention layers is not supported "
                                    "(the tensor evaluators have no attention layers)")
    if int(node.number("dim_case_embd", 0)) != 0:
        raise UnsupportedModelError(f"{node.source}: '{node.where}.dim_case_embd' = {node.raw('dim_case_embd')} is "
                                    "not supported (must be 0)")
    if node.raw("spin", None) is not None:
        raise UnsupportedModelError(f"{node.source}: spin models are not supported ('{node.where}.spin' is set)")
    M = node.number("embedding_width", positive=True)
    if M != int(M) or int(M) != descriptor.n_channels:
        raise ModelFormatError(f"{node.source}: '{node.where}.embedding_width' = {M} but the descriptor's embedding "
                               f"width is {descriptor.n_channels}")
    M = int(M)
    params = read_fitting_params(node)
    fit_diag = bool(node.flag("fit_diag", True)) if kind == "polar" else False
    shift_diag = bool(node.flag("shift_diag", True)) if kind == "polar" else False
    net_out = M * M if kind == "polar" and not fit_diag else M
    n_in = descriptor.dim_out + params["numb_fparam"] + params["numb_aparam"]
    mixed = node.flag("mixed_types", False)
    _, nets = network_list(node.node("nets"), (0,) if mixed else (1,), ntypes)
    for k, net in enumerate(nets):
        if net is None:
            raise ModelFormatError(f"{node.source}: '{node.where}.nets.networks[{k}]' is null")
        if net.in_dim != n_in or net.out_dim != net_out:
            raise ModelFormatError(
                f"{node.source}: '{node.where}.nets.networks[{k}]' maps {net.in_dim} -> {net.out_dim}, expected "
                f"{n_in} -> {net_out} (descriptor width {descriptor.dim_out} + parameters; embedding_width {M}"
                f"{'' if net_out == M else ' squared'})")
    var = node.node("@variables")
    bias = var.array("bias_atom_e", shape=(ntypes, net_out))
    scale = constant = None
    if kind == "polar":
        scale = _per_type(var, "scale", ntypes, node.source)
        constant = _per_type(var, "constant_matrix", ntypes, node.source)
    return TensorFitting(kind=kind, networks=tuple(nets), bias_atom_e=np.asarray(bias, dtype=np.float64),
                         embedding_width=M, exclude_types=type_set(node, "exclude_types", ntypes), fit_diag=fit_diag,
                         shift_diag=shift_diag, scale=scale, constant_matrix=constant, **params)


def refuse_tensor_model(model, what):
    """Raise :class:`UnsupportedModelError` when ``model`` is a dipole/polar model, naming ``what`` refuses it
    (the energy evaluators, the ``.dpc`` writer) and the class that evaluates it."""
    fitting = getattr(model, "fitting", None)
    if isinstance(fitting, TensorFitting):
        cls = {"dipole": "DeepDipole", "polar": "DeepPolar"}[fitting.kind]
        raise UnsupportedModelError(
            f"{getattr(model, 'source', '') or 'model'}: a {fitting.kind!r} (tensor) model; {what} energy models "
            f"only: evaluate it with dpcompress.{cls} (it reads the .dp file and its compressed .dpc)")


__all__ = ["TensorFitting", "TENSOR_WIDTH", "TENSOR_DESCRIPTORS", "read_tensor_fitting", "refuse_tensor_model"]
