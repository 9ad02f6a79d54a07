#include "dpc_openmp.h"

#ifdef _OPENMP
#include <omp.h>
#endif

int dpc_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int dpc_openmp_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int dpc_openmp_num_procs(void)
{
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

int dpc_openmp_threads_used(int n_threads)
{
    int used = 1;
#ifdef _OPENMP
#pragma omp parallel num_threads(n_threads > 0 ? n_threads : 1)
    {
#pragma omp single
        used = omp_get_num_threads();
    }
#else
    (void)n_threads;
#endif
    return used;
}

void dpc_openmp_serialize(void)
{
#ifdef _OPENMP
    omp_set_max_active_levels(0);
#endif
}
