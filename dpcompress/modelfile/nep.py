"""A NEP model as the arrays of a ``.dpc`` file, and back.

Arrays: ``type_map``, ``model.int`` (kind 2, ntypes, 0, 0) and the kernel's ``nep.*`` arrays
(:mod:`dpcompress.nep.packing`); a tabulated model adds its tables' error estimates
(``nep.error_g``, ``nep.error_gp``).  The header embeds the model's ``nep.txt``, from which the
Python model is rebuilt; its arrays must equal the file's bit for bit (a file whose text and
arrays disagree is refused).
"""

import numpy as np

from ..core.errors import ModelFormatError
from ..nep import NEPModel, parse_nep_text
from ..nep.packing import pack_arrays
from ..nep.tables import NEPTables
from .dp import type_map_array, type_map_of

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
    """The :class:`NEPModel` of a ``.dpc`` file; its text and arrays must agree."""
    text = header.get("nep_txt")
    if not isinstance(text, str):
        raise ModelFormatError(f"{source}: the header has no embedded nep.txt")
    model = parse_nep_text(text, source)
    model.source = source
    if type_map_of(arrays, source) != tuple(model.type_map):
        raise ModelFormatError(f"{source}: the type_map array disagrees with the embedded nep.txt")
    tabulated = bool(arrays["nep.int"][-1])
    if tabulated:
        model.tables = _tables(model, arrays, header.get("step", float("nan")))
    expect = pack_arrays(model, tabulated)
    for name, arr in expect.items():
        got = arrays.get(name)
        if got is None or got.shape != arr.shape or not np.array_equal(np.asarray(got).view(np.uint8), arr.view(np.uint8)):
            raise ModelFormatError(f"{source}: array '{name}' disagrees with the embedded nep.txt (edited file?)")
    return model


__all__ = ["pack", "unpack", "NEPModel"]
