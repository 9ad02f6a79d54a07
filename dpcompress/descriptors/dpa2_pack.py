r"""The repformer half of a compressed DPA-2 as flat arrays: packing, checked unpacking.

A compressed DPA-2 (:mod:`.dpa2_tables`) is the se_atten_v2 repinit part (its table, gate table, type
embedding: the arrays of :func:`dpcompress.descriptors.se_atten_v2.pack`) plus the arrays here, all
named ``rf...``; nothing of it is approximated.  Only the compressed form's options exist
(:func:`dpcompress.descriptors.dpa2_tables.check_compressible`), so the layout is fixed by a few sizes:

``rf.int`` (int64, 6)
    ``nlayers, rf_nsel, repinit_dim, g1_dim, has_g1_shape, has_tebd_transform``.
``rf.real`` (float64, 2)
    ``rf_rcut, rf_rcut_smth`` (:math:`0 \le r_s < r_c`).
``rf.layer_int`` (int64, (nlayers, 8))
    per layer ``g1_dim, g2_dim, axis_neuron, update_chnnl_2, attn1_hidden, attn1_nhead, attn2_hidden,
    attn2_nhead`` (:data:`LAYER_INTS`); ``update_chnnl_2`` is 1 on every layer but the last.
``rf.layer_real`` (float64, (nlayers, 3))
    per layer ``attn1_shift, attn2_shift, ln_eps``.
``rf.dstd`` (ntypes, 4), ``rf.g2_embd.w`` (1, g2), ``rf.g2_embd.b`` (g2), ``rf.g1_shape.w``
(repinit_dim, g1) when ``has_g1_shape``, ``rf.tebd_transform.w`` (tebd_dim, g1) when
``has_tebd_transform``, and per layer k the weights ``rf{k}.<name>`` of :func:`layer_shapes`.
``rf.update_style`` (int64, 1), optional
    the layers' update rule, an index into :data:`UPDATE_STYLES` (0 res_avg, 1 res_incr, 2
    res_residual); absent: res_avg (so files of the default options are unchanged).  With res_residual
    every layer k has ``rf{k}.g1_residual`` (4, g1): the vectors :math:`r_1..r_4` of the g1 update's
    terms (self MLP, convolution, linear1, local attention), and the g2-updating layers
    ``rf{k}.g2_residual`` (3, g2) of theirs (linear2, g1g1, attention).
``rf.g1_out_mlp`` (int64, 1), optional
    0: DeePMD-kit's ``g1_out_mlp`` false on every layer (no self MLP: no ``rf{k}.g1_self_mlp``; g1
    heads linear1's input, ``rf{k}.linear1.w`` is (g1 + g2 A + g1 A, g1); ``g1_residual`` has 3 rows,
    without the self MLP's); absent or 1: true.
``rf.g1_out_conv`` (int64, 1), optional
    0: ``g1_out_conv`` false on every layer (the convolution goes into linear1's input after g1:
    ``rf{k}.proj_g1g2.w`` is (g1, g2), ``rf{k}.linear1.w`` gains g2 rows; ``g1_residual`` loses its
    row); absent or 1: true.
``rf.attn2_has_gate`` (int64, 1), optional
    1: the g2 attention's logits are gated by :math:`h_{2,j}\cdot h_{2,k}` (no new weights); absent or 0:
    not.

:func:`check_arrays` is the reader's side: every array present, float64/int64 as stated, of the stated
shape, finite; sizes within bounds; no other ``rf`` array.  The part (kind 7) is written and read by
:mod:`.dpa2_part`; :mod:`dpcompress.modelfile.dp_dpa2` runs these checks for the Python reader.
"""

import numpy as np

from ..core.errors import ModelFormatError
from .dpa2 import DescriptorDPA2
from .dpa2_repformer import UPDATE_STYLES, Linear, RepformerLayer
from .fields import MAX_SEL, MAX_WIDTH

#: the ``.dpc`` part kind of a compressed DPA-2
KIND_DPA2 = 7

#: columns of ``rf.layer_int``
LAYER_INTS = ("g1_dim", "g2_dim", "axis_neuron", "update_chnnl_2", "attn1_hidden", "attn1_nhead", "attn2_hidden",
              "attn2_nhead")
#: columns of ``rf.layer_real``
LAYER_REALS = ("attn1_shift", "attn2_shift", "ln_eps")
#: entries of ``rf.int``
HEAD_INTS = ("nlayers", "rf_nsel", "repinit_dim", "g1_dim", "has_g1_shape", "has_tebd_transform")
MAX_LAYERS = 64


def layer_shapes(d1, d2, ax, ch2, h1, n1, h2, n2, mlp=True, conv=True):
    """``{name: shape}`` of one layer's arrays in the compressed form (names without the ``rf{k}.`` prefix).

    g1 update: ``linear1`` on :math:`[\\mathrm{grrg}, \\mathrm{drrd}]` (widths :math:`g_2 A + g_1 A`),
    ``g1_self_mlp``, ``proj_g1g2`` (projects g2: ``g1_out_conv``), the local attention ``mapq``,
    ``mapkv``, ``head_map1``; g2 update (``update_chnnl_2``): ``linear2``, ``proj_g1g1g2``, the gated
    attention ``mapqk``, ``mapv``, ``head_map2`` and its layer norm ``ln_w``, ``ln_b``.  ``mlp`` false
    (``g1_out_mlp``): no ``g1_self_mlp``, linear1 takes g1 first; ``conv`` false (``g1_out_conv``):
    ``proj_g1g2`` projects g1 to g2, linear1 takes the convolution next.
    """
    s = {"linear1.w": (d2 * ax + d1 * ax + (0 if mlp else d1) + (0 if conv else d2), d1), "linear1.b": (d1,)}
    if mlp:
        s.update({"g1_self_mlp.w": (d1, d1), "g1_self_mlp.b": (d1,)})
    s.update({"proj_g1g2.w": (d2, d1) if conv else (d1, d2), "mapq.w": (d1, h1 * n1), "mapkv.w": (d1, (h1 + d1) * n1),
              "head_map1.w": (d1 * n1, d1), "head_map1.b": (d1,)})
    if ch2:
        s.update({"linear2.w": (d2, d2), "linear2.b": (d2,), "proj_g1g1g2.w": (d1, d2), "mapqk.w": (d2, 2 * h2 * n2),
                  "mapv.w": (d2, d2 * n2), "head_map2.w": (d2 * n2, d2), "head_map2.b": (d2,), "ln_w": (d2,),
                  "ln_b": (d2,)})
    return s


_LINEARS = ("linear1", "g1_self_mlp", "proj_g1g2", "mapq", "mapkv", "head_map1", "linear2", "proj_g1g1g2", "mapqk",
            "mapv", "head_map2")
# the layer's attribute of each packed linear (the local attention's and the g2 attention's head maps differ)
_ATTR = dict(head_map1="head_map1", head_map2="head_map2")


def pack_repformers(desc):
    """The ``rf...`` arrays of a DescriptorDPA2 in the compressed form (see the module doc)."""
    if not np.all(desc.rf_dstd == desc.rf_dstd[:, :1]):
        raise ModelFormatError("the repformer's dstd differs between neighbor slots; the compressed DPA-2 stores "
                               "one row per type (as DeePMD-kit computes it)")
    f64 = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
    L = desc.layers
    g1 = L[0].g1_dim
    arrays = {
        "rf.int": np.array([len(L), desc.rf_nsel, desc.repinit.dim_out, g1, int(desc.g1_shape is not None),
                            int(desc.tebd_transform is not None)], dtype=np.int64),
        "rf.real": np.array([desc.rf_rcut, desc.rf_rcut_smth], dtype=np.float64),
        "rf.layer_int": np.array([[int(getattr(l, k)) for k in LAYER_INTS] for l in L], dtype=np.int64).reshape(-1, len(LAYER_INTS)),
        "rf.layer_real": np.array([[l.attn1_shift, l.attn2_shift, l.ln[2] if l.ln is not None else 1e-5] for l in L],
                                  dtype=np.float64).reshape(-1, len(LAYER_REALS)),
        "rf.dstd": f64(desc.rf_dstd[:, 0, :]),
        "rf.g2_embd.w": f64(desc.g2_embd.w),
        "rf.g2_embd.b": f64(desc.g2_embd.b),
    }
    styles = {l.update_style for l in L}
    if len(styles) != 1:
        raise ModelFormatError(f"the repformer layers' update styles differ ({sorted(styles)}); the compressed DPA-2 "
                               "stores one (as DeePMD-kit's repformer_args)")
    style = styles.pop()
    if style != "res_avg":
        arrays["rf.update_style"] = np.array([UPDATE_STYLES.index(style)], dtype=np.int64)
    mlps = {bool(l.g1_out_mlp) for l in L}
    if len(mlps) != 1:
        raise ModelFormatError("the repformer layers' g1_out_mlp differ; the compressed DPA-2 stores one")
    mlp = mlps.pop()
    if not mlp:
        arrays["rf.g1_out_mlp"] = np.array([0], dtype=np.int64)
    convs = {bool(l.g1_out_conv) for l in L}
    if len(convs) != 1:
        raise ModelFormatError("the repformer layers' g1_out_conv differ; the compressed DPA-2 stores one")
    conv = convs.pop()
    if not conv:
        arrays["rf.g1_out_conv"] = np.array([0], dtype=np.int64)
    gates = {bool(l.attn2_has_gate) for l in L if l.update_chnnl_2}  # the last layer has no g2 attention
    if len(gates) > 1:
        raise ModelFormatError("the repformer layers' attn2_has_gate differ; the compressed DPA-2 stores one")
    if gates == {True}:
        arrays["rf.attn2_has_gate"] = np.array([1], dtype=np.int64)
    if desc.g1_shape is not None:
        arrays["rf.g1_shape.w"] = f64(desc.g1_shape.w)
    if desc.tebd_transform is not None:
        arrays["rf.tebd_transform.w"] = f64(desc.tebd_transform.w)
    for k, l in enumerate(L):
        for name in layer_shapes(*_layer_ints(l), mlp=mlp, conv=conv):
            if name in ("ln_w", "ln_b"):
                arrays[f"rf{k}.{name}"] = f64(l.ln[0 if name == "ln_w" else 1])
                continue
            lin, part = name.rsplit(".", 1)
            arrays[f"rf{k}.{name}"] = f64(getattr(getattr(l, _ATTR.get(lin, lin)), part))
        if style == "res_residual":
            for name in residual_shapes(l.g1_dim, l.g2_dim, l.update_chnnl_2, mlp, conv):
                arrays[f"rf{k}.{name}"] = f64(np.stack(getattr(l, name)))
    return arrays


def residual_shapes(d1, d2, ch2, mlp=True, conv=True):
    """``{name: shape}`` of a res_residual layer's weight vectors (one row per update term)."""
    return {"g1_residual": (2 + int(mlp) + int(conv), d1), **({"g2_residual": (3, d2)} if ch2 else {})}


def _layer_ints(layer):
    return tuple(int(getattr(layer, k)) for k in LAYER_INTS)


def expected_shapes(arrays, ntypes, tebd_dim, source):
    """``{name: shape}`` of every ``rf`` array, from the checked size arrays; raises ModelFormatError on bad sizes."""
    def fail(msg):
        raise ModelFormatError(f"{source}: {msg}")

    def ints(name, shape, lo, hi):
        a = _array(arrays, name, np.int64, shape, source)
        if np.any(a < lo) or np.any(a > hi):
            fail(f"array '{name}' holds {a.tolist()}, expected values in [{lo}, {hi}]")
        return a

    head = ints("rf.int", (len(HEAD_INTS),), 0, MAX_WIDTH)
    nl, nsel, n0, g1, has_shape, has_tebd = (int(v) for v in head)
    if not 1 <= nl <= MAX_LAYERS or not 1 <= nsel <= MAX_SEL or n0 < 1 or g1 < 1 or has_shape > 1 or has_tebd > 1:
        fail(f"array 'rf.int' = {head.tolist()} ({', '.join(HEAD_INTS)}): expected 1 <= nlayers <= {MAX_LAYERS}, "
             "positive sizes, 0/1 flags")
    if not has_shape and n0 != g1:
        fail(f"array 'rf.int': no g1 shape transform but repinit_dim {n0} != g1_dim {g1}")
    real = _array(arrays, "rf.real", np.float64, (2,), source)
    if not (np.all(np.isfinite(real)) and 0 <= real[1] < real[0]):
        fail(f"array 'rf.real' = [{real[0]:g}, {real[1]:g}]: expected rcut > rcut_smth >= 0")
    li = ints("rf.layer_int", (nl, len(LAYER_INTS)), 0, MAX_WIDTH)
    lr = _array(arrays, "rf.layer_real", np.float64, (nl, len(LAYER_REALS)), source)
    if not np.all(np.isfinite(lr)) or np.any(lr[:, 2] <= 0):
        fail("array 'rf.layer_real': expected finite shifts and a positive layer-norm eps on every layer")
    shapes = {"rf.dstd": (ntypes, 4), "rf.g2_embd.w": (1, int(li[0, 1])), "rf.g2_embd.b": (int(li[0, 1]),)}
    if has_shape:
        shapes["rf.g1_shape.w"] = (n0, g1)
    if has_tebd:
        shapes["rf.tebd_transform.w"] = (tebd_dim, g1)
    for k, row in enumerate(li):
        d1, d2, ax, ch2, h1, n1, h2, n2 = (int(v) for v in row)
        if d1 != g1 or d2 != int(li[0, 1]):
            fail(f"array 'rf.layer_int' row {k}: g1_dim/g2_dim {d1}/{d2} differ from layer 0's {g1}/{int(li[0, 1])}")
        if min(d1, d2, ax, h1, n1) < 1 or ax > min(d1, d2) or ch2 != int(k < nl - 1) or (ch2 and min(h2, n2) < 1):
            fail(f"array 'rf.layer_int' row {k} = {row.tolist()} ({', '.join(LAYER_INTS)}): expected positive sizes, "
                 f"axis_neuron <= g1_dim and g2_dim, update_chnnl_2 = {int(k < nl - 1)}")
    residual = "rf.update_style" in arrays and int(ints("rf.update_style", (1,), 0, len(UPDATE_STYLES) - 1)[0]) == 2
    mlp = "rf.g1_out_mlp" not in arrays or bool(ints("rf.g1_out_mlp", (1,), 0, 1)[0])
    conv = "rf.g1_out_conv" not in arrays or bool(ints("rf.g1_out_conv", (1,), 0, 1)[0])
    if "rf.attn2_has_gate" in arrays:
        ints("rf.attn2_has_gate", (1,), 0, 1)
    for k, row in enumerate(li):  # a layer's residuals after its weights (the C reader's order)
        d1, d2, ax, ch2, h1, n1, h2, n2 = (int(v) for v in row)
        layer = layer_shapes(d1, d2, ax, ch2, h1, n1, h2, n2, mlp, conv)
        if residual:
            layer.update(residual_shapes(d1, d2, ch2, mlp, conv))
        shapes.update({f"rf{k}.{n}": s for n, s in layer.items()})
    return shapes


def _array(arrays, name, dtype, shape, source):
    if name not in arrays:
        raise ModelFormatError(f"{source}: array '{name}' is missing (a compressed DPA-2 needs it)")
    a = np.asarray(arrays[name])
    if a.dtype != dtype or a.shape != tuple(shape):
        raise ModelFormatError(f"{source}: array '{name}' is {a.dtype}{list(a.shape)}, expected "
                               f"{np.dtype(dtype)}{list(shape)}")
    return a


def check_arrays(arrays, ntypes, tebd_dim, source):
    """Check every ``rf`` array of ``arrays`` (see the module doc); returns ``{name: shape}``."""
    shapes = expected_shapes(arrays, ntypes, tebd_dim, source)
    for name, shape in shapes.items():
        a = _array(arrays, name, np.float64, shape, source)
        if not np.all(np.isfinite(a)):
            raise ModelFormatError(f"{source}: array '{name}' holds a non-finite value")
    if np.any(arrays["rf.dstd"] <= 0):
        raise ModelFormatError(f"{source}: array 'rf.dstd' holds a value <= 0 (it divides the environment matrix)")
    known = set(shapes) | {"rf.int", "rf.real", "rf.layer_int", "rf.layer_real", "rf.act", "rf.update_style",
                           "rf.g1_out_mlp", "rf.g1_out_conv", "rf.attn2_has_gate"}  # rf.act: modelfile.dp_dpa2
    for name in arrays:
        if name.startswith("rf") and name not in known:
            raise ModelFormatError(f"{source}: array '{name}' is not part of this compressed DPA-2 (edited file?)")
    return shapes


def unpack_repformers(arrays, repinit, activation, source):
    """The DescriptorDPA2 of a checked set of arrays around its (unpacked) se_atten_v2 ``repinit``."""
    nt, tebd = repinit.ntypes, repinit.tebd_dim
    check_arrays(arrays, nt, tebd, source)
    nl, nsel, _, _, has_shape, has_tebd = (int(v) for v in arrays["rf.int"])
    rcut, rcut_smth = (float(v) for v in arrays["rf.real"])
    lin = lambda k, name, bias=False: Linear(np.array(arrays[f"{k}{name}.w"]),  # noqa: E731
                                             np.array(arrays[f"{k}{name}.b"]) if bias else None)
    style = UPDATE_STYLES[int(arrays["rf.update_style"][0])] if "rf.update_style" in arrays else "res_avg"
    mlp = "rf.g1_out_mlp" not in arrays or bool(arrays["rf.g1_out_mlp"][0])
    conv = "rf.g1_out_conv" not in arrays or bool(arrays["rf.g1_out_conv"][0])
    gate = "rf.attn2_has_gate" in arrays and bool(arrays["rf.attn2_has_gate"][0])
    layers = []
    for k in range(nl):
        d1, d2, ax, ch2, h1, n1, h2, n2 = (int(v) for v in arrays["rf.layer_int"][k])
        s1, s2, eps = (float(v) for v in arrays["rf.layer_real"][k])
        p = f"rf{k}."
        kw = dict(linear1=lin(p, "linear1", True), g1_self_mlp=lin(p, "g1_self_mlp", True) if mlp else None,
                  proj_g1g2=lin(p, "proj_g1g2"),
                  mapq=lin(p, "mapq"), mapkv=lin(p, "mapkv"), head_map1=lin(p, "head_map1", True))
        if ch2:
            kw.update(linear2=lin(p, "linear2", True), proj_g1g1g2=lin(p, "proj_g1g1g2"), mapqk=lin(p, "mapqk"),
                      mapv=lin(p, "mapv"), head_map2=lin(p, "head_map2", True),
                      ln=(np.array(arrays[p + "ln_w"]), np.array(arrays[p + "ln_b"]), eps))
        if style == "res_residual":
            kw.update({name: tuple(np.array(arrays[p + name])) for name in residual_shapes(d1, d2, ch2, mlp, conv)})
        layers.append(RepformerLayer(
            g1_dim=d1, g2_dim=d2, axis_neuron=ax, update_chnnl_2=bool(ch2), g1_has_conv=True, g1_has_drrd=True,
            g1_has_grrg=True, g1_has_attn=True, g2_has_g1g1=bool(ch2), g2_has_attn=bool(ch2), update_h2=False,
            g1_out_conv=conv, g1_out_mlp=mlp, attn1_hidden=h1, attn1_nhead=n1, attn2_hidden=h2, attn2_nhead=n2,
            attn2_has_gate=gate, attn1_shift=s1, attn2_shift=s2, update_style=style, **kw))
    return DescriptorDPA2(
        repinit=repinit, g1_shape=lin("rf.", "g1_shape") if has_shape else None,
        tebd_transform=lin("rf.", "tebd_transform") if has_tebd else None, g2_embd=lin("rf.", "g2_embd", True),
        rf_rcut=rcut, rf_rcut_smth=rcut_smth, rf_nsel=nsel, rf_davg=np.zeros((nt, nsel, 4)),
        rf_dstd=np.repeat(np.array(arrays["rf.dstd"])[:, None, :], nsel, axis=1), layers=tuple(layers),
        activation=activation, smooth=True, use_sqrt_nnei=True, concat_output_tebd=True,
        type_embedding=repinit.type_embedding, env_protection=repinit.env_protection)


__all__ = ["KIND_DPA2", "LAYER_INTS", "LAYER_REALS", "HEAD_INTS", "layer_shapes", "residual_shapes", "pack_repformers",
           "expected_shapes", "check_arrays", "unpack_repformers"]
