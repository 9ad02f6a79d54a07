r"""DPA-2 as a descriptor unit with its ``.dpc`` part (kind 7): the reader of :mod:`.dpa2`, plus packing.

A compressed DPA-2 is one ``.dpc`` part of kind 7 (:data:`KIND`): the arrays of a compressed
se_atten_v2 part (:func:`dpcompress.descriptors.se_atten_v2.pack` of the tabulated repinit: its table
of :math:`G_s`, the gate table :math:`S`, the type embedding) and the ``rf...`` arrays of
:mod:`.dpa2_pack` (the g1 shape / tebd transforms, :math:`g_2`'s embedding, the repformer layers).
``part{p}.int`` is the repinit's, except ``kind`` = 7, ``concat`` = 1 (DPA-2's
``concat_output_tebd``; the repinit itself never appends the type embedding) and ``dim_out`` =
:math:`g_1 + \mathrm{tebd\_dim}`, DPA-2's width; ``modelfile/dp.py`` adds ``rf.act``, the repformers'
activation as the C runtime's code (the header keeps its name, ``rf_activation``).

The C runtime reads the part (``src_c/dpc_dpa2_part.c``) and evaluates it
(``src_c/dpc_dpa2_frame.c``: the repinit's table kernel, the repformer stack of ``src_c/dpc_repformer.c``,
the fitting net); :func:`pack` and :func:`unpack` work on a descriptor tabulated with
:func:`dpcompress.descriptors.dpa2_tables.tabulate_repinit` and are what ``modelfile/dp.py`` calls.
"""

import dataclasses

import numpy as np

from ..core.errors import ModelFormatError, UnsupportedModelError
from . import se_atten_v2
from .dpa2 import ALIASES, TYPE_NAME, DescriptorDPA2, read  # noqa: F401  (the unit's reader)
from .dpa2_pack import KIND_DPA2, check_arrays, pack_repformers, unpack_repformers
from .dpa2_tables import check_compressible, tabulate_repinit

KIND = KIND_DPA2


def table_bounds(descriptor, min_nbor_dist):
    """The repinit's table bounds (:func:`dpcompress.descriptors.se_atten_v2.table_bounds`)."""
    check_compressible(descriptor)
    return se_atten_v2.table_bounds(descriptor.repinit, min_nbor_dist)


def tabulate(descriptor, min_nbor_dist, grid):
    """``descriptor`` with its repinit tabulated (:func:`~dpcompress.descriptors.dpa2_tables.tabulate_repinit`).

    Raises
    ------
    UnsupportedModelError
        An option outside the compressed form.
    """
    return tabulate_repinit(descriptor, min_nbor_dist, grid)


def pack(desc, pair_exclude_types):
    """The kind-7 :class:`~dpcompress.descriptors.base.PackedPart` of a tabulated DPA-2 (see the module doc)."""
    if pair_exclude_types:
        raise UnsupportedModelError("pair_exclude_types with DPA-2 is not supported")
    if not desc.is_compressed:
        raise UnsupportedModelError("pack takes a DPA-2 whose repinit is tabulated (dpa2_tables.tabulate_repinit)")
    check_compressible(desc)
    if np.any(desc.rf_davg != 0) or np.any(desc.repinit.davg != 0):
        raise UnsupportedModelError("a compressed DPA-2 needs davg = 0 (set_davg_zero) in both blocks")
    part = se_atten_v2.pack(desc.repinit, ())
    if "gate_pad" in part.arrays:
        raise UnsupportedModelError("a compressed DPA-2 needs the smooth (switched) type gate")
    ints = dict(part.ints, kind=KIND, concat=1, dim_out=desc.dim_out)
    arrays = dict(part.arrays, **pack_repformers(desc))
    settings = dict(part.settings, rf_activation=desc.activation)
    return dataclasses.replace(part, ints=ints, arrays=arrays, settings=settings)


def unpack(ints, real, arrays, settings):
    """The tabulated DescriptorDPA2 of a kind-7 part checked by the reader."""
    rep_arrays = {k: v for k, v in arrays.items() if not k.startswith("rf")}
    repinit = se_atten_v2.unpack(dict(ints, kind=se_atten_v2.KIND, concat=0), real, rep_arrays, settings)
    act = settings.get("rf_activation")
    if not isinstance(act, str):
        raise ModelFormatError("header key 'rf_activation' of the DPA-2 part is missing or not a string")
    return unpack_repformers(arrays, repinit, act, "DPA-2 part")


def check_part(arrays, ntypes, tebd_dim, source):
    """Check a kind-7 part's ``rf`` arrays (names without ``part{p}.``); returns :math:`g_1`, the repformer width."""
    check_arrays(arrays, ntypes, tebd_dim, source)
    return int(arrays["rf.int"][3])


__all__ = ["KIND", "table_bounds", "tabulate", "pack", "unpack", "check_part", "read"]
