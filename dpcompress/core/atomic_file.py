"""Writing a user-visible file so that it is either the old file or the complete new one.

Every file dpcompress writes for a user (a ``.dpc`` model, a ``nep.txt``, a scan JSON, the LAMMPS
plugin's stamp) goes through :func:`write_atomic`:

1. the target is checked first (:func:`check_output_path`): its folder exists, it is not a
   folder, and it is not one of the files being read (same file, symlink or hard link);
2. the bytes go to a temporary file in the target's folder (same file system, so the rename is
   atomic), which is flushed and ``fsync``-ed;
3. ``os.replace`` puts it in place and the folder is ``fsync``-ed, so the rename survives a crash;
4. on any exception (``KeyboardInterrupt`` included) the temporary file is removed.

A process killed at any point leaves the previous file intact.  A ``kill -9`` between steps 2 and
3 leaves its temporary file ``.<name>.<host>-<pid>.<random>.tmp`` beside the target; the next
write of the same target on the same host removes it once that process is gone.
"""

import os
import socket
import stat
import tempfile
from typing import Iterable, Union

from .errors import InputError

PathLike = Union[str, "os.PathLike[str]"]


def _umask():
    """The process umask, read without changing it (``os.umask`` would, for every thread)."""
    try:
        with open("/proc/self/status", "r", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): they cannot be the same file
        return False


def check_output_path(path: PathLike, inputs: Iterable[PathLike] = (), what: str = "output") -> str:
    """Refuse an output path that cannot be written or would destroy an input.

    Parameters
    ----------
    path : str or os.PathLike
        The file about to be written.
    inputs : iterable of paths
        Files the caller reads; ``path`` must not be any of them (compared by device and inode,
        so symlinks and hard links count as the same file).
    what : str
        How the message names ``path`` (e.g. ``"-o"``).

    Returns
    -------
    str
        ``path`` as a string.

    Raises
    ------
    InputError
        ``path`` is a folder, its folder does not exist, or it is one of ``inputs``.
    """
    path = os.fspath(path)
    if not path:
        raise InputError(f"{what}: empty file name")
    if os.path.isdir(path):
        raise InputError(f"{what} {path!r} is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"{what} {path!r}: folder {folder!r} does not exist")
    for source in inputs:
        if source is not None and _same_file(path, os.fspath(source)):
            raise InputError(
                f"{what} {path!r} is the input file {os.fspath(source)!r} (same file, symlink or hard link); "
                "refusing to overwrite the model being read: write to another file"
            )
    return path


def _host():
    return socket.gethostname().replace(".", "_").replace("-", "_") or "host"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def _remove_stale_temporaries(folder, name):
    """Remove the temporary files of ``name`` left by killed writers of this host (see the module docstring)."""
    prefix, host = f".{name}.", _host()
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(".tmp")):
            continue
        owner = entry[len(prefix):].split(".", 1)[0]
        who, _, pid = owner.rpartition("-")
        if who == host and pid.isdigit() and not _alive(int(pid)):
            try:
                os.unlink(os.path.join(folder, entry))
            except OSError:
                pass


def _fsync_folder(folder):
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # some platforms cannot open a folder; the rename itself is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: PathLike, data: Union[bytes, bytearray, memoryview, str], *, inputs: Iterable[PathLike] = (),
                 what: str = "output") -> None:
    """Write ``data`` to ``path`` atomically and durably.

    Parameters
    ----------
    path : str or os.PathLike
    data : bytes-like or str
        A str is written as UTF-8.
    inputs : iterable of paths
        Files ``path`` must not be (see :func:`check_output_path`).
    what : str
        How error messages name ``path``.

    Notes
    -----
    The new file gets the mode of the file it replaces, or ``0666 & ~umask`` for a new file (the
    temporary file starts as ``0600``).  The target is replaced, never truncated in place: a
    reader that has the old file open or memory-mapped keeps seeing the old bytes.

    Raises
    ------
    InputError
        See :func:`check_output_path`.
    OSError
        The folder is not writable, the disk is full, ...; it names ``path`` and no temporary
        file is left behind.
    """
    path = check_output_path(path, inputs, what)
    if isinstance(data, str):
        data = data.encode("utf-8")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    name = os.path.basename(path)
    _remove_stale_temporaries(folder, name)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.{_host()}-{os.getpid()}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot create a file in {folder!r} ({exc.strerror})", path) from None
    try:
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as fh:
                fd = None  # owned by fh now
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write ({exc.strerror})", path) from None
    except BaseException:
        if fd is not None:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)
