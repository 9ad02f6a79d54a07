r"""Compressing DPA-2, the pieces that exist: the repinit's table and the option check.

The compressed DPA-2 (issue 16) tabulates only the repinit: in strip mode it is se_atten_v2 without
attention layers, :math:`G_{ij} = G_s(\tilde R'_{ij,0})\odot(1 + \mathrm{sw}(r_{ij})\,S_{t_i t_j})`,
so :math:`G_s` gets the one table of :func:`dpcompress.descriptors.se_atten_v2.tabulate` (DeePMD-kit's
bounds, step and extrapolation) and the strip net its exact outputs :math:`S` (the gate table).  The
g1 shape transform, the tebd transform, :math:`g_2`'s embedding and the repformer layers stay as they
are (they are small matrices applied once per atom or pair; nothing there is a scalar-input net).

:func:`tabulate_repinit` gives that descriptor; the exact frame evaluator
(:mod:`dpcompress.evaluators.exact.dpa2`) evaluates it, the table standing in for :math:`G_s`
(values and slopes, as the gated table kernel ``src_c/dpc_se_a_tab.c`` uses them): that is the numpy
twin of the compressed DPA-2.  The ``.dpc`` part (kind 7) is :mod:`.dpa2_part`; the C runtime evaluates
it (``src_c/dpc_dpa2_frame.c``).

:func:`check_compressible` restricts the compressed form to the options the C runtime implements
(DeePMD-kit 3.2's defaults, those of ``tests/data/deepmd/dpa2_tiny``, with any ``update_style``:
res_avg, res_incr, res_residual, and either ``g1_out_mlp``, ``g1_out_conv`` and ``attn2_has_gate``; each
one for all layers) and names the first
other one.
"""

import dataclasses

from ..core.errors import UnsupportedModelError
from . import se_atten_v2

#: repformer-layer options of the compressed form: (attribute, required value, DeePMD-kit's key); the g2
#: updates' options (:data:`G2_OPTIONS`) apply to the layers that update g2 (all but the last, whose
#: ``update_chnnl_2`` is false and its g2 options off)
LAYER_OPTIONS = (
    ("g1_has_conv", True, "update_g1_has_conv"),
    ("g1_has_drrd", True, "update_g1_has_drrd"),
    ("g1_has_grrg", True, "update_g1_has_grrg"),
    ("g1_has_attn", True, "update_g1_has_attn"),
    ("update_h2", False, "update_h2"),
)

#: options of the layers that update g2 (``update_chnnl_2``)
G2_OPTIONS = (
    ("g2_has_g1g1", True, "update_g2_has_g1g1"),
    ("g2_has_attn", True, "update_g2_has_attn"),
)

#: descriptor-level options of the compressed form: (attribute, required value, DeePMD-kit's key)
DESCRIPTOR_OPTIONS = (
    ("smooth", True, "smooth"),
    ("use_sqrt_nnei", True, "repformer use_sqrt_nnei"),
    ("direct_dist", False, "repformer direct_dist"),
    ("concat_output_tebd", True, "concat_output_tebd"),
)


def unsupported_option(desc):
    """The first option of ``desc`` (a DescriptorDPA2) outside the compressed form, as a sentence; None if none."""
    mode = getattr(desc.repinit, "tebd_input_mode", "strip")
    if mode != "strip":
        return (f"repinit tebd_input_mode = {mode!r} (the repinit is tabulated in \"strip\" mode only, as "
                "DeePMD-kit's dp compress)")
    for attr, want, key in DESCRIPTOR_OPTIONS:
        if getattr(desc, attr) != want:
            return f"{key} = {getattr(desc, attr)!r} (the compressed DPA-2 takes {want!r})"
    if desc.exclude_types:
        return f"exclude_types = {sorted(desc.exclude_types)} (the compressed DPA-2 takes none)"
    gated = {layer.attn2_has_gate for layer in desc.layers if layer.update_chnnl_2}
    if len(gated) > 1:
        return "attn2_has_gate differs between the repformer layers (the compressed DPA-2 takes one value)"
    for k, layer in enumerate(desc.layers):  # any of UPDATE_STYLES (the reader refuses others), one for all
        for attr, key in (("update_style", "update_style"), ("g1_out_mlp", "g1_out_mlp"), ("g1_out_conv", "g1_out_conv")):
            if getattr(layer, attr) != getattr(desc.layers[0], attr):
                return (f"repformer layer {k}: {key} = {getattr(layer, attr)!r} (the compressed DPA-2 takes one "
                        f"value for all layers, layer 0's {getattr(desc.layers[0], attr)!r})")
    for k, layer in enumerate(desc.layers):
        for attr, want, key in LAYER_OPTIONS + (G2_OPTIONS if layer.update_chnnl_2 else ()):
            if getattr(layer, attr) != want:
                return f"repformer layer {k}: {key} = {getattr(layer, attr)!r} (the compressed DPA-2 takes {want!r})"
    return None


def check_compressible(desc):
    """Raise :class:`UnsupportedModelError` naming the first option outside the compressed form."""
    why = unsupported_option(desc)
    if why is not None:
        raise UnsupportedModelError(f"compressed DPA-2: {why}; the uncompressed .dp model is evaluated exactly")


def tabulate_repinit(desc, min_nbor_dist, grid):
    r"""``desc`` with its repinit's :math:`G_s` tabulated and its strip net replaced by the gate table.

    Parameters
    ----------
    desc : DescriptorDPA2
    min_nbor_dist : float
        Smallest neighbor distance of the training data (sets the table's lower bound).
    grid : dict
        ``stride0``, ``stride1``, ``extrapolate``, ``order``, ``n_threads`` (and optionally
        ``stride_rule``), as :func:`dpcompress.compress` builds it.

    Raises
    ------
    UnsupportedModelError
        An option outside the compressed form (:func:`check_compressible`).
    """
    check_compressible(desc)
    return dataclasses.replace(desc, repinit=se_atten_v2.tabulate(desc.repinit, min_nbor_dist, grid))


__all__ = ["LAYER_OPTIONS", "G2_OPTIONS", "DESCRIPTOR_OPTIONS", "unsupported_option", "check_compressible", "tabulate_repinit"]
