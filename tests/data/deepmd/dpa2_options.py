"""Edited copies of ``dpa2_tiny``'s model tree, one per non-default DPA-2 option (numpy only).

Shared by ``tests/test_dpa2.py`` (finite differences on dpcompress's evaluator) and
``make_dpa2_options_reference.py`` (DeePMD-kit's own outputs on the same edited models): both apply
:func:`edited_tree` to the tree of ``dpa2_tiny/frozen.dp`` as DeePMD-kit serialises it, so the
models are identical.  New weights are drawn from ``numpy.random.default_rng(SEED)`` in a fixed
order; they are arbitrary (not trained), sized so that every new term changes the energy visibly.
"""

import copy

import numpy as np

SEED = 20261206
SCALE = 0.3


def _layer(w, b=None):
    """A serialised DeePMD-kit ``Layer`` with activation none and no residual."""
    return {"@class": "Layer", "@version": 2, "bias": b is not None, "use_timestep": False,
            "activation_function": "none", "resnet": False, "precision": "float64", "trainable": True,
            "@variables": {"w": w, "b": b, "idt": None}}


def _set(desc, key, value, layers=True):
    """Set a repformer option in ``repformer_args`` and on every layer."""
    desc["repformer_args"][key] = value
    if layers:
        for layer in desc["repformers_variable"]["repformer_layers"]:
            layer[key] = value


def _res_incr(desc, rng):
    _set(desc, "update_style", "res_incr")


def _res_residual(desc, rng):
    _set(desc, "update_style", "res_residual")
    for layer in desc["repformers_variable"]["repformer_layers"]:
        d1, d2 = layer["g1_dim"], layer["g2_dim"]
        n1 = int(layer["g1_out_mlp"]) + int(layer["update_g1_has_conv"] and layer["g1_out_conv"]) + 1 + int(
            layer["update_g1_has_attn"])
        n2 = (1 + int(layer["update_g2_has_g1g1"]) + int(layer["update_g2_has_attn"])) if layer["update_chnnl_2"] else 0
        nh = int(layer["update_h2"]) if layer["update_chnnl_2"] else 0
        layer["@variables"] = {"g1_residual": [rng.normal(0.5, SCALE, d1) for _ in range(n1)],
                               "g2_residual": [rng.normal(0.5, SCALE, d2) for _ in range(n2)],
                               "h2_residual": [rng.normal(0.5, SCALE, 1) for _ in range(nh)]}


def _update_h2(desc, rng):
    desc["repformer_args"]["update_h2"] = True
    layers = desc["repformers_variable"]["repformer_layers"]
    for layer in layers[:-1]:  # the last layer never updates g2 / h2 (DeePMD-kit writes false there)
        layer["update_h2"] = True
        nh = layer["attn2_nhead"]
        layer["attn2_ev_apply"] = {"@class": "Atten2EquiVarApply", "@version": 1, "input_dim": layer["g2_dim"],
                                   "head_num": nh, "precision": "float64",
                                   "head_map": _layer(rng.normal(0, SCALE, (nh, 1)))}


def _attn2_has_gate(desc, rng):
    _set(desc, "attn2_has_gate", True)
    for layer in desc["repformers_variable"]["repformer_layers"]:
        if "attn2g_map" in layer:
            layer["attn2g_map"]["has_gate"] = True


def _g1_out_conv_false(desc, rng):
    _set(desc, "g1_out_conv", False)
    for layer in desc["repformers_variable"]["repformer_layers"]:
        d1, d2 = layer["g1_dim"], layer["g2_dim"]
        layer["proj_g1g2"] = _layer(rng.normal(0, SCALE, (d1, d2)))
        w = layer["linear1"]["@variables"]["w"]
        at = 0 if layer["g1_out_mlp"] else d1  # linear1's input: [g1 (no mlp)], conv, grrg, drrd
        layer["linear1"]["@variables"]["w"] = np.concatenate([w[:at], rng.normal(0, SCALE, (d2, w.shape[1])), w[at:]])


def _g1_out_mlp_false(desc, rng):
    _set(desc, "g1_out_mlp", False)
    for layer in desc["repformers_variable"]["repformer_layers"]:
        d1 = layer["g1_dim"]
        layer.pop("g1_self_mlp", None)
        w = layer["linear1"]["@variables"]["w"]
        layer["linear1"]["@variables"]["w"] = np.concatenate([rng.normal(0, SCALE, (d1, w.shape[1])), w])


def _use_sqrt_nnei_false(desc, rng):
    _set(desc, "use_sqrt_nnei", False)


def _smooth_false(desc, rng):
    desc["smooth"] = False
    for layer in desc["repformers_variable"]["repformer_layers"]:
        layer["smooth"] = False
        for key in ("attn2g_map", "loc_attn"):
            if key in layer:
                layer[key]["smooth"] = False


def _add_tebd(desc, rng):
    desc["add_tebd_to_repinit_out"] = True
    tebd = desc["repinit_args"]["tebd_dim"]
    g1 = desc["repformer_args"]["g1_dim"]
    desc["tebd_transform"] = _layer(rng.normal(0, SCALE, (tebd, g1)))


def _small_sel(desc, rng):
    """repinit nsel 6 and repformer nsel 4: both lists truncated to the nearest neighbors (no new weights)."""
    for block, var, n in (("repinit_args", "repinit_variable", 6), ("repformer_args", "repformers_variable", 4)):
        desc[block]["nsel"] = n
        stats = desc[var]["@variables"]
        for key in ("davg", "dstd"):
            stats[key] = stats[key][:, :n].copy()
    for layer in desc["repformers_variable"]["repformer_layers"]:
        layer["sel"] = [4]


def _repinit_type_one_side(desc, rng):
    """The repinit strip net sees the neighbor's type embedding only (its first layer takes tebd_dim inputs)."""
    desc["repinit_args"]["type_one_side"] = True
    net = desc["repinit_variable"]["embeddings_strip"]["networks"][0]
    first = net["layers"][0]["@variables"]
    first["w"] = rng.normal(0, SCALE, (desc["repinit_args"]["tebd_dim"], first["w"].shape[1]))
    net["in_dim"] = desc["repinit_args"]["tebd_dim"]


def _env_protection(desc, rng):
    desc["env_protection"] = 0.1
    for var in ("repinit_variable", "repformers_variable"):
        desc[var]["env_mat"]["protection"] = 0.1


def _repinit_concat(desc, rng):
    """The repinit's type embedding concatenated to s (DeePMD-kit's default mode): one net, first layer
    of 1 + 2 tebd_dim inputs, no strip net."""
    desc["repinit_args"]["tebd_input_mode"] = "concat"
    var = desc["repinit_variable"]
    var.pop("embeddings_strip", None)
    net = var["embeddings"]["networks"][0]
    first = net["layers"][0]["@variables"]
    n_in = 1 + 2 * desc["repinit_args"]["tebd_dim"]
    first["w"] = np.concatenate([first["w"], rng.normal(0, SCALE, (n_in - 1, first["w"].shape[1]))])
    net["in_dim"] = n_in


def _direct_dist(desc, rng):
    desc["repformer_args"]["direct_dist"] = True


def _use_tebd_bias(desc, rng):
    """A bias in the type-embedding layer (the padding row stays zero)."""
    desc["use_tebd_bias"] = True
    te = desc["type_embedding"]
    te["use_tebd_bias"] = True
    te["embedding"]["bias"] = True
    layer = te["embedding"]["layers"][0]
    layer["bias"] = True
    layer["@variables"]["b"] = rng.normal(0, SCALE, layer["@variables"]["w"].shape[1])


def _exclude_types(desc, rng):
    """O-H pairs masked in both neighbor lists (they keep their slots)."""
    desc["exclude_types"] = [[0, 1]]


#: option name -> edit of the descriptor node (in place)
OPTIONS = {
    "res_incr": _res_incr,
    "res_residual": _res_residual,
    "update_h2": _update_h2,
    "attn2_has_gate": _attn2_has_gate,
    "g1_out_conv_false": _g1_out_conv_false,
    "g1_out_mlp_false": _g1_out_mlp_false,
    "use_sqrt_nnei_false": _use_sqrt_nnei_false,
    "smooth_false": _smooth_false,
    "add_tebd_to_repinit_out": _add_tebd,
    "small_sel": _small_sel,
    "repinit_type_one_side": _repinit_type_one_side,
    "env_protection": _env_protection,
    "repinit_concat": _repinit_concat,
    "direct_dist": _direct_dist,
    "use_tebd_bias": _use_tebd_bias,
    "exclude_types": _exclude_types,
}


def edited_tree(tree, names):
    """A deep copy of the model tree with the options ``names`` (applied in this order) switched on."""
    out = copy.deepcopy(tree)
    rng = np.random.default_rng(SEED)
    for name in names:
        OPTIONS[name](out["model"]["descriptor"], rng)
    return out


def cluster(coords, types, center=0, radius=5.0):
    """The atoms within ``radius`` Å of atom ``center`` (no cell): a small open system for the checks."""
    keep = np.linalg.norm(coords - coords[center], axis=1) < radius
    return coords[keep].copy(), np.asarray(types)[keep].copy()


def lonely(coords, types):
    """``cluster(radius 3.0)`` plus an O atom 4.6 Å beyond it (repinit neighbors only, no repformer
    neighbor) and an H atom 30 Å away (no neighbor at all): the empty-list corners of the attention."""
    c, t = cluster(coords, types, radius=3.0)
    far, iso = c.max(axis=0) + np.array([4.6, 0.0, 0.0]), c.max(axis=0) + 30.0
    return np.vstack([c, far, iso]), np.concatenate([t, [0, 1]])
