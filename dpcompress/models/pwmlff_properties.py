r"""The neighbor property vectors of PWMLFF's type-embedding DP, computed from the property table
of the user's own PWMLFF source.

PWMLFF's type-embedding DP feeds its embedding net a fixed vector :math:`v_b` per neighbor element
:math:`b`: one entry per name in ``json_file.model.descriptor.type_embedding.physical_property``,
each a property :math:`p` of the element scaled over PWMLFF's whole table,

.. math::

    v_{b,p} = \frac{x_p(b) - \min_e x_p(e)}{\max_e x_p(e) - \min_e x_p(e)},

where the minimum and maximum run over the table's entries for :math:`p` that are not NaN, and
for ``atomic_number`` :math:`x(b)` is the atomic number and the range runs over the table's atomic
numbers.  The table is the dict literal ``physical = {...}`` of PWMLFF's
``utils/atom_type_emb_dict.py`` (``physical["atomic_number"]`` maps atomic number -> symbol, every
other dict entry maps symbol -> value; string entries are comments).  An uncompressed checkpoint
does not store :math:`v_b`, and the table is PWMLFF's, not ours, so dpcompress reads it at run
time from the user's installation: :func:`type_vectors_from_source` takes the file or a PWMLFF
source directory; ``$DPCOMPRESS_PWMLFF_SOURCE`` names one for :func:`load_model` and the CLI.

The file is untrusted: it is parsed with :mod:`ast` (never imported or executed) and only a dict
of dicts of numbers, strings and ``float("nan")`` / ``float("inf")`` is accepted; anything else
is a :class:`~dpcompress.core.errors.ModelFormatError` naming the file and line.
"""

import ast
import math
import os

from ..core.errors import InputError, ModelFormatError

#: the environment variable naming the PWMLFF source (directory or table file)
ENV = "DPCOMPRESS_PWMLFF_SOURCE"
TABLE_NAME = "atom_type_emb_dict.py"
#: where a PWMLFF checkout / installation keeps the table, relative to the directory given
_CANDIDATES = (TABLE_NAME, os.path.join("utils", TABLE_NAME), os.path.join("src", "utils", TABLE_NAME))
_MAX_BYTES = 1 << 20  # PWMLFF's file is ~20 kB
_MAX_ENTRIES = 4096
_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "infinity": math.inf, "-infinity": -math.inf}


def find_table(path):
    """The property-table file: ``path`` itself if a file, else the first of
    ``atom_type_emb_dict.py``, ``utils/…``, ``src/utils/…`` under the directory ``path``.

    Raises
    ------
    InputError
        Nothing found.
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        return path
    if os.path.isdir(path):
        for rel in _CANDIDATES:
            cand = os.path.join(path, rel)
            if os.path.isfile(cand):
                return cand
    raise InputError(f"PWMLFF source {path!r}: no {' / '.join(_CANDIDATES)} there (point ${ENV} or "
                     "pwmlff_source= at a PWMLFF checkout or its utils/atom_type_emb_dict.py)")


def _literal(node, where):
    """A number, string or ``float("nan"|"inf")`` from an AST node; nothing is executed."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, str):
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float)):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float"
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str) and node.args[0].value.strip().lower() in _SPECIAL):
        return _SPECIAL[node.args[0].value.strip().lower()]
    raise ModelFormatError(f"{where}, line {getattr(node, 'lineno', '?')}: expected a number, a string or "
                           f"float('nan'), found {ast.dump(node)[:60]}")


def read_table(path):
    """PWMLFF's property table: ``{property: {key: value}}`` from ``physical = {...}``.

    Parameters
    ----------
    path : str or os.PathLike
        The file (see :func:`find_table` for a directory).

    Returns
    -------
    dict
        ``"atomic_number"`` -> {atomic number: symbol}; every other property -> {symbol: float}
        (NaN where the table has none).  String entries (PWMLFF's comments) are dropped.

    Raises
    ------
    ModelFormatError
        Not a Python file with a ``physical`` dict of that shape (file and line named).
    """
    path = find_table(path)
    if os.path.getsize(path) > _MAX_BYTES:
        raise ModelFormatError(f"{path}: {os.path.getsize(path)} bytes; a PWMLFF property table is < "
                               f"{_MAX_BYTES} bytes")
    with open(path, "rb") as fh:
        text = fh.read()
    try:
        tree = ast.parse(text, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ModelFormatError(f"{path}: not a readable Python source ({exc})") from None
    node = None
    for stmt in tree.body:
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and stmt.targets[0].id == "physical"):
            node = stmt.value
    if not isinstance(node, ast.Dict):
        raise ModelFormatError(f"{path}: no top-level 'physical = {{...}}' dict (PWMLFF's property table)")
    table = {}
    for k, v in zip(node.keys, node.values):
        if k is None:
            raise ModelFormatError(f"{path}, line {v.lineno}: '**' in the 'physical' dict")
        name = _literal(k, path)
        if not isinstance(name, str):
            raise ModelFormatError(f"{path}, line {k.lineno}: property name {name!r} is not a string")
        if not isinstance(v, ast.Dict):
            _literal(v, path)  # a comment string such as "_molar_vol": must still be a plain literal
            continue
        if len(v.keys) > _MAX_ENTRIES:
            raise ModelFormatError(f"{path}, line {v.lineno}: '{name}' has {len(v.keys)} entries (> {_MAX_ENTRIES})")
        entries = {}
        for kk, vv in zip(v.keys, v.values):
            if kk is None:
                raise ModelFormatError(f"{path}, line {vv.lineno}: '**' in '{name}'")
            key, val = _literal(kk, path), _literal(vv, path)
            if name == "atomic_number":
                if type(key) is not int or not 1 <= key <= 200 or not isinstance(val, str):
                    raise ModelFormatError(f"{path}, line {kk.lineno}: '{name}' entry {key!r}: {val!r}; expected "
                                           "atomic number: symbol")
            elif not isinstance(key, str) or isinstance(val, str):
                raise ModelFormatError(f"{path}, line {kk.lineno}: '{name}' entry {key!r}: {val!r}; expected "
                                       "symbol: number")
            else:
                val = float(val)
            entries[key] = val
        table[name] = entries
    if "atomic_number" not in table:
        raise ModelFormatError(f"{path}: the 'physical' dict has no 'atomic_number' entry")
    return table


def type_vectors_from_table(table, atom_type, properties, source=""):
    """PWMLFF's ``get_normalized_data_list(atom_type, properties)`` from a table read by
    :func:`read_table` (the scaling in the module docstring).

    Parameters
    ----------
    table : dict
    atom_type : sequence of int
        Atomic numbers (the model's type order).
    properties : sequence of str
        The checkpoint's ``physical_property`` names, in order.
    source : str
        Named in errors.

    Returns
    -------
    dict
        atomic number -> list of ``len(properties)`` floats in [0, 1].

    Raises
    ------
    ModelFormatError
        A property or element missing from the table, a NaN value, or a property with one value.
    """
    names = table["atomic_number"]
    out = {}
    for z in atom_type:
        if z not in names:
            raise ModelFormatError(f"{source}: atomic number {z} is not in the table's 'atomic_number'")
        row = []
        for prop in properties:
            if prop == "atomic_number":
                data, value = [float(k) for k in names], float(z)
            else:
                if prop not in table:
                    raise ModelFormatError(f"{source}: property {prop!r} is not in the table "
                                           f"(it has {sorted(table)})")
                data = [x for x in table[prop].values() if not math.isnan(x)]
                value = table[prop].get(names[z], math.nan)
                if math.isnan(value):
                    raise ModelFormatError(f"{source}: property {prop!r} of {names[z]} (Z = {z}) is missing or NaN")
            lo, hi = min(data), max(data)
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                raise ModelFormatError(f"{source}: property {prop!r} spans [{lo}, {hi}]; cannot scale it")
            row.append((value - lo) / (hi - lo))
        out[z] = row
    return out


def type_vectors_from_source(path, atom_type, properties):
    """:func:`type_vectors_from_table` of the table found at ``path`` (file or PWMLFF directory)."""
    table_path = find_table(path)
    return type_vectors_from_table(read_table(table_path), atom_type, properties, source=table_path)
