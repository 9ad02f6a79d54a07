"""Turn a DeePMD-kit serialised model tree into a :class:`~dpcompress.models.model.DPModel`.

Only what dpcompress can evaluate exactly is accepted (frame/atomic parameters included:
:mod:`dpcompress.models.fitting_params`); anything else (another descriptor, spin, a non-energy
fitting, ...) raises
:class:`~dpcompress.core.errors.UnsupportedModelError`, and a malformed tree raises
:class:`~dpcompress.core.errors.ModelFormatError`; both name the file and the key.  Each
descriptor is read by its own unit (:mod:`dpcompress.descriptors`).
"""

import warnings

import numpy as np

from ..core.activations import check_activation
from ..core.errors import ModelFormatError, UnsupportedModelError
from ..descriptors import read_descriptor
from ..descriptors.fields import MAX_TYPES, Node, network_list, type_pairs, type_set
from .fitting_params import read_fitting_params
from .model import DPModel, EnergyFitting
from .tensor_fitting import TENSOR_WIDTH, read_tensor_fitting


#: DeePMD-kit precision names below float64 ("default" and "double" are float64)
LOWER_PRECISIONS = {"float32": "float32", "single": "float32", "float16": "float16", "half": "float16",
                    "bfloat16": "bfloat16"}


def _walk_dicts(tree, where=""):
    """Yield ``(where, dict)`` for every mapping of the tree, without recursion."""
    stack = [(where, tree)]
    while stack:
        at, node = stack.pop()
        if isinstance(node, dict):
            yield at, node
            stack.extend((f"{at}.{k}", v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((f"{at}[{i}]", v) for i, v in enumerate(node))


def _lower_precisions(model_tree):
    """The precisions below float64 any part of the model was trained in, sorted."""
    found = set()
    for _, node in _walk_dicts(model_tree):
        p = node.get("precision")
        if isinstance(p, str) and p.lower() in LOWER_PRECISIONS:
            found.add(LOWER_PRECISIONS[p.lower()])
    return sorted(found)


def _check_activation_names(model_tree, source):
    """Every ``activation_function`` of the model is one we evaluate (the readers check the layers'
    own; this also covers the settings they do not read, so a bogus name never loads)."""
    for where, node in _walk_dicts(model_tree, "model"):
        if "activation_function" in node:
            check_activation(node["activation_function"], f"{source}: '{where}.activation_function'")


def read_energy_fitting(node, ntypes, dim_descrpt):
    """Read an ``ener`` fitting."""
    ftype = node.raw("type", "ener")
    if ftype != "ener":
        raise UnsupportedModelError(f"{node.source}: fitting type {ftype!r} is not supported (only energy models, 'ener')")
    if int(node.number("dim_case_embd", 0)) != 0:
        raise UnsupportedModelError(f"{node.source}: '{node.where}.dim_case_embd' = {node.raw('dim_case_embd')} is "
                                    "not supported (must be 0)")
    params = read_fitting_params(node)
    n_in = dim_descrpt + params["numb_fparam"] + params["numb_aparam"]
    if node.raw("spin", None) is not None:
        raise UnsupportedModelError(f"{node.source}: spin models are not supported ('{node.where}.spin' is set)")
    atom_ener = node.raw("atom_ener", []) or []
    if any(a is not None for a in atom_ener):
        raise UnsupportedModelError(f"{node.source}: '{node.where}.atom_ener' = {atom_ener!r} is not supported")
    if int(node.number("dim_out", 1)) != 1:
        raise UnsupportedModelError(f"{node.source}: '{node.where}.dim_out' must be 1 for an energy model")
    mixed = node.flag("mixed_types", False)
    ndim, nets = network_list(node.node("nets"), (0,) if mixed else (1,), ntypes)
    for k, net in enumerate(nets):
        if net is None:
            raise ModelFormatError(f"{node.source}: '{node.where}.nets.networks[{k}]' is null")
        if net.in_dim != n_in or net.out_dim != 1:
            raise ModelFormatError(
                f"{node.source}: '{node.where}.nets.networks[{k}]' maps {net.in_dim} -> {net.out_dim}, "
                f"expected {n_in} -> 1 (descriptor width {dim_descrpt} + numb_fparam + numb_aparam)"
            )
    var = node.node("@variables")
    bias = var.array("bias_atom_e", shape=(ntypes, 1))[:, 0]
    return EnergyFitting(networks=tuple(nets), bias_atom_e=bias, exclude_types=type_set(node, "exclude_types", ntypes),
                         **params)


def model_from_tree(tree, source=""):
    """Build a :class:`DPModel` from a serialised tree (see :func:`load_tree`)."""
    top = Node(tree, "", source)
    model = top.node("model")
    mtype = model.raw("type", "standard")
    if mtype != "standard":
        raise UnsupportedModelError(f"{source}: model type {mtype!r} is not supported (only 'standard' energy models)")
    if model.raw("@class", "Model") != "Model":
        raise UnsupportedModelError(f"{source}: '@class' = {model.raw('@class')!r} is not a standard model")
    type_map = model.raw("type_map")
    if not isinstance(type_map, list) or not type_map or not all(isinstance(t, str) for t in type_map):
        raise ModelFormatError(f"{source}: 'model.type_map' should be a non-empty list of element names")
    if len(type_map) > MAX_TYPES:
        raise ModelFormatError(f"{source}: 'model.type_map' has {len(type_map)} types (> {MAX_TYPES})")
    ntypes = len(type_map)
    if model.raw("spin", None) is not None:
        raise UnsupportedModelError(f"{source}: spin models are not supported")
    desc = model.node("descriptor")
    descriptor = read_descriptor(desc, ntypes)
    fit_node = model.node("fitting")
    if fit_node.raw("type", "ener") in TENSOR_WIDTH:  # dipole / polar: dpcompress.DeepDipole, DeepPolar
        fitting = read_tensor_fitting(fit_node, ntypes, descriptor)
    else:
        fitting = read_energy_fitting(fit_node, ntypes, descriptor.dim_out)
    width = getattr(fitting, "width", 1)
    _check_activation_names(model.data, source)
    low = _lower_precisions(model.data)
    if low:
        warnings.warn(f"{source}: model trained in lower precision ({', '.join(low)}); dpcompress evaluates it in "
                      "float64, so its results differ from DeePMD-kit's at that precision's level", stacklevel=3)
    mvar = model.node("@variables")
    out_bias = mvar.array("out_bias")
    if out_bias.ndim != 3 or out_bias.shape[1:] != (ntypes, width):
        raise ModelFormatError(f"{source}: 'model.@variables.out_bias' has shape {out_bias.shape}, expected "
                               f"(1, {ntypes}, {width})")
    min_nbor = None
    if top.has("@variables") and isinstance(top.raw("@variables"), dict):
        v = top.raw("@variables").get("min_nbor_dist")
        if v is not None:
            v = float(np.asarray(v).reshape(-1)[0]) if np.size(v) == 1 else None
            if v is None or not np.isfinite(v) or v <= 0:
                raise ModelFormatError(f"{source}: '@variables.min_nbor_dist' should be a positive number")
            min_nbor = v
    if min_nbor is None and isinstance(model.raw("min_nbor_dist", None), (int, float)):
        min_nbor = float(model.raw("min_nbor_dist"))
    return DPModel(
        type_map=tuple(type_map),
        descriptor=descriptor,
        fitting=fitting,
        out_bias=out_bias[0, :, 0].copy() if width == 1 else out_bias[0].copy(),
        pair_exclude_types=type_pairs(model, "pair_exclude_types", ntypes),
        atom_exclude_types=type_set(model, "atom_exclude_types", ntypes),
        min_nbor_dist=min_nbor,
        source=source,
    )
