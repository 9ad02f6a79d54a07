"""The ``dpcompress`` command line: compress, info, eval, and the min_nbor_dist rules."""

import json
import os
import shutil

import h5py
import numpy as np
import pytest

from conftest import REPO, TINY
from dpcompress.cli import main
from dpcompress import compress
from dpcompress.compression import resolve_min_nbor_dist
from dpcompress.data import read_npy_system
from dpcompress.core.errors import InputError
from dpcompress import load_model

FRAME = os.path.join(REPO, "examples", "data", "water", "frame")


def model_without_min_nbor_dist(tmp_path):
    dst = tmp_path / "nomin.dp"
    shutil.copy(os.path.join(TINY, "frozen.dp"), dst)
    with h5py.File(dst, "r+") as fh:
        tree = json.loads(fh.attrs["json"])
        tree["@variables"].pop("min_nbor_dist")
        fh.attrs["json"] = json.dumps(tree)
    return dst


def brute_min_distance(system):
    c, cell = system.coords[0], system.cells[0]
    frac = np.linalg.solve(cell.T, (c[:, None] - c[None]).reshape(-1, 3).T).T
    frac -= np.round(frac)  # minimum image is exact for this 12 Å cell (pairs < 6 Å)
    d = np.linalg.norm(frac @ cell, axis=1).reshape(len(c), len(c))
    return d[~np.eye(len(c), dtype=bool)].min()


def test_compress_info_eval(tmp_path, capsys):
    out = tmp_path / "w.dpc"
    assert main(["compress", "-i", os.path.join(TINY, "frozen.dp"), "-o", str(out), "-s", "0.02", "-f", "10", "--order", "3"]) == 0
    m = load_model(out)
    assert m.compression["order"] == 3 and m.compression["stride0"] == 0.02 and m.compression["check_frequency"] == 10
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "order 3" in text and "max |table - net|" in text
    assert main(["eval", str(out), FRAME]) == 0
    assert "energy -29941.72" in capsys.readouterr().out


def test_min_nbor_dist_from_training_script(tmp_path):
    model = model_without_min_nbor_dist(tmp_path)
    script = tmp_path / "input.json"
    script.write_text(json.dumps({"training": {"training_data": {"systems": [os.path.relpath(FRAME, tmp_path)]}}}))
    value, source = resolve_min_nbor_dist(load_model(model), training_script=str(script))
    assert abs(value - brute_min_distance(read_npy_system(FRAME))) < 1e-12
    assert "input.json" in source
    assert main(["compress", "-i", str(model), "-o", str(tmp_path / "t.dpc"), "-t", str(script)]) == 0


def test_min_nbor_dist_order_and_errors(tmp_path, capsys):
    model = load_model(model_without_min_nbor_dist(tmp_path))
    assert resolve_min_nbor_dist(model, min_nbor_dist=0.9) == (0.9, "argument")
    with pytest.raises(InputError, match="-t input.json"):
        compress(model)
    assert main(["compress", "-i", str(tmp_path / "nomin.dp"), "-o", str(tmp_path / "x.dpc")]) == 2
    assert "--min-nbor-dist" in capsys.readouterr().err
    stored = load_model(os.path.join(TINY, "frozen.dp"))
    with pytest.warns(UserWarning, match="not used"):
        assert resolve_min_nbor_dist(stored, min_nbor_dist=0.5)[1] == "model"


@pytest.mark.parametrize("args, match", [(["-s", "0"], "step"), (["-e", "0.5"], "extrapolate")])
def test_bad_flags(tmp_path, capsys, args, match):
    assert main(["compress", "-i", os.path.join(TINY, "frozen.dp"), "-o", str(tmp_path / "x.dpc")] + args) == 2
    assert match in capsys.readouterr().err


def test_public_api_is_visible_with_real_signatures():
    """``dir(dpcompress)`` lists the public names; ``compress`` is a function with its real signature."""
    import inspect

    import dpcompress
    import dpcompress.compression  # noqa: F401  (the subpackage has its own name: nothing is rebound)

    for name in ("Potential", "compress", "load_model", "save_model", "compress_nep"):
        assert name in dir(dpcompress)
    sig = inspect.signature(dpcompress.compress)
    assert list(sig.parameters)[:3] == ["model", "step", "extrapolate"]
    assert dpcompress.compress(os.path.join(TINY, "frozen.dp")).is_compressed
