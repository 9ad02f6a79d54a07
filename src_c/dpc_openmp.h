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

/* Make every later parallel region of this process run on one thread, whatever its num_threads
 * clause: max-active-levels-var = 0 makes every region inactive (OpenMP 5.0, 2.6.1).  Called in
 * a child after fork(): libgomp's thread pool does not survive fork, and a child that opens a
 * region with more than one thread waits forever for the parent's workers.  It only sets an ICV
 * (no lock, no allocation, no thread, no parallel region), so it is safe in a freshly forked
 * child. */
void dpc_openmp_serialize(void);

#endif
