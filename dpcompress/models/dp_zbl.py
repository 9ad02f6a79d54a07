r"""DeePMD-kit's DP + ZBL linear model (``"type": "zbl"``) as plain data, and its reader.

DeePMD-kit 3.2 (PyTorch backend, the reference) computes per atom :math:`i` of type :math:`t`

.. math::

    E_i = (1 - w_i)\,\bigl(e^{\mathrm{DP}}_i + \beta^{\mathrm{DP}}_t\bigr)
          + w_i\,\bigl(e^{\mathrm{tab}}_i + \beta^{\mathrm{tab}}_t\bigr) + \beta_t,
    \qquad e^{\mathrm{tab}}_i = \tfrac12 \sum_{j} E_{t_i t_j}(r_{ij}),

with each sub-model's own ``out_bias`` :math:`\beta^{\mathrm{DP}}`, :math:`\beta^{\mathrm{tab}}` and the
linear model's :math:`\beta`.  The ZBL weight switches on the softmin distance of the neighbors
(the pair table's neighbor list when its ``sel`` is at least the DP one, else the DP list):

.. math::

    \sigma_i = \frac{\sum_j r_{ij} e^{-r_{ij}/\alpha}}{\max(\sum_j e^{-r_{ij}/\alpha}, 10^{-20})},\quad
    u = \frac{\sigma_i - r_{\min}}{r_{\max} - r_{\min}},\quad
    w_i = \begin{cases} 1 & \sigma_i < r_{\min}\\ -6u^5 + 15u^4 - 10u^3 + 1 & r_{\min} \le \sigma_i < r_{\max}\\
    0 & \sigma_i \ge r_{\max}\end{cases}

and :math:`w_i = 0` for an atom without neighbors (:math:`\alpha` = ``smin_alpha``, :math:`r_{\min}, r_{\max}`
= ``sw_rmin``, ``sw_rmax``).  The weight depends on the positions, so its gradient enters the forces.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..core.errors import ModelFormatError, UnsupportedModelError
from ..descriptors.fields import Node
from .deepmd_reader import model_from_tree
from .model import DPModel
from .pair_table import PairTable, read_pair_table


@dataclass(frozen=True)
class DPZBLModel:
    r"""A DP model and a pair table mixed by DeePMD-kit's ZBL switching (module docstring).

    Attributes
    ----------
    dp : DPModel
        The DP part, its own ``out_bias`` included (uncompressed, or compressed by dpcompress).
    table : PairTable
    tab_out_bias, out_bias : ndarray, shape (ntypes,)
        The pair-table sub-model's and the linear model's per-type energy shifts.
    sw_rmin, sw_rmax, smin_alpha : float
    type_map : tuple of str
    source : str
    """

    dp: DPModel
    table: PairTable
    tab_out_bias: np.ndarray
    out_bias: np.ndarray
    sw_rmin: float
    sw_rmax: float
    smin_alpha: float
    type_map: Tuple[str, ...]
    source: str = ""
    compression: Optional[dict] = None

    @property
    def ntypes(self):
        return len(self.type_map)

    @property
    def rcut(self):
        return max(float(self.dp.rcut), float(self.table.rcut))

    @property
    def is_compressed(self):
        return self.dp.is_compressed

    @property
    def descriptor(self):
        return self.dp.descriptor

    @property
    def fitting(self):
        return self.dp.fitting


def is_linear_tree(tree) -> bool:
    """True for a serialised DeePMD-kit linear model (``model.type`` "zbl" or "linear")."""
    model = tree.get("model") if isinstance(tree, dict) else None
    return isinstance(model, dict) and model.get("type") in ("zbl", "linear", "linear_ener")


def _bias(node, ntypes, source):
    b = node.node("@variables").array("out_bias")
    if b.ndim != 3 or b.shape[1:] != (ntypes, 1):
        raise ModelFormatError(f"{source}: '{node.where}.@variables.out_bias' has shape {b.shape}, "
                               f"expected (1, {ntypes}, 1)")
    if not np.all(np.isfinite(b)):
        raise ModelFormatError(f"{source}: '{node.where}.@variables.out_bias' has non-finite entries")
    return np.ascontiguousarray(b[0, :, 0], dtype=np.float64)


def _no_exclusions(node, source):
    for key in ("atom_exclude_types", "pair_exclude_types"):
        v = node.raw(key, []) or []
        if len(v):
            raise UnsupportedModelError(f"{source}: '{node.where}.{key}' = {v!r} on the linear model is not "
                                        "supported (exclusions inside the DP part are)")


def dp_zbl_from_tree(tree, source="") -> DPZBLModel:
    """Build a :class:`DPZBLModel` from the serialised tree of a DeePMD-kit DP + ZBL model.

    Accepted: ``model.type`` "zbl" with ``models`` = [a standard DP energy model, a ``pairtab`` model]
    sharing the linear model's ``type_map``.  A general ``linear`` model (constant weights) is refused.

    Raises
    ------
    ModelFormatError, UnsupportedModelError
        Naming the file and the key.
    """
    top = Node(tree, "", source)
    model = top.node("model")
    mtype = model.raw("type")
    if mtype != "zbl":
        raise UnsupportedModelError(f"{source}: linear model type {mtype!r} is not supported (only DeePMD-kit's "
                                    "DP + ZBL model, 'zbl')")
    type_map = model.raw("type_map")
    if not isinstance(type_map, list) or not type_map or not all(isinstance(t, str) for t in type_map):
        raise ModelFormatError(f"{source}: 'model.type_map' should be a non-empty list of element names")
    ntypes = len(type_map)
    subs = model.raw("models")
    if not isinstance(subs, list) or len(subs) != 2:
        raise ModelFormatError(f"{source}: 'model.models' should be a list of two models (DP, pair table)")
    dp_node, tab_node = Node(subs[0], "model.models[0]", source), Node(subs[1], "model.models[1]", source)
    if dp_node.raw("type", "standard") != "standard" or tab_node.raw("type") != "pairtab":
        raise UnsupportedModelError(f"{source}: 'model.models' are {dp_node.raw('type', None)!r} and "
                                    f"{tab_node.raw('type', None)!r}; expected 'standard' and 'pairtab'")
    for sub in (dp_node, tab_node):
        if sub.raw("type_map") != type_map:
            raise UnsupportedModelError(f"{source}: '{sub.where}.type_map' = {sub.raw('type_map')!r} differs from "
                                        f"'model.type_map' = {type_map!r} (type remapping is not supported)")
    _no_exclusions(model, source)
    _no_exclusions(tab_node, source)
    sub_tree = {"model": subs[0]}
    if isinstance(tree.get("@variables"), dict):
        sub_tree["@variables"] = tree["@variables"]
    dp = model_from_tree(sub_tree, source)
    if not dp.descriptor.mixed_types:
        raise UnsupportedModelError(f"{source}: the DP part of a linear model needs a mixed-type descriptor")
    table = read_pair_table(tab_node, ntypes)
    rmin = model.number("sw_rmin")
    rmax = model.number("sw_rmax")
    if not rmax > rmin:
        raise ModelFormatError(f"{source}: 'model.sw_rmax' = {rmax} should be > 'model.sw_rmin' = {rmin}")
    alpha = model.number("smin_alpha", 0.1, positive=True) if model.raw("smin_alpha", None) is not None else 0.1
    return DPZBLModel(dp=dp, table=table, tab_out_bias=_bias(tab_node, ntypes, source),
                      out_bias=_bias(model, ntypes, source), sw_rmin=rmin, sw_rmax=rmax, smin_alpha=alpha,
                      type_map=tuple(type_map), source=source)
