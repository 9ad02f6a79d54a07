/* DeePMD-kit's DP + ZBL linear model in the runtime: the pair table and the ZBL switching
 * (docs/dp-zbl.md; numpy twin dpcompress/reference/pair_table.py, same function names). */
#ifndef DPC_PAIR_TABLE_H
#define DPC_PAIR_TABLE_H

#include <stdint.h>

#include "dpc_common.h"
#include "dpc_model_file.h"

typedef struct {
    int present;             /* 0: a plain DP model */
    int64_t ntypes, nspline;
    double rmin, hh, rcut, sw_rmin, sw_rmax, alpha;
    const double *coef;      /* zbl.coef [ntypes][ntypes][nspline][4]: (a3, a2, a1, a0) */
    const double *tab_bias;  /* zbl.bias row 0 [ntypes]: the pair-table model's out_bias */
    const double *bias;      /* zbl.bias row 1 [ntypes]: the linear model's out_bias */
} dpc_zbl;

/* Read and check the zbl.* arrays when the file has them (z->present = 0 otherwise).  The pair
 * table uses the DP part 0's rows, so its rcut and sel must be that part's (mixed types) and the
 * model must exclude no pairs. */
dpc_status dpc_zbl_read(const dpc_file *file, int64_t ntypes, double rcut0, int64_t nnei0, int mixed0,
                        int pairs_excluded, dpc_zbl *z, dpc_error *err);

/* 1 when name is one of the zbl.* arrays. */
int dpc_zbl_expected_array(const char *name);

/* One center of type ti from its row (nnei slots; real where index >= 0): b = 1/2 sum_j E(r_ij)
 * + tab_bias[ti], the weight w, and per slot de = d(1/2 E)/dr and dw = dw/dr (0 in padding).
 * Returns 0, or 1 when a real pair is closer than the table's first point (DeePMD-kit refuses it). */
int dpc_zbl_center(const dpc_zbl *z, int64_t ti, const int32_t *type, int64_t nnei, const int64_t *index,
                   const double *vec, double *b, double *w, double *de, double *dw);

/* pair_grad[s] += (w de[s] + bma dw[s]) r_s / |r_s| for the real slots (bma = b - a). */
void dpc_zbl_pair_grad(int64_t nnei, const int64_t *index, const double *vec, double w, double bma,
                       const double *de, const double *dw, double *pair_grad);

#endif
