"""Hostile and unusual files (issue 13): a user's model is never destroyed, sizes are checked before
anything is allocated, YAML/JSON are bounded, and odd-but-valid files are read.

Every hostile file is made here, in ``tmp_path``, from the small models of ``tests/data``.
"""

import errno
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
import tracemalloc
import warnings

import h5py
import numpy as np
import pytest

from conftest import DATA, REPO, TINY
from dpcompress import compress, compress_nep, load_model
from dpcompress.cli import main
from dpcompress.core.activations import check_activation
from dpcompress.core import atomic_file
from dpcompress.core.atomic_file import check_output_path, write_atomic
from dpcompress.core.errors import InputError, ModelFormatError, UnsupportedModelError
from dpcompress.core.bounded_yaml import load_yaml
from dpcompress.nep import read_nep, write_nep
from dpcompress.scan import write_json

MODEL = os.path.join(TINY, "frozen.dp")
NEP = os.path.join(DATA, "nep", "PbTe_NEP4_example", "nep.txt")


def digest(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def temporaries(folder):
    return [f for f in os.listdir(folder) if f.endswith(".tmp")]


def copy(src, dst):
    shutil.copy(src, dst)
    os.chmod(dst, 0o644)
    return dst


def edit_dp(dst, edit, src=MODEL):
    """Copy a .dp file and call ``edit(h5py_file, tree)``; the tree is written back afterwards."""
    copy(src, dst)
    with h5py.File(dst, "r+") as fh:
        tree = json.loads(fh.attrs["json"])
        edit(fh, tree)
        fh.attrs["json"] = json.dumps(tree)
    return dst


def fitting_layer(tree, k=0):
    return tree["model"]["fitting"]["nets"]["networks"][0]["layers"][k]


# --- 1. a user's model is never destroyed -----------------------------------------------------------------


@pytest.mark.parametrize("source", [MODEL, NEP], ids=["dp", "nep"])
@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_compress_refuses_to_overwrite_its_input(tmp_path, capsys, source, link):
    model = copy(source, tmp_path / os.path.basename(source))
    before = digest(model)
    out = model
    if link == "symlink":
        out = tmp_path / "out.dpc"
        os.symlink(model, out)
    elif link == "hardlink":
        out = tmp_path / "out.dpc"
        os.link(model, out)
    assert main(["compress", "-i", str(model), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is the input file" in err and os.path.basename(str(model)) in err
    assert digest(model) == before and not temporaries(tmp_path)


@pytest.mark.parametrize("target, match", [("missing/x.dpc", "does not exist"), (".", "is a folder")])
def test_compress_output_into_missing_folder_or_onto_folder(tmp_path, capsys, target, match):
    out = tmp_path / target
    assert main(["compress", "-i", MODEL, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert match in err and str(out.parent if target != "." else out) in err
    with pytest.raises(InputError, match=match):
        check_output_path(out)


def test_other_writers_refuse_bad_targets(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        write_json({"a": 1}, tmp_path / "no" / "scan.json")
    nep = copy(NEP, tmp_path / "nep.txt")
    m = read_nep(nep)
    with pytest.raises(InputError, match="is the input file"):
        write_nep(m, nep)  # the model's own source
    assert digest(nep) == digest(NEP)
    write_nep(m, tmp_path / "copy.txt")
    assert read_nep(tmp_path / "copy.txt").elements == m.elements and not temporaries(tmp_path)


def test_atomic_write_mode_and_cleanup(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    write_atomic(path, b"one")
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    os.chmod(path, 0o640)
    write_atomic(path, "two")  # str: UTF-8; the replaced file's mode is kept
    assert path.read_bytes() == b"two" and stat.S_IMODE(os.stat(path).st_mode) == 0o640

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic_file.os, "fsync", disk_full)  # fails after the data went to the temporary file
    with pytest.raises(OSError, match=r"No space left on device.*f\.bin"):
        write_atomic(path, b"three")
    monkeypatch.undo()
    assert path.read_bytes() == b"two" and not temporaries(tmp_path)


def test_kill_9_during_a_write_keeps_the_previous_file(tmp_path):
    """A writer killed after writing its temporary file, before the rename: the old file stays whole,
    and the next write of the same file removes the dead writer's temporary file."""
    target = tmp_path / "model.dpc"
    target.write_bytes(b"previous good model")
    child = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {REPO!r})
        from dpcompress.core import atomic_file
        def stuck_fsync(fd):  # the data is in the temporary file; now wait to be killed
            print("written", flush=True)
            time.sleep(60)
        atomic_file.os.fsync = stuck_fsync
        atomic_file.write_atomic({str(target)!r}, b"x" * (8 << 20))
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"previous good model"
    left = temporaries(tmp_path)
    assert len(left) == 1 and left[0].startswith(".model.dpc.") and str(proc.pid) in left[0]
    write_atomic(target, b"new model")
    assert target.read_bytes() == b"new model" and not temporaries(tmp_path)


def test_every_writer_uses_the_atomic_helper():
    """No module writes a user-visible file any other way (new writers must use write_atomic)."""
    pattern = re.compile(r"""open\([^)]*["'][wax]b?\+?["']|\.write_bytes\(|\.write_text\(|np\.save|h5py\.File\([^)]*["'][wa]["']""")
    allowed = {
        os.path.join("dpcompress", "lammps", "__init__.py"),  # the build lock file: not user data
        os.path.join("dpcompress", "gpu", "emulator.py"),  # C source compiled in a private temporary folder
        os.path.join("dpcompress", "core", "atomic_file.py"),  # the helper itself
        os.path.join("dpcompress", "validation", "detail.py"),  # np.savetxt into memory, then write_atomic
    }
    found = []
    for root, _, files in os.walk(os.path.join(REPO, "dpcompress")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                rel = os.path.relpath(path, REPO)
                if rel.startswith(os.path.join("dpcompress", "reference")) or rel in allowed:
                    continue
                with open(path, encoding="utf-8") as fh:
                    found += [f"{rel}: {line.strip()}" for line in fh if pattern.search(line)]
    assert not found, found


# --- 5. sizes are checked before anything is allocated ------------------------------------------------------


def test_declared_8_gib_weight_is_refused_before_reading(tmp_path):
    def edit(fh, tree):
        ref = fitting_layer(tree)["@variables"]["w"]
        del fh[ref]
        fh.create_dataset(ref, shape=(1 << 17, 1 << 13), dtype="f8")  # 8 GiB declared, nothing stored

    path = edit_dp(tmp_path / "huge.dp", edit)
    assert os.path.getsize(path) < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(ModelFormatError, match=r"declares shape \(131072, 8192\).*8\.00 GiB.*imply \(64, 16\), "
                                                   r"and no width setting of the model exceeds \d+"):
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 << 20


def test_stale_network_settings_still_load(tmp_path):
    """DeePMD-kit builds a network from its layers: a stale ``in_dim`` is not an error."""

    def edit(fh, tree):
        tree["model"]["fitting"]["nets"]["networks"][0]["in_dim"] = 80

    assert load_model(edit_dp(tmp_path / "stale.dp", edit)).fitting.networks[0].in_dim == 64


def test_compressed_dataset_larger_than_the_settings_allow(tmp_path):
    def edit(fh, tree):
        ref = tree["model"]["descriptor"]["@variables"]["davg"]
        del fh[ref]
        fh.create_dataset(ref, shape=(2, 1 << 26, 4), dtype="f8", chunks=(1, 4096, 4), compression="gzip")

    with pytest.raises(ModelFormatError, match=r"davg.*\(2, 67108864, 4\).*more than the model's settings allow"):
        load_model(edit_dp(tmp_path / "zip.dp", edit))


def test_dataset_not_stored_in_the_file(tmp_path):
    def edit(fh, tree):
        ref = tree["model"]["descriptor"]["@variables"]["dstd"]
        shape = fh[ref].shape
        del fh[ref]
        fh.create_dataset(ref, shape=shape, dtype="f8")  # right shape, never written

    with pytest.raises(ModelFormatError, match=r"dstd.*stores 0 bytes"):
        load_model(edit_dp(tmp_path / "hollow.dp", edit))


def test_memory_limit_applies_to_model_arrays_and_yaml(tmp_path, monkeypatch):
    monkeypatch.setenv("DPCOMPRESS_MAX_BYTES", "16k")
    with pytest.raises(ModelFormatError, match=r"need .* above the limit of 16\.00 KiB.*DPCOMPRESS_MAX_BYTES"):
        load_model(MODEL)
    big = tmp_path / "big.yaml"
    big.write_text("model: [" + "1, " * 20000 + "1]\n")
    with pytest.raises(ModelFormatError, match=r"big\.yaml.*YAML file is above the limit"):
        load_model(big)


def test_nep_table_too_large_is_refused_before_building(tmp_path, capsys):
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=r"step 1e-07 Å would take 150\.20 GiB.*limit of 2\.00 GiB"):
        compress_nep(NEP, step=1e-7)
    assert time.perf_counter() - t0 < 2
    assert main(["compress", "-i", NEP, "-o", str(tmp_path / "n.dpc"), "-s", "1e-7"]) == 2
    assert "--max-bytes" in capsys.readouterr().err and not os.path.exists(tmp_path / "n.dpc")
    with pytest.raises(InputError, match="above the limit of 1.00 MiB"):
        compress_nep(NEP, max_bytes="1M")


def test_dp_table_too_large_is_refused_before_building(tmp_path, capsys):
    with pytest.raises(InputError, match=r"step 1e-07 .* would take about .*GiB.*above the limit"):
        compress(MODEL, step=1e-7)
    with pytest.raises(InputError, match=r"above the limit of 1\.00 KiB"):
        compress(MODEL, max_bytes=1024)
    assert main(["compress", "-i", MODEL, "-o", str(tmp_path / "x.dpc"), "--max-bytes", "2kB"]) == 2
    assert "above the limit of 2.00 KiB" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["compress", "-i", MODEL, "-o", str(tmp_path / "x.dpc"), "--max-bytes", "lots"])
    assert exit_.value.code == 2 and "argument --max-bytes: expected a size" in capsys.readouterr().err


# --- 6. untrusted YAML and JSON -------------------------------------------------------------------------------


def alias_bomb(levels=9):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nmodel: *a{levels - 1}\n"  # 10**9 strings in about 500 bytes


def test_yaml_alias_bomb_is_refused_fast(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    assert os.path.getsize(path) < 600
    t0 = time.perf_counter()
    with pytest.raises(ModelFormatError, match=r"bomb\.yaml: aliases expand the document to more than \d+ nodes"):
        load_model(path)
    assert time.perf_counter() - t0 < 1


@pytest.mark.parametrize(
    "text, match",
    [
        ("model: " + "[" * 20000 + "]" * 20000 + "\n", "nested deeper than 64 levels"),
        ("model:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 100)), "nested deeper than 64 levels"),
        ("model: &a [1, *a]\n", r"alias \*a refers to a node that contains it"),
        ("model: !!python/object/apply:os.system ['true']\n", "invalid YAML"),
    ],
    ids=["deep-flow", "deep-block", "cycle", "python-tag"],
)
def test_hostile_yaml(tmp_path, text, match):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ModelFormatError, match=rf"m\.yaml: {match}"):
        load_model(path)


def test_plain_yaml_aliases_still_load():
    data = load_yaml("type_map: &t [O, H]\ndescriptor: {type_map: *t}\n", "x.yaml")
    assert data["descriptor"]["type_map"] == ["O", "H"]


@pytest.mark.parametrize("depth", [100, 20000])
def test_deeply_nested_json_in_dp(tmp_path, depth):
    def edit(fh, tree):
        tree["model"]["deep"] = "@"

    path = edit_dp(tmp_path / "deep.dp", edit)
    with h5py.File(path, "r+") as fh:
        fh.attrs["json"] = fh.attrs["json"].replace('"@"', "[" * depth + "]" * depth)
    with pytest.raises(ModelFormatError, match=r"deep\.dp: root attribute 'json' nested deeper than 64 levels"):
        load_model(path)


# --- 9. odd but valid files, and clear messages -------------------------------------------------------------


def test_row_biases_of_old_tensorflow_models_are_accepted(tmp_path):
    def edit(fh, tree):
        for layer in tree["model"]["fitting"]["nets"]["networks"][0]["layers"]:
            for key in ("b", "idt"):
                ref = layer["@variables"].get(key)
                if ref:
                    value = fh[ref][()]
                    del fh[ref]
                    fh[ref] = value.reshape(1, -1)

    got = load_model(edit_dp(tmp_path / "tf.dp", edit))
    want = load_model(MODEL)
    for a, b in zip(got.fitting.networks[0].layers, want.fitting.networks[0].layers):
        assert a.b.shape == b.b.shape and np.array_equal(a.b, b.b)
        assert (a.idt is None) == (b.idt is None) and (a.idt is None or np.array_equal(a.idt, b.idt))


@pytest.mark.parametrize("precision, warns", [("default", False), ("float64", False), ("float32", True),
                                              ("float16", True), ("bfloat16", True)])
def test_lower_precision_warning_only_below_float64(tmp_path, precision, warns):
    def edit(fh, tree):
        tree["model"]["descriptor"]["precision"] = precision
        tree["model"]["fitting"]["precision"] = "default"

    path = edit_dp(tmp_path / "p.dp", edit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_model(path)
    messages = [str(w.message) for w in caught if "lower precision" in str(w.message)]
    assert bool(messages) == warns
    assert not warns or precision in messages[0]


def test_bogus_activation_fails_at_load(tmp_path):
    def edit(fh, tree):
        tree["model"]["fitting"]["activation_function"] = "tanhh"  # a setting no layer reader looks at

    with pytest.raises(UnsupportedModelError, match=r"'model\.fitting\.activation_function' = 'tanhh'.*supported: .*tanh"):
        load_model(edit_dp(tmp_path / "a.dp", edit))
    assert check_activation("Linear") == "linear" and check_activation("gelu_tf") == "gelu"
    with pytest.raises(UnsupportedModelError, match=r"'swish7'.*gelu.*silu"):
        check_activation("swish7")


def test_nep_with_byte_order_mark(tmp_path):
    path = tmp_path / "nep.txt"
    path.write_bytes(b"\xef\xbb\xbf" + open(NEP, "rb").read())
    got, want = load_model(path), read_nep(NEP)
    assert got.elements == want.elements and np.array_equal(got.w0, want.w0) and not got.source_text.startswith("\ufeff")
    path.write_bytes(open(NEP, encoding="ascii").read().encode("utf-16"))
    with pytest.raises(ModelFormatError, match="UTF-16"):
        load_model(path)


@pytest.mark.parametrize(
    "text, error, match",
    [
        ("nep_ilp 1 C\n0 0\n" + " ".join(["1.0"] * 12) + "\n", UnsupportedModelError,
         r"line 1: first word 'nep_ilp': this is the ILP parameter file of a GPUMD hybrid potential \(NEP\+ILP"),
        ("sw_ilp 2 Mo S\n0 1\n", UnsupportedModelError, r"first word 'sw_ilp'.*ILP parameter file"),
        ("0 2 BN.nep MoS.nep\n2\n1\n0\n", UnsupportedModelError,
         r"NEP map file of a GPUMD NEP\+ILP hybrid potential .*'0 2 BN.nep MoS.nep'.*\(BN.nep, MoS.nep\)"),
        ("nep4 1 C\ncutoff 5 4 \xe9\n", ModelFormatError, r"line 2: non-ASCII byte 0xc3"),
        ("nep2 1 C\n", UnsupportedModelError, "NEP1/NEP2"),
    ],
    ids=["nep-ilp", "sw-ilp", "nep-map", "non-ascii", "nep2"],
)
def test_unsupported_nep_headers_are_named(tmp_path, text, error, match):
    path = tmp_path / "potential.txt"
    path.write_bytes(text.encode("utf-8"))
    with pytest.raises(error, match=match):
        load_model(path)


def test_unknown_file_names_what_it_found(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"GARBAGE!" * 10)
    with pytest.raises(ModelFormatError, match=r"model\.bin: unknown model format .*GPUMD nep\.txt.*b'GARBAGE!"):
        load_model(path)
