"""``compress --tolerance``: per-table strides from a force tolerance (dpcompress.tolerance).

Reference: the exact (uncompressed) evaluator on the same frames; the tiny se_e2_a fixture's test
frames calibrate, its stress frames inside the table range check out of sample.
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
from dpcompress.descriptors import iter_tables
from dpcompress.modelfile import model_bytes, save_model
from dpcompress.modelfile.container import decode, encode
from dpcompress.tolerance import calibration_frames, compress_to_tolerance, contact_frames, force_error

MODEL = os.path.join(TINY, "frozen.dp")
SE_E3 = os.path.join(DATA, "deepmd", "se_e3_tiny", "frozen.dp")
NEP = os.path.join(DATA, "nep", "PbTe_NEP4_example", "nep.txt")
TOL = 1e-6


def _frames(name):
    d = np.load(os.path.join(TINY, name))
    return [(d["coord"].astype(np.float64), d["box"].astype(np.float64), d["atype"])]


@pytest.fixture(scope="module")
def exact():
    return Potential(load_model(MODEL))


@pytest.fixture(scope="module")
def tol_model():
    return compress_to_tolerance(MODEL, TOL, _frames("test_frames.npz"))


def _in_range_stress(model):
    """The stress frames whose neighbors all lie inside ``model``'s tables (no extrapolation)."""
    coords, box, types = _frames("test_frames_stress.npz")[0]
    pot = Potential(model, overflow="ignore")
    keep = []
    for k in range(len(coords)):
        pot.eval(coords[k : k + 1], box[k : k + 1], types)
        if pot.table_overflow["beyond_table"] == 0:
            keep.append(k)
    return [(coords[keep], box[keep], types)]


def _max_df(model, exact, frames, refs=None):
    """Max |F(model) - F(exact)| over ``frames`` (``refs``: the exact forces, when already computed)."""
    pot = Potential(model, overflow="error")
    refs = refs or [exact.eval(c, b, t)[1] for c, b, t in frames]
    return max(float(np.max(np.abs(pot.eval(c, b, t)[1] - r))) for (c, b, t), r in zip(frames, refs))


def _table_bytes(model):
    return sum(t.coef.nbytes for t in iter_tables(model.descriptor))


def test_tolerance_met_on_test_and_stress_frames(tol_model, exact):
    stress = _in_range_stress(tol_model)
    assert len(stress[0][0]) >= 3  # 0.7, 0.5 and 0.3 Å pairs lie inside the table (coarse region)
    assert _max_df(tol_model, exact, _frames("test_frames.npz")) <= TOL
    assert _max_df(tol_model, exact, stress) <= TOL  # out of sample: not calibrated on these
    p = tol_model.compression
    assert p["tolerance"] == TOL and p["calibration"]["max_force_error"] <= TOL
    assert p["calibration"]["max_contact_force_error"] <= TOL and p["calibration"]["contact_frames"] > 0
    fine, coarse = p["table_budget"]
    assert all(bf <= fine and bc <= coarse for bf, bc in p["table_bounds"])
    # each table its own strides: the search found different ones for different nets
    strides = {(t.stride0, t.stride1) for t in iter_tables(tol_model.descriptor)}
    assert len(strides) > 1


def _uniform_step(tol, frames, refs, contacts, contact_refs):
    """The largest uniform -s (coarse 10x) whose model meets ``tol`` as the tolerance defines it:
    on the calibration frames and their close-contact frames (log bisection)."""
    good, bad = 0.001, 2.56
    for _ in range(9):
        s = float(np.sqrt(good * bad))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TableAccuracyWarning)
            m = compress(MODEL, step=s)
        ok = max(force_error(m, frames, refs), force_error(m, contacts, contact_refs, skip_beyond=True)) <= tol
        good, bad = (s, bad) if ok else (good, s)
    return good


def test_smaller_than_the_uniform_step_meeting_the_same_tolerance(tol_model, exact):
    frames = calibration_frames(_frames("test_frames.npz"))
    contacts = contact_frames(frames, tol_model.min_nbor_dist)
    refs = [exact.eval(c, b, t)[1] for c, b, t, _ in frames]
    contact_refs = [exact.eval(c, b, t)[1] for c, b, t, _ in contacts]
    s = _uniform_step(TOL, frames, refs, contacts, contact_refs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TableAccuracyWarning)
        uniform = compress(MODEL, step=s)
    assert _table_bytes(tol_model) < _table_bytes(uniform)


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
