"""The scan as the mission writes it: ``python -m dpcompress.scan train/`` with no other argument.

References: a brute-force numpy count of every atom's neighbors (all pairs, periodic images
-1..1 of the wrapped coordinates) at each cutoff, and the nearest-rank percentile of the sorted
counts; the table ranges from :func:`dpcompress.descriptors.unit_of(part).table_bounds` (the
function ``compress`` builds the tables with) and the tables ``compress`` builds.  The MPI runs
(the same bytes at 2 ranks) are in ``test_scan_mpi.py``.
"""

import json
import math
import os
import stat
import warnings
from fractions import Fraction

import numpy as np
import pytest

from conftest import TINY
from dpcompress.scan import (
    DEFAULT_CUTOFFS,
    Accumulator,
    format_summary,
    load_scan,
    main,
    percentile_of_histogram,
    scan_frame,
    table_changes,
)
from test_scan import dataset  # noqa: F401  (the module-scoped fixture: every layout the scan reads)

MODEL = os.path.join(TINY, "frozen.dp")
P999 = Fraction(999, 1000)


def widths(cell):
    """Perpendicular widths of a cell (rows = vectors)."""
    vol = abs(np.linalg.det(cell))
    return [vol / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)]


def brute_counts(frames, cutoffs, ntypes=2):
    """Per cutoff: (center types, counts (N, ntypes)) over every atom of every frame; and the smallest d^2."""
    per_q = [([], []) for _ in cutoffs]
    d2min = np.inf
    for c, cell, t in frames:
        if cell is not None:
            assert min(widths(cell)) > max(cutoffs)  # images -1..1 of wrapped coordinates are enough
            frac = np.linalg.solve(cell.T, c.T).T
            c = (frac - np.floor(frac)) @ cell
        shifts = [np.zeros(3)] if cell is None else [(np.array(s) - 1.0) @ cell for s in np.ndindex(3, 3, 3)]
        d2 = np.stack([np.einsum("ijk,ijk->ij", *(2 * [c[None, :, :] + s - c[:, None, :]])) for s in shifts])
        if cell is None:
            np.fill_diagonal(d2[0], np.inf)
        else:
            np.fill_diagonal(d2[13], np.inf)  # shift (0, 0, 0): the atom itself
        d2min = min(d2min, d2.min())
        for q, rc in enumerate(cutoffs):
            within = (d2 < rc * rc).sum(axis=0)  # (i, j): images of j within rc of i
            counts = np.stack([within[:, t == n].sum(axis=1) for n in range(ntypes)], axis=1)
            per_q[q][0].append(t)
            per_q[q][1].append(counts)
    return [(np.concatenate(a), np.concatenate(b)) for a, b in per_q], d2min


def nearest_rank(values, fraction):
    """The smallest value v with at least ceil(p N) values <= v (numpy sort)."""
    v = np.sort(np.asarray(values))
    if v.size == 0:
        return None
    return int(v[max(math.ceil(fraction * v.size), 1) - 1])


def test_bare_scan_counts_and_summary(dataset, tmp_path, capsys):  # noqa: F811
    root, frames = dataset
    out = tmp_path / "scan.json"
    assert main([str(root), "-o", str(out), "--no-mpi", "-q"]) == 0
    doc = load_scan(out)
    text = capsys.readouterr().out
    assert doc["rcut"] == 8.0 and doc["rcut_smth"] is None and doc["s_min"] is None and doc["model"] is None
    assert [e["rcut"] for e in doc["cutoffs"]] == list(DEFAULT_CUTOFFS) and doc["percentile"] == "99.9"
    ref, d2min = brute_counts(frames, DEFAULT_CUTOFFS)
    assert abs(doc["min_nbor_dist"] - math.sqrt(d2min)) <= 1e-12 * doc["min_nbor_dist"]
    for e, (types, counts) in zip(doc["cutoffs"], ref):
        assert e["max_nbor_size"] == counts.max(axis=0).tolist()
        assert e["percentile_nbor_size"] == [nearest_rank(counts[:, n], P999) for n in range(2)]
        assert e["max_nbor_size_mixed"] == counts.sum(axis=1).max()
        assert e["percentile_nbor_size_mixed"] == nearest_rank(counts.sum(axis=1), P999)
        for c in range(2):
            assert e["max_nbor_size_by_center"][c] == counts[types == c].max(axis=0).tolist()
            assert e["percentile_nbor_size_by_center"][c] == [nearest_rank(counts[types == c, n], P999) for n in range(2)]
        assert e["mean_nbor_size"] == (counts.sum(axis=0) / len(types)).tolist()
    # the document's own rcut fields are those of the largest cutoff
    assert doc["max_nbor_size"] == doc["cutoffs"][-1]["max_nbor_size"]
    # the summary: the distance with every digit (repr), each cutoff's row, and nothing else of the run
    assert text == format_summary(doc)
    assert f"min_nbor_dist {doc['min_nbor_dist']!r} Å" in text
    assert "O-O " in text and "O-H " in text and "H-H " in text
    for e in doc["cutoffs"]:
        row = [x for x in text.splitlines() if x.split()[:1] == [repr(e["rcut"])]]
        assert len(row) == 1
        assert row[0].split()[1:] == [str(v) for v in (e["max_nbor_size"][0], e["percentile_nbor_size"][0],
                                                      e["max_nbor_size"][1], e["percentile_nbor_size"][1],
                                                      e["max_nbor_size_mixed"], e["percentile_nbor_size_mixed"])]


def test_percentile_of_histogram_against_sorting():
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 1000, 12345):
        values = rng.integers(0, 60, size=n)
        hist = np.bincount(values)
        for fraction in (Fraction(1, 10**6), Fraction(1, 2), P999, Fraction(9999, 10000), Fraction(1)):
            assert percentile_of_histogram(hist, fraction) == nearest_rank(values, fraction)
    assert percentile_of_histogram(np.zeros(5, dtype=np.int64), P999) is None


def test_histograms_merge_exactly(dataset):  # noqa: F811
    """Any split of the frames over 'ranks' merges into the single-pass statistics, bit for bit."""
    _, frames = dataset
    cutoffs = [4.0, 6.0, 8.0]
    whole = Accumulator(2, cutoffs)
    for c, cell, t in frames:
        scan_frame(whole, c, cell, t)
    for nranks in (2, 3, 5):
        parts = [Accumulator(2, cutoffs) for _ in range(nranks)]
        for k, (c, cell, t) in enumerate(frames):
            scan_frame(parts[k * nranks // len(frames)], c, cell, t)
        merged = Accumulator.merged([p.state() for p in reversed(parts)])
        for key, value in whole.state().items():
            got = merged.state()[key]
            if isinstance(value, np.ndarray):
                assert np.array_equal(got, value), key
            else:
                assert got == value, key


def test_cutoff_list_and_percentile_options(dataset, tmp_path, capsys):  # noqa: F811
    root, _ = dataset
    out = tmp_path / "s.json"
    assert main([str(root), "--rcut", "4,6", "--rcut", "7", "--percentile", "50", "-o", str(out), "--no-mpi", "-q"]) == 0
    doc = load_scan(out)
    assert [e["rcut"] for e in doc["cutoffs"]] == [4.0, 6.0, 7.0] and doc["rcut"] == 7.0 and doc["percentile"] == "50"
    assert "p50" in capsys.readouterr().out
    assert main([str(root), "--rcut", "6", "--percentile", "0", "-o", str(out), "--no-mpi", "-q"]) == 2
    assert "--percentile" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(root), "--rcut", "four", "--no-mpi", "-q"])
    assert main([str(root), "--rcut", "6,-1", "-o", str(out), "--no-mpi", "-q"]) == 2


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_output_mode_follows_umask(dataset, tmp_path, umask, mode):  # noqa: F811
    root, _ = dataset
    out = tmp_path / "scan.json"
    old = os.umask(umask)
    try:
        assert main([str(root), "--rcut", "4", "-o", str(out), "--no-mpi", "-q"]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(out).st_mode) == mode
    os.chmod(out, 0o604)  # an existing file keeps its mode
    assert main([str(root), "--rcut", "4", "-o", str(out), "--no-mpi", "-q"]) == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o604


def test_model_adds_s_ranges_and_table_changes(dataset, tmp_path, capsys):  # noqa: F811
    from dpcompress.descriptors import parts, unit_of
    from dpcompress.modelfile import load_model

    root, _ = dataset
    out = tmp_path / "m.json"
    assert main([str(root / "npy"), "-m", MODEL, "-o", str(out), "--no-mpi", "-q"]) == 0
    doc = load_scan(out)
    text = capsys.readouterr().out
    model = load_model(MODEL)
    tables = doc["model"]["tables"]
    assert tables["min_nbor_dist_model"] == model.min_nbor_dist and tables["min_nbor_dist_scan"] == doc["min_nbor_dist"]
    (part,) = parts(model.descriptor)
    for r, key in ((model.min_nbor_dist, "model"), (doc["min_nbor_dist"], "scan")):
        expected = unit_of(part).table_bounds(part, r)
        for t in tables["parts"][0]["tables"]:
            b = expected
            for k in t["index"]:
                b = b[k]
            assert t[key] == list(b)
    assert "s = sw(r)/r" in text and "tables: min_nbor_dist model" in text and repr(model.min_nbor_dist) in text
    # a closer contact than the training set's widens the tables; the model's own value changes nothing
    closer = table_changes(MODEL, 0.5 * model.min_nbor_dist)
    assert closer["changed"] and all(t["scan"][1] >= t["model"][1] for t in closer["parts"][0]["tables"])
    assert any(t["scan"][1] > t["model"][1] for t in closer["parts"][0]["tables"])
    assert not table_changes(MODEL, model.min_nbor_dist)["changed"]
    doc_closer = dict(doc, model=dict(doc["model"], tables=closer))
    assert "grows by" in format_summary(doc_closer)


def test_unchanged_ranges_give_identical_tables(dataset, tmp_path):  # noqa: F811
    """compress --scan with a min_nbor_dist whose ranges equal the model's: the same tables, bit for bit."""
    from dpcompress.compression import compress
    from dpcompress.descriptors import iter_tables
    from dpcompress.modelfile import load_model

    model = load_model(MODEL)
    nudged = model.min_nbor_dist * (1 + 1e-9)  # another distance, the same integer ranges
    assert not table_changes(MODEL, nudged)["changed"]
    root, _ = dataset
    out = tmp_path / "s.json"
    assert main([str(root / "npy"), "-m", MODEL, "-o", str(out), "--no-mpi", "-q"]) == 0
    doc = dict(load_scan(out), min_nbor_dist=nudged)
    (tmp_path / "nudged.json").write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="the model stores"):
        a = compress(model, scan=str(tmp_path / "nudged.json"), step=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = compress(model, step=0.05)
    ta, tb = list(iter_tables(a.descriptor)), list(iter_tables(b.descriptor))
    assert len(ta) == len(tb) > 0
    for x, y in zip(ta, tb):
        assert (x.lower, x.n_fine, x.n_coarse) == (y.lower, y.n_fine, y.n_coarse)
        assert x.coef.tobytes() == y.coef.tobytes()
