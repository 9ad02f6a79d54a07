"""NEP models (GPUMD ``nep.txt``): the data class and the reader/writer.

Every historical variant of the text format is read (see docs/nep.md):
``nep3``/``nep4``/``nep5`` with or
without ``_zbl`` (universal, type-wise factor, or flexible ``zbl 0 0``), the
four cutoff-line forms (2, 4, 7 or 2T+2 numbers), both ``l_max`` flag encodings
(legacy ``4 2 1`` and boolean ``4 1 1 [0 0 0 0]``), and PWMLFF's
``nep_to_lmps.txt`` (NEP4 with one output bias per element).  The file is
untrusted input: every problem raises :class:`~dpcompress.ModelFormatError`
or :class:`~dpcompress.UnsupportedModelError` naming the file, the line
and what was expected.

Energy of atom i (type t):  U_i = sum_mu w1[t,mu] tanh(sum_d w0[t,mu,d] q_d s_d - b0[t,mu]) - b1_type[t] - b1
with s_d = ``q_scaler[d]``; NEP3 models share one network (broadcast here),
NEP4 has ``b1_type = 0``, NEP5 and PWMLFF files carry per-type biases.
"""

import math
import os
from dataclasses import dataclass, field

import numpy as np

from ..core.atomic_file import write_atomic
from ..core.errors import ModelFormatError, UnsupportedModelError
from .constants import COVALENT_RADIUS, ELEMENTS

UNSUPPORTED_SUFFIXES = ("dipole", "polarizability", "charge", "temperature", "vdw")
MAX_L = 8
MAX_N = 16  # n_max and basis_size limit (NEP_CPU MAX_NUM_N = 17)
MAX_NEURON = 1000
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_ILP_MESSAGE = (
    "first word {tok!r}: this is the ILP parameter file of a GPUMD hybrid potential (NEP+ILP, SW+ILP or "
    "Tersoff+ILP: 'potential <ilp file> <map file>' in run.in), not a NEP model; dpcompress evaluates a NEP model "
    "on its own (no ILP term): pass the nep.txt that the map file names"
)


@dataclass
class NEPModel:
    """A NEP potential in memory (all arrays float64, one network per element).

    Attributes
    ----------
    version : int  3, 4 or 5 (as in the file's first token)
    elements : list of str, type index order (file order)
    atomic_numbers : ndarray of int (T,)
    rc_radial, rc_angular : ndarray (T, T)  pair cutoffs, Å
    n_max_radial, n_max_angular, basis_radial, basis_angular, l_max : int
    flags : dict  {'222','1111','112','123','233','134'} -> bool
    w0 : (T, N_neu, D)   b0 : (T, N_neu)   w1 : (T, N_neu)
    b1 : float  shared output bias;  b1_type : (T,) per-element output bias (0 for NEP3/4)
    c_radial : (n_R+1, Nb_R+1, T, T)   c_angular : (n_A+1, Nb_A+1, T, T)   [n, k, t_centre, t_neighbour]
    q_scaler : (D,)
    zbl : None or dict(kind='universal'|'typewise'|'flexible', rc_inner, rc_outer, factor,
          inner (T,T), outer (T,T), params (T,T,8) for flexible)
    """

    version: int
    elements: list
    atomic_numbers: np.ndarray
    rc_radial: np.ndarray
    rc_angular: np.ndarray
    n_max_radial: int
    n_max_angular: int
    basis_radial: int
    basis_angular: int
    l_max: int
    flags: dict
    w0: np.ndarray
    b0: np.ndarray
    w1: np.ndarray
    b1: float
    b1_type: np.ndarray
    c_radial: np.ndarray
    c_angular: np.ndarray
    q_scaler: np.ndarray
    zbl: dict = None
    cutoff_form: str = "standard"
    neighbor_caps: tuple = (0, 0)
    cutoff_values: tuple = ()
    pwmlff_biases: bool = False
    source: str = "<memory>"
    header_lines: list = field(default_factory=list)
    source_text: str = ""
    tables: object = None  # NEPTables when compressed (dpcompress.nep.tables)

    @property
    def ntypes(self):
        return len(self.elements)

    @property
    def type_map(self):
        return list(self.elements)

    @property
    def num_L(self):
        return self.l_max + sum(bool(v) for v in self.flags.values())

    @property
    def dim(self):
        return self.n_max_radial + 1 + (self.n_max_angular + 1) * self.num_L

    @property
    def n_neuron(self):
        return self.w0.shape[1]

    @property
    def rcut(self):
        """Largest pair cutoff (radial or angular), Å."""
        return float(max(self.rc_radial.max(), self.rc_angular.max()))

    @property
    def is_compressed(self):
        return self.tables is not None

    @property
    def compression(self):
        return {}


# --------------------------------------------------------------------------- reader


class _Lines:
    def __init__(self, text, path):
        self.lines = text.splitlines()
        self.path = path
        self.pos = 0

    def error(self, lineno, msg, cls=ModelFormatError):
        return cls(f"{self.path}, line {lineno}: {msg}")

    def header(self, keyword, what):
        while self.pos < len(self.lines) and not self.lines[self.pos].strip():
            self.pos += 1
        if self.pos >= len(self.lines):
            raise ModelFormatError(f"{self.path}: file ends before the '{keyword}' line (expected '{what}')")
        self.pos += 1
        toks = self.lines[self.pos - 1].split()
        if toks[0] != keyword:
            raise self.error(self.pos, f"expected a '{keyword}' line ('{what}'), found {self.lines[self.pos - 1].strip()[:60]!r}")
        return self.pos, toks[1:]


def _number(lines, lineno, tok, kind, what):
    try:
        v = int(tok) if kind is int else float(tok)
    except ValueError:
        if kind is int:
            try:
                f = float(tok)
            except ValueError:
                f = None
            if f is not None and f.is_integer():
                return int(f)
        raise lines.error(lineno, f"{what}: expected {'an integer' if kind is int else 'a number'}, found {tok!r}") from None
    if kind is float and not math.isfinite(v):
        raise lines.error(lineno, f"{what}: expected a finite number, found {tok!r}")
    return v


def parse_token(tok, lines=None):
    """Split the model token into (version, has_zbl); raise for non-energy models."""
    err = (lambda m, c=ModelFormatError: lines.error(1, m, c)) if lines else (lambda m, c=ModelFormatError: c(m))
    parts = tok.split("_")
    if "ilp" in parts:  # before the NEP1/NEP2 test: 'nep_ilp' starts with 'nep'
        raise err(_ILP_MESSAGE.format(tok=tok), UnsupportedModelError)
    if parts[0] not in ("nep3", "nep4", "nep5"):
        if parts[0] in ("nep", "nep2"):
            raise err(f"model token {tok!r}: NEP1/NEP2 files are not supported (need nep3, nep4 or nep5)", UnsupportedModelError)
        raise err(f"unknown model token {tok!r}: expected nep3, nep4 or nep5, optionally with _zbl")
    extra = [p for p in parts[1:] if p != "zbl"]
    for p in extra:
        if any(p.startswith(s) for s in UNSUPPORTED_SUFFIXES):
            raise err(f"model token {tok!r}: {p} NEP models are not supported (only energy models: nep3/nep4/nep5[_zbl])",
                      UnsupportedModelError)
    if extra or parts.count("zbl") > 1:
        raise err(f"unknown model token {tok!r}: expected nep3, nep4 or nep5, optionally with _zbl")
    return int(parts[0][3]), "zbl" in parts


def read_nep(path) -> "NEPModel":
    """Read a GPUMD ``nep.txt`` (any variant) into a :class:`NEPModel`."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read NEP model file: {exc}") from None
    if raw.startswith(UTF8_BOM):  # editors on Windows add one; GPUMD's reader would choke on it, we need not
        raw = raw[len(UTF8_BOM):]
    if raw.startswith(UTF16_BOMS):
        raise ModelFormatError(f"{path}: UTF-16 text (byte-order mark {raw[:2]!r}); a nep.txt is plain ASCII: "
                               "save it as ASCII or UTF-8")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ModelFormatError(f"{path}, line {line}: non-ASCII byte 0x{raw[exc.start]:02x} (byte {exc.start}); "
                               "a nep.txt is plain ASCII text") from None
    map_files = _nep_map_files(text)
    if map_files is not None:
        raise UnsupportedModelError(
            f"{path}: the NEP map file of a GPUMD NEP+ILP hybrid potential (first line "
            f"{text.splitlines()[0].strip()[:80]!r}), not a NEP model; dpcompress evaluates a NEP model on its own: "
            f"pass the nep.txt it names ({', '.join(map_files)})")
    return parse_nep_text(text, path)


def _first_words(text):
    for line in text.splitlines():
        if line.strip():
            return line.split()
    return []


def _nep_map_files(text):
    """The NEP files a GPUMD NEP+ILP map file names, or None when ``text`` is not one.

    Layout (GPUMD docs, "Hybrid NEP+ILP potential"): ``<group method> <number of NEP files>
    <file names...>``, then ``<number of groups>`` and one NEP index per group, all integers.
    """
    lines = [l.split() for l in text.splitlines() if l.strip()]
    if len(lines) < 2 or len(lines[0]) < 3 or not all(w.isdigit() for w in lines[0][:2]):
        return None
    if int(lines[0][1]) != len(lines[0]) - 2 or not all(len(l) == 1 and l[0].isdigit() for l in lines[1:]):
        return None
    return lines[0][2:]


def parse_nep_text(text, path="<string>"):
    """A :class:`NEPModel` from the text of a ``nep.txt`` (``path`` names it in messages)."""
    if text.startswith("\ufeff"):  # a byte-order mark decoded as text
        text = text[1:]
    L = _Lines(text, path)
    if not text.strip():
        raise ModelFormatError(f"{path}: empty file (expected a nep.txt model)")
    # line 1
    lno, _ = 1, None
    while L.pos < len(L.lines) and not L.lines[L.pos].strip():
        L.pos += 1
    L.pos += 1
    lno = L.pos
    toks = L.lines[lno - 1].split()
    version, has_zbl = parse_token(toks[0], L)
    if len(toks) < 2:
        raise L.error(lno, "expected '<token> <number of elements> <element symbols...>'")
    T = _number(L, lno, toks[1], int, "number of elements")
    if T < 1 or T > len(ELEMENTS):
        raise L.error(lno, f"number of elements must be 1..{len(ELEMENTS)}, found {T}")
    elems = toks[2:]
    if len(elems) != T:
        raise L.error(lno, f"{T} elements announced but {len(elems)} symbols given ({' '.join(elems)})")
    for e in elems:
        if e not in ELEMENTS:
            raise L.error(lno, f"unknown element symbol {e!r} (expected one of H ... Pu)")
    if len(set(elems)) != T:
        raise L.error(lno, f"element listed twice: {' '.join(elems)}")
    Z = np.array([ELEMENTS.index(e) + 1 for e in elems], dtype=np.int64)
    header = [L.lines[lno - 1]]

    zbl = None
    if has_zbl:
        lno, v = L.header("zbl", "zbl rc_inner rc_outer [factor]")
        header.append(L.lines[lno - 1])
        if len(v) not in (2, 3):
            raise L.error(lno, f"zbl line needs 2 or 3 numbers (rc_inner rc_outer [factor]), found {len(v)}")
        v = [_number(L, lno, t, float, "zbl") for t in v]
        r1, r2 = v[0], v[1]
        if r1 == 0 and r2 == 0:
            zbl = {"kind": "flexible"}
        else:
            if not (0 <= r1 < r2):
                raise L.error(lno, f"zbl: need 0 <= rc_inner < rc_outer, found {r1} {r2}")
            zbl = {"kind": "universal", "rc_inner": r1, "rc_outer": r2}
            if len(v) == 3:
                if v[2] <= 0:
                    raise L.error(lno, f"zbl factor must be > 0, found {v[2]}")
                zbl.update(kind="typewise", factor=v[2])

    lno, v = L.header("cutoff", "cutoff rc_R rc_A MN_R MN_A")
    header.append(L.lines[lno - 1])
    nv = len(v)
    caps = (0, 0)
    factors = None
    if nv == 2:
        form = "legacy"
        rc = [_number(L, lno, t, float, "cutoff") for t in v]
        rcR = np.full((T, T), rc[0])
        rcA = np.full((T, T), rc[1])
    elif nv == 4:
        form = "standard"
        rc = [_number(L, lno, t, float, "cutoff") for t in v[:2]]
        caps = tuple(_number(L, lno, t, int, "cutoff neighbor cap") for t in v[2:])
        rcR = np.full((T, T), rc[0])
        rcA = np.full((T, T), rc[1])
    elif nv == 7:
        form = "typewise_factor"
        rc = [_number(L, lno, t, float, "cutoff") for t in v[:2]]
        caps = tuple(_number(L, lno, t, int, "cutoff neighbor cap") for t in v[2:4])
        factors = [_number(L, lno, t, float, "cutoff type-wise factor") for t in v[4:]]
        if min(factors) < 0:
            raise L.error(lno, f"type-wise cutoff factors must be >= 0, found {factors}")
        rcov = COVALENT_RADIUS[Z - 1]
        pair = rcov[:, None] + rcov[None, :]
        rcR = np.full((T, T), rc[0])
        rcA = np.full((T, T), rc[1])
        if factors[0] > 0:
            rcR = np.minimum(rcR, pair * factors[0])
        if factors[1] > 0:
            rcA = np.minimum(rcA, pair * factors[1])
    elif nv == 2 * T + 2:
        form = "per_element"
        rc = [_number(L, lno, t, float, "cutoff") for t in v[: 2 * T]]
        caps = tuple(_number(L, lno, t, int, "cutoff neighbor cap") for t in v[2 * T:])
        r = np.array(rc[0::2])
        a = np.array(rc[1::2])
        rcR = 0.5 * (r[:, None] + r[None, :])
        rcA = 0.5 * (a[:, None] + a[None, :])
    else:
        forms = "2 (rc_R rc_A), 4 (rc_R rc_A MN_R MN_A), 7 (… fR fA fZ)"
        raise L.error(lno, f"cutoff line has {nv} numbers; expected {forms} or 2T+2 = {2 * T + 2} (per-element cutoffs)")
    if not (np.all(rcR > 0) and np.all(rcA > 0)):
        raise L.error(lno, "cutoffs must be > 0")
    if min(caps) < 0:
        raise L.error(lno, f"neighbor caps must be >= 0, found {caps}")

    if zbl is not None and zbl["kind"] != "flexible":
        inner = np.full((T, T), zbl["rc_inner"])
        outer = np.full((T, T), zbl["rc_outer"])
        fz = zbl.get("factor")
        if fz is None and factors is not None and factors[2] > 0:
            fz = factors[2]
            zbl["kind"], zbl["factor"] = "typewise", fz
        if fz is not None:
            rcov = COVALENT_RADIUS[Z - 1]
            outer = np.minimum((rcov[:, None] + rcov[None, :]) * fz, outer)
            inner = np.zeros((T, T))
        zbl["inner"], zbl["outer"] = inner, outer

    lno, v = L.header("n_max", "n_max n_R n_A")
    header.append(L.lines[lno - 1])
    if len(v) != 2:
        raise L.error(lno, f"n_max needs 2 integers, found {len(v)}")
    nR, nA = (_number(L, lno, t, int, "n_max") for t in v)
    lno, v = L.header("basis_size", "basis_size Nb_R Nb_A")
    header.append(L.lines[lno - 1])
    if len(v) != 2:
        raise L.error(lno, f"basis_size needs 2 integers, found {len(v)}")
    bR, bA = (_number(L, lno, t, int, "basis_size") for t in v)
    for name, x in (("n_max", nR), ("n_max", nA), ("basis_size", bR), ("basis_size", bA)):
        if not 0 <= x <= MAX_N:
            raise L.error(lno if name == "basis_size" else lno - 1, f"{name} values must be in 0..{MAX_N}, found {x}")

    lno, v = L.header("l_max", "l_max L f222 f1111 [f112 f123 f233 f134]")
    header.append(L.lines[lno - 1])
    if not 3 <= len(v) <= 7:
        raise L.error(lno, f"l_max needs 3 to 7 integers (L f222 f1111 [f112 f123 f233 f134]), found {len(v)}")
    lv = [_number(L, lno, t, int, "l_max") for t in v]
    lmax = lv[0]
    if not 1 <= lmax <= MAX_L:
        raise L.error(lno, f"l_max L must be in 1..{MAX_L}, found {lmax}")
    names = ("222", "1111", "112", "123", "233", "134")
    flags = dict.fromkeys(names, False)
    if lv[1] > 1:  # legacy encoding: 4-body flag 2/0, 5-body flag 1/0
        if lv[1] != 2 or lv[2] not in (0, 1) or len(lv) > 3:
            raise L.error(lno, f"legacy l_max encoding is 'L 2|0 1|0', found {' '.join(v)}")
        flags["222"], flags["1111"] = True, bool(lv[2])
    else:
        for nm, x in zip(names, lv[1:]):
            if x not in (0, 1):
                raise L.error(lno, f"l_max flag q{nm} must be 0 or 1 (or the legacy 4-body flag 2), found {x}")
            flags[nm] = bool(x)

    lno, v = L.header("ANN", "ANN N_neuron 0")
    header.append(L.lines[lno - 1])
    if len(v) not in (1, 2):
        raise L.error(lno, f"ANN needs 'N_neuron 0', found {len(v)} numbers")
    nn = [_number(L, lno, t, int, "ANN") for t in v]
    if not 1 <= nn[0] <= MAX_NEURON:
        raise L.error(lno, f"ANN: number of neurons must be in 1..{MAX_NEURON}, found {nn[0]}")
    if len(nn) == 2 and nn[1] != 0:
        raise L.error(lno, f"ANN {nn[0]} {nn[1]}: two hidden layers are not supported (second number must be 0)",
                      UnsupportedModelError)
    Nn = nn[0]

    # parameters: one number per line
    first_param_line = L.pos + 1
    vals, where = [], []
    for k in range(L.pos, len(L.lines)):
        for tok in L.lines[k].split():
            try:
                x = float(tok)
            except ValueError:
                raise L.error(k + 1, f"expected a number (parameter #{len(vals)}), found {tok[:40]!r}") from None
            if not math.isfinite(x):
                raise L.error(k + 1, f"parameter #{len(vals)} is not finite ({tok!r})")
            vals.append(x)
            where.append(k + 1)
    vals = np.array(vals, dtype=np.float64)

    num_L = lmax + sum(flags.values())
    D = nR + 1 + (nA + 1) * num_L
    P = (D + 2) * Nn
    n_zbl = 10 * T * (T + 1) // 2 if zbl is not None and zbl["kind"] == "flexible" else 0

    def layout(ver, per_type_bias=False):
        if ver == 3:
            ann = [("ANN (shared network w0 b0 w1)", P), ("ANN output bias b1", 1)]
        elif ver == 4:
            ann = [(f"ANN of element {elems[t]} (w0 b0 w1)", P) for t in range(T)]
            ann += [("ANN output biases (one per element, PWMLFF)", T)] if per_type_bias else [("ANN output bias b1", 1)]
        else:
            ann = [(f"ANN of element {elems[t]} (w0 b0 w1 b1_t)", P + 1) for t in range(T)] + [("ANN output bias b1", 1)]
        sec = ann + [("radial coefficients c_R", T * T * (nR + 1) * (bR + 1)),
                     ("angular coefficients c_A", T * T * (nA + 1) * (bA + 1)), ("q_scaler", D)]
        if n_zbl:
            sec.append(("flexible ZBL parameters", n_zbl))
        return sec

    secs = layout(version)
    need = sum(n for _, n in secs)
    pwmlff = False
    if len(vals) != need and version == 4 and T > 1 and len(vals) == need + T - 1:
        secs, need, pwmlff = layout(4, True), need + T - 1, True
    if len(vals) != need:
        raise ModelFormatError(_count_message(path, vals, where, secs, need, first_param_line, layout, version, T))

    off = 0
    blocks = {}
    for name, n in secs:
        blocks[name] = vals[off: off + n]
        off += n
    w0 = np.empty((T, Nn, D))
    b0 = np.empty((T, Nn))
    w1 = np.empty((T, Nn))
    b1_type = np.zeros(T)
    b1 = 0.0
    if version == 3:
        a = blocks["ANN (shared network w0 b0 w1)"]
        w0[:] = a[: Nn * D].reshape(Nn, D)
        b0[:] = a[Nn * D: Nn * D + Nn]
        w1[:] = a[Nn * D + Nn:]
        b1 = float(blocks["ANN output bias b1"][0])
    else:
        for t in range(T):
            key = [k for k, _ in secs if k.startswith(f"ANN of element {elems[t]} ")][0]
            a = blocks[key]
            w0[t] = a[: Nn * D].reshape(Nn, D)
            b0[t] = a[Nn * D: Nn * D + Nn]
            w1[t] = a[Nn * D + Nn: Nn * D + 2 * Nn]
            if version == 5:
                b1_type[t] = a[-1]
        if pwmlff:
            b1_type[:] = blocks["ANN output biases (one per element, PWMLFF)"]
        else:
            b1 = float(blocks["ANN output bias b1"][0])
    cR = blocks["radial coefficients c_R"].reshape(nR + 1, bR + 1, T, T).copy()
    cA = blocks["angular coefficients c_A"].reshape(nA + 1, bA + 1, T, T).copy()
    qs = blocks["q_scaler"].copy()
    if zbl is not None and zbl["kind"] == "flexible":
        fl = blocks["flexible ZBL parameters"].reshape(-1, 10)
        inner = np.empty((T, T))
        outer = np.empty((T, T))
        params = np.empty((T, T, 8))
        k = 0
        for t1 in range(T):
            for t2 in range(t1, T):
                for a_, b_ in ((t1, t2), (t2, t1)):
                    inner[a_, b_], outer[a_, b_] = fl[k, 0], fl[k, 1]
                    params[a_, b_] = fl[k, 2:]
                if not (0 <= fl[k, 0] < fl[k, 1]):
                    raise ModelFormatError(
                        f"{path}: flexible ZBL parameters of pair {elems[t1]}-{elems[t2]}: need 0 <= r_inner < r_outer, "
                        f"found {fl[k, 0]} {fl[k, 1]}")
                k += 1
        zbl.update(inner=inner, outer=outer, params=params)
    return NEPModel(
        version=version, elements=elems, atomic_numbers=Z, rc_radial=rcR, rc_angular=rcA,
        n_max_radial=nR, n_max_angular=nA, basis_radial=bR, basis_angular=bA, l_max=lmax, flags=flags,
        w0=w0, b0=b0, w1=w1, b1=b1, b1_type=b1_type, c_radial=cR, c_angular=cA, q_scaler=qs, zbl=zbl,
        cutoff_form=form, neighbor_caps=caps, cutoff_values=tuple(float(x) for x in v) if form != "per_element" else tuple(rc),
        pwmlff_biases=pwmlff, source=path, header_lines=header, source_text=text,
    )


def _count_message(path, vals, where, secs, need, first_line, layout, version, T):
    have = len(vals)
    msg = [f"{path}: the header asks for {need} parameters but the file holds {have}"]
    off = 0
    for name, n in secs:
        if have < off + n:
            last = where[-1] if where else first_line - 1
            msg.append(f"; the file ends (line {last}) inside section '{name}' "
                       f"(parameters {off}..{off + n - 1}; {off + n - have} missing)")
            break
        off += n
    else:
        msg.append(f"; {have - need} extra numbers after the last section '{secs[-1][0]}' "
                   f"(first extra one on line {where[need]})")
    alts = []
    for ver in (3, 4, 5):
        n_alt = sum(n for _, n in layout(ver))
        if ver != version and n_alt == have:
            alts.append(f"the count fits a nep{ver} layout")
    if T > 1 and sum(n for _, n in layout(4, True)) == have and version != 4:
        alts.append("the count fits a PWMLFF NEP4 file with per-element biases")
    if alts:
        msg.append(" (" + "; ".join(alts) + ": is the first-line token right?)")
    return "".join(msg)


def is_nep_text_file(path):
    """True for a GPUMD text potential file that :func:`read_nep` should read or explain.

    That is a NEP model (first word ``nep...``, also after a UTF-8 byte-order mark or in UTF-16),
    and the other files of a NEP+ILP hybrid (the ILP parameter file, first word ``nep_ilp``, and
    the NEP map file), which :func:`read_nep` refuses with a message naming the NEP model to use.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    if head.startswith(UTF16_BOMS):
        text = head.decode("utf-16", errors="replace")
    else:
        # a stray non-ASCII byte further on is read_nep's to report, with its line
        text = (head[len(UTF8_BOM):] if head.startswith(UTF8_BOM) else head).decode("ascii", errors="replace")
    words = _first_words(text)
    if not words:
        return False
    first = words[0].lower()
    return first.startswith("nep") or first.endswith("_ilp") or (len(head) < 4096 and _nep_map_files(text) is not None)


# --------------------------------------------------------------------------- writer


def _fmt(x):
    return f"{x:15.7e}"


def write_nep(model, path, *, version=None, caps=None, full_precision=True):
    """Write ``model`` as a ``nep.txt`` current GPUMD reads (standard or per-element cutoff line).

    Per-element output biases (PWMLFF) cannot be expressed in NEP4: write
    ``version=5`` or first fold them with :func:`dpcompress.nep.convert.common_bias`.
    """
    m = model
    T = m.ntypes
    version = m.version if version is None else version
    if version == 3 and m.ntypes > 1 and not (np.allclose(m.w0, m.w0[:1]) and np.allclose(m.w1, m.w1[:1])):
        raise UnsupportedModelError("per-element networks cannot be written as nep3")
    if version in (3, 4) and np.any(m.b1_type != m.b1_type[0]):
        raise UnsupportedModelError(
            "the model has per-element output biases; write version=5 or convert with common_bias() first")
    fmt = (lambda x: repr(float(x))) if full_precision else _fmt
    b1 = m.b1 + (m.b1_type[0] if version in (3, 4) else 0.0)
    caps = caps or (m.neighbor_caps if min(m.neighbor_caps) > 0 else (500, 300))
    tok = f"nep{version}" + ("_zbl" if m.zbl is not None else "")
    out = [f"{tok} {T} {' '.join(m.elements)}"]
    if m.zbl is not None:
        z = m.zbl
        if z["kind"] == "flexible":
            out.append("zbl 0 0")
        elif z["kind"] == "typewise":
            out.append(f"zbl {z['rc_inner']:g} {z['rc_outer']:g} {z['factor']:g}")
        else:
            out.append(f"zbl {z['rc_inner']:g} {z['rc_outer']:g}")
    rR = np.diag(m.rc_radial)
    rA = np.diag(m.rc_angular)
    uniform = np.allclose(m.rc_radial, rR[0]) and np.allclose(m.rc_angular, rA[0])
    if uniform:
        out.append(f"cutoff {rR[0]:g} {rA[0]:g} {caps[0]} {caps[1]}")
    else:
        if not (np.allclose(m.rc_radial, 0.5 * (rR[:, None] + rR[None, :]))
                and np.allclose(m.rc_angular, 0.5 * (rA[:, None] + rA[None, :]))):
            raise UnsupportedModelError("pair cutoffs are not (rc_i + rc_j)/2: current GPUMD cannot express them")
        out.append("cutoff " + " ".join(f"{a:g} {b:g}" for a, b in zip(rR, rA)) + f" {caps[0]} {caps[1]}")
    out.append(f"n_max {m.n_max_radial} {m.n_max_angular}")
    out.append(f"basis_size {m.basis_radial} {m.basis_angular}")
    f = m.flags
    if any(f[k] for k in ("112", "123", "233", "134")):
        out.append("l_max " + " ".join(str(x) for x in [m.l_max] + [int(f[k]) for k in ("222", "1111", "112", "123", "233", "134")]))
    else:
        out.append(f"l_max {m.l_max} {2 if f['222'] else 0} {int(f['1111'])}")
    out.append(f"ANN {m.n_neuron} 0")
    nums = []
    if version == 3:
        nums += list(m.w0[0].ravel()) + list(m.b0[0]) + list(m.w1[0]) + [b1]
    else:
        for t in range(T):
            nums += list(m.w0[t].ravel()) + list(m.b0[t]) + list(m.w1[t])
            if version == 5:
                nums.append(m.b1_type[t])
        nums.append(b1 if version == 4 else m.b1)
    nums += list(m.c_radial.ravel()) + list(m.c_angular.ravel()) + list(m.q_scaler)
    if m.zbl is not None and m.zbl["kind"] == "flexible":
        for t1 in range(T):
            for t2 in range(t1, T):
                nums += [m.zbl["inner"][t1, t2], m.zbl["outer"][t1, t2]] + list(m.zbl["params"][t1, t2])
    text = "\n".join(out) + "\n" + "\n".join(fmt(x) for x in nums) + "\n"
    # replaced, never truncated in place: a crash leaves the previous file; never the model's own source
    write_atomic(path, text, inputs=(m.source,), what="nep.txt output")
