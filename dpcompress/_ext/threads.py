"""How many OpenMP threads a kernel call uses.

``n_threads=None`` means every core this process may use, capped by
``OMP_NUM_THREADS`` when that is set (the OpenMP runtime reads it).  Results
never depend on the thread count: every kernel parallelises over independent
atoms or grid points and reduces in a fixed order.
"""

import os

from ..core.errors import InputError
from . import openmp_info


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
        1 when the kernels were built without OpenMP.
    """
    if n_threads is None or (isinstance(n_threads, int) and n_threads == -1):
        n = min(openmp_info.max_threads(), available_cores()) if "OMP_NUM_THREADS" in os.environ else available_cores()
    else:
        if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
            raise InputError(f"n_threads must be None or a positive integer, got {n_threads!r}")
        n = n_threads
    if not openmp_info.openmp_enabled():
        return 1
    return n


_CONTROLLER = None


class blas_threads:
    """Context manager: limit BLAS (numpy's OpenBLAS/MKL) to ``n`` threads inside it.

    Uses threadpoolctl when installed; otherwise does nothing.
    """

    def __init__(self, n):
        self.n = n
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
