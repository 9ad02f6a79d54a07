/* Growable scratch buffers that outlive a call (the workspace of dpc_model.h owns them), so that
 * a run allocates during its first steps only.  Contents are not kept when a buffer grows. */
#ifndef DPC_BUFFER_H
#define DPC_BUFFER_H

#include <stdlib.h>

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    void *data;
    size_t cap; /* bytes */
} dpc_buffer;

/* At least `bytes` bytes (malloc's alignment), or NULL when out of memory. */
static inline void *dpc_buffer_reserve(dpc_buffer *b, size_t bytes)
{
    if (bytes <= b->cap && b->data) return b->data;
    size_t cap = b->cap * 2 > bytes ? b->cap * 2 : bytes;
    cap = (cap + 63) / 64 * 64;
    if (cap == 0) cap = 64;
    void *p = malloc(cap);
    if (!p) return NULL;
    free(b->data);
    b->data = p;
    b->cap = cap;
    return p;
}

static inline void dpc_buffer_free(dpc_buffer *b)
{
    free(b->data);
    b->data = NULL;
    b->cap = 0;
}

/* Carve consecutive pieces (sizes rounded up to 64 bytes) out of one block: a first pass with
 * base NULL sizes the block, a second with the block hands out the pointers. */
static inline void *dpc_carve(char *base, size_t *offset, size_t bytes)
{
    void *p = base ? (void *)(base + *offset) : NULL;
    *offset += (bytes + 63) / 64 * 64;
    return p;
}

/* This thread's scratch: its slot of `per_thread` (one per OpenMP thread of the team), or `own`
 * when the caller keeps no workspace (the caller then frees `own`). */
static inline dpc_buffer *dpc_thread_buffer(dpc_buffer *per_thread, dpc_buffer *own)
{
#ifdef _OPENMP
    const int tid = omp_get_thread_num();
#else
    const int tid = 0;
#endif
    return per_thread ? per_thread + tid : own;
}

#endif
