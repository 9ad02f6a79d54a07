/* A CPU emulator of the CUDA built-ins the kernels of src_c/cuda/ use.
 *
 * Force-included (g++ -include) when dpcompress/gpu/emulator.py compiles the
 * very same .cu sources as host C++, so that the GPU code path (kernels, launch
 * geometry, Python orchestration) can be run and checked against the CPU
 * kernels on a machine without a GPU.  It is a test tool, not a fast path.
 *
 * Model: the blocks of a launch run one after another; the threads of a block
 * are cooperative fibers (ucontext) on one OS thread.  A thread runs until it
 * reaches a warp collective (__syncwarp, a shuffle, a ballot) or
 * __syncthreads, where it waits until every thread of its warp (block) has
 * arrived, exactly the lock-step a GPU warp guarantees at those points and no
 * more.  A collective reached by part of a warp only (divergent control flow
 * around a collective: a bug in a kernel) is reported as a deadlock and aborts.
 * Shared memory: `__shared__` variables become statics (one block at a time).
 * Atomics are plain read-modify-writes (one OS thread).
 */
#ifndef DPC_CUDA_EMU_H
#define DPC_CUDA_EMU_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

struct dim3 {
    unsigned x, y, z;
};

namespace dpc_emu {

enum { RUNNABLE = 0, WAIT_WARP = 1, WAIT_BLOCK = 2, DONE = 3 };

struct Fiber {
    ucontext_t ctx;
    std::vector<char> stack;
    int state;
    unsigned tid;
};

struct State {
    std::vector<Fiber> fibers;
    ucontext_t scheduler;
    int current = -1;
    unsigned block_threads = 0;
    /* per warp: arrivals at the current collective and an exchange buffer */
    std::vector<int> warp_arrived;
    std::vector<uint64_t> exchange; /* [warps * 32] */
    std::vector<int> predicate;     /* [warps * 32] */
    int block_arrived = 0;
    void (*entry)(void **) = nullptr;
    void **params = nullptr;
};

inline State &state()
{
    static State s;
    return s;
}

inline dim3 &grid_dim()
{
    static dim3 d = {1, 1, 1};
    return d;
}
inline dim3 &block_dim()
{
    static dim3 d = {1, 1, 1};
    return d;
}
inline dim3 &block_idx()
{
    static dim3 d = {0, 0, 0};
    return d;
}

inline dim3 thread_idx()
{
    const State &s = state();
    dim3 d = {s.fibers[s.current].tid, 0, 0};
    return d;
}

inline void yield_to_scheduler()
{
    State &s = state();
    Fiber &f = s.fibers[s.current];
    swapcontext(&f.ctx, &s.scheduler);
}

/* Wait until every thread of this warp has arrived. */
inline void warp_barrier()
{
    State &s = state();
    const unsigned tid = s.fibers[s.current].tid;
    const unsigned w = tid / 32;
    const unsigned first = w * 32;
    unsigned lanes = s.block_threads - first;
    if (lanes > 32) lanes = 32;
    s.warp_arrived[w] += 1;
    if ((unsigned)s.warp_arrived[w] == lanes) {
        s.warp_arrived[w] = 0;
        for (unsigned t = first; t < first + lanes; t++)
            if (s.fibers[t].state == WAIT_WARP) s.fibers[t].state = RUNNABLE;
        return; /* the last one to arrive goes on */
    }
    s.fibers[s.current].state = WAIT_WARP;
    yield_to_scheduler();
}

inline void block_barrier()
{
    State &s = state();
    s.block_arrived += 1;
    if ((unsigned)s.block_arrived == s.block_threads) {
        s.block_arrived = 0;
        for (auto &f : s.fibers)
            if (f.state == WAIT_BLOCK) f.state = RUNNABLE;
        return;
    }
    s.fibers[s.current].state = WAIT_BLOCK;
    yield_to_scheduler();
}

inline void fiber_main()
{
    State &s = state();
    s.entry(s.params);
    s.fibers[s.current].state = DONE;
    /* returning switches to uc_link = the scheduler */
}

/* Run one launch: grid x block threads, blocks in order. */
inline int launch(void (*entry)(void **), void **params, unsigned grid, unsigned block)
{
    State &s = state();
    if (block == 0 || block % 32 != 0 || grid == 0) {
        fprintf(stderr, "dpc emulator: block size must be a positive multiple of 32 and grid positive\n");
        return 1;
    }
    grid_dim() = dim3{grid, 1, 1};
    block_dim() = dim3{block, 1, 1};
    s.entry = entry;
    s.params = params;
    const size_t stack_bytes = 256 * 1024;
    for (unsigned b = 0; b < grid; b++) {
        block_idx() = dim3{b, 0, 0};
        s.block_threads = block;
        s.fibers.assign(block, Fiber());
        s.warp_arrived.assign(block / 32, 0);
        s.exchange.assign(block, 0);
        s.predicate.assign(block, 0);
        s.block_arrived = 0;
        for (unsigned t = 0; t < block; t++) {
            Fiber &f = s.fibers[t];
            f.tid = t;
            f.state = RUNNABLE;
            f.stack.resize(stack_bytes);
            getcontext(&f.ctx);
            f.ctx.uc_stack.ss_sp = f.stack.data();
            f.ctx.uc_stack.ss_size = stack_bytes;
            f.ctx.uc_link = &s.scheduler;
            makecontext(&f.ctx, (void (*)(void))fiber_main, 0);
        }
        unsigned done = 0;
        unsigned next = 0;
        while (done < block) {
            unsigned tried = 0;
            while (tried < block && s.fibers[next].state != RUNNABLE) {
                next = (next + 1) % block;
                tried++;
            }
            if (tried == block) {
                fprintf(stderr,
                        "dpc emulator: deadlock in block %u: threads wait at a warp collective or __syncthreads "
                        "that the rest of their warp/block never reaches (divergent collective)\n",
                        b);
                return 2;
            }
            s.current = (int)next;
            swapcontext(&s.scheduler, &s.fibers[next].ctx);
            if (s.fibers[next].state == DONE) done++;
            next = (next + 1) % block;
        }
        s.fibers.clear();
    }
    s.current = -1;
    return 0;
}

template <class T>
inline T shuffle(T v, int src_lane_in_warp)
{
    static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
    State &s = state();
    const unsigned tid = s.fibers[s.current].tid;
    const unsigned first = tid & ~31u;
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof(T));
    s.exchange[tid] = bits;
    warp_barrier();
    uint64_t got = s.exchange[first + (unsigned)src_lane_in_warp];
    warp_barrier();
    T out;
    memcpy(&out, &got, sizeof(T));
    return out;
}

} // namespace dpc_emu

#define threadIdx (dpc_emu::thread_idx())
#define blockIdx (dpc_emu::block_idx())
#define blockDim (dpc_emu::block_dim())
#define gridDim (dpc_emu::grid_dim())
#define warpSize 32

static inline void dpc_emu_check_mask(unsigned mask)
{
    if (mask != 0xffffffffu) {
        fprintf(stderr, "dpc emulator: only full-warp collectives are emulated (mask %#x)\n", mask);
        abort();
    }
}

static inline void __syncwarp(unsigned mask = 0xffffffffu)
{
    dpc_emu_check_mask(mask);
    dpc_emu::warp_barrier();
}

static inline void __syncthreads(void) { dpc_emu::block_barrier(); }

template <class T>
static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32)
{
    dpc_emu_check_mask(mask);
    const int lane = (int)(threadIdx.x & 31u);
    const int base = lane & ~(width - 1);
    return dpc_emu::shuffle(v, base + (src & (width - 1)));
}

template <class T>
static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32)
{
    dpc_emu_check_mask(mask);
    const int lane = (int)(threadIdx.x & 31u);
    int src = lane ^ lane_mask;
    if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane; /* outside the segment: own value */
    return dpc_emu::shuffle(v, src);
}

template <class T>
static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32)
{
    dpc_emu_check_mask(mask);
    const int lane = (int)(threadIdx.x & 31u);
    int src = lane + (int)delta;
    if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;
    return dpc_emu::shuffle(v, src);
}

static inline unsigned __ballot_sync(unsigned mask, int predicate)
{
    dpc_emu_check_mask(mask);
    dpc_emu::State &s = dpc_emu::state();
    const unsigned tid = s.fibers[s.current].tid;
    const unsigned first = tid & ~31u;
    s.predicate[tid] = predicate != 0;
    dpc_emu::warp_barrier();
    unsigned bits = 0;
    for (unsigned l = 0; l < 32 && first + l < s.block_threads; l++)
        if (s.predicate[first + l]) bits |= 1u << l;
    dpc_emu::warp_barrier();
    return bits;
}

static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }

static inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v)
{
    const unsigned long long old = *p;
    *p = old + v;
    return old;
}
static inline int atomicAdd(int *p, int v)
{
    const int old = *p;
    *p = old + v;
    return old;
}
static inline unsigned long long atomicExch(unsigned long long *p, unsigned long long v)
{
    const unsigned long long old = *p;
    *p = v;
    return old;
}
static inline unsigned long long atomicMin(unsigned long long *p, unsigned long long v)
{
    const unsigned long long old = *p;
    if (v < old) *p = v;
    return old;
}

template <class T>
static inline T __ldg(const T *p)
{
    return *p;
}

static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }

/* ------------------------------------------------------- launch entry points */

namespace dpc_emu {

template <class F>
struct thunk;

template <class... A>
struct thunk<void (*)(A...)> {
    template <void (*f)(A...), std::size_t... I>
    static void call_impl(void **p, std::index_sequence<I...>)
    {
        f(*static_cast<typename std::remove_reference<A>::type *>(p[I])...);
    }
    template <void (*f)(A...)>
    static void call(void **p)
    {
        call_impl<f>(p, std::index_sequence_for<A...>{});
    }
    static constexpr int arity = sizeof...(A);
};

struct entry {
    const char *name;
    void (*call)(void **);
    int arity;
};

} // namespace dpc_emu

/* One table row: DPC_EMU_KERNEL("name as NVRTC name expression", function or template instance). */
#define DPC_EMU_KERNEL(NAME, ...)                                                                    \
    {                                                                                                \
        NAME, &dpc_emu::thunk<decltype(&__VA_ARGS__)>::template call<&__VA_ARGS__>,                  \
            dpc_emu::thunk<decltype(&__VA_ARGS__)>::arity                                            \
    }

#endif
