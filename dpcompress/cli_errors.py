"""How the ``dpcompress`` command line reports problems: one line each, exit status 2 for the user's.

* Warnings print as ``dpcompress: warning: <message>`` (:func:`one_line_warnings`), not as Python's
  ``cli.py:140: UserWarning: ...`` with the source line.
* User errors exit with status 2 and ``dpcompress COMMAND: error: <message>``: every
  :class:`~dpcompress.core.errors.DPCompressError`, and the operating system's answers about the
  user's paths (:data:`USER_OS_ERRORS`: a missing file, a folder given for a file, no permission).
  Other ``OSError`` (a full disk, an I/O error) exit with status 1: the machine, not the arguments.
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

#: ``OSError`` subclasses that are about the paths the user gave.
USER_OS_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
#: errno values of the same kind that come as a plain ``OSError`` (a read-only file system, a name too long).
USER_ERRNOS = {errno.EROFS, errno.ENAMETOOLONG, errno.ELOOP}

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
    """2 for a user's error, 1 for the machine's (an ``OSError`` that is not about a path), None: not ours."""
    if isinstance(exc, DPCompressError):
        return 2
    if isinstance(exc, OSError):
        return 2 if isinstance(exc, USER_OS_ERRORS) or exc.errno in USER_ERRNOS else 1
    return None


def error_text(exc):
    """The message of an error: an ``OSError`` as ``PATH: reason``, without Python's ``[Errno 2]``."""
    if isinstance(exc, OSError) and exc.strerror:
        name = exc.filename if exc.filename is not None else ""
        return one_line(f"{name}: {exc.strerror}" if name else exc.strerror)
    return one_line(exc)


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
