"""The DP + ZBL arrays of a ``.dpc`` file (docs/model-file.md, docs/dp-zbl.md): packing, unpacking, checking.

A DP + ZBL model is a DP energy model (:mod:`dpcompress.modelfile.dp`) plus four arrays:

* ``zbl.int`` int64 [3]: ntypes, nspline, sel (must equal descriptor part 0's nnei);
* ``zbl.real`` float64 [6]: rmin, h, rcut (must equal part 0's, a mixed-type part), sw_rmin, sw_rmax, smin_alpha;
* ``zbl.coef`` float64 [ntypes, ntypes, nspline, 4]: DeePMD-kit's spline coefficients (a3, a2, a1, a0);
* ``zbl.bias`` float64 [2, ntypes]: the pair-table model's out_bias, the linear model's out_bias.

The C reader (``src_c/dpc_pair_table.c``, ``dpc_zbl_read``) checks the same, with the same messages.
"""

import numpy as np

from ..models.dp_zbl import DPZBLModel
from ..models.pair_table import PairTable

ARRAYS = ("zbl.int", "zbl.real", "zbl.coef", "zbl.bias")
MAX_NSPLINE = 1 << 20  # src_c/dpc_pair_table.c


def add_arrays(header, arrays, model: DPZBLModel):
    """Add a DP + ZBL model's arrays and header entry to those of its (compressed) DP part."""
    t = model.table
    arrays["zbl.int"] = np.array([model.ntypes, t.nspline, t.sel], dtype=np.int64)
    arrays["zbl.real"] = np.array([t.rmin, t.hh, t.rcut, model.sw_rmin, model.sw_rmax, model.smin_alpha],
                                  dtype=np.float64)
    arrays["zbl.coef"] = np.ascontiguousarray(t.coef, dtype=np.float64)
    arrays["zbl.bias"] = np.stack([model.tab_out_bias, model.out_bias]).astype(np.float64)
    header["model"]["zbl"] = True
    return header, arrays


def is_zbl(arrays):
    return any(name in arrays for name in ARRAYS)


def unpack(dp_model, arrays, source=""):
    """The :class:`DPZBLModel` of a checked file whose DP part is ``dp_model``."""
    nt, nspline, sel = (int(v) for v in arrays["zbl.int"])
    rmin, hh, rcut, sw_rmin, sw_rmax, alpha = (float(v) for v in arrays["zbl.real"])
    bias = np.array(arrays["zbl.bias"])
    table = PairTable(rmin=rmin, hh=hh, nspline=nspline, rcut=rcut, sel=sel, coef=np.array(arrays["zbl.coef"]))
    return DPZBLModel(dp=dp_model, table=table, tab_out_bias=bias[0], out_bias=bias[1], sw_rmin=sw_rmin,
                      sw_rmax=sw_rmax, smin_alpha=alpha, type_map=tuple(dp_model.type_map), source=source,
                      compression=dp_model.compression)


def check(c, nt, rcut0, nnei0, mixed0, pairs_excluded):
    """``dpc_zbl_read``'s checks on the :class:`~dpcompress.modelfile.dp.Checker` ``c`` (nothing without zbl arrays)."""
    if not is_zbl(c.arrays):
        return False
    I = c.need("zbl.int", "i8", (3,))
    if int(I[0]) != nt:
        c.fail(f"zbl.int: {int(I[0])} types, the model has {nt}")
    if not 1 <= int(I[1]) <= MAX_NSPLINE:
        c.fail(f"zbl.int: {int(I[1])} spline intervals (1 to {MAX_NSPLINE})")
    if int(I[2]) != nnei0:
        c.fail(f"zbl.int: pair-table sel {int(I[2])} differs from descriptor part 0's {nnei0}")
    R = c.need("zbl.real", "f8", (6,))
    if not np.all(np.isfinite(R)):
        c.fail("array 'zbl.real' holds NaN or infinite values")
    if not (R[0] >= 0 and R[1] > 0 and R[2] > 0 and R[4] > R[3] and R[5] > 0):
        c.fail("zbl.real: not rmin >= 0, h > 0, rcut > 0, sw_rmax > sw_rmin, smin_alpha > 0")
    if R[2] != rcut0 or not mixed0:
        c.fail(f"zbl.real: the pair table's rcut {R[2]:g} is not descriptor part 0's ({rcut0:g}, mixed types)")
    if pairs_excluded:
        c.fail("a DP + ZBL model with excluded pairs")
    c.finite("zbl.coef", "f8", (nt, nt, int(I[1]), 4))
    c.finite("zbl.bias", "f8", (2, nt))
    return True
