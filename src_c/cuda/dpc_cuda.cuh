/* Shared helpers of the CUDA kernels of dpcompress (the .cu files of src_c/cuda).
 *
 * The polynomial, table-lookup, packed-table and environment-matrix formulas are
 * NOT here: they are the host/device functions of ../dpc_table.h and ../dpc_env_mat.h,
 * the same source the C kernels compile (DPC_HD = __host__ __device__ under
 * nvcc and NVRTC).  This header adds what only the GPU side needs: warp
 * bookkeeping, deterministic warp reductions, the neighbor-list sort key.
 *
 * Three compilers read these files:
 *   * NVRTC through cupy.RawModule at run time (__CUDACC_RTC__: no system headers),
 *   * nvcc -cubin in the compile checks (tests/test_gpu.py, sm_80 and sm_90),
 *   * g++ in the CPU emulator (dpcompress/gpu/emulator.py, which force-includes
 *     emu/dpc_cuda_emu.h to supply the CUDA built-ins): it runs the very same
 *     kernel source on the host, warp by warp, for the GPU-less tests.
 *
 * Conventions of every kernel
 *   * every index and offset is 64-bit (long long = dpc_index), so natoms * nnei * 3
 *     beyond 2^31 is fine;
 *   * grid-stride loops: correctness never depends on the grid size;
 *   * blocks of 32 * w threads, 1 <= w <= DPC_MAX_WARPS (the static shared arrays are
 *     sized for DPC_MAX_WARPS warps);
 *   * warp collectives (__syncwarp, shuffles, ballots) are always executed by
 *     the full warp (uniform control flow around them);
 *   * no floating-point atomics: every sum is taken in a fixed order, so results
 *     are bitwise reproducible from run to run on a given GPU.
 */
#ifndef DPC_CUDA_CUH
#define DPC_CUDA_CUH

#include "dpc_table.h"
#include "dpc_env_mat.h"

#define DPC_WARP 32
#define DPC_MAX_WARPS 4
#define DPC_FULL_MASK 0xffffffffu

static __device__ __forceinline__ int dpc_lane(void) { return (int)(threadIdx.x & 31u); }
static __device__ __forceinline__ int dpc_warp_in_block(void) { return (int)(threadIdx.x >> 5); }
static __device__ __forceinline__ long long dpc_first_warp(void)
{
    return (long long)blockIdx.x * (long long)(blockDim.x >> 5) + (long long)(threadIdx.x >> 5);
}
static __device__ __forceinline__ long long dpc_warp_stride(void)
{
    return (long long)gridDim.x * (long long)(blockDim.x >> 5);
}
static __device__ __forceinline__ long long dpc_first_thread(void)
{
    return (long long)blockIdx.x * (long long)blockDim.x + (long long)threadIdx.x;
}
static __device__ __forceinline__ long long dpc_thread_stride(void) { return (long long)gridDim.x * (long long)blockDim.x; }

/* Sum over the G lanes of an aligned group (G = 1, 2, 4, 8, 16, 32), butterfly order:
 * every lane of the group ends with the same bits (each level adds a pair in an
 * order-independent way: a + b == b + a exactly). */
template <int G>
static __device__ __forceinline__ double dpc_group_sum(double v)
{
#pragma unroll
    for (int o = G / 2; o > 0; o >>= 1) v += __shfl_xor_sync(DPC_FULL_MASK, v, o, G);
    return v;
}

static __device__ __forceinline__ long long dpc_warp_sum_ll(long long v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(DPC_FULL_MASK, v, o);
    return v;
}

/* x - x is 0 for finite x and NaN for inf/NaN (no fast-math anywhere). */
DPC_HD int dpc_finite(double x) { return (x - x) == 0.0; }

/* Products and sums rounded one by one: the neighbor list must reproduce the
 * CPU's (numpy's) vectors and squared lengths bit for bit, so no fused
 * multiply-add may form here (nvcc and NVRTC contract a*b + c by default). */
#if defined(__CUDA_ARCH__)
#define DPC_MUL(a, b) __dmul_rn((a), (b))
#define DPC_ADD(a, b) __dadd_rn((a), (b))
#define DPC_SUB(a, b) __dsub_rn((a), (b))
#else
#define DPC_MUL(a, b) ((a) * (b))
#define DPC_ADD(a, b) ((a) + (b))
#define DPC_SUB(a, b) ((a) - (b))
#endif

/* d2 = (x*x + y*y) + z*z, the CPU's squared_norm (src_c/dpc_neighbors.c). */
DPC_HD double dpc_norm2(double x, double y, double z)
{
    return DPC_ADD(DPC_ADD(DPC_MUL(x, x), DPC_MUL(y, y)), DPC_MUL(z, z));
}

/* The neighbor order of src_c/dpc_neighbors.c: (d2, j, x, y, z) ascending. */
DPC_HD int dpc_key_less(double d2a, long long ja, double xa, double ya, double za, double d2b, long long jb, double xb,
                        double yb, double zb)
{
    if (d2a != d2b) return d2a < d2b;
    if (ja != jb) return ja < jb;
    if (xa != xb) return xa < xb;
    if (ya != yb) return ya < yb;
    return za < zb;
}

#endif
