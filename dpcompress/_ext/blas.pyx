"""scipy's BLAS ``dgemm`` for the compiled kernels, and a guard that keeps every BLAS at one thread.

The pointer is read from the capsule that ``scipy.linalg.cython_blas`` exports (what ``cimport``
would do), so building needs no scipy.  The kernels call dgemm from inside their OpenMP threads:
no BLAS thread pool may spin beside them, hence :func:`blas_single_thread` around every call.
"""

import contextlib

from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer

cdef dgemm_t _dgemm = NULL


cdef dgemm_t scipy_dgemm() except NULL:
    global _dgemm
    if _dgemm != NULL:
        return _dgemm
    from scipy.linalg import cython_blas

    cap = cython_blas.__pyx_capi__["dgemm"]
    name = PyCapsule_GetName(cap)
    sig = (<bytes>name).decode() if name != NULL else ""
    if not sig.startswith("void (char *, char *, int *, int *, int *,") or sig.count("*") != 13:
        raise ImportError(f"scipy.linalg.cython_blas.dgemm has an unexpected signature: {sig!r}")
    _dgemm = <dgemm_t>PyCapsule_GetPointer(cap, name)
    return _dgemm


_CONTROLLER = None


def blas_single_thread():
    """Context manager: every BLAS loaded now, scipy's included, runs one thread inside it."""
    global _CONTROLLER
    scipy_dgemm()  # load scipy's BLAS first, so that the controller knows it
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return contextlib.nullcontext()
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")
