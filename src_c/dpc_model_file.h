/* The .dpc container, read in C: preamble, JSON header, array directory, checksums.
 *
 * Layout (little-endian; docs/model-file.md is the reference, dpcompress/modelfile/container.py
 * the Python reader and writer):
 *
 *   [0, 64)              preamble
 *       0  char[8]  "DPCMODEL"
 *       8  u32      format version (2)
 *      12  u32      header bytes (UTF-8 JSON)
 *      16  u64      header offset (64)
 *      24  u64      directory offset (64-aligned)
 *      32  u64      number of arrays
 *      40  u64      file bytes
 *      48  u32      CRC-32 of the whole file with these 4 bytes read as zero
 *      52  u32, 56 u64   zero
 *   header, directory (128-byte entries), arrays: each at a 64-byte-aligned offset, zero padding
 *
 *   entry:  0 char[64] name (NUL-padded)   64 u32 dtype   68 u32 ndim   72 u64[4] shape
 *         104 u64 offset   112 u64 bytes   120 u32 CRC-32 of the array's bytes   124 u32 zero
 *
 * Everything read from the file is checked before use: sizes against the buffer, offsets,
 * alignment, dtype codes, shape products (no overflow), name uniqueness, both checksums, the
 * writer's layout (each array right after the previous one, every padding byte zero: no byte of
 * the file goes unchecked), and the header (UTF-8 JSON, at most DPC_JSON_MAX_DEPTH deep, numbers
 * of at most DPC_JSON_MAX_NUMBER characters: the rules of the Python reader).
 */
#ifndef DPC_MODEL_FILE_H
#define DPC_MODEL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "dpc_model.h"

#define DPC_FILE_MAGIC "DPCMODEL"
#define DPC_FILE_VERSION 2
#define DPC_FILE_ALIGN 64
#define DPC_FILE_PREAMBLE 64
#define DPC_FILE_ENTRY 128
#define DPC_FILE_NAME 64
#define DPC_FILE_MAX_ARRAYS 65536
#define DPC_FILE_MAX_NDIM 4
#define DPC_FILE_MAX_HEADER (1u << 26) /* 64 MiB of JSON (container.py MAX_HEADER) */
#define DPC_JSON_MAX_DEPTH 64
#define DPC_JSON_MAX_NUMBER 64

enum { DPC_DT_F64 = 1, DPC_DT_I64 = 2, DPC_DT_I32 = 3, DPC_DT_I8 = 4, DPC_DT_U8 = 5 };

typedef struct {
    const char *name;      /* NUL-terminated inside the entry */
    int dtype;
    int ndim;
    int64_t shape[DPC_FILE_MAX_NDIM];
    int64_t count;         /* product of the shape */
    const void *data;
} dpc_array;

typedef struct {
    const unsigned char *base;
    size_t nbytes;
    const char *header;
    size_t header_nbytes;
    int64_t n_arrays;
    dpc_array *arrays;     /* owned */
} dpc_file;

/* Parse and check the container; on success *f owns its directory (dpc_file_release). */
dpc_status dpc_file_parse(const void *data, size_t nbytes, dpc_file *f, dpc_error *err);
void dpc_file_release(dpc_file *f);

/* The array called name, or NULL (no error set). */
const dpc_array *dpc_file_get(const dpc_file *f, const char *name);
/* "float64", "int64", ... of a DPC_DT_* code (messages). */
const char *dpc_dtype_name(int dtype);

/* The array called name with this dtype and shape (-1 entries of shape: any extent, filled in);
 * sets err and returns NULL when it is missing or differs.  ndim < 0: any rank up to 4. */
const dpc_array *dpc_file_need(const dpc_file *f, const char *name, int dtype, int ndim, int64_t *shape,
                               dpc_error *err);

/* A JSON value inside the header: [p, end). */
typedef struct {
    const char *p, *end;
} dpc_json;

/* The value at keys[0].keys[1]... (a NULL-terminated list of object keys) of the header, as
 * Python's json reads it (escapes in keys decoded, the last of repeated keys wins).
 * Returns 1 and sets *out when found, 0 when absent (or a step of the path is not an object). */
int dpc_header_get(const dpc_file *f, const char *const *keys, dpc_json *out);

/* 1 and *out = element i (from 0) when v is a JSON array with more than i elements, else 0. */
int dpc_json_item(dpc_json v, int64_t i, dpc_json *out);

/* 1 when v is a JSON array of exactly n numbers (as dpc_json_number reads them), stored in out[0..n). */
int dpc_json_numbers(dpc_json v, double *out, int64_t n);

/* 1 and *out when v is a JSON number (NaN, Infinity, -Infinity included, as Python reads them). */
int dpc_json_number(dpc_json v, double *out);

/* 1 when v is the JSON string equal to the ASCII text s (escapes decoded). */
int dpc_json_string_is(dpc_json v, const char *s);

/* printf into err (status and message). */
dpc_status dpc_set_error(dpc_error *err, dpc_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
