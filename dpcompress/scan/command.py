"""The command line of the scan (``python -m dpcompress.scan``, ``dpcompress scan``): arguments,
logging, exit status, and ending the whole MPI job on an error."""

import argparse
import logging
import sys
import traceback

from ..core.errors import DPCompressError, InputError
from ..data.formats import FORMAT_HELP
from .driver import CollectiveError, run_scan, write_json
from .result import DEFAULT_PERCENTILE
from .summary import format_summary
from .mpi_comm import get_comm

log = logging.getLogger("dpcompress.scan")

PROG = "python -m dpcompress.scan"
EXAMPLES = """\
examples:
  dpcompress scan data/train -m model.dp -o scan.json
  python -m dpcompress.scan data/train
  dpcompress scan data/ --rcut 4,5,6 --type-map O H
  mpiexec -n 8 python -m mpi4py -m dpcompress.scan data/train -m model.dp -o scan.json

Bad arguments or data exit with status 2 and one line on stderr."""


def _cutoffs(text):
    """argparse type of --rcut: one number or a comma-separated list."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or a comma-separated list such as 4,5,6, found {text!r}") from None


def build_parser(prog=PROG):
    p = argparse.ArgumentParser(
        prog=prog,
        description="Scan training data (deepmd/npy folders, deepmd/hdf5, extxyz, OUTCAR, vasprun.xml files, dpdata formats): "
        "minimum neighbor distance, neighbor counts per type over several cutoffs (to choose rcut and sel), and with a "
        "model the s ranges its tables are built over and what the scan would change in them. Prints a summary and "
        "writes a JSON file. Runs under mpiexec/srun as well.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="DIR", help="folders searched recursively, system folders or data files")
    p.add_argument("-m", "--model", default=None, help="DeePMD-kit model (.dp/.yaml/.dpc): cutoffs, type map, davg/dstd")
    p.add_argument("--rcut", type=_cutoffs, action="extend", default=None, metavar="R[,R...]",
                   help="cutoff radius, or several (4,5,6 or repeated), Å (default: the model's, else 4,5,6,7,8); "
                   "the largest is the document's rcut")
    p.add_argument("--rcut-smth", type=float, default=None, help="start of the smooth switch, Å (default: the model's); needed for s ranges")
    p.add_argument("--type-map", nargs="+", default=None, metavar="T", help="element names in type order (default: the model's, else the data's)")
    p.add_argument("--format", default=None, help=FORMAT_HELP)
    p.add_argument("--percentile", default=DEFAULT_PERCENTILE, metavar="P",
                   help=f"percent level of the neighbor-count percentiles, exact from integer histograms [{DEFAULT_PERCENTILE}]")
    p.add_argument("-o", "--output", default="scan.json", help="JSON file written by rank 0 [scan.json]")
    p.add_argument("--threads", type=int, default=1, help="threads of the neighbor search per rank [1]")
    p.add_argument("--log-interval", type=float, default=10.0, help="seconds between progress lines when not on a terminal [10]")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, warnings and errors only")
    p.add_argument("--no-mpi", action="store_true", help="do not import mpi4py; run as one plain process")
    return p


def configure_logging(rank, size, quiet):
    """Log to stderr, tagged with the rank under MPI; rank 0 logs progress, the others warnings only."""
    handler = logging.StreamHandler(sys.stderr)
    tag = f" [rank {rank}/{size}]" if size > 1 else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s{tag} %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO if rank == 0 and not quiet else logging.WARNING)
    log.propagate = False
    return handler


def main(argv=None, prog=PROG):
    """Entry point (``python -m dpcompress.scan``, ``dpcompress scan``); returns the exit status.

    Exit status 2 for bad arguments or data.  An error found before the scan (on rank 0) is
    known to every rank, which all exit together.  Under MPI with more than one rank, an error
    found while scanning is printed by the rank that found it, which then calls ``MPI_Abort``:
    the whole job ends at once, where waiting for the others would hang.
    """
    args = build_parser(prog).parse_args(argv)
    try:
        comm = get_comm(not args.no_mpi)
    except DPCompressError as exc:
        print(f"dpcompress scan: error: {exc}", file=sys.stderr, flush=True)
        return 2
    rank, size = comm.rank, comm.size
    handler = configure_logging(rank, size, args.quiet)
    prefix = f"[rank {rank}/{size}] " if size > 1 else ""
    try:
        doc = run_scan(
            args.paths, rcut=args.rcut, rcut_smth=args.rcut_smth, type_map=args.type_map, model=args.model, comm=comm,
            n_threads=args.threads, show_progress=not args.quiet, log_interval=args.log_interval, fmt=args.format,
            percentile=args.percentile,
        )
        if rank == 0:
            try:
                write_json(doc, args.output)
            except OSError as exc:
                raise InputError(f"{args.output}: cannot write ({exc})") from None
            log.info("wrote %s", args.output)
            sys.stdout.write(format_summary(doc))
            sys.stdout.flush()
        return 0
    except CollectiveError as exc:  # every rank raised it: exit together, no abort
        if rank == 0:
            print(f"dpcompress scan: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except DPCompressError as exc:
        print(f"{prefix}dpcompress scan: error: {exc}", file=sys.stderr, flush=True)
        if size > 1:
            comm.Abort(2)
        return 2
    except BaseException:
        if size > 1:
            print(f"{prefix}dpcompress scan: unexpected error, aborting all ranks:", file=sys.stderr)
            traceback.print_exc()
            sys.stderr.flush()
            comm.Abort(1)
        raise
    finally:
        log.removeHandler(handler)
