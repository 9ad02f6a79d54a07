"""Every user error of the ``dpcompress`` command line exits with status 2 and one line on stderr.

The error paths, command by command (each one a case below):

* top level: no command, an unknown command (argparse); ``--version``, ``--help`` of every command;
* ``info``: a missing file, a folder, a file that is no model;
* ``compress``: -i missing / a folder / no model; -o in a missing folder, a folder, the input itself, in a
  folder without write permission; bad -s, -e, --order, --max-bytes, --threads; tables above
  --max-bytes; -t or --scan missing; no min_nbor_dist anywhere; an already compressed model; every
  DP-only option (-e, -f, -t, --min-nbor-dist, --scan, --order, --threads) given for a NEP model;
* ``eval``: a missing model, missing data, a folder without systems, bad --threads;
* ``scan``: a missing folder, an unknown option.

Warnings print as one ``dpcompress: warning: ...`` line (a subprocess, as a user sees them).
"""

import inspect
import os
import subprocess
import sys

import pytest

from conftest import DATA, REPO, TINY
from dpcompress.cli import main

DP = os.path.join(TINY, "frozen.dp")
NEP = os.path.join(DATA, "nep", "PbTe_NEP4_example", "nep.txt")
FRAME = os.path.join(REPO, "examples", "data", "water", "frame")


def run(argv, capsys):
    """(exit status, stdout, stderr) of ``dpcompress ARGV`` run in this process."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage errors, --help, --version
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code, err, *fragments, usage=False):
    assert code == 2, err
    assert "Traceback" not in err
    lines = [l for l in err.splitlines() if l.strip()]
    if usage:  # argparse: the usage lines, then "dpcompress ...: error: ..."
        assert lines[-1].startswith("dpcompress") and ": error: " in lines[-1], err
    else:
        assert len(lines) == 1 and lines[0].startswith("dpcompress ") and ": error: " in lines[0], err
    for f in fragments:
        assert f in lines[-1], (f, err)


@pytest.fixture(scope="module")
def dpc(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "tiny.dpc"
    assert main(["compress", "-i", DP, "-o", str(path)]) == 0
    return str(path)


@pytest.fixture
def garbage(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are not the weights you are looking for\n")
    return str(path)


# ----------------------------------------------------------------------------------------- top level

@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["--frobnicate"]])
def test_top_level_usage_errors(capsys, argv):
    code, _, err = run(argv, capsys)
    assert_user_error(code, err, usage=True)


def test_version(capsys):
    from dpcompress import __version__

    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"dpcompress {__version__}"


@pytest.mark.parametrize("argv", [[], ["info"], ["compress"], ["eval"], ["scan"]])
def test_every_help_has_a_description_and_examples(capsys, argv):
    code, out, _ = run(argv + ["--help"], capsys)
    assert code == 0
    usage, _, rest = out.partition("\n\n")
    assert usage.startswith("usage:")
    assert len(rest.split("\n\n")[0].split()) >= 8  # a description, not just the options
    examples = out.split("examples:")[1]
    assert "dpcompress " + (argv[0] if argv else "") in examples


# --------------------------------------------------------------------------------------------- info

def test_info_errors(capsys, tmp_path, garbage):
    code, _, err = run(["info", str(tmp_path / "missing.dp")], capsys)
    assert_user_error(code, err, "missing.dp", "no such file")
    code, _, err = run(["info", str(tmp_path)], capsys)
    assert_user_error(code, err, "is a folder")
    code, _, err = run(["info", garbage], capsys)
    assert_user_error(code, err, "notes.txt")
    code, _, err = run(["info"], capsys)
    assert_user_error(code, err, usage=True)


# ----------------------------------------------------------------------------------------- compress

def compress_args(tmp_path, *extra, i=DP):
    return ["compress", "-i", i, "-o", str(tmp_path / "out.dpc"), *extra]


def test_compress_default_input_missing(capsys, tmp_path, monkeypatch):
    # -i defaults to dp's frozen_model (tests/test_cli_dp_compress.py): absent, it is named with what was tried
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["compress", "-o", "x.dpc"], capsys)
    assert_user_error(code, err, "-i frozen_model", "no such file", "frozen_model.dp")


def test_compress_input_errors(capsys, tmp_path, garbage):
    code, _, err = run(compress_args(tmp_path, i=str(tmp_path / "none.dp")), capsys)
    assert_user_error(code, err, "-i", "none.dp", "no such file")
    code, _, err = run(compress_args(tmp_path, i=str(tmp_path)), capsys)
    assert_user_error(code, err, "-i", "is a folder")
    code, _, err = run(compress_args(tmp_path, i=garbage), capsys)
    assert_user_error(code, err, "notes.txt")


def test_compress_output_errors(capsys, tmp_path):
    code, _, err = run(["compress", "-i", DP, "-o", str(tmp_path / "nowhere" / "x.dpc")], capsys)
    assert_user_error(code, err, "-o", "does not exist")
    code, _, err = run(["compress", "-i", DP, "-o", str(tmp_path)], capsys)
    assert_user_error(code, err, "-o", "is a folder")
    code, _, err = run(["compress", "-i", DP, "-o", DP], capsys)
    assert_user_error(code, err, "-o", "input file")
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into any folder")
def test_compress_unwritable_output_folder(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = run(["compress", "-i", DP, "-o", str(locked / "x.dpc")], capsys)
    finally:
        locked.chmod(0o700)
    assert_user_error(code, err, "-o", "not writable")


@pytest.mark.parametrize("extra, fragments, usage", [
    (["-s", "0"], ["step"], False),
    (["-s", "abc"], ["-s/--step", "abc"], True),
    (["-e", "0.5"], ["extrapolate"], False),
    (["--order", "4"], ["--order"], True),
    (["--max-bytes", "lots"], ["--max-bytes"], True),
    (["--max-bytes", "1K"], ["above the limit"], False),
    (["--threads", "0"], ["--threads"], True),
    (["-t", "no_input.json"], ["-t", "no_input.json", "no such file"], False),
    (["--scan", "no_scan.json"], ["--scan", "no_scan.json", "no such file"], False),
])
def test_compress_bad_options(capsys, tmp_path, extra, fragments, usage):
    code, _, err = run(compress_args(tmp_path, *extra), capsys)
    assert_user_error(code, err, *fragments, usage=usage)
    assert not (tmp_path / "out.dpc").exists()


def test_compress_a_compressed_model(capsys, tmp_path, dpc):
    code, _, err = run(compress_args(tmp_path, i=dpc), capsys)
    assert_user_error(code, err, "already compressed")


@pytest.mark.parametrize("extra, flag", [
    (["-e", "5"], "-e/--extrapolate"),  # even the DP default: an explicit option for the wrong kind is refused
    (["--extrapolate", "10"], "-e/--extrapolate"),
    (["-f", "100"], "-f/--frequency"),
    (["--order", "3"], "--order"),
    (["-t", FRAME], "-t/--training-script"),
    (["--min-nbor-dist", "1.0"], "--min-nbor-dist"),
    (["--scan", FRAME], "--scan"),
    (["--threads", "2"], "--threads"),
])
def test_compress_nep_refuses_dp_options(capsys, tmp_path, extra, flag):
    code, _, err = run(compress_args(tmp_path, *extra, i=NEP), capsys)
    assert_user_error(code, err, flag, "DeePMD-kit models only")
    assert not (tmp_path / "out.dpc").exists()


def test_compress_nep_with_its_options(capsys, tmp_path):
    code, out, err = run(compress_args(tmp_path, "-s", "0.02", "--max-bytes", "1G", i=NEP), capsys)
    assert code == 0, err
    assert "compressed NEP" in out


# --------------------------------------------------------------------------------------------- eval

def test_eval_errors(capsys, tmp_path, dpc, garbage):
    code, _, err = run(["eval", str(tmp_path / "none.dpc"), FRAME], capsys)
    assert_user_error(code, err, "none.dpc", "no such file")
    code, _, err = run(["eval", dpc, str(tmp_path / "no_data")], capsys)
    assert_user_error(code, err, "no_data", "no such file")
    (tmp_path / "empty").mkdir()
    code, _, err = run(["eval", dpc, str(tmp_path / "empty")], capsys)
    assert_user_error(code, err, "empty")
    code, _, err = run(["eval", garbage, FRAME], capsys)
    assert_user_error(code, err, "notes.txt")
    code, _, err = run(["eval", dpc, FRAME, "--threads", "-3"], capsys)
    assert_user_error(code, err, "--threads", usage=True)
    code, _, err = run(["eval", dpc], capsys)
    assert_user_error(code, err, usage=True)


# --------------------------------------------------------------------------------------------- scan

def test_scan_errors(capsys, tmp_path):
    code, _, err = run(["scan", str(tmp_path / "no_data"), "--rcut", "6", "--no-mpi", "-q"], capsys)
    assert_user_error(code, err, "no_data")
    code, _, err = run(["scan", FRAME, "--rcut", "six", "--no-mpi", "-q"], capsys)
    assert_user_error(code, err, "--rcut", usage=True)
    code, _, err = run(["scan", FRAME, "--frobnicate"], capsys)
    assert_user_error(code, err, "--frobnicate", usage=True)


# ------------------------------------------------------------------------------------ as a user sees it

def cli(*argv):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "dpcompress", *argv], capture_output=True, text=True, timeout=300,
                          env=env)


def test_warnings_print_as_one_clean_line(tmp_path):
    """A warning is ``dpcompress: warning: <message>``: no file name, line number, category or source line."""
    out = cli("compress", "-i", DP, "-o", str(tmp_path / "w.dpc"), "--min-nbor-dist", "0.5")
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("dpcompress: warning: the model stores min_nbor_dist")
    assert "UserWarning" not in out.stderr and ".py:" not in out.stderr


def test_user_errors_in_a_subprocess(tmp_path):
    out = cli("compress", "-i", NEP, "-o", str(tmp_path / "n.dpc"), "--order", "3")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    out = cli("info", str(tmp_path / "missing"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no such file" in out.stderr


# ------------------------------------------------------------------------------------------- Python

def test_python_compress_takes_a_nep_file():
    """``dpcompress.compress("nep.txt")`` works as ``dpcompress compress -i nep.txt`` does; DP-only options are refused."""
    import dpcompress
    from dpcompress.core.errors import InputError
    from dpcompress.nep import NEPModel

    m = dpcompress.compress(NEP, step=0.02)
    assert isinstance(m, NEPModel) and m.tables is not None
    ref = dpcompress.compress_nep(NEP, step=0.02)
    assert (m.tables.coef == ref.tables.coef).all()
    for kwargs in ({"extrapolate": 10}, {"order": 3}, {"check_frequency": 10}, {"min_nbor_dist": 1.0},
                   {"n_threads": 2}):
        with pytest.raises(InputError, match=next(iter(kwargs))):
            dpcompress.compress(NEP, **kwargs)
    with pytest.raises(InputError, match="already tabulated"):
        dpcompress.compress(m)


def test_compress_signature_and_docstring():
    import dpcompress

    sig = inspect.signature(dpcompress.compress)
    assert list(sig.parameters)[:4] == ["model", "step", "extrapolate", "check_frequency"]
    assert sig.parameters["step"].default == 0.01
    assert "NEP" in dpcompress.compress.__doc__ and "Parameters" in dpcompress.compress.__doc__


def test_exit_status_of_os_errors():
    """The machine's OSError (a full disk, an I/O error) is status 1; every other one is about the user's files: 2."""
    import errno

    from dpcompress.cli_errors import error_text, exit_status

    assert exit_status(OSError(errno.ENOSPC, "No space left on device", "out.dpc")) == 1
    assert exit_status(OSError(errno.EIO, "Input/output error")) == 1
    assert exit_status(FileNotFoundError(errno.ENOENT, "No such file or directory", "x.dp")) == 2
    assert exit_status(OSError("Unable to open file (file signature not found)")) == 2  # h5py's
    assert exit_status(ValueError("a bug")) is None
    assert error_text(FileNotFoundError(errno.ENOENT, "No such file or directory", "x.dp")) == \
        "x.dp: No such file or directory"


def test_eval_on_a_corrupt_hdf5_file(capsys, tmp_path, dpc):
    bad = tmp_path / "data.hdf5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    code, _, err = run(["eval", dpc, str(bad)], capsys)
    assert_user_error(code, err, "data.hdf5")
