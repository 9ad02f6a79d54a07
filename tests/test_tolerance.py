"""``compress --tolerance``: per-table strides from a force tolerance (dpcompress.tolerance).

Reference: the exact (uncompressed) evaluator on the same frames; the tiny se_e2_a fixture's test
frames calibrate (with their close contacts), its stress frames inside the table range check out of
sample; also se_e2_r, se_atten_v2 and hybrid.
"""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import DATA, REPO, TINY
from dpcompress import Potential, compress, load_model
from dpcompress._ext import runtime
from dpcompress.cli import main
from dpcompress.core.errors import InputError, ModelFormatError
from dpcompress.core.warnings import TableAccuracyWarning
from dpcompress.descriptors import iter_nets, iter_tables
from dpcompress.modelfile import model_bytes, save_model
from dpcompress.modelfile.container import decode, encode
from dpcompress.tolerance import (MARGIN, calibration_frames, compress_to_tolerance, contact_fractions, contact_frames,
                                  largest_uniform_step, prepare_calibration)

MODEL = os.path.join(TINY, "frozen.dp")
SE_E3 = os.path.join(DATA, "deepmd", "se_e3_tiny", "frozen.dp")
NEP = os.path.join(DATA, "nep", "PbTe_NEP4_example", "nep.txt")
TOL = 1e-6
#: contact distances per type pair in these tests (the default, 48, takes 4x the exact evaluations;
#: the margin covers the sparser sampling on these fixtures)
CONTACTS = 16
FIXTURES = ["se_e2_a_tiny", "se_e2_r_tiny", "se_atten_v2_tiny", "hybrid_tiny"]


def _frames(name, fixture="se_e2_a_tiny"):
    d = np.load(os.path.join(DATA, "deepmd", fixture, name))
    return [(d["coord"].astype(np.float64), d["box"].astype(np.float64), d["atype"])]


def _model_path(fixture):
    return os.path.join(DATA, "deepmd", fixture, "frozen.dp")


_CACHE = {}


def _compressed(fixture):
    """``(exact Potential, Calibration, model compressed to TOL)`` of a tiny fixture, built once."""
    if fixture not in _CACHE:
        model = load_model(_model_path(fixture))
        cal = prepare_calibration(model, _frames("test_frames.npz", fixture), contacts=CONTACTS)
        _CACHE[fixture] = (Potential(model), cal, compress_to_tolerance(model, TOL, cal))
    return _CACHE[fixture]


@pytest.fixture(scope="module")
def exact():
    return _compressed("se_e2_a_tiny")[0]


@pytest.fixture(scope="module")
def tol_model():
    return _compressed("se_e2_a_tiny")[2]


def _in_range_stress(model, fixture="se_e2_a_tiny"):
    """The stress frames whose neighbors all lie inside ``model``'s tables (no extrapolation)."""
    coords, box, types = _frames("test_frames_stress.npz", fixture)[0]
    pot = Potential(model, overflow="ignore")
    keep = []
    for k in range(len(coords)):
        pot.eval(coords[k : k + 1], box[k : k + 1], types)
        if pot.table_overflow["beyond_table"] == 0:
            keep.append(k)
    return [(coords[keep], box[keep], types)]


def _max_df(model, exact, frames):
    """Max |F(model) - F(exact)| over ``frames``, each frame evaluated on its own."""
    pot = Potential(model, overflow="error")
    worst = 0.0
    for c, b, t in frames:
        for k in range(len(c)):
            got, ref = pot.eval(c[k : k + 1], b[k : k + 1], t)[1], exact.eval(c[k : k + 1], b[k : k + 1], t)[1]
            worst = max(worst, float(np.max(np.abs(got - ref))))
    return worst


def _table_bytes(model):
    return sum(t.coef.nbytes for t in iter_tables(model.descriptor))


@pytest.mark.parametrize("fixture", FIXTURES)
def test_tolerance_met_on_test_and_stress_frames_with_smaller_tables_than_a_uniform_step(fixture):
    exact, cal, m = _compressed(fixture)
    stress = _in_range_stress(m, fixture)
    assert len(stress[0][0]) >= 3  # 0.7, 0.5 and 0.3 Å pairs lie inside the table (coarse region)
    assert _max_df(m, exact, _frames("test_frames.npz", fixture)) <= TOL
    assert _max_df(m, exact, stress) <= TOL  # out of sample: not calibrated on these
    p = m.compression
    c = p["calibration"]
    assert p["tolerance"] == TOL and c["margin"] == MARGIN and c["contact_frames"] == len(cal.contacts) > 0
    assert c["max_force_error"] <= c["max_contact_force_error"] <= MARGIN * TOL
    # the fair uniform step: the largest meeting TOL itself (no margin) on the same frames
    s = largest_uniform_step(_model_path(fixture), TOL, cal)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TableAccuracyWarning)
        uniform = compress(_model_path(fixture), step=s)
    assert cal.check(uniform)[1] <= TOL
    assert _table_bytes(m) < _table_bytes(uniform)


def test_each_table_its_own_strides_and_their_record(tol_model):
    p = tol_model.compression
    tables = list(iter_tables(tol_model.descriptor))
    assert len(p["table_bounds"]) == len(p["table_search"]) == len(tables)
    assert len({(t.stride0, t.stride1) for t in tables}) > 1  # different nets, different strides
    for t, (bf, bc), history in zip(tables, p["table_bounds"], p["table_search"]):
        assert history[-1] == [t.stride0, bf, t.stride1, bc]  # the bound is the final table's
    assert p["calibration"]["growth_trials"] > 0


def test_contact_frames_sample_every_type_pair_at_every_distance(exact):
    frames = calibration_frames(_frames("test_frames.npz"))
    rmin = 0.9  # Å: the contacts are fractions of it
    contacts = contact_frames(frames, rmin, n=5)
    assert len(contacts) == 3 * 5  # O-O, O-H, H-H
    x0 = frames[0][0][0]
    for (y, cell, _, _), frac in zip(contacts, contact_fractions(5) * 3):
        moved = np.flatnonzero(np.any(y[0] != x0, axis=1))
        assert len(moved) == 1  # one atom moved: the pair's second atom
        d = y[0][None, :, :] - y[0][moved]
        f = d @ np.linalg.inv(cell[0])
        r = np.linalg.norm((f - np.round(f)) @ cell[0], axis=2)
        assert np.count_nonzero(np.abs(r - frac * rmin) < 1e-9) == 1  # its partner, at the contact distance


def test_file_round_trip_and_info_shows_the_bound(tol_model, tmp_path, capsys):
    path = str(tmp_path / "tol.dpc")
    save_model(tol_model, path)
    data = open(path, "rb").read()
    head = decode(data, path).header["compression"]
    assert len(head["table_strides"]) == 1 and len(head["table_strides"][0]) == 2 * 4
    runtime.check_model_bytes(data, path)  # the C reader derives each grid from these strides
    frames = _frames("test_frames.npz")
    c, b, t = frames[0]
    np.testing.assert_array_equal(Potential(path).eval(c, b, t)[1], Potential(tol_model).eval(c, b, t)[1])
    assert main(["info", path]) == 0
    out = capsys.readouterr().out
    assert "tolerance:       1e-06 eV/Å" in out
    for k, (bf, bc) in enumerate(tol_model.compression["table_bounds"]):
        assert f"table {k}:       achieved bound {bf:.2e} (fine), {bc:.2e} (coarse)" in out


def _edit_header(data, change):
    c = decode(data, check=False)
    header = json.loads(json.dumps(c.header))
    change(header)
    return encode(header, sorted((k, np.array(v)) for k, v in c.arrays.items()))


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda h: h["compression"]["table_strides"][0].__setitem__(0, 0.5), "grid lower"),
        (lambda h: h["compression"]["table_strides"][0].pop(), "2 positive strides for each of the part's 4 tables"),
        (lambda h: h["compression"]["table_strides"][0].__setitem__(1, -1.0), "2 positive strides"),
        (lambda h: h["compression"]["table_strides"].append([]), "one entry per descriptor part"),
        (lambda h: h["compression"].__setitem__("table_strides", {}), "one entry per descriptor part"),
        (lambda h: h["compression"].pop("table_strides"), "grid lower"),
    ],
)
def test_both_readers_check_the_per_table_strides(tol_model, change, match):
    data = _edit_header(model_bytes(tol_model), change)
    with pytest.raises(ModelFormatError, match=match) as py:
        decode(data, "hostile.dpc")
    with pytest.raises(ModelFormatError, match=match) as c:
        runtime.check_model_bytes(data, "hostile.dpc")
    assert str(py.value).startswith("hostile.dpc: ") and str(c.value).startswith("hostile.dpc: ")
    if "table_strides" in match or "entry" in match or "positive" in match:  # the new messages: word for word
        assert str(py.value) == str(c.value)


def test_se_e3_per_table_strides_pass_both_readers():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TableAccuracyWarning)
        m = compress(SE_E3, table_error=1e-7)
    data = model_bytes(m)
    decode(data, "e3.dpc")
    runtime.check_model_bytes(data, "e3.dpc")
    assert all(max(b) <= 1e-7 for b in m.compression["table_bounds"])


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", "dpcompress", *args], capture_output=True, text=True, env=env)


def test_cli_refuses_what_does_not_combine(tmp_path):
    out = str(tmp_path / "x.dpc")
    for args, msg in (
        (["-s", "0.02", "--tolerance", "1e-6", "-t", "x.json"], "do not combine it with -s"),
        (["--tolerance", "1e-6"], "needs calibration frames"),
        (["--tolerance-frames", TINY], "only used with --tolerance"),
    ):
        r = _cli("compress", "-i", MODEL, "-o", out, *args)
        assert r.returncode == 2 and msg in r.stderr and r.stderr.count("\n") == 1, r.stderr
    r = _cli("compress", "-i", NEP, "-o", out, "--tolerance", "1e-6", "-t", "x.json")
    assert r.returncode == 2 and "applies to DeePMD-kit models" in r.stderr
    with pytest.raises(InputError, match="tolerance must be a number > 0"):
        compress_to_tolerance(MODEL, -1.0, _frames("test_frames.npz"))


def test_info_plot(tol_model, tmp_path):
    pytest.importorskip("matplotlib")
    path, png = str(tmp_path / "tol.dpc"), str(tmp_path / "err.png")
    save_model(tol_model, path)
    assert main(["info", path, "--plot", png]) == 0
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    plain = str(tmp_path / "plain.dpc")
    save_model(compress(MODEL, step=0.05), plain)
    assert main(["info", plain, "--plot", png]) == 2  # no error-vs-step record


def test_fixed_strides_build_the_given_strides_and_reuse_the_unchanged_tables():
    from dpcompress.compression.table_error import FixedStrides, region_errors

    model = load_model(MODEL)
    nets = list(iter_nets(model.descriptor))
    strides = [(0.3 + 0.1 * k, 3.0 + k) for k in range(len(nets))]
    cache = {}
    a = compress(model, table_error=FixedStrides((1e-6, 1e-6), strides, [[]] * len(nets), cache))
    strides[1] = (0.7, 2.0)
    b = compress(model, table_error=FixedStrides((1e-6, 1e-6), strides, [[]] * len(nets), cache))
    ta, tb = list(iter_tables(a.descriptor)), list(iter_tables(b.descriptor))
    assert [(t.stride0, t.stride1) for t in tb] == strides
    assert all((x is y) == (k != 1) for k, (x, y) in enumerate(zip(ta, tb)))  # only the changed one is rebuilt
    for t, net, bounds in zip(tb, nets, b.compression["table_bounds"]):
        assert list(region_errors(t, net)) == bounds  # the recorded bound is the table's sampled error
