"""How the ``dpcompress`` command line reports problems: one line each, exit status 2 for the user's.

* Warnings print as ``dpcompress: warning: <message>`` (:func:`one_line_warnings`), not as Python's
  ``cli.py:140: UserWarning: ...`` with the source line.
* User errors exit with status 2 and ``dpcompress COMMAND: error: <message>``: every
  :class:`~dpcompress.core.errors.DPCompressError`, and every ``OSError`` about the user's paths
  and files (a missing file, a folder given for a file, no permission, a file HDF5 cannot open).
  The machine's ``OSError`` (:data:`MACHINE_ERRNOS`: a full disk, an I/O error, no memory or file
  handles left) exit with status 1: not the arguments.
* Input files are checked before any work (:func:`check_input_file`), the output's folder for
  writing (:func:`check_output_file`), so a bad path costs a second, not the tables.
"""

import contextlib
import errno
import os
import sys
import warnings

from .core.atomic_file import check_output_path
from .core.errors import DPCompressError, InputError

#: errno values of an ``OSError`` that are the machine's trouble, not the user's arguments.
MACHINE_ERRNOS = {errno.ENOSPC, errno.EIO, errno.ENOMEM, errno.EMFILE, errno.ENFILE, getattr(errno, "EDQUOT", errno.ENOSPC)}

PROG = "dpcompress"


def one_line(text):
    """``text`` on one line: newlines and runs of spaces become one space."""
    return " ".join(str(text).split())


def _show_warning(message, category, filename, lineno, file=None, line=None):
    stream = sys.stderr if file is None else file
    try:
        stream.write(f"{PROG}: warning: {one_line(message)}\n")
    except (OSError, ValueError):  # a closed stderr: nowhere to report
        pass


@contextlib.contextmanager
def one_line_warnings():
    """While the command runs, every warning prints as ``dpcompress: warning: <message>`` (once per place)."""
    with warnings.catch_warnings():  # restores showwarning and the filters afterwards
        warnings.showwarning = _show_warning
        yield


def exit_status(exc):
    """2 for a user's error, 1 for the machine's (:data:`MACHINE_ERRNOS`), None: not an error of ours."""
    if isinstance(exc, DPCompressError):
        return 2
    if isinstance(exc, OSError):
        return 1 if exc.errno in MACHINE_ERRNOS else 2
    return None


def error_text(exc):
    """The message of an error: an ``OSError`` as ``PATH: reason``, without Python's ``[Errno 2]``."""
    if isinstance(exc, OSError) and exc.strerror:
        name = exc.filename if exc.filename is not None else ""
        return one_line(f"{name}: {exc.strerror}" if name else exc.strerror)
    return one_line(exc)


#: what ``dp compress -i PREFIX`` finds for each backend, and what dpcompress reads (the first two)
MODEL_SUFFIXES = (".dp", ".yaml", ".yml")
OTHER_BACKENDS = {".pth": "PyTorch", ".pb": "TensorFlow", ".savedmodeltf": "TensorFlow 2", ".hlo": "JAX", ".jax": "JAX",
                  ".json": "Paddle"}


def model_prefix(path):
    """``-i`` as ``dp compress`` reads it: a file, or a prefix completed by the first ``PREFIX.dp|.yaml|.yml`` found.

    A prefix that only matches another backend's model is an :class:`InputError` saying how to convert it.
    """
    if os.path.exists(path) or os.path.splitext(path)[1]:
        return path
    for suffix in MODEL_SUFFIXES:
        if os.path.isfile(path + suffix):
            return path + suffix
    for suffix, backend in OTHER_BACKENDS.items():
        if os.path.exists(path + suffix):
            raise InputError(f"-i {path}: found {path + suffix}, a {backend} model; dpcompress reads the "
                             f"backend-neutral model: dp convert-backend {path + suffix} {path}.dp")
    raise InputError(f"-i {path}: no such file, nor {', '.join(path + s for s in MODEL_SUFFIXES)}")


def output_name(path):
    """``-o`` as a name: ``PREFIX`` without a suffix becomes ``PREFIX.dpc`` (``dp compress`` adds its backend's)."""
    name = os.path.basename(path)
    if os.path.isdir(path) or name in ("", ".", "..") or os.path.splitext(name)[1]:
        return path  # a folder is check_output_file's to refuse, not to rename
    return path + ".dpc"


def check_input_file(path, what, folder_ok=False):
    """Refuse a missing input (or a folder where a file is expected) with :class:`InputError` naming ``what``."""
    if path is None:
        return None
    if not os.path.exists(path):
        raise InputError(f"{what} {path!r}: no such file" + (" or folder" if folder_ok else ""))
    if not folder_ok and os.path.isdir(path):
        raise InputError(f"{what} {path!r} is a folder; give a file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{what} {path!r}: not readable (permission denied)")
    return path


def check_output_file(path, inputs=(), what="-o"):
    """:func:`~dpcompress.core.atomic_file.check_output_path`, and the folder must be writable."""
    path = check_output_path(path, inputs=inputs, what=what)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{what} {path!r}: folder {folder!r} is not writable")
    return path
