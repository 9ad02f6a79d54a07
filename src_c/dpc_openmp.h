/* OpenMP access in one place, with serial fallbacks.
 *
 * Cython modules never `cimport openmp`: a build without -fopenmp would then
 * fail at import (undefined omp_* symbols).  They call these instead.
 */
#ifndef DPC_OPENMP_H
#define DPC_OPENMP_H

int dpc_openmp_enabled(void);          /* 1 if built with OpenMP */
int dpc_openmp_max_threads(void);      /* omp_get_max_threads() or 1 */
int dpc_openmp_num_procs(void);        /* omp_get_num_procs() or 1 */
int dpc_openmp_threads_used(int n_threads); /* threads a parallel region with n_threads really gets */

#endif
