/* One row of the se_e2_a environment matrix and its derivative; the smooth switch alone;
 * the radial component alone (se_e2_r).
 *
 * Shared by the C and CUDA kernels; numpy twin: dpcompress/reference/env_mat.py.
 *
 *   r = |r_ij|, rho = r + protection, u = (r - rs)/(rc - rs) clipped to [0, 1]
 *   s(r)  = u^3 (-6u^2 + 15u - 10) + 1,   s'(r) = -30 u^2 (u - 1)^2 / (rc - rs)
 *   R     = s * (1/rho, x/rho^2, y/rho^2, z/rho^2)
 *   dR[k][b] = dR_k / d(r_ij)_b:
 *     k = 0:  (s'/rho - s/rho^2) rhat_b
 *     k = a:  s' rhat_b x_a / rho^2 + s (delta_ab / rho^2 - 2 x_a rhat_b / rho^3)
 */
#ifndef DPC_ENV_MAT_H
#define DPC_ENV_MAT_H

#if !defined(__CUDACC_RTC__)
#include <math.h> /* NVRTC has no system headers; sqrt is a built-in there */
#endif
#include "dpc_table.h" /* DPC_HD */

/* s(r) and s'(r) (twin: reference/env_mat.py::smooth_switch). */
DPC_HD void dpc_switch(double r, double rcut, double rcut_smth, double *s, double *ds)
{
    const double u = (r - rcut_smth) / (rcut - rcut_smth);
    if (u <= 0.0) {
        *s = 1.0;
        *ds = 0.0;
    } else if (u >= 1.0) {
        *s = 0.0;
        *ds = 0.0;
    } else {
        *s = u * u * u * (-6.0 * u * u + 15.0 * u - 10.0) + 1.0;
        *ds = -30.0 * u * u * (u - 1.0) * (u - 1.0) / (rcut - rcut_smth);
    }
}

DPC_HD void dpc_env_mat_row(const double *vec, double rcut, double rcut_smth, double protection,
                            double *R, double *dR /* [4][3], may be NULL */)
{
    const double x = vec[0], y = vec[1], z = vec[2];
    const double r = sqrt(x * x + y * y + z * z);
    double s, ds;
    dpc_switch(r, rcut, rcut_smth, &s, &ds);
    const double rho = r + protection, inv = 1.0 / rho, inv2 = inv * inv;
    R[0] = s * inv;
    R[1] = s * x * inv2;
    R[2] = s * y * inv2;
    R[3] = s * z * inv2;
    if (dR) {
        const double rinv = 1.0 / r;
        const double rh[3] = {x * rinv, y * rinv, z * rinv};
        const double xs[3] = {x, y, z};
        const double c0 = ds * inv - s * inv2;
        const double c1 = ds * inv2, c2 = s * inv2, c3 = 2.0 * s * inv2 * inv;
        for (int b = 0; b < 3; b++) dR[b] = c0 * rh[b];
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++)
                dR[(a + 1) * 3 + b] = (c1 - c3) * xs[a] * rh[b] + (a == b ? c2 : 0.0);
    }
}

/* R_0 = s/rho only, and dR_0/dr_ij = (s'/rho - s/rho^2) rhat (dR0 [3], may be NULL): se_e2_r's row. */
DPC_HD void dpc_env_mat_radial(const double *vec, double rcut, double rcut_smth, double protection, double *R0,
                               double *dR0)
{
    const double x = vec[0], y = vec[1], z = vec[2];
    const double r = sqrt(x * x + y * y + z * z);
    double s, ds;
    dpc_switch(r, rcut, rcut_smth, &s, &ds);
    const double inv = 1.0 / (r + protection);
    *R0 = s * inv;
    if (dR0) {
        const double c0 = (ds * inv - s * inv * inv) / r;
        dR0[0] = c0 * x;
        dR0[1] = c0 * y;
        dR0[2] = c0 * z;
    }
}

#endif
