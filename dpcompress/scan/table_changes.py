r"""What a scan would change in a model's tables: the table ranges from the scan's ``min_nbor_dist``
against those from the model's stored one.

``dpcompress compress`` builds each embedding table over the integer range
:math:`[L, U]` of DeePMD-kit's rule (:mod:`dpcompress.tables.bounds`):
:math:`L = \lfloor \min (0 - \bar R)/\sigma \rfloor` does not depend on the data, and
:math:`U = \lceil \max (s_\mathrm{max} - \bar R)/\sigma \rceil` with
:math:`s_\mathrm{max} = \mathrm{sw}(r_\mathrm{min})/r_\mathrm{min}`.  ``compress --scan`` takes
:math:`r_\mathrm{min}` from the scan instead of the model; the tables change only when the
ceiling :math:`U` changes, i.e. when the two distances straddle an integer step of the
normalised input: a scan of the model's own training set (the value DeePMD-kit stored) gives
the same :math:`U`, hence bit-identical tables.
"""

import numbers

from ..descriptors import parts, unit_of
from ..modelfile import load_model


def _leaves(bounds, index=()):
    """``(index, (lower, upper))`` of every table of a unit's ``table_bounds`` result (None skipped)."""
    if bounds is None:
        return
    if len(bounds) == 2 and all(isinstance(b, numbers.Real) for b in bounds):
        yield index, (int(bounds[0]), int(bounds[1]))
        return
    for k, item in enumerate(bounds):
        yield from _leaves(item, index + (k,))


def _bounds(part, rmin):
    if rmin is None:
        return {}
    try:
        return dict(_leaves(unit_of(part).table_bounds(part, rmin)))
    except Exception:  # a descriptor without embedding tables (or one the scan cannot rate): nothing to compare
        return {}


def table_changes(model_path, scan_min_nbor_dist):
    """Per descriptor part and table: the integer range from the model's ``min_nbor_dist`` and from the scan's.

    Parameters
    ----------
    model_path : str
    scan_min_nbor_dist : float or None
        The scan's ``min_nbor_dist`` (None: no pair within rcut; nothing to compare).

    Returns
    -------
    dict
        ``min_nbor_dist_model`` (None when the model stores none), ``min_nbor_dist_scan``,
        ``changed`` (any table's range differs), and ``parts``: per part ``part``,
        ``descriptor`` and ``tables``, a list of ``{"index": [...], "model": [L, U] or None,
        "scan": [L, U] or None}`` (``index`` as in the part's embeddings).
    """
    model = load_model(model_path)
    stored = getattr(model, "min_nbor_dist", None)
    stored = None if stored is None else float(stored)
    out = {"min_nbor_dist_model": stored, "min_nbor_dist_scan": scan_min_nbor_dist, "changed": False, "parts": []}
    for k, part in enumerate(parts(model.descriptor)):
        by_model, by_scan = _bounds(part, stored), _bounds(part, scan_min_nbor_dist)
        tables = []
        for index in sorted(set(by_model) | set(by_scan)):
            a, b = by_model.get(index), by_scan.get(index)
            tables.append({"index": list(index), "model": None if a is None else list(a), "scan": None if b is None else list(b)})
            out["changed"] |= a is not None and b is not None and a != b
        out["parts"].append({"part": k, "descriptor": getattr(part, "type_name", type(part).__name__), "tables": tables})
    return out
