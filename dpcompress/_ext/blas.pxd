# The Fortran dgemm the compiled kernels call (scipy's, from scipy.linalg.cython_blas).
ctypedef void (*dgemm_t)(char *, char *, int *, int *, int *, double *, double *, int *, double *, int *,
                         double *, double *, int *) noexcept nogil

cdef dgemm_t scipy_dgemm() except NULL
