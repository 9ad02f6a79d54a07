"""A NEP model as the arrays of a ``.dpc`` file, and back.

Arrays: ``type_map``, ``model.int`` (kind 2, ntypes, 0, 0) and the kernel's ``nep.*`` arrays
(:mod:`dpcompress.nep.packing`); a tabulated model adds its tables' error estimates
(``nep.error_g``, ``nep.error_gp``).  The header embeds the model's ``nep.txt``, from which the
Python model is rebuilt; its arrays must equal the file's bit for bit (a file whose text and
arrays disagree is refused).  :func:`check` runs the C reader's checks in numpy first, among them
every table node against the Chebyshev expansion.
"""

import math

import numpy as np

from ..nep import NEPModel, parse_nep_text
from ..nep.packing import INT_FIELDS, pack_arrays
from ..nep.tables import NEPTables, radial_function_derivatives
from .dp import MAX_INTERVALS, start_check, type_map_array, type_map_of

KIND_NEP = 2


def pack(model, tabulated=None):
    """``(header, arrays)`` of a NEP model (tabulated when it has tables, unless ``tabulated`` says)."""
    tabulated = model.tables is not None if tabulated is None else bool(tabulated)
    arrays = {
        "type_map": type_map_array(model.type_map),
        "model.int": np.array([KIND_NEP, model.ntypes, 0, 0], dtype=np.int64),
    }
    arrays.update(pack_arrays(model, tabulated))
    header = {"kind": "nep", "nep_txt": model.source_text, "source": model.source}
    if tabulated:
        arrays["nep.error_g"] = np.asarray(model.tables.error_g, dtype=np.float64)
        arrays["nep.error_gp"] = np.asarray(model.tables.error_gp, dtype=np.float64)
        header["step"] = float(model.tables.step)
    return header, arrays


def _tables(model, arrays, step):
    """The :class:`NEPTables` of the file (channels unpadded)."""
    T = model.ntypes
    M = np.asarray(arrays["nep.tab_M"], dtype=np.int64).reshape(2, T, T)
    off = np.asarray(arrays["nep.tab_off"], dtype=np.int64)
    coef = arrays["nep.tab_coef"]
    chunks, offsets, pos = [], np.zeros((2, T, T), dtype=np.int64), 0
    for q in range(2 * T * T):
        part = q // (T * T)
        nch = (model.n_max_radial if part == 0 else model.n_max_angular) + 1
        nchp = (nch + 3) // 4 * 4
        m = int(M.ravel()[q])
        block = np.asarray(coef[off[q] : off[q] + m * 6 * nchp]).reshape(m, 6, nchp)[:, :, :nch]
        offsets.ravel()[q] = pos
        chunks.append(block.ravel())
        pos += block.size
    return NEPTables(M=M, offsets=offsets, coef=np.concatenate(chunks), step=float(step),
                     error_g=np.array(arrays["nep.error_g"]), error_gp=np.array(arrays["nep.error_gp"]))


def unpack(header, arrays, source=""):
    """The :class:`NEPModel` of a ``.dpc`` file checked by :func:`check` (the container reader runs it)."""
    model = parse_nep_text(header["nep_txt"], source)
    model.source = source
    if bool(arrays["nep.int"][-1]):
        model.tables = _tables(model, arrays, header["step"])
    return model


# ------------------------------------------------------------------------------------------------
# Checks: the C reader's (src_c/dpc_model.c read_nep, read_nep_tables) in numpy, same order and
# messages, then the embedded nep.txt against every array, bit for bit.

NEP_MAXN = 17  # src_c/dpc_nep.c: n_max + 1 and basis_size + 1
#: A table node against the Chebyshev expansion, relative to the channel's scale (NEP_NODE_TOL).
NEP_NODE_TOL = 1e-9
_NEP_ARRAYS = ("type_map", "model.int", "nep.int", "nep.b1", "nep.rc_R", "nep.rc_A", "nep.c_R", "nep.c_A", "nep.w0",
               "nep.b0", "nep.w1", "nep.b1_type", "nep.q_scaler", "nep.mono", "nep.zcoef", "nep.zbl_inner",
               "nep.zbl_outer", "nep.zbl_params", "nep.atomic_z", "nep.block_start", "nep.tab_M", "nep.tab_off",
               "nep.tab_grid", "nep.tab_coef", "nep.error_g", "nep.error_gp")


def _pad4(n):
    return (n + 3) // 4 * 4


def _check_tables(c, f, c_pair, rc_pair):
    """``read_nep_tables``: counts from the header's step, offsets, widths, and every node of every
    table against the expansion (value, first and second derivative, both ends of each interval)."""
    step = c.number(("step",))
    if not (math.isfinite(step) and step > 0):
        c.fail(f"header key 'step' is {step:g} (need a positive interval width)")
    T = f["ntypes"]
    TT = T * T
    for name in ("nep.error_g", "nep.error_gp"):
        e = c.need(name, "f8", (2, T, T))
        bad = ~(np.isfinite(e) & (e >= 0))
        if bad.any():
            c.fail(f"array '{name}': error estimate {e[bad][0]:g} is not a finite number >= 0")
    tab_M, tab_off, grid, coef = (c.arrays[k] for k in ("nep.tab_M", "nep.tab_off", "nep.tab_grid", "nep.tab_coef"))
    ncoef, pos = coef.size, 0
    for q in range(2 * TT):
        part = int(q >= TT)
        rc = float(rc_pair[part][q - part * TT])
        nch = (f["n_max_A"] if part else f["n_max_R"]) + 1
        nchp = _pad4(nch)
        want = math.ceil(rc / step - 1e-9) if math.isfinite(rc / step) else math.inf  # build_tables
        want = max(16, want)
        if not want <= MAX_INTERVALS:
            c.fail(f"header key 'step' {step:g} gives {float(want):g} intervals for a {rc:g} Å cutoff")
        M = int(tab_M[q])
        if M != want:
            c.fail(f"array 'nep.tab_M': table {q} has {M} intervals; its cutoff {rc:.17g} and the header's step "
                   f"{step:.17g} give {want}")
        if int(tab_off[q]) != pos:
            c.fail(f"array 'nep.tab_off': table {q} starts at {int(tab_off[q])}; the tables before it end at {pos}")
        if M > (ncoef - pos) // (6 * nchp):
            c.fail(f"array 'nep.tab_coef' ({ncoef} values) is too short for table {q}")
        w = rc / M
        if grid[q, 0] != w or grid[q, 1] != M / rc:
            c.fail(f"array 'nep.tab_grid': table {q} has (w, 1/w) = ({grid[q, 0]:.17g}, {grid[q, 1]:.17g}); its cutoff "
                   f"and interval count give ({w:.17g}, {M / rc:.17g})")
        block = np.asarray(coef[pos : pos + M * 6 * nchp]).reshape(M, 6, nchp)
        pos += M * 6 * nchp
        pad = block[:, :, nch:]
        if np.any(pad != 0):
            l, k, ch = np.argwhere(pad != 0)[0]
            c.fail(f"array 'nep.tab_coef': table {q}, padding channel {nch + int(ch)} is not zero")
        cp = c_pair[part][q - part * TT][:, :nch]  # (nb + 1, nch)
        nodes = np.arange(M + 1) * w
        nodes[-1] = rc
        g, gp, gpp = radial_function_derivatives(cp.T, rc, nodes)  # the writer's node data, (nch, M + 1)
        scale = np.maximum(np.abs(cp).sum(axis=0), (np.abs(g) + np.abs(gp) * w + np.abs(gpp) * w * w).max(axis=1))
        a = block[:, :, :nch]  # (M, 6, nch)
        a0, a1, a2, a3, a4, a5 = (a[:, k] for k in range(6))
        v = ((((a5 * w + a4) * w + a3) * w + a2) * w + a1) * w + a0
        d = (((5.0 * a5 * w + 4.0 * a4) * w + 3.0 * a3) * w + 2.0 * a2) * w + a1
        dd = ((20.0 * a5 * w + 12.0 * a4) * w + 6.0 * a3) * w + 2.0 * a2
        res = np.stack([a0 - g.T[:-1], (a1 - gp.T[:-1]) * w, (2.0 * a2 - gpp.T[:-1]) * w * w,
                        v - g.T[1:], (d - gp.T[1:]) * w, (dd - gpp.T[1:]) * w * w], axis=2)  # (M, nch, 6)
        bad = ~(np.abs(res) <= NEP_NODE_TOL * scale[None, :, None])
        if bad.any():
            l, ch, k = (int(x) for x in np.argwhere(bad)[0])
            what = ("value", "first derivative", "second derivative")[k % 3]
            r = (l if k < 3 else l + 1) * w
            rel = abs(res[l, ch, k]) / (scale[ch] if scale[ch] > 0 else 1.0)
            c.fail(f"array 'nep.tab_coef': table {q} ({'angular' if part else 'radial'}, pair {q - part * TT}), "
                   f"interval {l}, channel {ch}: the {what} at r = {r:.6g} Å is off by {rel:.3g} of the channel's "
                   f"scale from the expansion in '{'nep.c_A' if part else 'nep.c_R'}' (edited or inconsistent tables)")
    if pos != ncoef:
        c.fail(f"array 'nep.tab_coef' holds {ncoef} values; its tables use {pos}")


def check(header, arrays, source=""):
    """Refuse a NEP ``.dpc`` whose arrays or header are inconsistent: the C reader's checks in numpy
    (same order and messages), then the embedded nep.txt against every array, bit for bit.

    Raises
    ------
    ModelFormatError
        Naming the file and the array or header key.
    """
    c, I, T = start_check(header, arrays, source, "nep")
    ni = c.need("nep.int", "i8", (len(INT_FIELDS),))
    f = dict(zip(INT_FIELDS, (int(v) for v in ni)))
    if f["ntypes"] != T:
        c.fail(f"nep.int: {f['ntypes']} types, the model {T}")
    if int(I[2]) != 0 or int(I[3]) != 0:
        c.fail("array 'model.int' of a NEP model has descriptor parts or a width (not 0)")
    nR, nA, bR, bA = f["n_max_R"], f["n_max_A"], f["basis_R"], f["basis_A"]
    if (min(nR, nA, bR, bA) < 0 or max(nR, nA, bR, bA) + 1 > NEP_MAXN or not 1 <= f["l_need"] <= 8
            or not 0 <= f["num_L"] <= 64 or not 1 <= f["n_neuron"] <= 100000 or not 0 <= f["nmono"] <= 100000
            or f["zbl_kind"] not in (0, 1, 2) or f["tabulated"] not in (0, 1) or f["dim"] != nR + 1 + (nA + 1) * f["num_L"]):
        c.fail("nep.int: sizes outside the kernel's limits or inconsistent")
    TT, D, NN = T * T, f["dim"], f["n_neuron"]
    c.finite("nep.b1", "f8", (1,))
    rc_R = c.finite("nep.rc_R", "f8", (TT,))
    rc_A = c.finite("nep.rc_A", "f8", (TT,))
    c_R = c.finite("nep.c_R", "f8", (TT, bR + 1, _pad4(nR + 1)))
    c_A = c.finite("nep.c_A", "f8", (TT, bA + 1, _pad4(nA + 1)))
    for name, shape in (("nep.w0", (T, NN, D)), ("nep.b0", (T, NN)), ("nep.w1", (T, NN)), ("nep.b1_type", (T,)),
                        ("nep.q_scaler", (D,)), ("nep.mono", (f["nmono"], 5)), ("nep.zcoef", (8, 9, 9)),
                        ("nep.zbl_inner", (TT,)), ("nep.zbl_outer", (TT,)), ("nep.zbl_params", (TT, 8)),
                        ("nep.atomic_z", (T,))):
        c.finite(name, "f8", shape)
    bs = c.need("nep.block_start", "i8", (f["num_L"] + 1,))
    if bs[0] != 0 or bs[-1] != f["nmono"]:
        c.fail("nep.block_start does not span the monomials")
    if np.any(np.diff(bs) < 0):
        c.fail("nep.block_start decreases")
    ns = (f["l_need"] + 1) ** 2 - 1
    idx = arrays["nep.mono"][:, 1:].ravel()
    bad = ~((idx < 0) | ((idx == np.floor(idx)) & (idx < ns)))
    if bad.any():
        c.fail(f"nep.mono: index {idx[bad][0]:g} out of range")
    zi, zo = arrays["nep.zbl_inner"], arrays["nep.zbl_outer"]
    for p in range(TT):
        if not (0 < rc_R[p] < 1e3) or not (0 < rc_A[p] < 1e3):
            c.fail(f"nep.rc_R/rc_A: cutoff of pair {p} not in (0, 1000) Å")
        if f["zbl_kind"] and not (zo[p] >= zi[p] and zi[p] >= 0):
            c.fail(f"nep.zbl_inner/outer of pair {p} invalid")
    c.need("nep.tab_M", "i8", (2 * TT,))
    c.need("nep.tab_off", "i8", (2 * TT,))
    c.finite("nep.tab_grid", "f8", (2 * TT, 2))
    coef = c.finite("nep.tab_coef", "f8", (-1,))
    for part, (name, arr, nch) in enumerate((("nep.c_R", c_R, nR + 1), ("nep.c_A", c_A, nA + 1))):
        pad = arr[:, :, nch:]
        if np.any(pad != 0):
            c.fail(f"array '{name}': padding channel {nch + int(np.argwhere(pad != 0)[0][2])} is not zero")
    if not f["tabulated"]:
        M, off, grid = arrays["nep.tab_M"], arrays["nep.tab_off"], arrays["nep.tab_grid"]
        bad = np.nonzero((M != 1) | (off != 0) | np.any(grid != 1.0, axis=1))[0]
        if bad.size:
            c.fail("arrays 'nep.tab_M', 'nep.tab_off', 'nep.tab_grid' of a model without tables are not the writer's "
                   f"placeholders (entry {int(bad[0])})")
        if coef.size != 1 or coef[0] != 0.0:
            c.fail("array 'nep.tab_coef' of a model without tables is not [0]")
        if "nep.error_g" in arrays or "nep.error_gp" in arrays:
            c.fail("arrays 'nep.error_g', 'nep.error_gp' in a model without tables")
    else:
        with np.errstate(all="ignore"):  # an overflow is a refusal below, not a warning
            _check_tables(c, f, (c_R, c_A), (rc_R, rc_A))
    c.no_other_arrays(lambda name: name in _NEP_ARRAYS, "NEP")

    # the embedded nep.txt: what the Python model is built from; every array must be its packing
    text = header.get("nep_txt")
    if not isinstance(text, str):
        c.fail("the header has no embedded nep.txt (key 'nep_txt')")
    try:
        model = parse_nep_text(text, f"{source} (header key 'nep_txt')")
    except (ValueError, IndexError, KeyError, TypeError) as exc:  # a text the parser did not foresee
        c.fail(f"header key 'nep_txt' cannot be read ({type(exc).__name__}: {exc})")
    if type_map_of(arrays, source) != tuple(model.type_map):
        c.fail("the type_map array disagrees with the embedded nep.txt")
    plain = pack_arrays(model, False)  # the sizes first: the tables are cut by them
    if not np.array_equal(plain["nep.int"][:-1], arrays["nep.int"][:-1]):
        c.fail("array 'nep.int' disagrees with the embedded nep.txt (edited file?)")
    if f["tabulated"]:
        model.tables = _tables(model, arrays, header["step"])
    expect = pack_arrays(model, bool(f["tabulated"]))
    for name, arr in expect.items():
        got = arrays.get(name)
        if got is None or got.shape != arr.shape or not np.array_equal(np.asarray(got).view(np.uint8), arr.view(np.uint8)):
            c.fail(f"array '{name}' disagrees with the embedded nep.txt (edited file?)")


__all__ = ["pack", "unpack", "NEPModel"]
