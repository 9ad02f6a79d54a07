"""``dpcompress test``: errors of a model against labelled data, as DeePMD-kit's ``dp test`` reports them.

    dpcompress test -m MODEL (-s SYSTEM [SYSTEM ...] | -f DATAFILE | --train-data/--valid-data INPUT.json)
                    [-n N] [--shuffle-test] [-r SEED] [-a] [-d DETAIL] [--against ORIGINAL] [--plot FILE.png] [--json FILE] [--format FMT]
                    [--threads T] [--no-progress]

Under ``mpiexec -n K`` the frames are split over the K ranks (mpi4py); the output is the same as
with one process.  A dipole or polarizability model is tested by :mod:`.tensor_test` (rank 0 alone).
docs/test.md describes the command, its output and how it matches ``dp test``.
"""

import argparse
import json
import sys
import textwrap

from ..core.atomic_file import check_output_path, write_atomic
from ..core.errors import InputError
from ..data.formats import FORMAT_HELP
from .detail import DetailWriter, detail_paths
from .metrics import as_metrics, report_lines
from .runner import run_test

RULE = "# ----------------------------------------------- "
EXAMPLES = """\
examples:
  dpcompress test -m model.dpc -s data/valid
  dpcompress test -m model.dpc -s data/valid -n 30 --shuffle-test -r 1 -d detail   # dp test's frames and files
  dpcompress test -m model.dpc -f systems.txt -a --json test.json
  dpcompress test -m model.dpc --valid-data input.json                               # its validation systems
  dpcompress test -m model.dpc -s OUTCAR vasprun.xml frames.xyz                      # needs dpdata or ASE
  dpcompress test -m model.dpc -s data/valid --against model.dp --plot parity.png
  mpiexec -n 4 dpcompress test -m model.dpc -s data/"""


def add_parser(sub):
    """Add the ``test`` subcommand to the ``dpcompress`` parser's subparsers ``sub``."""
    p = sub.add_parser("test", help="errors of a model against labelled data (as dp test), with --against the original",
                       description=textwrap.fill(
                           "Energy, force, virial and stress MAE/RMSE of a model against the labels of deepmd/npy, "
                           "deepmd/hdf5, extxyz, VASP or dpdata systems, per system and weighted as DeePMD-kit's "
                           "dp test does (docs/test.md); for dipole and polarizability models, the tensors' RMSE "
                           "against dipole.npy / polarizability.npy (deepmd/npy), as dp test.", 88),
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-m", "--model", required=True, help="model: .dpc, DeePMD-kit .dp/.yaml, or nep.txt")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("-s", "--system", nargs="+", metavar="SYSTEM",
                        help="deepmd/npy system folders (searched recursively), deepmd/hdf5 files, or files of "
                             "another format (--format)")
    source.add_argument("-f", "--datafile", default=None, metavar="DATAFILE",
                        help="a text file listing the systems, one path a line (as dp test -f)")
    source.add_argument("--train-data", default=None, metavar="INPUT.json",
                        help="the systems of training.training_data in a DeePMD-kit training input (as dp test)")
    source.add_argument("--valid-data", default=None, metavar="INPUT.json",
                        help="the systems of training.validation_data in a DeePMD-kit training input (as dp test)")
    p.add_argument("-n", "--numb-test", type=int, default=0, help="frames per system, the first ones; 0: all [0]")
    p.add_argument("--shuffle-test", action="store_true",
                   help="test the first N frames of a random permutation of each system's frames (as dp test)")
    p.add_argument("-r", "--rand-seed", type=int, default=None, metavar="SEED",
                   help="seed of --shuffle-test's permutations: the same frames as dp test -r SEED --shuffle-test")
    p.add_argument("-a", "--atomic", action="store_true",
                   help="also the atomic energies' errors against atom_ener.npy labels (per system, as dp test -a); "
                        "dipole/polar models: the atomic tensors against atomic_dipole.npy / "
                        "atomic_polarizability.npy instead of the global ones")
    p.add_argument("--format", default=None, help=FORMAT_HELP)
    p.add_argument("-d", "--detail-file", default=None, metavar="DETAIL",
                   help="write DETAIL.e.out, .e_peratom.out, .f.out, .v.out, .v_peratom.out, .s.out "
                        "(dp test's layout); "
                        "dipole/polar models: DETAIL.out, DETAIL.out.1, ... (one per system)")
    p.add_argument("--against", default=None, metavar="ORIGINAL",
                   help="also evaluate the original model: its errors, and the differences MODEL - ORIGINAL")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="parity plots (needs matplotlib: extra 'plot')")
    p.add_argument("--json", default=None, metavar="FILE", help="write the numbers as JSON")
    p.add_argument("--threads", type=int, default=None, help="kernel threads per process (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-mpi", action="store_true", help="do not use MPI even when started by mpiexec")
    p.set_defaults(func=run)
    return p


def _comm(no_mpi):
    from ..scan.mpi_comm import get_comm, launcher_size

    return get_comm(not no_mpi and launcher_size() is not None)


def read_datafile(path):
    """The systems listed in ``-f DATAFILE``: one path a line, blank lines skipped, relative paths
    taken from the working directory (as ``dp test -f`` takes them)."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"-f {path}: cannot read the list of systems ({exc})") from None
    systems = [line.strip() for line in lines if line.strip()]
    if not systems:
        raise InputError(f"-f {path}: lists no system (one path a line expected)")
    return systems


def run(args):
    """Run ``dpcompress test``; returns the exit status (errors raise, for ``cli.main`` to report)."""
    if args.datafile is not None:
        args.system = read_datafile(args.datafile)
    for which in ("train", "valid"):
        given = getattr(args, f"{which}_data")
        if given is not None:
            from .input_systems import systems_from_input

            args.system = systems_from_input(given, which)
    inputs = [args.model] + ([args.against] if args.against else []) + list(args.system)
    inputs += [p for p in (args.datafile, args.train_data, args.valid_data) if p]
    outputs = ([args.json] if args.json else []) + ([args.plot] if args.plot else [])
    outputs += list(detail_paths(args.detail_file).values()) if args.detail_file else []
    for path in outputs:  # before any work: a bad output path is found at once, never an input replaced
        check_output_path(path, inputs=inputs, what="output")
    if args.plot:
        from .plots import check_available

        check_available()
    comm = _comm(args.no_mpi)
    if args.model and _run_tensor(args, inputs, comm):  # a dipole/polar model: tensor_test.py
        return 0
    result = run_test(args.model, args.system, numb_test=args.numb_test, against=args.against,
                      n_threads=args.threads, comm=comm, progress=not args.no_progress,
                      shuffle=args.shuffle_test, seed=args.rand_seed, fmt=args.format, atomic=args.atomic)
    if result is None:  # ranks > 0: rank 0 reports
        return 0
    _print_report(result)
    if args.detail_file:
        writer = DetailWriter(args.detail_file)
        for s in result.systems:
            writer.add(s.name, s.pred, s.labels, s.natoms, s.cells)
        writer.write()
    if args.json:
        write_atomic(args.json, json.dumps(summary(result), indent=1) + "\n", inputs=inputs, what="--json")
    if args.plot:
        from .plots import parity_plot

        parity_plot(result, args.plot)
    return 0


def _run_tensor(args, inputs, comm):
    """``dpcompress test`` of a dipole/polar model (rank 0 alone); False for other models."""
    from . import tensor_test

    model = tensor_test.tensor_model(args.model)
    if model is None:
        return False
    if args.plot:
        raise InputError(f"--plot draws energy and force parity plots; {args.model} is a {model.fitting.kind!r} model "
                         "(its predictions and labels are in the -d detail files)")
    original = None
    if args.against:
        original = tensor_test.tensor_model(args.against)
        if original is None or original.fitting.kind != model.fitting.kind:
            what = "an energy model" if original is None else f"a {original.fitting.kind!r} model"
            raise InputError(f"--against {args.against}: {what}; {args.model} is a {model.fitting.kind!r} model "
                             "(compare a compressed tensor model with the model it was made from)")
    if args.detail_file:
        check_output_path(tensor_test.detail_paths(args.detail_file, 1)[0], inputs=inputs, what="output")
    if comm.rank != 0:  # a tensor model is tested by one process
        return True
    kind = tensor_test.kind_of(model)
    result = tensor_test.run_tensor_test(model, kind, args.system, numb_test=args.numb_test,
                                         shuffle=args.shuffle_test, seed=args.rand_seed, fmt=args.format,
                                         atomic=args.atomic, n_threads=args.threads, source=args.model,
                                         against=original, against_source=args.against)
    tensor_test.print_report(result, print, RULE)
    if args.detail_file:
        tensor_test.write_details(result, args.detail_file, inputs=inputs)
    if args.json:
        write_atomic(args.json, json.dumps(tensor_test.summary(result), indent=1) + "\n", inputs=inputs, what="--json")
    return True


def summary(result):
    """The ``--json`` document: ``{"model", "systems": {SYSTEM: METRICS}, "weighted": METRICS}`` and,
    with ``--against``, ``"against": {"model", "systems", "weighted", "differences", "differences_weighted"}``."""
    out = {
        "model": result.model,
        "systems": {s.name: as_metrics(s.errors, s.nframes) for s in result.systems},
        "weighted": as_metrics(result.weighted(), result.nframes),
    }
    if result.against:
        out["against"] = {
            "model": result.against,
            "systems": {s.name: as_metrics(s.original_errors, s.nframes) for s in result.systems},
            "weighted": as_metrics(result.original_weighted(), result.nframes),
            "differences": {s.name: s.differences for s in result.systems},
            "differences_weighted": result.differences_weighted(),
        }
    return out


def _differences_lines(d):
    if not d:
        return []
    lines = [f"max |dE|/atom      : {d['energy_per_atom_max']:e} eV   RMS {d['energy_per_atom_rms']:e} eV",
             f"max |dF|           : {d['force_max']:e} eV/Å RMS {d['force_rms']:e} eV/Å"]
    if "virial_max" in d:
        lines.append(f"max |dV|           : {d['virial_max']:e} eV   RMS {d['virial_rms']:e} eV")
    return lines


def _print_report(result, out=None):
    out = sys.stdout if out is None else out

    def say(line):
        print(line, file=out)

    for s in result.systems:
        say("# ---------------output of dp test--------------- ")
        say(f"# testing system : {s.name}")
        say(f"# number of test data : {s.nframes:d} ")
        for line in report_lines(s.errors):
            say(line)
        if result.against:
            say(f"# original model {result.against} on the same frames:")
            for line in report_lines(s.original_errors):
                say(line)
            say(f"# {result.model} - {result.against}:")
            for line in _differences_lines(s.differences):
                say(line)
        say(RULE)
    say("# ----------weighted average of errors----------- ")
    say(f"# number of systems : {len(result.systems)}")
    for line in report_lines(result.weighted()):
        say(line)
    if result.against:
        say(f"# original model {result.against}:")
        for line in report_lines(result.original_weighted()):
            say(line)
        say(f"# {result.model} - {result.against}, all frames:")
        for line in _differences_lines(result.differences_weighted()):
            say(line)
    say(RULE)
