/* The .dpc container: see dpc_model_file.h. */
#include "dpc_model_file.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

dpc_status dpc_set_error(dpc_error *err, dpc_status status, const char *fmt, ...)
{
    if (err) {
        err->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* ---------------------------------------------------------------------------------------------
 * CRC-32, zlib's (reflected polynomial 0xEDB88320), slicing by 8: a few GB/s, so that checking
 * every byte of a model at open costs milliseconds. */

typedef uint32_t crc_tables[8][256];

static void crc_init(crc_tables t)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        t[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 1; k < 8; k++) t[k][n] = (t[k - 1][n] >> 8) ^ t[0][t[k - 1][n] & 0xff];
}

static uint32_t crc_update(const crc_tables t, uint32_t crc, const void *data, size_t n)
{
    const unsigned char *p = (const unsigned char *)data;
    uint32_t c = ~crc;
    while (n >= 8) {
        const uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        const uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^ t[3][hi & 0xff] ^
            t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

uint32_t dpc_crc32(uint32_t crc, const void *data, size_t n)
{
    crc_tables t; /* 8 KiB, built per call: no shared state between threads */
    crc_init(t);
    return crc_update((const uint32_t(*)[256])t, crc, data, n);
}

/* ---------------------------------------------------------------------------------------------
 * Little-endian reads (the file's byte order, whatever the machine's). */

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

static int64_t dtype_size(int dtype)
{
    switch (dtype) {
    case DPC_DT_F64:
    case DPC_DT_I64: return 8;
    case DPC_DT_I32: return 4;
    case DPC_DT_I8:
    case DPC_DT_U8: return 1;
    default: return 0;
    }
}

static const char *dtype_name(int dtype)
{
    switch (dtype) {
    case DPC_DT_F64: return "float64";
    case DPC_DT_I64: return "int64";
    case DPC_DT_I32: return "int32";
    case DPC_DT_I8: return "int8";
    case DPC_DT_U8: return "uint8";
    default: return "unknown";
    }
}

void dpc_file_release(dpc_file *f)
{
    free(f->arrays);
    memset(f, 0, sizeof *f);
}

dpc_status dpc_file_parse(const void *data, size_t nbytes, dpc_file *f, dpc_error *err)
{
    memset(f, 0, sizeof *f);
    const unsigned char *b = (const unsigned char *)data;
    if (!host_is_little_endian())
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "this machine is big-endian; .dpc files are read on little-endian machines only");
    if (data == NULL || nbytes < DPC_FILE_PREAMBLE)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "file of %zu bytes is shorter than the 64-byte preamble", nbytes);
    if (memcmp(b, DPC_FILE_MAGIC, 8) != 0)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "not a dpcompress model file (no DPCMODEL signature)");
    const uint32_t version = rd32(b + 8);
    if (version != DPC_FILE_VERSION)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "format version %u; this dpcompress reads version %d", version,
                             DPC_FILE_VERSION);
    const uint64_t header_nbytes = rd32(b + 12), header_offset = rd64(b + 16), dir_offset = rd64(b + 24),
                   n_arrays = rd64(b + 32), file_nbytes = rd64(b + 40);
    if (file_nbytes != (uint64_t)nbytes)
        return dpc_set_error(err, DPC_ERR_ARGUMENT,
                             "the preamble declares %llu bytes but the file has %zu (truncated or extended)",
                             (unsigned long long)file_nbytes, nbytes);
    if (header_offset != DPC_FILE_PREAMBLE || header_nbytes > nbytes - DPC_FILE_PREAMBLE)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "header (offset %llu, %llu bytes) outside the file",
                             (unsigned long long)header_offset, (unsigned long long)header_nbytes);
    if (n_arrays > DPC_FILE_MAX_ARRAYS)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "%llu arrays declared (at most %d)", (unsigned long long)n_arrays,
                             DPC_FILE_MAX_ARRAYS);
    if (dir_offset % DPC_FILE_ALIGN || dir_offset < header_offset + header_nbytes || dir_offset > nbytes ||
        n_arrays * DPC_FILE_ENTRY > nbytes - dir_offset)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "array directory (offset %llu, %llu entries) outside the file",
                             (unsigned long long)dir_offset, (unsigned long long)n_arrays);
    if (rd32(b + 52) != 0 || rd64(b + 56) != 0)
        return dpc_set_error(err, DPC_ERR_ARGUMENT, "reserved preamble bytes are not zero");

    dpc_status status = DPC_OK;
    crc_tables *tables = (crc_tables *)malloc(sizeof(crc_tables));
    f->arrays = (dpc_array *)calloc(n_arrays ? n_arrays : 1, sizeof(dpc_array));
    if (!tables || !f->arrays) {
        status = dpc_set_error(err, DPC_ERR_ALLOC, "out of memory for the array directory");
        goto done;
    }
    crc_init(*tables);
    const uint32_t(*tab)[256] = (const uint32_t(*)[256]) * tables;
    {   /* whole-file checksum, the 4 checksum bytes read as zero */
        static const unsigned char zero[4] = {0, 0, 0, 0};
        uint32_t crc = crc_update(tab, 0, b, 48);
        crc = crc_update(tab, crc, zero, 4);
        crc = crc_update(tab, crc, b + 52, nbytes - 52);
        if (crc != rd32(b + 48)) {
            status = dpc_set_error(err, DPC_ERR_ARGUMENT,
                                   "checksum mismatch: the file is damaged (CRC-32 %08x, the preamble says %08x)", crc,
                                   rd32(b + 48));
            goto done;
        }
    }
    f->base = b;
    f->nbytes = nbytes;
    f->header = (const char *)b + header_offset;
    f->header_nbytes = header_nbytes;
    f->n_arrays = (int64_t)n_arrays;
    const uint64_t data_start = dir_offset + n_arrays * DPC_FILE_ENTRY;
    for (uint64_t k = 0; k < n_arrays; k++) {
        const unsigned char *e = b + dir_offset + k * DPC_FILE_ENTRY;
        dpc_array *a = f->arrays + k;
        if (memchr(e, 0, DPC_FILE_NAME) == NULL || e[0] == 0) {
            status = dpc_set_error(err, DPC_ERR_ARGUMENT, "array entry %llu has no valid name", (unsigned long long)k);
            goto done;
        }
        a->name = (const char *)e;
        a->dtype = (int)rd32(e + 64);
        a->ndim = (int)rd32(e + 68);
        const int64_t item = dtype_size(a->dtype);
        if (item == 0 || a->ndim < 0 || a->ndim > DPC_FILE_MAX_NDIM || rd32(e + 124) != 0) {
            status = dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s': dtype code %d or rank %d not supported",
                                   a->name, a->dtype, a->ndim);
            goto done;
        }
        uint64_t count = 1;
        for (int d = 0; d < DPC_FILE_MAX_NDIM; d++) {
            const uint64_t s = rd64(e + 72 + 8 * d);
            if (d >= a->ndim) {
                if (s != 0) {
                    status = dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s': unused shape slots are not zero", a->name);
                    goto done;
                }
                continue;
            }
            if (s > (uint64_t)INT64_MAX || (s != 0 && count > (uint64_t)(INT64_MAX / 8) / s)) {
                status = dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s': implausible shape", a->name);
                goto done;
            }
            a->shape[d] = (int64_t)s;
            count *= s;
        }
        a->count = (int64_t)count;
        const uint64_t offset = rd64(e + 104), len = rd64(e + 112);
        if (len != count * (uint64_t)item || offset % DPC_FILE_ALIGN || offset < data_start || offset > nbytes ||
            len > nbytes - offset) {
            status = dpc_set_error(err, DPC_ERR_ARGUMENT,
                                   "array '%s' (%s, %llu bytes at offset %llu) does not fit its shape or the file",
                                   a->name, dtype_name(a->dtype), (unsigned long long)len, (unsigned long long)offset);
            goto done;
        }
        a->data = b + offset;
        if (crc_update(tab, 0, a->data, len) != rd32(e + 120)) {
            status = dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s' fails its checksum: the file is damaged", a->name);
            goto done;
        }
        for (uint64_t q = 0; q < k; q++)
            if (strcmp(f->arrays[q].name, a->name) == 0) {
                status = dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s' appears twice", a->name);
                goto done;
            }
    }
done:
    free(tables);
    if (status != DPC_OK) dpc_file_release(f);
    return status;
}

const dpc_array *dpc_file_get(const dpc_file *f, const char *name)
{
    for (int64_t k = 0; k < f->n_arrays; k++)
        if (strcmp(f->arrays[k].name, name) == 0) return f->arrays + k;
    return NULL;
}

const dpc_array *dpc_file_need(const dpc_file *f, const char *name, int dtype, int ndim, int64_t *shape,
                               dpc_error *err)
{
    const dpc_array *a = dpc_file_get(f, name);
    if (!a) {
        dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s' is missing", name);
        return NULL;
    }
    if (a->dtype != dtype) {
        dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s' is %s, expected %s", name, dtype_name(a->dtype),
                      dtype_name(dtype));
        return NULL;
    }
    if (ndim >= 0) {
        if (a->ndim != ndim) {
            dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s' has %d dimensions, expected %d", name, a->ndim, ndim);
            return NULL;
        }
        for (int d = 0; d < ndim; d++) {
            if (shape[d] >= 0 && a->shape[d] != shape[d]) {
                char got[96] = "", want[96] = "";
                for (int q = 0; q < ndim; q++) {
                    char g[24], w[24];
                    snprintf(g, sizeof g, q ? ", %lld" : "%lld", (long long)a->shape[q]);
                    if (shape[q] >= 0) snprintf(w, sizeof w, q ? ", %lld" : "%lld", (long long)shape[q]);
                    else snprintf(w, sizeof w, q ? ", *" : "*");
                    strncat(got, g, sizeof got - strlen(got) - 1);
                    strncat(want, w, sizeof want - strlen(want) - 1);
                }
                dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s' has shape (%s), expected (%s)", name, got, want);
                return NULL;
            }
            shape[d] = a->shape[d];
        }
    }
    return a;
}
