"""The ``.dpc`` arrays of a compressed DPA-2 (part kind 7): the checks beyond its se_atten_v2 arrays.

A kind-7 part is a kind-4 part (checked as such by ``modelfile/dp.py``) plus the ``rf...`` arrays of
:mod:`dpcompress.descriptors.dpa2_pack`; its output width is :math:`g_1 + \\mathrm{tebd\\_dim}`
(``concat`` = 1).  The C reader (``src_c/dpc_dpa2_part.c``) makes the same checks with the same messages,
at the same point, then refuses the intact part until its runtime evaluates kind 7.
"""

import numpy as np

from .._ext.table_build import ACTIVATION_CODES
from ..core.errors import ModelFormatError
from ..descriptors.dpa2_part import KIND as KIND_DPA2
from ..descriptors.dpa2_part import check_part


def is_dpa2_array(tail):
    """A kind-7 part's own arrays: ``part{p}.rf...``."""
    return tail.startswith("rf")


def check_dpa2(c, p, nt, tebd_dim, concat, avg):
    """Check part ``p``'s ``rf`` arrays and options; returns its output width :math:`g_1 + \\mathrm{tebd\\_dim}`."""
    if concat != 1:
        c.fail(f"array 'part{p}.int': concat {concat}, a compressed DPA-2 appends the type embedding (1)")
    if f"part{p}.gate_pad" in c.arrays:
        c.fail(f"array 'part{p}.gate_pad': not used by a compressed DPA-2 (its type gate is smooth)")
    nz = np.nonzero(np.asarray(avg).ravel() != 0.0)[0]
    if nz.size:
        c.fail(f"array 'part{p}.avg': entry {int(nz[0])} is {np.asarray(avg).ravel()[nz[0]]:g}; a compressed DPA-2 "
               "needs davg = 0")
    prefix = f"part{p}."
    sub = {k[len(prefix):]: v for k, v in c.arrays.items() if k.startswith(prefix + "rf")}
    try:
        g1 = check_part(sub, nt, tebd_dim, f"part {p}")
    except ModelFormatError as e:
        c.fail(str(e).replace("array '", f"array '{prefix}"))
    name = f"{prefix}rf.act"  # the repformers' activation (the C runtime's code), written by dp.pack
    act = c.arrays.get(name)
    if act is None:
        c.fail(f"part {p}: array '{name}' is missing (a compressed DPA-2 needs it)")
    if act.dtype != np.int64 or act.shape != (1,):
        c.fail(f"part {p}: array '{name}' is {act.dtype}{list(act.shape)}, expected int64[1]")
    if not 0 <= int(act[0]) < len(ACTIVATION_CODES):
        c.fail(f"part {p}: array '{name}' holds {act.tolist()}, expected values in [0, {len(ACTIVATION_CODES) - 1}]")
    return g1 + tebd_dim
