"""The scan's summary on standard output, made from the JSON document only.

It depends on nothing but the document (no timings, no rank count), so it is byte-identical
whatever the number of ranks, as the JSON file is.  Distances are printed with ``repr`` (every
digit: the value ``compress --scan`` would use); counts are integers.
"""

#: Fine table stride of ``dpcompress compress`` (``-s``), for the rows a range change costs.
DEFAULT_STEP = 0.01


def _type_names(doc):
    nt = doc["ntypes"]
    tmap = doc.get("type_map")
    return list(tmap) if tmap is not None else [str(t) for t in range(nt)]


def _table(header, rows):
    """Right-aligned columns."""
    cells = [header] + rows
    widths = [max(len(str(r[k])) for r in cells) for k in range(len(header))]
    return ["  " + "  ".join(str(v).rjust(w) for v, w in zip(r, widths)) for r in cells]


def _opt(v):
    return "-" if v is None else str(v)


def _counts_lines(doc, names):
    pct = doc.get("percentile", "99.9")
    header = ["rcut (Å)"]
    for n in names:
        header += [f"{n} max", f"{n} p{pct}"]
    header += ["all max", f"all p{pct}"]
    rows = []
    for e in doc.get("cutoffs", []):
        row = [repr(e["rcut"])]
        for k in range(len(names)):
            row += [str(e["max_nbor_size"][k]), _opt(e["percentile_nbor_size"][k])]
        row += [str(e["max_nbor_size_mixed"]), _opt(e["percentile_nbor_size_mixed"])]
        rows.append(row)
    return [f"neighbors within rcut per neighbor type, over all atoms (sel >= max; p{pct}: {pct} % of atoms have at most):"] + _table(header, rows)


def _pair_lines(matrix, names, fmt):
    """Upper triangle of a symmetric per-type-pair matrix as ``A-B value``."""
    parts = []
    for c in range(len(names)):
        for n in range(c, len(names)):
            parts.append(f"{names[c]}-{names[n]} {fmt(matrix[c][n])}")
    return "  ".join(parts)


def _s_lines(doc, names):
    out = [f"s = sw(r)/r within rcut {doc['rcut']!r} Å (rcut_smth {doc['rcut_smth']!r}), per center-neighbor pair, 1/Å:"]
    for c in range(len(names)):
        for n in range(len(names)):
            lo, hi = doc["s_min"][c][n], doc["s_max"][c][n]
            if lo is None and hi is None:
                out.append(f"  {names[c]}-{names[n]}  no pair")
            else:
                out.append(f"  {names[c]}-{names[n]}  [{_opt(lo)}, {_opt(hi)}]")
    return out


def _table_lines(tables):
    out = []
    m, s = tables["min_nbor_dist_model"], tables["min_nbor_dist_scan"]
    if m is None:
        out.append(f"tables: the model stores no min_nbor_dist; compress --scan would use {s!r} Å")
    else:
        out.append(f"tables: min_nbor_dist model {m!r} Å, scan {s!r} Å "
                   f"(compress --scan uses the scan's; table ranges are integer x ranges [L, U]):")
    grow = shrink = same = 0
    for p in tables["parts"]:
        for t in p["tables"]:
            a, b = t["model"], t["scan"]
            if a is None or b is None:
                continue
            if a == b:
                same += 1
                continue
            d = (b[1] - b[0]) - (a[1] - a[0])
            grow += d > 0
            shrink += d < 0
            rows = round(abs(d) / DEFAULT_STEP)
            out.append(f"  part {p['part']} ({p['descriptor']}) table {t['index']}: [{a[0]}, {a[1]}] -> [{b[0]}, {b[1]}] "
                       f"({'grows' if d > 0 else 'shrinks'} by {abs(d)} in x: {rows} fine intervals at -s {DEFAULT_STEP})")
    if m is not None:
        out.append(f"  {same} table(s) unchanged, {grow} grow, {shrink} shrink"
                   + ("" if grow or shrink else ": compress --scan gives the same tables as without it"))
    return out


def format_summary(doc):
    """The summary text (ends with a newline) of a scan document."""
    names = _type_names(doc)
    per_type = ", ".join(f"{n} {k}" for n, k in zip(names, doc["natoms_per_type"]))
    lines = [
        f"scan of {doc['nsystems']} system(s), {doc['nframes']} frames, {doc['natoms']} atom environments ({per_type})",
        f"min_nbor_dist {_opt(doc['min_nbor_dist'] if doc['min_nbor_dist'] is None else repr(doc['min_nbor_dist']))} Å"
        f"  (within rcut {doc['rcut']!r} Å)",
        "  by type pair: " + _pair_lines(doc["min_nbor_dist_by_type"], names, lambda v: "-" if v is None else repr(v)),
    ]
    lines += _counts_lines(doc, names)
    if doc.get("s_min") is not None:
        lines += _s_lines(doc, names)
    model = doc.get("model")
    if model is not None:
        for p in model["parts"]:
            sel = p.get("sel")
            verdict = "" if "sel_sufficient" not in p else ("  sel sufficient" if p["sel_sufficient"] else "  SEL TOO SMALL")
            lines.append(f"model part {p['part']} ({p['descriptor']}, rcut {p['rcut']!r} Å): max neighbors {p['max_nbor_size']}"
                         f" (mixed {p['max_nbor_size_mixed']}), sel {sel}{verdict}")
            if p.get("x_min") is not None:
                lines.append("  table input x = (s - avg)/std range per center-neighbor pair: "
                             + "  ".join(f"{names[c]}-{names[n]} [{_opt(p['x_min'][c][n])}, {_opt(p['x_max'][c][n])}]"
                                         for c in range(len(names)) for n in range(len(names))))
        if model.get("tables") is not None:
            lines += _table_lines(model["tables"])
    return "\n".join(lines) + "\n"
