"""``dp compress``'s command line, as scripts written for DeePMD-kit pass it (issue 17, item 4).

``-i``/``-o`` default to ``frozen_model``/``frozen_model_compressed`` and take prefixes; ``-v``,
``-l``, ``-m`` are dp's logging options; ``-c`` is accepted and creates nothing; ``-t`` reads JSON
or YAML.  The reference for the compressed file is the same compression with explicit arguments.
"""

import json
import os
import shutil

import h5py
import numpy as np
import pytest

from dpcompress.cli import main
from dpcompress.descriptors import iter_tables
from dpcompress.modelfile import load_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, "tests", "data", "deepmd", "se_e2_a_tiny", "frozen.dp")
FRAME = os.path.join(REPO, "examples", "data", "water", "frame")


def same_tables(a, b):
    pa, pb = (list(iter_tables(load_model(x).descriptor)) for x in (a, b))
    return len(pa) == len(pb) > 0 and all(np.array_equal(x.coef, y.coef) for x, y in zip(pa, pb))


def test_dp_compress_docs_command_line(tmp_path, monkeypatch, capsys):
    # the DeePMD-kit docs' `dp compress` with logging, run with dpcompress in a folder holding frozen_model.dp
    monkeypatch.chdir(tmp_path)
    shutil.copy(TINY, "frozen_model.dp")
    assert main(["compress", "-v", "INFO", "-l", "compress.log", "-m", "master", "-c", "ckpt"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("compressed frozen_model.dp -> frozen_model_compressed.dpc")
    log = open("compress.log").read().splitlines()
    assert len(log) == len(out.splitlines()) and " INFO compressed frozen_model.dp" in log[0]
    assert not os.path.exists("ckpt")  # dpcompress writes no checkpoint
    assert main(["compress", "-i", TINY, "-o", "explicit.dpc"]) == 0
    assert same_tables("frozen_model_compressed.dpc", "explicit.dpc")


def test_prefixes_levels_and_workers_log(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copy(TINY, "model.dp")
    assert main(["compress", "-i", "model", "-o", "small", "-v", "WARNING", "-l", "w.log"]) == 0
    assert os.path.exists("small.dpc") and capsys.readouterr().out == "" and open("w.log").read() == ""
    # under mpiexec (rank from the launcher's environment): master logs on rank 0 only, workers per rank
    monkeypatch.setenv("PMI_RANK", "1")
    assert main(["compress", "-i", "model.dp", "-o", "r1.dpc", "-l", "r.log"]) == 0
    assert capsys.readouterr().out == "" and not os.path.exists("r.log.1")
    assert main(["compress", "-i", "model.dp", "-o", "r1.dpc", "-l", "r.log", "-m", "workers", "-v", "1"]) == 0
    assert os.path.exists("r.log.1") and not os.path.exists("r.log")


def test_other_backend_prefix_and_log_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    open("frozen_model.pth", "wb").close()
    assert main(["compress", "-l", "e.log"]) == 2
    err = capsys.readouterr().err
    assert "frozen_model.pth, a PyTorch model" in err and "dp convert-backend frozen_model.pth frozen_model.dp" in err
    assert " ERROR error: -i frozen_model: found frozen_model.pth" in open("e.log").read()
    shutil.copy(TINY, "m.dp")
    assert main(["compress", "-i", "m.dp", "-l", str(tmp_path / "no" / "x.log")]) == 2
    assert "-l/--log-path" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compress", "-i", "m.dp", "-v", "LOUD"])


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_training_script_json_or_yaml(tmp_path, monkeypatch, suffix):
    monkeypatch.chdir(tmp_path)
    cfg = {"training": {"training_data": {"systems": [FRAME]}}}
    text = json.dumps(cfg) if suffix == ".json" else f"training:\n  training_data:\n    systems:\n      - {FRAME}\n"
    open("input" + suffix, "w").write(text)
    shutil.copy(TINY, "nomin.dp")  # without a stored min_nbor_dist, so that -t's data decide it
    with h5py.File("nomin.dp", "r+") as fh:
        tree = json.loads(fh.attrs["json"])
        tree["@variables"].pop("min_nbor_dist")
        fh.attrs["json"] = json.dumps(tree)
    assert main(["compress", "-i", "nomin", "-o", "t.dpc", "-t", "input" + suffix]) == 0
    assert "input" + suffix in load_model("t.dpc").compression["min_nbor_dist_source"]
