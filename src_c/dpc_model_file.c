/* The .dpc container: see dpc_model_file.h. */
#include "dpc_model_file.h"

#include <locale.h>
#include <math.h>
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

static uint64_t pad_to(uint64_t n) { return (n + DPC_FILE_ALIGN - 1) / DPC_FILE_ALIGN * DPC_FILE_ALIGN; }

/* The first non-zero byte of [from, to), or to. */
static uint64_t first_nonzero(const unsigned char *b, uint64_t from, uint64_t to)
{
    while (from < to && b[from] == 0) from++;
    return from;
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

const char *dpc_dtype_name(int dtype)
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

/* ---------------------------------------------------------------------------------------------
 * The JSON header.  The C reader accepts exactly the headers the Python reader accepts
 * (container.py: json.loads plus its limits): strict UTF-8, RFC 8259 JSON with Python's NaN,
 * Infinity and -Infinity, at most DPC_JSON_MAX_DEPTH nested containers and number tokens of at
 * most DPC_JSON_MAX_NUMBER characters.  Validation runs once, with bounded recursion; the lookups
 * afterwards walk the validated text and allocate nothing. */

/* Strict UTF-8 as Python decodes it: no overlong forms, no surrogates, nothing above U+10FFFF.
 * Returns the offset of the first bad byte, or n. */
static size_t utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07, min = 0x10000;
        else return i;
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += len;
    }
    return n;
}

static const char *json_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static int is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* One character of a string body at p (after the opening quote): its code point (escapes
 * decoded; a UTF-8 sequence counts as one character above 127) and the position after it.
 * Returns NULL at the closing quote's position check failure (bad escape, control character). */
static const char *json_char(const char *p, const char *end, uint32_t *cp)
{
    const unsigned char c = (unsigned char)*p;
    if (c < 0x20) return NULL;
    if (c != '\\') {
        if (c < 0x80) {
            *cp = c;
            return p + 1;
        }
        *cp = 0x80; /* validated UTF-8: skip the sequence */
        p++;
        while (p < end && ((unsigned char)*p & 0xC0) == 0x80) p++;
        return p;
    }
    if (end - p < 2) return NULL;
    switch (p[1]) {
    case '"': *cp = '"'; return p + 2;
    case '\\': *cp = '\\'; return p + 2;
    case '/': *cp = '/'; return p + 2;
    case 'b': *cp = '\b'; return p + 2;
    case 'f': *cp = '\f'; return p + 2;
    case 'n': *cp = '\n'; return p + 2;
    case 'r': *cp = '\r'; return p + 2;
    case 't': *cp = '\t'; return p + 2;
    case 'u': {
        if (end - p < 6) return NULL;
        uint32_t v = 0;
        for (int k = 2; k < 6; k++) {
            if (!is_hex(p[k])) return NULL;
            const char h = p[k];
            v = v << 4 | (uint32_t)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
        }
        *cp = v;
        return p + 6;
    }
    default: return NULL;
    }
}

/* A string at p (its opening quote): the position after the closing quote, or NULL. */
static const char *json_string(const char *p, const char *end)
{
    p++;
    while (p < end) {
        if (*p == '"') return p + 1;
        uint32_t cp;
        p = json_char(p, end, &cp);
        if (!p) return NULL;
    }
    return NULL;
}

/* A number token at p, as Python's json scanner reads it; NULL when malformed or too long. */
static const char *json_number(const char *p, const char *end)
{
    const char *q = p;
    if (q < end && *q == '-') q++;
    if (end - q >= 8 && memcmp(q, "Infinity", 8) == 0) {
        q += 8;
    } else if (q == p && end - q >= 3 && memcmp(q, "NaN", 3) == 0) {
        q += 3;
    } else {
        if (q >= end || !is_digit(*q)) return NULL;
        if (*q == '0') q++;
        else while (q < end && is_digit(*q)) q++;
        if (q < end && *q == '.') {
            q++;
            if (q >= end || !is_digit(*q)) return NULL;
            while (q < end && is_digit(*q)) q++;
        }
        if (q < end && (*q == 'e' || *q == 'E')) {
            q++;
            if (q < end && (*q == '+' || *q == '-')) q++;
            if (q >= end || !is_digit(*q)) return NULL;
            while (q < end && is_digit(*q)) q++;
        }
    }
    if (q - p > DPC_JSON_MAX_NUMBER) return NULL;
    return q;
}

/* A whole value at p (no leading blanks): the position after it, or NULL. */
static const char *json_value(const char *p, const char *end, int depth)
{
    if (p >= end) return NULL;
    switch (*p) {
    case '"': return json_string(p, end);
    case '{':
    case '[': {
        const char close = *p == '{' ? '}' : ']';
        if (depth >= DPC_JSON_MAX_DEPTH) return NULL;
        p = json_ws(p + 1, end);
        if (p < end && *p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                if (p >= end || *p != '"' || !(p = json_string(p, end))) return NULL;
                p = json_ws(p, end);
                if (p >= end || *p != ':') return NULL;
                p = json_ws(p + 1, end);
            }
            if (!(p = json_value(p, end, depth + 1))) return NULL;
            p = json_ws(p, end);
            if (p < end && *p == close) return p + 1;
            if (p >= end || *p != ',') return NULL;
            p = json_ws(p + 1, end);
        }
    }
    case 't': return end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f': return end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n': return end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default: return json_number(p, end);
    }
}

/* 1 when the string at p (its opening quote) decodes to the ASCII text s. */
static int json_string_equals(const char *p, const char *end, const char *s)
{
    p++;
    while (p < end && *p != '"') {
        uint32_t cp;
        p = json_char(p, end, &cp);
        if (!p || *s == 0 || cp != (uint32_t)(unsigned char)*s) return 0;
        s++;
    }
    return p < end && *s == 0;
}

/* The value of the last member called key of the object at p (validated JSON), or NULL. */
static const char *json_member(const char *p, const char *end, const char *key)
{
    if (p >= end || *p != '{') return NULL;
    const char *found = NULL;
    p = json_ws(p + 1, end);
    while (p < end && *p == '"') {
        const int match = json_string_equals(p, end, key);
        p = json_ws(json_string(p, end), end) + 1; /* past ':' */
        p = json_ws(p, end);
        if (match) found = p;
        p = json_ws(json_value(p, end, 0), end);
        if (p >= end || *p != ',') break;
        p = json_ws(p + 1, end);
    }
    return found;
}

int dpc_header_get(const dpc_file *f, const char *const *keys, dpc_json *out)
{
    const char *end = f->header + f->header_nbytes;
    const char *p = json_ws(f->header, end);
    for (; *keys; keys++)
        if (!(p = json_member(p, end, *keys))) return 0;
    out->p = p;
    out->end = json_value(p, end, 0);
    return out->end != NULL;
}

int dpc_json_item(dpc_json v, int64_t i, dpc_json *out)
{
    /* v was validated with the whole header: every element is a well-formed value */
    if (i < 0 || v.p >= v.end || *v.p != '[') return 0;
    const char *p = json_ws(v.p + 1, v.end);
    if (p < v.end && *p == ']') return 0;
    for (int64_t k = 0;; k++) {
        const char *q = json_value(p, v.end, 0);
        if (!q) return 0;
        if (k == i) {
            out->p = p;
            out->end = q;
            return 1;
        }
        p = json_ws(q, v.end);
        if (p >= v.end || *p != ',') return 0;
        p = json_ws(p + 1, v.end);
    }
}

int dpc_json_numbers(dpc_json v, double *out, int64_t n)
{
    /* one pass over the elements: a long array costs its length, not its length squared */
    if (v.p >= v.end || *v.p != '[') return 0;
    const char *p = json_ws(v.p + 1, v.end);
    if (p < v.end && *p == ']') return n == 0;
    for (int64_t k = 0;; k++) {
        const char *q = json_value(p, v.end, 0);
        dpc_json item = {p, q};
        if (!q || k >= n || !dpc_json_number(item, out + k)) return 0;
        p = json_ws(q, v.end);
        if (p < v.end && *p == ']') return k + 1 == n;
        if (p >= v.end || *p != ',') return 0;
        p = json_ws(p + 1, v.end);
    }
}

int dpc_json_number(dpc_json v, double *out)
{
    if (v.p >= v.end || !(*v.p == '-' || *v.p == 'N' || *v.p == 'I' || is_digit(*v.p))) return 0;
    const size_t n = (size_t)(v.end - v.p);
    if (n > DPC_JSON_MAX_NUMBER) return 0;
    const int neg = *v.p == '-';
    if (v.p[neg] == 'I') {
        *out = neg ? -HUGE_VAL : HUGE_VAL;
        return 1;
    }
    if (*v.p == 'N') {
        *out = NAN;
        return 1;
    }
    /* strtod reads the locale's decimal point (a host such as LAMMPS may have set one) */
    char buf[DPC_JSON_MAX_NUMBER + 8];
    const char *point = localeconv()->decimal_point;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (v.p[i] == '.' && point && point[0] && strlen(point) < 8) {
            for (const char *c = point; *c; c++) buf[k++] = *c;
        } else {
            buf[k++] = v.p[i];
        }
    }
    buf[k] = 0;
    char *stop = NULL;
    *out = strtod(buf, &stop);
    return stop == buf + k;
}

int dpc_json_string_is(dpc_json v, const char *s)
{
    return v.p < v.end && *v.p == '"' && json_string_equals(v.p, v.end, s);
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
    if (header_offset != DPC_FILE_PREAMBLE || header_nbytes > nbytes - DPC_FILE_PREAMBLE || header_nbytes > DPC_FILE_MAX_HEADER)
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
    /* every array's own checksum first, where its entry can be read: a damaged file then names the
     * array at fault; damage anywhere else is caught by the whole-file checksum below */
    for (uint64_t k = 0; k < n_arrays; k++) {
        const unsigned char *e = b + dir_offset + k * DPC_FILE_ENTRY;
        const uint64_t offset = rd64(e + 104), len = rd64(e + 112);
        if (memchr(e, 0, DPC_FILE_NAME) == NULL || e[0] == 0 || offset % DPC_FILE_ALIGN ||
            offset < dir_offset + n_arrays * DPC_FILE_ENTRY || offset > nbytes || len > nbytes - offset)
            continue; /* refused below, with the reason */
        if (crc_update(tab, 0, b + offset, len) != rd32(e + 120)) {
            status = dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s' fails its checksum: the file is damaged",
                                   (const char *)e);
            goto done;
        }
    }
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
    {   /* the header: UTF-8 JSON, one object (what Python's json.loads reads, with its limits) */
        const size_t bad = utf8_check((const unsigned char *)f->header, header_nbytes);
        const char *end = f->header + header_nbytes, *p = json_ws(f->header, end);
        if (bad != header_nbytes) {
            status = dpc_set_error(err, DPC_ERR_ARGUMENT, "the JSON header cannot be read (invalid UTF-8 at byte %zu)",
                                   bad);
            goto done;
        }
        const char *q = json_value(p, end, 0);
        if (!q || json_ws(q, end) != end) {
            status = dpc_set_error(err, DPC_ERR_ARGUMENT,
                                   "the JSON header cannot be read (malformed JSON, nesting deeper than %d or a number "
                                   "longer than %d characters)",
                                   DPC_JSON_MAX_DEPTH, DPC_JSON_MAX_NUMBER);
            goto done;
        }
        if (*p != '{') {
            status = dpc_set_error(err, DPC_ERR_ARGUMENT, "the JSON header is not an object");
            goto done;
        }
    }
    if (dir_offset != pad_to(header_offset + header_nbytes)) {
        status = dpc_set_error(err, DPC_ERR_ARGUMENT,
                               "array directory at offset %llu; the writer puts it at %llu, right after the header",
                               (unsigned long long)dir_offset, (unsigned long long)pad_to(header_offset + header_nbytes));
        goto done;
    }
    const uint64_t data_start = dir_offset + n_arrays * DPC_FILE_ENTRY;
    uint64_t layout_end = data_start; /* the writer's next array offset, before padding */
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
            status = dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s': dtype code %u or rank %u not supported",
                                   a->name, rd32(e + 64), rd32(e + 68));
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
                                   a->name, dpc_dtype_name(a->dtype), (unsigned long long)len, (unsigned long long)offset);
            goto done;
        }
        if (offset != pad_to(layout_end)) {
            status = dpc_set_error(err, DPC_ERR_ARGUMENT,
                                   "array '%s' at offset %llu; the writer puts it at %llu, right after the previous one",
                                   a->name, (unsigned long long)offset, (unsigned long long)pad_to(layout_end));
            goto done;
        }
        const uint64_t nz = first_nonzero(b, layout_end, offset);
        if (nz != offset) {
            status = dpc_set_error(err, DPC_ERR_ARGUMENT, "padding byte at offset %llu (before array '%s') is not zero",
                                   (unsigned long long)nz, a->name);
            goto done;
        }
        layout_end = offset + len;
        a->data = b + offset; /* its checksum was verified above */
        /* the writer sorts the names: one comparison per entry proves them unique (a quadratic
         * search over 65536 crafted entries would take seconds) */
        const int order = k ? strcmp(f->arrays[k - 1].name, a->name) : -1;
        if (order >= 0) {
            status = dpc_set_error(err, DPC_ERR_ARGUMENT,
                                   order == 0 ? "array '%s' appears twice"
                                              : "array '%s' is out of the writer's order (names sorted ascending)",
                                   a->name);
            goto done;
        }
    }
    if (nbytes != pad_to(layout_end)) {
        status = dpc_set_error(err, DPC_ERR_ARGUMENT, "the file has %zu bytes; its arrays end at %llu (padded: %llu)",
                               nbytes, (unsigned long long)layout_end, (unsigned long long)pad_to(layout_end));
        goto done;
    }
    {   /* padding after the header and after the last array */
        const uint64_t nz1 = first_nonzero(b, header_offset + header_nbytes, dir_offset);
        const uint64_t nz2 = first_nonzero(b, layout_end, nbytes);
        if (nz1 != dir_offset || nz2 != nbytes) {
            status = dpc_set_error(err, DPC_ERR_ARGUMENT, "padding byte at offset %llu is not zero",
                                   (unsigned long long)(nz1 != dir_offset ? nz1 : nz2));
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
        dpc_set_error(err, DPC_ERR_ARGUMENT, "array '%s' is %s, expected %s", name, dpc_dtype_name(a->dtype),
                      dpc_dtype_name(dtype));
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
