r"""The scan document (what the JSON file holds) from the merged statistics.

Distances: :math:`d_{\min}[c, n] = \sqrt{d^2_{\min}[c, n]}` when :math:`d^2_{\min} < r_c^2`,
else none.  Switched inverse distance :math:`s(r) = \mathrm{sw}(r) / (r + p)`
(:math:`p` = ``env_protection``, 0 for the scan's own ``s_min``/``s_max``): it falls with
:math:`r`, so its maximum is at :math:`d_{\min}` and its minimum at :math:`d_{\max}`, the
farthest pair within :math:`r_c`.  Table inputs :math:`x = (s - \bar R_{c,n}) / \sigma_{c,n}`
(:mod:`.model_info`).  Means of the neighbor counts are divided once, here, from integer sums.
"""

from fractions import Fraction

import numpy as np

from .._version import __version__
from ..core.env_mat import smooth_switch
from ..core.errors import InputError
from ..data.scan_file import FORMAT, FORMAT_VERSION
from .accumulator import percentile_of_histogram

#: Percent level of the neighbor-count percentiles reported beside the maxima.
DEFAULT_PERCENTILE = "99.9"


def percent_fraction(percent):
    """``percent`` (``"99.9"``, 99.9) as an exact fraction of 1 (999/1000), checked to lie in (0, 100]."""
    try:
        value = Fraction(str(percent)) / 100
    except (ValueError, ZeroDivisionError):
        raise InputError(f"--percentile must be a number in (0, 100], got {percent!r}") from None
    if not 0 < value <= 1:
        raise InputError(f"--percentile must be a number in (0, 100], got {percent!r}")
    return value


def percent_text(fraction):
    """``Fraction(999, 1000)`` as ``"99.9"``: the shortest decimal (or the fraction when none is short)."""
    pct = fraction * 100
    for digits in range(0, 12):
        if (pct * 10**digits).denominator == 1:
            return f"{float(pct):.{digits}f}"
    return str(pct)


def cutoff_entries(acc, fraction):
    """Per cutoff: neighbor counts (max, percentile, mean) per neighbor type, and of the totals.

    Counts per neighbor type are over atoms of every center type (``hist`` summed over
    centers), as DeePMD-kit's ``sel`` (one number per neighbor type) needs; ``*_by_center``
    keep the center type.  Percentiles come from the merged integer histograms.
    """
    out = []
    ncent = acc.ncenters
    total_centers = max(int(ncent.sum()), 1)
    nt = acc.ntypes
    for q, rc in enumerate(acc.cutoffs):
        per_type = acc.hist[q].sum(axis=0)  # (ntypes, K): over center types
        mixed = acc.tot_hist[q].sum(axis=0)
        out.append({
            "rcut": rc,
            "max_nbor_size": [int(x) for x in acc.cnt_max[q].max(axis=0)],
            "percentile_nbor_size": [percentile_of_histogram(per_type[n], fraction) for n in range(nt)],
            "mean_nbor_size": [float(x) for x in acc.cnt_sum[q].sum(axis=0) / total_centers],
            "max_nbor_size_mixed": int(acc.tot_max[q].max()) if nt else 0,
            "percentile_nbor_size_mixed": percentile_of_histogram(mixed, fraction),
            "max_nbor_size_by_center": [[int(x) if ncent[c] else None for x in acc.cnt_max[q, c]] for c in range(nt)],
            "percentile_nbor_size_by_center": [
                [percentile_of_histogram(acc.hist[q, c, n], fraction) for n in range(nt)] for c in range(nt)
            ],
        })
    return out


def matrix(a, fn=float):
    """Nested lists; non-finite entries become None (JSON null)."""
    return [[fn(x) if np.isfinite(x) else None for x in row] for row in np.asarray(a)]


def s_of_r2(d2, rcut_smth, rcut, protection=0.0):
    """``sw(r)/(r + protection)`` at ``r = sqrt(d2)``, NaN where ``d2`` is not finite.

    The switch polynomial rounds to a few 1e-17 below zero just inside ``rcut``; those
    values are reported as 0.
    """
    d2 = np.asarray(d2, dtype=np.float64)
    ok = np.isfinite(d2)
    r = np.sqrt(np.where(ok, d2, 1.0))
    sw, _ = smooth_switch(r, rcut_smth, rcut)
    return np.where(ok, np.maximum(sw, 0.0) / (r + protection), np.nan)


def _part_entry(p, acc, d2min, nt):
    """The ``model.parts[k]`` entry: counts at the part's cutoff against its ``sel``, and its x range."""
    entry = {k: p[k] for k in ("part", "descriptor", "rcut", "rcut_smth", "env_protection", "sel")}
    q = acc.cutoffs.index(p["rcut"])
    entry["max_nbor_size"] = [int(x) for x in acc.cnt_max[q].max(axis=0)]
    entry["max_nbor_size_mixed"] = int(acc.tot_max[q].max()) if nt else 0
    sel = p["sel"]
    if sel is not None:
        if p["mixed_types"]:
            entry["sel_sufficient"] = entry["max_nbor_size_mixed"] <= sum(sel)
        else:
            entry["sel_sufficient"] = bool(len(sel) == nt and all(m <= s for m, s in zip(entry["max_nbor_size"], sel)))
    entry["x_min"] = entry["x_max"] = None
    if p["avg"] is not None and p["rcut_smth"] is not None and p["avg"].shape[0] == nt:
        prot = p["env_protection"] or 0.0
        rc2 = p["rcut"] * p["rcut"]
        near = np.where(d2min < rc2, d2min, np.nan)
        far = np.where(np.isfinite(acc.d2max[q]), acc.d2max[q], np.nan)
        avg, std = p["avg"], p["std"]
        entry["x_min"] = matrix((s_of_r2(far, p["rcut_smth"], p["rcut"], prot) - avg) / std)
        entry["x_max"] = matrix((s_of_r2(near, p["rcut_smth"], p["rcut"], prot) - avg) / std)
    return entry


def build_result(acc, setup):
    """The JSON document (a dict) from the merged statistics ``acc`` and the driver's ``setup``.

    Parameters
    ----------
    acc : Accumulator
        Merged over all ranks.
    setup : dict
        ``paths``, ``nsystems``, ``type_map``, ``rcut``, ``rcut_smth``, ``model`` (None or
        :func:`~.model_info.model_setup`'s dict).

    Returns
    -------
    dict
        Every float is finite or None, so the document is strict JSON.
    """
    nt = acc.ntypes
    q0 = acc.cutoffs.index(setup["rcut"])
    rcut, rcut_smth = setup["rcut"], setup["rcut_smth"]
    d2min = acc.d2min
    within = d2min < rcut * rcut
    dmin = np.where(within, np.sqrt(np.where(within, d2min, 1.0)), np.inf)
    gmin = float(dmin.min()) if np.isfinite(dmin).any() else None
    ncent = acc.ncenters
    total_centers = int(ncent.sum())
    by_center_mean = np.where(ncent[:, None] > 0, acc.cnt_sum[q0] / np.maximum(ncent, 1)[:, None], np.nan)
    overall_mean = acc.cnt_sum[q0].sum(axis=0) / max(total_centers, 1)
    have = ncent > 0
    out = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "dpcompress_version": __version__,
        "data": list(setup["paths"]),
        "nsystems": setup["nsystems"],
        "nframes": int(acc.nframes),
        "natoms": int(acc.natoms),
        "natoms_per_type": [int(x) for x in ncent],
        "type_map": None if setup["type_map"] is None else list(setup["type_map"]),
        "ntypes": nt,
        "rcut": rcut,
        "rcut_smth": rcut_smth,
        "min_nbor_dist": gmin,
        "min_nbor_dist_by_type": matrix(dmin),
        "max_nbor_size": [int(x) for x in acc.cnt_max[q0].max(axis=0)],
        "max_nbor_size_mixed": int(acc.tot_max[q0].max()) if nt else 0,
        "mean_nbor_size": [float(x) for x in overall_mean],
        "mean_nbor_size_mixed": float(acc.cnt_sum[q0].sum() / max(total_centers, 1)),
        "max_nbor_size_by_center": [[int(x) if have[c] else None for x in acc.cnt_max[q0, c]] for c in range(nt)],
        "mean_nbor_size_by_center": matrix(by_center_mean),
        "s_min": None,
        "s_max": None,
        "percentile": percent_text(setup.get("percentile", percent_fraction(DEFAULT_PERCENTILE))),
        "cutoffs": cutoff_entries(acc, setup.get("percentile", percent_fraction(DEFAULT_PERCENTILE))),
        "data_format": setup.get("format"),
        "model": None,
    }
    if rcut_smth is not None:
        out["s_min"] = matrix(s_of_r2(np.where(np.isfinite(acc.d2max[q0]), acc.d2max[q0], np.nan), rcut_smth, rcut))
        out["s_max"] = matrix(s_of_r2(np.where(within, d2min, np.nan), rcut_smth, rcut))
    model = setup.get("model")
    if model is not None:
        parts = [_part_entry(p, acc, d2min, nt) for p in model["parts"]]
        out["model"] = {"file": model["file"], "type_map": list(model["type_map"]), "parts": parts}
    return out
