/* Shared definitions of the dpcompress C kernels.
 *
 * Every kernel returns a dpc_status; the Python layer turns a non-zero status
 * into an exception.  Sizes and offsets are 64-bit (dpc_index) so that
 * nloc * nnei * 4 can exceed 2^31 without wrapping.
 */
#ifndef DPC_COMMON_H
#define DPC_COMMON_H

#if defined(__CUDACC_RTC__)
/* NVRTC (the CUDA kernels compiled at run time by CuPy) has no system headers;
 * long long is 64-bit on every CUDA target, the same type as int64_t there. */
typedef long long dpc_index;
#else
#include <stdint.h>

typedef int64_t dpc_index;
#endif

typedef enum {
    DPC_OK = 0,
    DPC_ERR_ALLOC = 1,       /* malloc failed */
    DPC_ERR_ARGUMENT = 2,    /* an argument the caller should have validated */
    DPC_ERR_INDEX = 3,       /* an index read from the input is out of range */
    DPC_ERR_NONFINITE = 4,   /* a NaN or inf reached a kernel */
    DPC_ERR_COINCIDENT = 5   /* two atoms (or an atom and an image) coincide */
} dpc_status;

/* Fortran BLAS dgemm (scipy.linalg.cython_blas.dgemm, an OpenBLAS dgemm_ ...): the fitting nets'
 * matrix products.  Column-major; the kernels call it from inside their OpenMP threads. */
#if !defined(__CUDACC_RTC__)
typedef void (*dpc_dgemm_t)(char *transa, char *transb, int *m, int *n, int *k, double *alpha, double *a, int *lda,
                            double *b, int *ldb, double *beta, double *c, int *ldc);
#endif

/* Hot per-atom functions are compiled twice, for x86-64-v3 (AVX2 + FMA) and the
 * baseline, and the loader picks one at run time (GCC function multiversioning):
 * close to -march=native speed while the binary stays portable.  The choice
 * depends on the CPU only, never on the thread count, so results stay
 * reproducible on a given machine. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(DPC_NO_CLONES)
#define DPC_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define DPC_HOT
#endif

#endif
