/* runtime_frame: one frame through the dpcompress model runtime (src_c/dpc_model.h), from C only.
 *
 *   runtime_frame MODEL.dpc FRAME.bin OUT.bin [N_THREADS [N_CALLS]]
 *
 * Opens the model with the reference dgemm below, reads the frame, then calls dpc_compute
 * N_CALLS times (default 1) with the same workspace and N_THREADS threads (default 1).  A later
 * call must reproduce the first one bit for bit without growing the workspace (the runtime
 * allocates during the first steps only); tests/test_c_runtime.py checks both from the outputs.
 * On a failed call: the runtime's message on stderr and exit status 1 (2: bad usage or file).
 *
 * FRAME.bin, native byte order, no padding (numpy's tobytes writes it):
 *   char[8]  "DPCFRAME"
 *   int64[8] natoms, nlocal, nimage, ncand, neighmask, has_tag, has_cell, has_lattice
 *   float64  x[natoms][3]
 *   int32    type[natoms]
 *   int64    tag[natoms]                                    if has_tag
 *   float64  cell[3][3]                                     if has_cell (rows: cell vectors)
 *   int32    lattice[natoms][3]                             if has_lattice
 *   int32    image_owner[nimage], image_lattice[nimage][3]
 *   int64    offsets[nlocal + 1]   candidates of center i: index[offsets[i] .. offsets[i+1])
 *   int32    index[ncand]
 *
 * OUT.bin: N_CALLS records of float64
 *   energy, virial[9], atom_energy[nlocal], force[natoms][3], atom_virial[natoms][9]
 * stdout: one line per call, "call K workspace_bytes N beyond_fine B beyond_table T overflow O".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpc_model.h"

/* Fortran BLAS dgemm, column-major: C = alpha op(A) op(B) + beta C, op(A) m x k, op(B) k x n.
 * Plain loops, so that the test needs no BLAS; thread-safe (the runtime calls it from its
 * OpenMP threads).  beta == 0 overwrites C without reading it, as BLAS does. */
static void ref_dgemm(char *transa, char *transb, int *m, int *n, int *k, double *alpha, double *a, int *lda,
                      double *b, int *ldb, double *beta, double *c, int *ldc)
{
    const int ta = *transa == 'T' || *transa == 't' || *transa == 'C' || *transa == 'c';
    const int tb = *transb == 'T' || *transb == 't' || *transb == 'C' || *transb == 'c';
    for (int j = 0; j < *n; j++)
        for (int i = 0; i < *m; i++) {
            double s = 0.0;
            for (int l = 0; l < *k; l++) {
                const double av = ta ? a[l + (size_t)i * *lda] : a[i + (size_t)l * *lda];
                const double bv = tb ? b[j + (size_t)l * *ldb] : b[l + (size_t)j * *ldb];
                s += av * bv;
            }
            double *cij = c + i + (size_t)j * *ldc;
            *cij = (*beta == 0.0 ? 0.0 : *beta * *cij) + *alpha * s;
        }
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "runtime_frame: %s: %s\n", what, msg);
    exit(2);
}

static void *read_file(const char *path, size_t *nbytes)
{
    FILE *fh = fopen(path, "rb");
    if (!fh) die(path, "cannot open");
    if (fseek(fh, 0, SEEK_END) != 0) die(path, "cannot seek");
    const long n = ftell(fh);
    if (n < 0 || fseek(fh, 0, SEEK_SET) != 0) die(path, "cannot seek");
    void *data = malloc(n > 0 ? (size_t)n : 1);
    if (!data || fread(data, 1, (size_t)n, fh) != (size_t)n) die(path, "cannot read");
    fclose(fh);
    *nbytes = (size_t)n;
    return data;
}

/* Sequential reader of FRAME.bin: each call hands out the next `count` items of `size` bytes. */
typedef struct {
    const char *p, *end, *path;
} cursor;

static const void *take(cursor *c, int64_t count, size_t size)
{
    if (count < 0 || (uint64_t)count > (size_t)(c->end - c->p) / size) die(c->path, "truncated frame file");
    const void *at = c->p;
    c->p += (size_t)count * size;
    return at;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: %s MODEL.dpc FRAME.bin OUT.bin [N_THREADS [N_CALLS]]\n", argv[0]);
        return 2;
    }
    const int n_threads = argc > 4 ? atoi(argv[4]) : 1;
    const int n_calls = argc > 5 ? atoi(argv[5]) : 1;

    size_t model_size, frame_size;
    void *model_data = read_file(argv[1], &model_size); /* kept alive while the model is open */
    void *frame_data = read_file(argv[2], &frame_size);

    dpc_error err;
    dpc_model *model = NULL;
    if (dpc_model_open(model_data, model_size, ref_dgemm, &model, &err) != DPC_OK) {
        fprintf(stderr, "runtime_frame: dpc_model_open: %s\n", err.message);
        return 1;
    }

    /* The frame's arrays are copied out of the file's bytes: after an int32 array of odd length
     * the next float64 or int64 array would be misaligned in place. */
    cursor cur = {(const char *)frame_data, (const char *)frame_data + frame_size, argv[2]};
    if (memcmp(take(&cur, 8, 1), "DPCFRAME", 8) != 0) die(argv[2], "not a frame file (magic)");
    int64_t head[8];
    memcpy(head, take(&cur, 8, sizeof(int64_t)), sizeof head);
    const int64_t natoms = head[0], nlocal = head[1], nimage = head[2], ncand = head[3];
    if (natoms < 0 || nlocal < 0 || nlocal > natoms || nimage < 0 || ncand < 0) die(argv[2], "bad sizes");
#define COPY(dst, type, count)                                                      \
    type *dst = (type *)malloc(sizeof(type) * ((count) > 0 ? (size_t)(count) : 1)); \
    if (!dst) die(argv[2], "out of memory");                                        \
    memcpy(dst, take(&cur, (count), sizeof(type)), sizeof(type) * (size_t)(count))
    COPY(x, double, 3 * natoms);
    COPY(type, int32_t, natoms);
    COPY(tag, int64_t, head[5] ? natoms : 0);
    COPY(cell, double, head[6] ? 9 : 0);
    COPY(lattice, int32_t, head[7] ? 3 * natoms : 0);
    COPY(image_owner, int32_t, nimage);
    COPY(image_lattice, int32_t, 3 * nimage);
    COPY(offsets, int64_t, nlocal + 1);
    COPY(index, int32_t, ncand);
#undef COPY
    if (cur.p != cur.end) die(argv[2], "trailing bytes after the candidates");

    /* LAMMPS's layout of the candidates: a count and a row pointer per center. */
    int32_t *numneigh = (int32_t *)malloc(sizeof(int32_t) * (nlocal > 0 ? (size_t)nlocal : 1));
    const int32_t **firstneigh = (const int32_t **)malloc(sizeof(int32_t *) * (nlocal > 0 ? (size_t)nlocal : 1));
    if (!numneigh || !firstneigh) die(argv[2], "out of memory");
    for (int64_t i = 0; i < nlocal; i++) {
        if (offsets[i] < 0 || offsets[i + 1] < offsets[i] || offsets[i + 1] > ncand) die(argv[2], "bad offsets");
        numneigh[i] = (int32_t)(offsets[i + 1] - offsets[i]);
        firstneigh[i] = index + offsets[i];
    }

    dpc_frame frame;
    memset(&frame, 0, sizeof frame);
    frame.natoms = natoms;
    frame.nlocal = nlocal;
    frame.x = x;
    frame.type = type;
    frame.tag = head[5] ? tag : NULL;
    frame.cell = head[6] ? cell : NULL;
    frame.lattice = head[7] ? lattice : NULL;
    frame.nimage = nimage;
    frame.image_owner = image_owner;
    frame.image_lattice = image_lattice;
    frame.numneigh = numneigh;
    frame.firstneigh = firstneigh;
    frame.neighmask = (int32_t)head[4];

    /* One record: energy, virial, then the per-atom arrays the runtime adds to. */
    const size_t nrec = 10 + (size_t)nlocal + 12 * (size_t)natoms;
    double *rec = (double *)malloc(sizeof(double) * nrec);
    if (!rec) die(argv[3], "out of memory");
    dpc_outputs out = {rec + 10, rec + 10 + nlocal, rec + 10 + nlocal + 3 * natoms};
    FILE *fo = fopen(argv[3], "wb");
    if (!fo) die(argv[3], "cannot open for writing");

    dpc_workspace *ws = dpc_workspace_new();
    if (!ws) die("dpc_workspace_new", "out of memory");
    for (int call = 1; call <= n_calls; call++) {
        memset(rec, 0, sizeof(double) * nrec); /* outputs are added to */
        dpc_result res;
        if (dpc_compute(model, ws, &frame, n_threads, &out, &res, &err) != DPC_OK) {
            fprintf(stderr, "runtime_frame: dpc_compute (call %d): %s\n", call, err.message);
            return 1;
        }
        rec[0] = res.energy;
        memcpy(rec + 1, res.virial, sizeof res.virial);
        if (fwrite(rec, sizeof(double), nrec, fo) != nrec) die(argv[3], "cannot write");
        printf("call %d workspace_bytes %llu beyond_fine %lld beyond_table %lld overflow %lld\n", call,
               (unsigned long long)dpc_workspace_bytes(ws), (long long)res.beyond_fine, (long long)res.beyond_table,
               (long long)res.overflow);
    }
    if (fclose(fo) != 0) die(argv[3], "cannot write");

    dpc_workspace_free(ws);
    dpc_model_close(model);
    free(model_data);
    free(frame_data);
    free(x);
    free(type);
    free(tag);
    free(cell);
    free(lattice);
    free(image_owner);
    free(image_lattice);
    free(offsets);
    free(index);
    free(numneigh);
    free(firstneigh);
    free(rec);
    return 0;
}
