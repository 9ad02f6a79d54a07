"""``dp``'s logging options for ``dpcompress compress``: ``-v/--log-level``, ``-l/--log-path``, ``-m/--mpi-log``.

Scripts written for ``dp compress`` pass them; they mean here what they mean there:

* ``-v`` DEBUG/3, INFO/2 (default), WARNING/1, ERROR/0: the least severe message shown.  The
  command's report lines are INFO (shown by default, as before), warnings WARNING, the error line
  ERROR.
* ``-l FILE``: every message shown is also appended to ``FILE``, one per line with the time and
  level (``2026-12-06 20:41:07 INFO compressed ...``).
* ``-m master`` (default) / ``collect``: under ``mpiexec`` only rank 0 logs (every rank computes the
  same tables, so there is nothing to collect); ``workers``: every rank logs, rank ``r`` > 0 to
  ``FILE.r``.

The rank is read from the launcher's environment (MPICH/Hydra ``PMI_RANK``, Open MPI
``OMPI_COMM_WORLD_RANK``, PMIx ``PMIX_RANK``), so logging never initialises MPI.
"""

import contextlib
import logging
import os
import sys
import warnings

from .core.errors import InputError

#: ``dp``'s level names and digits -> logging levels
LEVELS = {"DEBUG": logging.DEBUG, "3": logging.DEBUG, "INFO": logging.INFO, "2": logging.INFO,
          "WARNING": logging.WARNING, "1": logging.WARNING, "ERROR": logging.ERROR, "0": logging.ERROR}
MPI_LOG = ("master", "collect", "workers")
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")

#: the logger of the command line's messages
log = logging.getLogger("dpcompress.cli")


def add_log_options(parser):
    """Add ``-v``, ``-l`` and ``-m`` (``dp``'s spellings, choices and defaults) to a subcommand's parser."""
    parser.add_argument("-v", "--log-level", choices=list(LEVELS), default="INFO",
                        help="least severe message shown: DEBUG/3, INFO/2, WARNING/1, ERROR/0 [INFO]")
    parser.add_argument("-l", "--log-path", default=None, metavar="FILE",
                        help="also append the messages to FILE (with time and level)")
    parser.add_argument("-m", "--mpi-log", choices=MPI_LOG, default="master",
                        help="under mpiexec: master/collect = rank 0 logs, workers = every rank (FILE.RANK) [master]")


def launcher_rank():
    """This process's rank as the MPI launcher set it (0 outside ``mpiexec``)."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


class _Console(logging.Handler):
    """Report lines bare on stdout (as the command printed them before it had a log), the rest on stderr."""

    def emit(self, record):
        if record.levelno <= logging.INFO:
            print(record.getMessage(), flush=True)
        else:
            text = " ".join(record.getMessage().split())  # one line, as every dpcompress warning
            print(f"dpcompress: {record.levelname.lower()}: {text}", file=sys.stderr, flush=True)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    log.warning(f"{message}")


@contextlib.contextmanager
def command_log(args):
    """Route the command's messages (``log``) and warnings per ``args.log_level/log_path/mpi_log``.

    An error that ends the command is logged to the file too (the caller still prints it), so a
    log file always says how the run ended.
    """
    rank = launcher_rank()
    silent = rank > 0 and args.mpi_log != "workers"
    path = args.log_path
    if path is not None and rank > 0:
        path = f"{path}.{rank}"
    handlers = [] if silent else [_Console()]
    file_handler = None
    if path is not None and not silent:
        try:
            file_handler = logging.FileHandler(path, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"-l/--log-path {path}: cannot open the log file ({exc.strerror})") from None
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        handlers.append(file_handler)
    saved = log.handlers[:], log.level, log.propagate
    log.handlers = handlers
    log.setLevel(LEVELS[args.log_level])
    log.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            yield log
    except Exception as exc:
        if file_handler is not None:
            text = " ".join(str(exc).split()) or type(exc).__name__
            file_handler.emit(log.makeRecord(log.name, logging.ERROR, __file__, 0, f"error: {text}", None, None))
        raise
    finally:
        log.handlers, level, log.propagate = saved[0], saved[1], saved[2]
        log.setLevel(level)
        if file_handler is not None:
            file_handler.close()
