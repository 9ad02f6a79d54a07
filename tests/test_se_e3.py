"""se_e3 (se_t): reading DeePMD-kit files, the exact evaluator against DeePMD-kit 3.2.0, the
compressed model against the exact one (and against DeePMD-kit's own compression), table
ranges and grids, every activation, the .dpc file and the command line.

Bounds (se_e3 issue): exact vs DeePMD-kit's uncompressed outputs |ΔE|/atom ≤ 1e-10 eV,
max |ΔF| ≤ 1e-9 eV/Å, max |Δvirial| ≤ 1e-8 eV — on the stress frames of se_e3_tiny, where
forces reach 1.6e7 eV/Å, float64 cannot give that absolutely, so there the bounds are also
allowed 1e-14 of the largest reference value (virials: of max |F| · rcut) — round-off.  Compressed (step 0.01 → strides
0.1 and 1.0, quintic, extrapolate 5) vs exact on the test frames: |ΔE|/atom ≤ 1e-9 eV,
max |ΔF| ≤ 1e-7 eV/Å.  On the stress frames: no worse than DeePMD-kit's compressed model
(its errors.json) up to 1e-10 eV/Å and 1e-12 eV/atom of slack where both are at the
interpolation/round-off level (~1e-13 eV/atom on energies of 2.6e4 eV).
"""

import dataclasses
import json
import os
import warnings

import numpy as np
import pytest

from conftest import DATA, shared_fixture
from dpcompress import Potential
from dpcompress.cli import main
from dpcompress import TableAccuracyWarning, compress, save_model
from dpcompress.descriptors.se_e3 import table_bounds as se_e3_table_bounds
from dpcompress.descriptors import iter_tables
from dpcompress.core.errors import ModelFormatError
from dpcompress import load_model
from dpcompress.core.networks import Layer, Network
from dpcompress.descriptors.se_e3 import DescriptorSeT

SE_E3_TINY = os.path.join(DATA, "deepmd", "se_e3_tiny")
VARIANT = os.path.join(DATA, "deepmd", "se_e3_variant")
EXACT_TOL = dict(energy_per_atom=1e-10, force=1e-9, virial=1e-8, atom_energy=1e-10, atom_virial=1e-8)
COMPRESSED_TOL = dict(energy_per_atom=1e-9, force=1e-7, virial=1e-7)


def evaluate(pot, frames):
    coords = frames["coord"].astype(np.float64)
    cells = frames["box"].astype(np.float64).reshape(len(coords), 9)
    return pot.eval(coords, cells, frames["atype"].astype(np.int64), atomic=True)


def differences(a, b, natoms):
    """Per-frame max |a - b| of (energy/atom, force, virial, atom energy, atom virial); b may be a DeePMD-kit ref npz."""
    if not isinstance(b, tuple):
        b = (b["energy"], b["force"], b["virial"], b["atom_energy"], b["atom_virial"])
    nf = a[0].shape[0]
    out = []
    for k, (x, y) in enumerate(zip(a, b)):
        d = np.abs(x.reshape(nf, -1) - np.asarray(y).reshape(nf, -1)).max(axis=1)
        out.append(d / natoms if k == 0 else d)
    return dict(zip(("energy_per_atom", "force", "virial", "atom_energy", "atom_virial"), out))


@pytest.fixture(scope="module")
def tiny():
    """The tiny model, its compressed copy, and the exact outputs on test and stress frames."""
    model = load_model(os.path.join(SE_E3_TINY, "frozen.dp"))
    frames = {s: np.load(os.path.join(SE_E3_TINY, f"test_frames{s}.npz")) for s in ("", "_stress")}
    exact = {s: evaluate(Potential(model), f) for s, f in frames.items()}
    return model, compress(model), frames, exact


def test_reader_layout_and_aliases(tmp_path, tiny):
    from test_bad_inputs import rewrite_json

    model = tiny[0]
    d = model.descriptor
    assert isinstance(d, DescriptorSeT) and d.type_name == "se_e3" and not d.mixed_types
    assert d.sel == (20, 40) and d.nnei == 60 and d.dim_out == d.n_channels == 8 and not d.is_compressed
    assert d.embeddings[1][0] is None and d.embedding_net(1, 0) is d.embeddings[0][1]
    # DeePMD-kit's flat index of the neighbor-type pair (a, b) is a + b*ntypes: (0, 1) is networks[2]
    from dpcompress.models import load_tree

    tree = load_tree(os.path.join(SE_E3_TINY, "frozen.dp"))
    w = tree["model"]["descriptor"]["embeddings"]["networks"][2]["layers"][0]["@variables"]["w"]
    np.testing.assert_array_equal(d.embedding_net(0, 1).layers[0].w, w)
    frame = tiny[2][""]
    e0 = tiny[3][""][0][:1]
    for alias in ("se_t", "se_at", "se_a_3be"):

        def edit(t, alias=alias):
            t["model"]["descriptor"]["type"] = alias

        path = rewrite_json(os.path.join(SE_E3_TINY, "frozen.dp"), tmp_path / f"{alias}.dp", edit)
        e = Potential(path).eval(frame["coord"][:1].astype(float), frame["box"][:1].astype(float).reshape(1, 9), frame["atype"])[0]
        np.testing.assert_array_equal(e, e0)

    def null_used_net(t):
        t["model"]["descriptor"]["embeddings"]["networks"][3] = None

    with pytest.raises(ModelFormatError, match=r"networks\[3\]' \(neighbor types 1, 1\) is null"):
        load_model(rewrite_json(os.path.join(SE_E3_TINY, "frozen.dp"), tmp_path / "null.dp", null_used_net))


@pytest.mark.parametrize("stress", ["", "_stress"])
def test_exact_matches_deepmd(tiny, stress):
    ref = np.load(os.path.join(SE_E3_TINY, f"ref_uncompressed_pth{stress}.npz"))
    err = differences(tiny[3][stress], ref, 192)
    # round-off scale: the largest reference value; for virials the largest pair term |F| rcut
    fr = np.abs(ref["force"]).max() * tiny[0].rcut
    scale = dict(energy_per_atom=np.abs(ref["energy"]).max() / 192, force=np.abs(ref["force"]).max(), virial=fr,
                 atom_energy=np.abs(ref["atom_energy"]).max(), atom_virial=fr)
    for key, tol in EXACT_TOL.items():
        assert err[key].max() <= max(tol, 1e-14 * scale[key]), (key, err[key])


def test_variant_exclusions_protection_resnet_dt_silu_match_deepmd():
    """DeePMD-kit's own se_e3 with exclude_types [[1,1]], env_protection 0.1, resnet_dt, silu."""
    model = load_model(os.path.join(VARIANT, "model.dp"))
    assert model.descriptor.exclude_types == {(1, 1)} and model.descriptor.env_protection == 0.1
    assert model.descriptor.activation == "silu" and model.descriptor.embedding_net(0, 1).layers[2].idt is not None
    frames, ref = np.load(os.path.join(VARIANT, "frames.npz")), np.load(os.path.join(VARIANT, "ref.npz"))
    for pot in (Potential(model), Potential(compress(model))):
        err = differences(evaluate(pot, frames), ref, 192)
        for key, tol in EXACT_TOL.items():
            assert err[key].max() <= tol, (key, err[key])


def test_compressed_matches_exact_where_deepmd_does_not(tiny):
    model, cm, frames, exact = tiny
    ours = differences(evaluate(Potential(cm), frames[""]), exact[""], 192)
    for key, tol in COMPRESSED_TOL.items():
        assert ours[key].max() <= tol, (key, ours[key])
    theirs = json.load(open(os.path.join(SE_E3_TINY, "errors.json")))["errors"]["compressed_pth"]
    assert theirs["max_abs_force"] > 1e6  # DeePMD-kit's compressed se_e3 on the same frames


def test_stress_frames_no_worse_than_deepmd(tiny):
    model, cm, frames, exact = tiny
    ours = differences(evaluate(Potential(cm), frames["_stress"]), exact["_stress"], 192)
    theirs = json.load(open(os.path.join(SE_E3_TINY, "errors.json")))["errors"]["compressed_pth_stress"]
    for k, kind in enumerate(frames["_stress"]["kind"]):
        ref_f, ref_e = theirs["max_abs_force_by_frame"][k], theirs["max_abs_energy_per_atom_by_frame"][k]
        assert ours["force"][k] <= ref_f * (1 + 1e-6) + 1e-10, (str(kind), ours["force"][k], ref_f)
        assert ours["energy_per_atom"][k] <= ref_e * (1 + 1e-6) + 1e-12, (str(kind), ours["energy_per_atom"][k], ref_e)


def test_table_ranges_cover_every_center_type(tiny):
    """One symmetric range for all three nets, from the H centers: DeePMD-kit gives the O-O and O-H nets O's range."""
    model, cm = tiny[0], tiny[1]
    deepmd = {t["key"]: (t["lower"], t["upper"]) for t in json.load(open(os.path.join(SE_E3_TINY, "tables_meta.json")))["tables"]}
    assert deepmd == {"filter_0_net_0": (-98, 98), "filter_0_net_1": (-98, 98), "filter_1_net_1": (-142, 142)}
    bounds = se_e3_table_bounds(model.descriptor, model.min_nbor_dist)
    assert bounds == (((-142, 142), (-142, 142)), (None, (-142, 142)))
    for tab in iter_tables(cm.descriptor):
        assert (tab.lower, tab.upper, tab.xmin, tab.xmax) == (-142, 142, -710, 710)
        assert (tab.stride0, tab.stride1) == (0.1, 1.0) and tab.n_below == tab.n_coarse == 568 and tab.n_fine == 2840
        assert tab.nspline == 3976  # DeePMD-kit's count for the same range
    # the range is the real one: e_jk of the training-like test frames stays inside, and close to it
    from dpcompress.neighbors import build_neighbor_list
    from dpcompress.evaluators.exact.se_e3 import descriptor_forward
    from dpcompress.evaluators.exact import slot_masks

    f = tiny[2][""]
    types = f["atype"].astype(np.int64)
    nl = build_neighbor_list(f["coord"][0].astype(float), f["box"][0].astype(float), types, model.rcut, list(model.descriptor.sel))
    real, zeroed, jt = slot_masks(model.descriptor, types, types, nl.index)
    _, cache = descriptor_forward(model.descriptor, types, jt, nl.vectors, real, zeroed)
    e_max = max(np.abs(p[3]).max() for p in cache["pairs"])
    assert 98 < e_max < 142


def test_dpc_round_trip_and_cli(tmp_path, capsys, tiny):
    model, cm, frames, exact = tiny
    path = tmp_path / "t.dpc"
    assert main(["compress", "-i", os.path.join(SE_E3_TINY, "frozen.dp"), "-o", str(path)]) == 0
    loaded = load_model(path)
    assert isinstance(loaded.descriptor, DescriptorSeT) and loaded.descriptor.tables[1][0] is None
    for a, b in zip(iter_tables(loaded.descriptor), iter_tables(cm.descriptor)):
        np.testing.assert_array_equal(a.coef, b.coef)
        assert (a.lower, a.n_below, a.n_fine, a.n_coarse) == (b.lower, b.n_below, b.n_fine, b.n_coarse)
    f = frames[""]
    a = Potential(loaded).eval(f["coord"][:1].astype(float), f["box"][:1].astype(float).reshape(1, 9), f["atype"])
    b = Potential(cm).eval(f["coord"][:1].astype(float), f["box"][:1].astype(float).reshape(1, 9), f["atype"])
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "se_e3" in text and "[-710, -142) step 1, [-142, 142) step 0.1, [142, 710] step 1" in text


def random_net(rng, activation, widths=(1, 4, 8, 8)):
    """1 -> 4 (no skip), 4 -> 8 (doubling skip), 8 -> 8 (identity skip, with a resnet_dt timestep)."""
    layers = []
    for k in range(len(widths) - 1):
        n_in, n_out = widths[k], widths[k + 1]
        w = rng.normal(scale=0.05 if k == 0 else 0.8 / np.sqrt(n_in), size=(n_in, n_out))  # e_jk reaches ~140
        idt = rng.normal(1.0, 0.1, size=n_out) if k == len(widths) - 2 else None
        layers.append(Layer(w, rng.normal(scale=0.3, size=n_out), idt, activation, True))
    return Network(tuple(layers))


def water_cluster(radius=4.5):
    """Atoms within ``radius`` of atom 0 of test frame 0 (minimum image), as a non-periodic cluster."""
    f = np.load(os.path.join(SE_E3_TINY, "test_frames.npz"))
    d = f["coord"][0].astype(float) - f["coord"][0, 0]
    box = f["box"][0].astype(float)
    frac = d @ np.linalg.inv(box)
    d = (frac - np.round(frac)) @ box
    keep = np.linalg.norm(d, axis=1) < radius
    return d[keep][None], f["atype"][keep].astype(np.int64)


@pytest.mark.parametrize("activation", ["tanh", "gelu", "relu", "relu6", "softplus", "sigmoid", "silu", "linear"])
def test_every_activation(tiny, activation):
    base = tiny[0]
    rng = np.random.default_rng(1)
    emb = tuple(tuple(random_net(rng, activation) if a <= b else None for b in range(2)) for a in range(2))
    model = dataclasses.replace(base, descriptor=dataclasses.replace(base.descriptor, embeddings=emb, activation=activation))
    coords, types = water_cluster()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cm = compress(model)
    kinked = activation in ("relu", "relu6")
    assert any(issubclass(w.category, TableAccuracyWarning) for w in caught) == kinked
    e0, f0, v0 = Potential(model).eval(coords, None, types)
    e1, f1, v1 = Potential(cm).eval(coords, None, types)
    assert np.abs(f0).max() > 0.05  # the nets really matter
    de, df = np.abs(e1 - e0).max() / len(types), np.abs(f1 - f0).max()
    if kinked:  # a smooth interval cannot follow a kink: close, not exact
        assert de < 1e-6 and df < 1e-2, (de, df)
    else:
        assert de <= 1e-12 and df <= 1e-10, (de, df)


@pytest.mark.filterwarnings("ignore::dpcompress.potential.NeighborOverflowWarning")  # O neighbors have no slots
def test_a_neighbor_type_without_slots(tmp_path, tiny):
    """sel = (0, 40): only the (H, H) net exists; the tables' first row is empty (None) and survives .dpc."""
    base = tiny[0]
    d = base.descriptor
    desc = dataclasses.replace(
        d, sel=(0, 40), davg=d.davg[:, 20:].copy(), dstd=d.dstd[:, 20:].copy(), embeddings=((None, None), (None, d.embeddings[1][1]))
    )
    model = dataclasses.replace(base, descriptor=desc)
    cm = compress(model)
    assert cm.descriptor.tables[0] is None and len(list(iter_tables(cm.descriptor))) == 1
    save_model(cm, tmp_path / "h.dpc")
    loaded = load_model(tmp_path / "h.dpc")
    assert loaded.descriptor.tables[0] is None  # as the tabulator made it
    coords, types = water_cluster()
    e0, f0, _ = Potential(model).eval(coords, None, types)
    e1, f1, _ = Potential(loaded).eval(coords, None, types)
    assert np.abs(e1 - e0).max() / len(types) < 1e-9 and np.abs(f1 - f0).max() < 1e-7


def check_fixture(folder):
    """Exact vs DeePMD-kit, compressed vs exact, stress frames vs DeePMD-kit's compressed model."""
    model = load_model(os.path.join(folder, "frozen.dp"))
    exact, comp = Potential(model), Potential(compress(model))
    theirs = json.load(open(os.path.join(folder, "errors.json")))["errors"]["compressed_pth_stress"]
    for stress in ("", "_stress"):
        frames = np.load(os.path.join(folder, f"test_frames{stress}.npz"))
        ref = np.load(os.path.join(folder, f"ref_uncompressed_pth{stress}.npz"))
        n = len(frames["atype"])
        out = evaluate(exact, frames)
        err = differences(out, ref, n)
        for key, tol in EXACT_TOL.items():
            assert err[key].max() <= tol, (stress, key, err[key])
        cerr = differences(evaluate(comp, frames)[:3], out[:3], n)
        if not stress:
            for key, tol in COMPRESSED_TOL.items():
                assert cerr[key].max() <= tol, (key, cerr[key])
            continue
        for k in range(len(frames["coord"])):
            assert cerr["force"][k] <= theirs["max_abs_force_by_frame"][k] * (1 + 1e-6) + 1e-10, (k, cerr["force"][k])
            assert cerr["energy_per_atom"][k] <= theirs["max_abs_energy_per_atom_by_frame"][k] * (1 + 1e-6) + 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("name", ["se_e3", "se_e3_tiny_n4"])
def test_large_fixtures(name):
    check_fixture(shared_fixture(name))


@pytest.mark.slow
def test_tables_equal_deepmds_except_its_wrong_rows(tiny):
    """Same range (142) for the (H, H) net: our table is DeePMD-kit's, row for row, but for the two rows
    next to the fine/coarse boundaries that DeePMD-kit builds with the wrong interval width."""
    full = np.load(os.path.join(shared_fixture("se_e3_tiny"), "tables_full.npz"))
    tab = tiny[1].descriptor.embedding_table(1, 1)
    theirs = full["filter_1_net_1"].reshape(tab.nspline, tab.n_channels, 6).transpose(0, 2, 1)
    scaled = np.abs(tab.coef - theirs) * tab.widths()[:, None, None] ** np.arange(6)[None, :, None]
    row_err = scaled.max(axis=(1, 2))
    wrong = [tab.n_below, tab.n_below + tab.n_fine]  # [L, L + s0) built with width s1, [U, U + s1) with width s0
    assert np.all(row_err[wrong] > 1e-3)
    assert np.delete(row_err, wrong).max() < 1e-9


def test_in_a_hybrid_with_se_e2_a(tiny):
    """se_e2_a + se_e3 side by side (the DeePMD-kit v2 paper's hybrid): each part keeps its own
    neighbor list; compressed equals exact."""
    from conftest import TINY
    from dpcompress.descriptors import DescriptorHybrid

    sea = load_model(os.path.join(TINY, "frozen.dp"))
    se3 = tiny[0].descriptor
    rng = np.random.default_rng(2)
    nets = []
    for net in sea.fitting.networks:
        first = net.layers[0]
        w = np.vstack([first.w, rng.normal(scale=0.05, size=(se3.dim_out, first.n_out))])
        nets.append(Network((dataclasses.replace(first, w=w),) + net.layers[1:]))
    model = dataclasses.replace(
        sea, descriptor=DescriptorHybrid(parts=(sea.descriptor, se3)), fitting=dataclasses.replace(sea.fitting, networks=tuple(nets))
    )
    coords, types = water_cluster()
    e0, f0, v0 = Potential(model).eval(coords, None, types)
    e1, f1, v1 = Potential(compress(model)).eval(coords, None, types)
    e_sea = Potential(sea).eval(coords, None, types)[0]
    assert np.abs(e0 - e_sea).max() > 1e-2  # the se_e3 part matters
    assert np.abs(e1 - e0).max() / len(types) <= 1e-9 and np.abs(f1 - f0).max() <= 1e-7
