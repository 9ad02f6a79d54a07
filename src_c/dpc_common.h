/* Shared definitions of the dpcompress C kernels.
 *
 * Every kernel returns a dpc_status; the Python layer turns a non-zero status
 * into an exception.  Sizes and offsets are 64-bit (dpc_index) so that
 * nloc * nnei * 4 can exceed 2^31 without wrapping.
 */
#ifndef DPC_COMMON_H
#define DPC_COMMON_H

#include <stdint.h>

typedef int64_t dpc_index;

typedef enum {
    DPC_OK = 0,
    DPC_ERR_ALLOC = 1,       /* malloc failed */
    DPC_ERR_ARGUMENT = 2,    /* an argument the caller should have validated */
    DPC_ERR_INDEX = 3,       /* an index read from the input is out of range */
    DPC_ERR_NONFINITE = 4    /* a NaN or inf reached a kernel */
} dpc_status;

#endif
