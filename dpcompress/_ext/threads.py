"""How many OpenMP threads a kernel call uses.

``n_threads=None`` means every core this process may use, capped by
``OMP_NUM_THREADS`` when that is set (the OpenMP runtime reads it).  Results
never depend on the thread count: every kernel parallelises over independent
atoms or grid points and reduces in a fixed order.

Forked children run one thread.  libgomp's thread pool does not survive
``fork``: a child (``multiprocessing`` with the fork start method, ``os.fork``)
of a process that ran a parallel region would wait forever for workers that
exist only in the parent.  So, from the moment of the fork (``os.register_at_fork``),
a child runs every parallel region of every compiled kernel on one thread
(:func:`dpcompress._ext.openmp_info.serialize`: OpenMP's max-active-levels set
to 0, which no ``num_threads`` clause overrides), :func:`kernel_threads` and
:func:`effective_n_threads` return 1 there, and numpy's BLAS gets 1 thread in
the exact evaluator (:class:`blas_threads`).  A child that asks for more
threads explicitly (``n_threads=4``) is warned once (:class:`ForkThreadsWarning`)
and runs one.  The numbers are those of any thread count.  Processes started
with ``spawn`` or ``forkserver`` are fresh and use their threads.
"""

import os
import warnings

from ..core.errors import InputError
from ..core.warnings import ForkThreadsWarning
from . import openmp_info

#: Whether this process is a fork child of a process that had imported dpcompress.
_FORKED = False
#: Whether this process has warned about an explicit thread count already.
_WARNED = False


def _after_fork_in_child():
    """``os.register_at_fork`` hook: one thread for every kernel from now on in this child."""
    global _FORKED, _WARNED
    _FORKED = True
    _WARNED = False  # each child warns once for itself
    openmp_info.serialize()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def in_forked_child():
    """Return True in a process forked from one that had imported dpcompress (kernels run 1 thread)."""
    return _FORKED


def kernel_threads(n_threads, explicit=True):
    """The thread count a kernel call really uses: ``n_threads``, or 1 in a forked child.

    Parameters
    ----------
    n_threads : int
        A resolved, positive count (:func:`effective_n_threads`).
    explicit : bool
        Whether the user asked for this count (then a forked child warns once that it runs 1).
    """
    global _WARNED
    if not _FORKED or n_threads <= 1:
        return n_threads
    if explicit and not _WARNED:
        _WARNED = True
        warnings.warn(
            f"n_threads={n_threads} in a process forked from one that had loaded dpcompress: OpenMP's (libgomp's) "
            "thread pool does not survive fork, so this process runs every kernel on 1 thread (results are the "
            "same); start worker processes with the 'spawn' or 'forkserver' method to use several threads each",
            ForkThreadsWarning,
            stacklevel=3,
        )
    return 1


def available_cores():
    """Return the number of cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def openmp_enabled():
    """Return True when the compiled kernels were built with OpenMP."""
    return openmp_info.openmp_enabled()


def effective_n_threads(n_threads=None):
    """Resolve a user's ``n_threads`` into a positive thread count.

    Parameters
    ----------
    n_threads : int or None
        ``None``: all available cores (or ``OMP_NUM_THREADS`` when set).
        A positive int: exactly that many.  ``-1`` is accepted as a synonym
        of ``None``.

    Returns
    -------
    int
        1 when the kernels were built without OpenMP, and in a forked child
        (:func:`kernel_threads`: a warning when the count was explicit).
    """
    default = n_threads is None or (isinstance(n_threads, int) and n_threads == -1)
    if default:
        n = min(openmp_info.max_threads(), available_cores()) if "OMP_NUM_THREADS" in os.environ else available_cores()
    else:
        if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
            raise InputError(f"n_threads must be None or a positive integer, got {n_threads!r}")
        n = n_threads
    if not openmp_info.openmp_enabled():
        return 1
    return kernel_threads(n, explicit=not default)


_CONTROLLER = None


class blas_threads:
    """Context manager: limit BLAS (numpy's OpenBLAS/MKL) to ``n`` threads inside it (1 in a forked child).

    Uses threadpoolctl when installed; otherwise does nothing.
    """

    def __init__(self, n):
        self.n = 1 if _FORKED else n
        self._ctx = None

    def __enter__(self):
        global _CONTROLLER
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return self
        if _CONTROLLER is None:
            _CONTROLLER = ThreadpoolController()
        self._ctx = _CONTROLLER.limit(limits=self.n, user_api="blas")
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        if self._ctx is not None:
            self._ctx.__exit__(*exc)
        return False


def threads_per_rank(comm):
    """Cores of this node divided among the MPI ranks of ``comm`` that share it (at least 1)."""
    from mpi4py import MPI

    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return max(1, available_cores() // node.size)
    finally:
        node.Free()
