"""Training-set scan (``python -m dpcompress.scan``), serial: partition, statistics against brute force, errors.

The data are built in ``tmp_path`` from the 8 water frames of the tiny fixture:
npy systems (two sets), an HDF5 file, a sheared (triclinic) copy, a cluster
(``nopbc``), a copy in the mixed-type format and one whose ``type_map.raw``
lists the elements the other way round.  The MPI runs are in ``test_scan_mpi.py``.
"""

import json
import os
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest

from conftest import REPO, TINY, shared_fixture
from dpcompress.cli import main as cli_main
from dpcompress.parallel.partition import item_owners, rank_work, split_frames
from dpcompress.core.env_mat import smooth_switch
from dpcompress.data import FrameReader
from dpcompress.scan import (
    Accumulator,
    SerialComm,
    discover_systems,
    get_comm,
    iter_frames,
    load_scan,
    main,
    resolve_type_map,
    run_scan,
    scan_frame,
)

RCUT, RCUT_SMTH = 6.0, 0.5
SHEAR = np.array([[1.0, 0.0, 0.0], [0.15, 1.0, 0.0], [-0.1, 0.2, 1.0]])


# ---------------------------------------------------------------------------------------------
# partition


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 8, 50])
def test_partition_contiguous_balanced(size):
    nframes, weights = [5, 0, 17, 3, 40, 1], [192, 7, 12, 500, 30, 1]
    owners = item_owners(nframes, weights, size)
    assert np.all(np.diff(owners) >= 0) and owners.min() >= 0 and owners.max() < size
    segs = split_frames(nframes, weights, size)
    # the segments list exactly the items of item_owners, in order
    flat = [(s, f) for s, n in enumerate(nframes) for f in range(n)]
    got = [[(s, f) for s, a, b in segs[r] for f in range(a, b)] for r in range(size)]
    assert sum(got, []) == flat
    for r in range(size):
        assert [flat[k] for k in np.flatnonzero(owners == r)] == got[r]
    total = sum(n * w for n, w in zip(nframes, weights))
    for r in range(size):
        assert abs(rank_work(segs[r], weights) - total / size) <= max(weights)


def test_partition_edge_cases():
    assert split_frames([3], [10], 5) == [[(0, 0, 1)], [], [(0, 1, 2)], [], [(0, 2, 3)]]
    assert split_frames([4, 4], [1, 1], 2) == [[(0, 0, 4)], [(1, 0, 4)]]
    assert split_frames([0, 0], [1, 1], 3) == [[], [], []]  # nothing to do
    with pytest.raises(ValueError):
        split_frames([1], [0], 2)
    with pytest.raises(ValueError):
        split_frames([1], [1], 0)
    # a big data set: Python integers, no overflow; the cheap system all goes to the last rank
    segs = split_frames([10**9, 10**9], [10**6, 1], 4)
    assert [len(s) for s in segs] == [1, 1, 1, 2] and segs[3][1] == (1, 0, 10**9)
    assert [s[0][2] - s[0][1] for s in segs] == [250000250, 250000250, 250000250, 249999250]  # W/4 each


# ---------------------------------------------------------------------------------------------
# test data


def _frames():
    f = np.load(os.path.join(TINY, "test_frames.npz"))
    return f["coord"].astype(np.float32), f["box"].astype(np.float32), f["atype"].astype(np.int64)


def write_npy(path, coords, boxes, types, type_map=("O", "H"), split=None, real_types=None):
    """A deepmd/npy system; ``split``: frames of set.000 (the rest in set.001); ``boxes`` None: nopbc."""
    os.makedirs(path)
    with open(os.path.join(path, "type.raw"), "w") as fh:
        fh.write("\n".join(str(t) for t in types) + "\n")
    if type_map is not None:
        with open(os.path.join(path, "type_map.raw"), "w") as fh:
            fh.write("\n".join(type_map) + "\n")
    if boxes is None:
        open(os.path.join(path, "nopbc"), "w").close()
    n = len(coords)
    cuts = [0, n] if split is None else [0, split, n]
    for k in range(len(cuts) - 1):
        a, b = cuts[k], cuts[k + 1]
        sdir = os.path.join(path, f"set.{k:03d}")
        os.makedirs(sdir)
        np.save(os.path.join(sdir, "coord.npy"), coords[a:b].reshape(b - a, -1))
        if boxes is not None:
            np.save(os.path.join(sdir, "box.npy"), boxes[a:b].reshape(b - a, 9))
        if real_types is not None:
            np.save(os.path.join(sdir, "real_atom_types.npy"), real_types[a:b])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """``root/`` with several systems (every layout the scan reads) and the frames they hold."""
    root = tmp_path_factory.mktemp("scan") / "data"
    coords, boxes, types = _frames()
    frames = []  # (coords, cell or None, types) as float64 / int64, for the brute force
    write_npy(str(root / "npy" / "sys_a"), coords[:5], boxes[:5], types, split=3)
    frames += [(coords[k], boxes[k], types) for k in range(5)]
    # the same frames, sheared: triclinic cells
    sc, sb = (coords[5:7].astype(np.float64) @ SHEAR), (boxes[5:7].astype(np.float64) @ SHEAR)
    write_npy(str(root / "npy" / "tri"), sc, sb, types)
    frames += [(sc[k], sb[k], types) for k in range(2)]
    # a cluster cut from frame 7 (non-periodic)
    keep = np.linalg.norm(coords[7] - coords[7][0], axis=1) < 7.0
    write_npy(str(root / "npy" / "cluster"), coords[7:8, keep], None, types[keep])
    frames.append((coords[7][keep], None, types[keep]))
    # mixed-type format: type.raw all 0, real types per frame (atoms permuted in frame 1)
    perm = np.random.default_rng(1).permutation(len(types))
    mc, mt = coords[2:4].copy(), np.stack([types, types])
    mc[1], mt[1] = mc[1][perm], types[perm]
    write_npy(str(root / "mixed"), mc, boxes[2:4], np.zeros_like(types), real_types=mt)
    frames += [(mc[k], boxes[2 + k], mt[k]) for k in range(2)]
    # elements listed the other way round in type_map.raw
    write_npy(str(root / "swapped"), coords[6:8], boxes[6:8], 1 - types, type_map=("H", "O"))
    frames += [(coords[6 + k], boxes[6 + k], types) for k in range(2)]
    # deepmd/hdf5: two systems in one file
    with h5py.File(root / "more.h5", "w") as fh:
        for name, sl in (("g1", slice(0, 2)), ("g2/inner", slice(4, 7))):
            g = fh.create_group(name)
            g["type.raw"] = types
            g["type_map.raw"] = np.array([b"O", b"H"])
            g["set.000/coord.npy"] = coords[sl].reshape(-1, 3 * len(types))
            g["set.000/box.npy"] = boxes[sl].reshape(-1, 9)
            frames += [(coords[k], boxes[k], types) for k in range(sl.start, sl.stop)]
    frames = [(c.astype(np.float64), None if b is None else b.astype(np.float64), t) for c, b, t in frames]
    return root, frames


def brute_pairs(frames):
    """Per frame: (i, j, d2, types) of every pair (atom, atom or periodic image) within 6 Å, all pairs by numpy."""
    out = []
    for c, cell, t in frames:
        if cell is not None:  # the water coordinates are not wrapped: wrap, then images -1..1 cover 6 Å
            frac = np.linalg.solve(cell.T, c.T).T
            c = (frac - np.floor(frac)) @ cell
        shifts = [np.zeros(3)] if cell is None else [(np.array(s) - 1.0) @ cell for s in np.ndindex(3, 3, 3)]
        ii, jj, dd = [], [], []
        for s in shifts:
            d = c[None, :, :] + s - c[:, None, :]
            d2 = np.einsum("ijk,ijk->ij", d, d)
            if not np.any(s):
                np.fill_diagonal(d2, np.inf)
            i, j = np.nonzero(d2 < 36.0)
            ii.append(i), jj.append(j), dd.append(d2[i, j])
        out.append((np.concatenate(ii), np.concatenate(jj), np.concatenate(dd), t))
    return out


def brute_force(pairs, rcut, ntypes=2):
    """Distance and neighbor-count statistics within ``rcut`` (<= 6 Å) from :func:`brute_pairs`."""
    d2min = np.full((ntypes, ntypes), np.inf)
    d2max = np.full((ntypes, ntypes), -np.inf)
    cmax = np.zeros((ntypes, ntypes), dtype=int)
    csum = np.zeros((ntypes, ntypes), dtype=int)
    ncent = np.zeros(ntypes, dtype=int)
    tmax = 0
    for i, j, d2, t in pairs:
        m = d2 < rcut * rcut
        i, j, d2 = i[m], j[m], d2[m]
        for a in range(ntypes):
            for b in range(ntypes):
                sel = (t[i] == a) & (t[j] == b)
                if sel.any():
                    d2min[a, b] = min(d2min[a, b], d2[sel].min())
                    d2max[a, b] = max(d2max[a, b], d2[sel].max())
        counts = np.zeros((len(t), ntypes), dtype=int)
        np.add.at(counts, (i, t[j]), 1)
        for a in range(ntypes):
            rows = t == a
            if rows.any():
                cmax[a] = np.maximum(cmax[a], counts[rows].max(axis=0))
                csum[a] += counts[rows].sum(axis=0)
                ncent[a] += rows.sum()
        tmax = max(tmax, counts.sum(axis=1).max())
    return dict(d2min=d2min, d2max=d2max, cmax=cmax, csum=csum, ncent=ncent, tmax=tmax)


@pytest.fixture(scope="module")
def pairs(dataset):
    return brute_pairs(dataset[1])


@pytest.fixture(scope="module")
def serial_doc(dataset, tmp_path_factory):
    root, _ = dataset
    out = tmp_path_factory.mktemp("out") / "scan.json"
    assert main([str(root), "--rcut", str(RCUT), "--rcut-smth", str(RCUT_SMTH), "-o", str(out), "--no-mpi", "-q"]) == 0
    return load_scan(out), out


# ---------------------------------------------------------------------------------------------
# statistics


def test_discovery(dataset):
    root, frames = dataset
    systems = discover_systems([root])
    names = [os.path.relpath(s.name.split(":")[0], root) + (s.name.split(":", 1)[1] if ":" in s.name else "") for s in systems]
    # top-down: a folder's HDF5 files, then its subfolders, each in sorted order
    assert names == ["more.h5/g1", "more.h5/g2/inner", "mixed", "npy/cluster", "npy/sys_a", "npy/tri", "swapped"]
    assert sum(s.nframes for s in systems) == len(frames)
    tmap, nt = resolve_type_map(systems)
    assert tmap == ("O", "H") and nt == 2
    assert list(systems[-1].to_global) == [1, 0]  # swapped: local H=0 -> global 1


def test_scan_equals_brute_force(dataset, serial_doc, pairs):
    _, frames = dataset
    doc, _ = serial_doc
    ref = brute_force(pairs, RCUT)
    assert doc["nframes"] == len(frames) and doc["nsystems"] == 7
    assert doc["natoms"] == sum(len(c) for c, _, _ in frames)
    assert doc["natoms_per_type"] == ref["ncent"].tolist()
    assert doc["type_map"] == ["O", "H"] and doc["rcut"] == RCUT and doc["rcut_smth"] == RCUT_SMTH
    dmin = np.sqrt(ref["d2min"])
    assert abs(doc["min_nbor_dist"] - dmin.min()) <= 1e-12 * dmin.min()
    np.testing.assert_allclose(np.array(doc["min_nbor_dist_by_type"], dtype=float), dmin, rtol=1e-12, atol=0)
    assert doc["max_nbor_size"] == ref["cmax"].max(axis=0).tolist()
    assert doc["max_nbor_size_by_center"] == ref["cmax"].tolist()
    assert doc["max_nbor_size_mixed"] == ref["tmax"]
    assert doc["mean_nbor_size"] == (ref["csum"].sum(axis=0) / ref["ncent"].sum()).tolist()
    np.testing.assert_allclose(doc["mean_nbor_size_by_center"], ref["csum"] / ref["ncent"][:, None], rtol=1e-15)
    # s = sw(r)/r is monotone: max at the closest pair, min at the farthest within rcut
    for key, d2 in (("s_max", ref["d2min"]), ("s_min", ref["d2max"])):
        r = np.sqrt(d2)
        sw, _ = smooth_switch(r, RCUT_SMTH, RCUT)
        np.testing.assert_allclose(doc[key], np.maximum(sw, 0) / r, rtol=1e-10, atol=1e-15)
    assert doc["model"] is None


def test_layouts_agree(dataset, tmp_path):
    """A system, its mixed-type copy and its swapped-type-map copy give the same statistics."""
    root, _ = dataset

    def stats(path):
        d = run_scan([path], rcut=RCUT, rcut_smth=RCUT_SMTH, type_map=("O", "H"), show_progress=False)
        return {k: v for k, v in d.items() if k not in ("data",)}

    coords, boxes, types = _frames()
    write_npy(str(tmp_path / "plain"), coords[6:8], boxes[6:8], types)
    assert stats(root / "swapped") == stats(tmp_path / "plain")
    write_npy(str(tmp_path / "plain2"), coords[2:4], boxes[2:4], types)
    a, b = stats(root / "mixed"), stats(tmp_path / "plain2")
    assert a == b


def test_multiple_cutoffs_one_pass(dataset, pairs):
    """The accumulator keeps statistics for several cutoffs at once (hybrid parts); each equals brute force."""
    _, frames = dataset
    cutoffs = [3.5, 4.0, 6.0]
    acc = Accumulator(2, cutoffs)
    for c, cell, t in frames:
        scan_frame(acc, c, cell, t)
    for q, rc in enumerate(cutoffs):
        ref = brute_force(pairs, rc)
        assert acc.cnt_max[q].tolist() == ref["cmax"].tolist() and acc.tot_max[q].max() == ref["tmax"]
        np.testing.assert_allclose(acc.d2max[q], ref["d2max"], rtol=1e-12)


def test_with_model_x_ranges(dataset, tmp_path):
    from dpcompress.modelfile import load_model

    root, frames = dataset
    model = os.path.join(TINY, "frozen.dp")
    out = tmp_path / "s.json"
    assert main([str(root / "npy"), "-m", model, "-o", str(out), "--no-mpi", "-q"]) == 0
    doc = load_scan(out)
    d = load_model(model).descriptor
    assert doc["rcut"] == d.rcut and doc["rcut_smth"] == d.rcut_smth
    (part,) = doc["model"]["parts"]
    assert part["descriptor"] == "se_e2_a" and part["sel"] == list(d.sel) and part["sel_sufficient"] is True
    s_max, s_min = np.array(doc["s_max"], dtype=float), np.array(doc["s_min"], dtype=float)
    off = [0, d.sel[0]]
    for c in range(2):
        for n in range(2):
            avg, std = d.davg[c, off[n], 0], d.dstd[c, off[n], 0]
            assert part["x_max"][c][n] == pytest.approx((s_max[c, n] - avg) / std, rel=1e-14)
            assert part["x_min"][c][n] == pytest.approx((s_min[c, n] - avg) / std, rel=1e-14, abs=1e-14)


def test_cli_alias_and_output(dataset, serial_doc, tmp_path):
    root, _ = dataset
    doc, path = serial_doc
    out = tmp_path / "alias.json"
    assert cli_main(["scan", str(root), "--rcut", "6", "--rcut-smth", "0.5", "-o", str(out), "--no-mpi", "-q"]) == 0
    assert out.read_bytes() == path.read_bytes()  # same bytes: deterministic
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".scan-")]  # no temporary file left


def test_progress_lines(dataset, tmp_path):
    root, _ = dataset
    out = tmp_path / "p.json"
    proc = subprocess.run(
        [sys.executable, "-m", "dpcompress.scan", str(root), "--rcut", "4", "-o", str(out), "--no-mpi", "--log-interval", "0"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=REPO),
    )
    assert proc.returncode == 0, proc.stderr
    assert "frames (" in proc.stderr and "frames/s" in proc.stderr and "wrote" in proc.stderr


# ---------------------------------------------------------------------------------------------
# errors


def test_errors_name_the_file(dataset, tmp_path, capsys):
    root, _ = dataset
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(root / "npy", bad)
    coord = bad / "sys_a" / "set.001" / "coord.npy"
    coord.write_bytes(b"not an npy file at all" * 10)
    assert main([str(bad), "--rcut", "6", "-o", str(tmp_path / "x.json"), "--no-mpi", "-q"]) == 2
    err = capsys.readouterr().err
    assert str(coord) in err and "not a .npy file" in err
    assert not (tmp_path / "x.json").exists()

    # truncated data
    shutil.copy(root / "npy" / "sys_a" / "set.001" / "coord.npy", coord)
    os.truncate(coord, os.path.getsize(coord) - 100)
    assert main([str(bad), "--rcut", "6", "-o", str(tmp_path / "x.json"), "--no-mpi", "-q"]) == 2
    assert str(coord) in capsys.readouterr().err

    # NaN inside a frame: found while scanning, frame named
    a = np.load(root / "npy" / "sys_a" / "set.001" / "coord.npy")
    a[1, 5] = np.nan
    np.save(coord, a)
    assert main([str(bad), "--rcut", "6", "-o", str(tmp_path / "x.json"), "--no-mpi", "-q"]) == 2
    err = capsys.readouterr().err
    assert str(coord) in err and "frame 1" in err

    # missing box.npy, missing path, corrupt HDF5
    np.save(coord, np.load(root / "npy" / "sys_a" / "set.001" / "coord.npy"))
    os.remove(bad / "tri" / "set.000" / "box.npy")
    assert main([str(bad), "--rcut", "6", "--no-mpi", "-q", "-o", str(tmp_path / "x.json")]) == 2
    assert "box.npy" in capsys.readouterr().err
    assert main([str(tmp_path / "missing"), "--rcut", "6", "--no-mpi", "-q"]) == 2
    assert "no such file" in capsys.readouterr().err
    h5 = tmp_path / "broken.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
    assert main([str(h5), "--rcut", "6", "--no-mpi", "-q"]) == 2
    assert str(h5) in capsys.readouterr().err


def test_argument_errors(dataset, capsys):
    root, _ = dataset  # no cutoff and no model is no error: test_scan_command.py
    assert main([str(root), "--rcut", "6", "--rcut-smth", "7", "--no-mpi", "-q"]) == 2
    assert "rcut_smth" in capsys.readouterr().err
    assert main([str(root), "--rcut", "6", "--type-map", "H", "--no-mpi", "-q"]) == 2
    assert "not in the type map" in capsys.readouterr().err


def test_serial_without_mpi4py(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py -> ImportError
    monkeypatch.delenv("PMI_SIZE", raising=False)
    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE", raising=False)
    assert isinstance(get_comm(), SerialComm)
    monkeypatch.setenv("PMI_SIZE", "4")
    with pytest.raises(Exception, match="mpi4py cannot be used"):
        get_comm()
    assert isinstance(get_comm(use_mpi=False), SerialComm)  # --no-mpi: the user's choice


def test_launcher_mismatch(dataset, tmp_path):
    """A launcher that reports 3 processes to an MPI world of 1: a clear error, not three full scans."""
    pytest.importorskip("mpi4py", reason="mpi4py not installed")
    root, _ = dataset
    env = dict(os.environ, PYTHONPATH=REPO, PMI_SIZE="3", OMPI_COMM_WORLD_SIZE="3")
    proc = subprocess.run(
        [sys.executable, "-m", "dpcompress.scan", str(root), "--rcut", "6", "-o", str(tmp_path / "x.json")],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode != 0 and "launcher" in proc.stderr and not (tmp_path / "x.json").exists()


# ---------------------------------------------------------------------------------------------
# compress --scan


def test_compress_uses_scan(serial_doc, tmp_path):
    from dpcompress.compression import compress, resolve_min_nbor_dist
    from dpcompress.core.errors import InputError
    from dpcompress.modelfile import load_model

    doc, path = serial_doc
    model = load_model(os.path.join(TINY, "frozen.dp"))
    with pytest.warns(UserWarning, match="the model stores"):
        value, source = resolve_min_nbor_dist(model, scan=str(path))
    assert value == doc["min_nbor_dist"] and "scan" in source
    # a scan of the full training set gives the stored value: no warning
    same = dict(doc, min_nbor_dist=model.min_nbor_dist)
    (tmp_path / "same.json").write_text(json.dumps(same))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cm = compress(model, scan=str(tmp_path / "same.json"), step=0.05)
    assert cm.compression["min_nbor_dist"] == model.min_nbor_dist and "same.json" in cm.compression["min_nbor_dist_source"]
    (tmp_path / "none.json").write_text(json.dumps(dict(doc, min_nbor_dist=None)))
    with pytest.raises(InputError, match="no atom pair"):
        resolve_min_nbor_dist(model, scan=str(tmp_path / "none.json"))
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(InputError, match="not a dpcompress scan"):
        resolve_min_nbor_dist(model, scan=str(tmp_path / "other.json"))
    out = tmp_path / "m.dpc"
    assert cli_main(["compress", "-i", os.path.join(TINY, "frozen.dp"), "-o", str(out), "-s", "0.05",
                     "--scan", str(tmp_path / "same.json")]) == 0


# ---------------------------------------------------------------------------------------------
# acceptance on the full training set (shared fixture)


@pytest.mark.slow
def test_water_training_set():
    """DeePMD-kit's min_nbor_dist and the neighbor counts of the water-data README, in one pass over 320 frames."""
    train = os.path.join(shared_fixture("water-data"), "train")
    systems = discover_systems([train])
    resolve_type_map(systems)
    cutoffs = [3.5, 4.0, 5.5, 6.0]
    acc = Accumulator(2, cutoffs)
    with FrameReader() as reader:
        for s in systems:
            for c, cell, t, where in iter_frames(reader, s, 0, s.nframes):
                scan_frame(acc, c, cell, t, where)
    assert acc.nframes == 320
    dmin = float(np.sqrt(acc.d2min.min()))
    assert abs(dmin - 0.8854385688525499) <= 1e-12 * 0.8854385688525499
    expected = {6.0: [38, 72], 5.5: [31, 59], 4.0: [16, 26], 3.5: [11, 20]}
    for q, rc in enumerate(cutoffs):
        assert acc.cnt_max[q].max(axis=0).tolist() == expected[rc], rc
    assert acc.tot_max[3].max() == 108
