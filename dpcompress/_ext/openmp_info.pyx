"""OpenMP facts of this build, read through the C shim in ``src_c/dpc_openmp.c``."""

cdef extern from "dpc_openmp.h":
    int dpc_openmp_enabled() nogil
    int dpc_openmp_max_threads() nogil
    int dpc_openmp_num_procs() nogil
    int dpc_openmp_threads_used(int n_threads) nogil
    void dpc_openmp_serialize() nogil


def openmp_enabled():
    """Return True when the kernels were compiled with OpenMP."""
    return bool(dpc_openmp_enabled())


def max_threads():
    """Return ``omp_get_max_threads()`` (1 without OpenMP)."""
    return dpc_openmp_max_threads()


def num_procs():
    """Return ``omp_get_num_procs()`` (1 without OpenMP)."""
    return dpc_openmp_num_procs()


def threads_used(int n_threads):
    """Return how many threads a parallel region asked for ``n_threads`` gets."""
    return dpc_openmp_threads_used(n_threads)


def serialize():
    """Run every later OpenMP region of this process on one thread (see ``dpc_openmp_serialize``).

    For a child after ``fork``: libgomp's thread pool does not survive it.  Sets an OpenMP ICV
    only; :func:`threads_used` tells the effect.
    """
    dpc_openmp_serialize()
