/* Activation functions of DeePMD-kit networks with their first and second derivatives.
 *
 * C twin of dpcompress/models/activations.py: same formulas, same branches, so
 * that a table built here agrees with the numpy network to round-off.  Every
 * function takes the pre-activation z and writes phi(z), phi'(z), phi''(z);
 * callers that need only phi and phi' pass a dummy for phi'' and let the
 * inliner drop the dead arithmetic.
 *
 * The codes are DeePMD-kit's "functype" numbers (deepmd/utils/tabulate_math.py),
 * so a code read from a DeePMD table can be compared directly.  The Python side
 * builds its name -> code dict from these constants (dpcompress/_ext/table_build.pyx,
 * ACTIVATION_CODES), never from a copy of the numbers.
 *
 * Plain C99, header-only, usable from CUDA (DPC_ACT_HD).
 */
#ifndef DPC_ACTIVATIONS_H
#define DPC_ACTIVATIONS_H

#include <math.h>

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define DPC_ACT_HD __host__ __device__ __forceinline__
#else
#define DPC_ACT_HD static inline
#endif

enum {
    DPC_ACT_LINEAR = 0,
    DPC_ACT_TANH = 1,
    DPC_ACT_GELU = 2, /* tanh approximation, as in every DeePMD-kit backend */
    DPC_ACT_RELU = 3,
    DPC_ACT_RELU6 = 4,
    DPC_ACT_SOFTPLUS = 5,
    DPC_ACT_SIGMOID = 6,
    DPC_ACT_SILU = 7,
    DPC_ACT_COUNT = 8
};

/* sqrt(2/pi) rounded to double: the same bits as numpy's np.sqrt(2/np.pi).  A
 * float32 constant here is what makes DeePMD-kit's PT GELU tables off by 3e-8. */
#define DPC_GELU_C 0.7978845608028654
#define DPC_GELU_A 0.044715

DPC_ACT_HD int dpc_activation_valid(int code) { return code >= 0 && code < DPC_ACT_COUNT; }

/* sigma(z) without overflow: exp is only ever taken of a non-positive number. */
DPC_ACT_HD double dpc_sigmoid(double z)
{
    if (z >= 0.0) return 1.0 / (1.0 + exp(-z));
    {
        const double ez = exp(z);
        return ez / (1.0 + ez);
    }
}

DPC_ACT_HD void dpc_act_linear(double z, double *y, double *d1, double *d2)
{
    *y = z;
    *d1 = 1.0;
    *d2 = 0.0;
}

DPC_ACT_HD void dpc_act_tanh(double z, double *y, double *d1, double *d2)
{
    const double t = tanh(z), s = 1.0 - t * t;
    *y = t;
    *d1 = s;
    *d2 = -2.0 * t * s;
}

/* phi = z(1 + tanh u)/2, u = c(z + a z^3).  phi'' differentiates
 * (1+tau)/2 + z sech^2(u) u'/2 using d(sech^2 u)/dz = -2 tau sech^2 u u' and u'' = 6 c a z. */
DPC_ACT_HD void dpc_act_gelu(double z, double *y, double *d1, double *d2)
{
    const double z2 = z * z;
    const double u = DPC_GELU_C * (z + DPC_GELU_A * z2 * z);
    const double du = DPC_GELU_C * (1.0 + 3.0 * DPC_GELU_A * z2);
    const double t = tanh(u), sech2 = 1.0 - t * t;
    *y = 0.5 * z * (1.0 + t);
    *d1 = 0.5 * (1.0 + t) + 0.5 * z * sech2 * du;
    *d2 = sech2 * du - z * t * sech2 * du * du + 3.0 * DPC_GELU_C * DPC_GELU_A * z2 * sech2;
}

/* phi'(0) = 0 and phi'' = 0 everywhere: the kink is invisible to a Hermite table. */
DPC_ACT_HD void dpc_act_relu(double z, double *y, double *d1, double *d2)
{
    const int on = z > 0.0;
    *y = on ? z : 0.0;
    *d1 = on ? 1.0 : 0.0;
    *d2 = 0.0;
}

DPC_ACT_HD void dpc_act_relu6(double z, double *y, double *d1, double *d2)
{
    *y = z > 0.0 ? (z < 6.0 ? z : 6.0) : 0.0;
    *d1 = (z > 0.0 && z < 6.0) ? 1.0 : 0.0;
    *d2 = 0.0;
}

/* ln(1 + e^z) = max(z, 0) + log1p(e^-|z|): finite for every finite z. */
DPC_ACT_HD void dpc_act_softplus(double z, double *y, double *d1, double *d2)
{
    const double s = dpc_sigmoid(z);
    *y = (z > 0.0 ? z : 0.0) + log1p(exp(-fabs(z)));
    *d1 = s;
    *d2 = s * (1.0 - s);
}

DPC_ACT_HD void dpc_act_sigmoid(double z, double *y, double *d1, double *d2)
{
    const double s = dpc_sigmoid(z), ds = s * (1.0 - s);
    *y = s;
    *d1 = ds;
    *d2 = ds * (1.0 - 2.0 * s);
}

DPC_ACT_HD void dpc_act_silu(double z, double *y, double *d1, double *d2)
{
    const double s = dpc_sigmoid(z), ds = s * (1.0 - s);
    *y = z * s;
    *d1 = s + z * ds;
    *d2 = 2.0 * ds + z * ds * (1.0 - 2.0 * s);
}

/* Dispatch on a code; an invalid code gives NaN so that it cannot pass silently
 * (kernels check codes with dpc_activation_valid before their loops). */
DPC_ACT_HD void dpc_activation(int code, double z, double *y, double *d1, double *d2)
{
    switch (code) {
    case DPC_ACT_LINEAR: dpc_act_linear(z, y, d1, d2); break;
    case DPC_ACT_TANH: dpc_act_tanh(z, y, d1, d2); break;
    case DPC_ACT_GELU: dpc_act_gelu(z, y, d1, d2); break;
    case DPC_ACT_RELU: dpc_act_relu(z, y, d1, d2); break;
    case DPC_ACT_RELU6: dpc_act_relu6(z, y, d1, d2); break;
    case DPC_ACT_SOFTPLUS: dpc_act_softplus(z, y, d1, d2); break;
    case DPC_ACT_SIGMOID: dpc_act_sigmoid(z, y, d1, d2); break;
    case DPC_ACT_SILU: dpc_act_silu(z, y, d1, d2); break;
    default: *y = *d1 = *d2 = NAN; break;
    }
}

#endif
