r"""Fitting nets on the device: per-atom energies and :math:`\partial e_i/\partial D_i` (cuBLAS via CuPy).

Same mathematics as :func:`dpcompress.evaluators.exact.fitting.fitting_forward_backward`
(its CPU twin) and the same activation formulas as
:mod:`dpcompress.core.activations`, written against an array module ``xp``
(cupy on a GPU, numpy under the emulator).  No boolean-mask indexing and no
data-dependent shapes: nothing here waits for the device.
"""

import numpy as np

GELU_C = float(np.sqrt(2.0 / np.pi))
GELU_A = 0.044715


def _sigmoid(xp, z):
    e = xp.exp(-xp.abs(z))  # never overflows; same two branches as models/activations.py
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def activate(xp, name, z):
    """``(phi(z), phi'(z))`` of a canonical activation name."""
    if name == "tanh":
        y = xp.tanh(z)
        return y, 1.0 - y * y
    if name == "gelu":
        z2 = z * z
        u = GELU_C * (z + GELU_A * z2 * z)
        du = GELU_C * (1.0 + 3.0 * GELU_A * z2)
        t = xp.tanh(u)
        sech2 = 1.0 - t * t
        return 0.5 * z * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * z * sech2 * du
    if name == "relu":
        on = (z > 0).astype(z.dtype)
        return z * on, on
    if name == "relu6":
        on = ((z > 0) & (z < 6)).astype(z.dtype)
        return xp.clip(z, 0.0, 6.0), on
    if name == "softplus":
        return xp.logaddexp(0.0, z), _sigmoid(xp, z)
    if name == "sigmoid":
        s = _sigmoid(xp, z)
        return s, s * (1.0 - s)
    if name == "silu":
        s = _sigmoid(xp, z)
        return z * s, s + z * (s * (1.0 - s))
    if name == "linear":
        return z.copy(), xp.ones_like(z)
    raise ValueError(f"unknown activation {name!r}")


class DeviceLayer:
    def __init__(self, be, layer):
        self.w = be.asarray(layer.w, np.float64)
        self.wT = be.asarray(np.ascontiguousarray(layer.w.T), np.float64)
        self.b = None if layer.b is None else be.asarray(layer.b, np.float64)
        self.idt = None if layer.idt is None else be.asarray(layer.idt, np.float64)
        self.activation = layer.activation
        self.residual = layer.residual
        self.n_in = layer.n_in


class DeviceNetwork:
    """A fitting :class:`~dpcompress.core.networks.Network` with its weights on the device (uploaded once)."""

    def __init__(self, be, net):
        self.xp = be.xp
        self.layers = [DeviceLayer(be, layer) for layer in net.layers]

    def forward_backward(self, x):
        """``(y[:, 0], dy/dx)`` for the rows of ``x`` (n, n_in)."""
        xp = self.xp
        saved = []
        for layer in self.layers:
            z = xp.matmul(x, layer.w)
            if layer.b is not None:
                z += layer.b
            phi, dphi = activate(xp, layer.activation, z)
            if layer.idt is not None:
                phi *= layer.idt
                dphi *= layer.idt
            if layer.residual == "identity":
                phi += x
            elif layer.residual == "double":
                phi[:, : layer.n_in] += x
                phi[:, layer.n_in :] += x
            saved.append(dphi)
            x = phi
        y = x[:, 0].copy()
        grad = xp.ones((x.shape[0], 1), dtype=x.dtype)
        for layer, dphi in zip(reversed(self.layers), reversed(saved)):
            dphi *= grad
            dx = xp.matmul(dphi, layer.wT)
            if layer.residual == "identity":
                dx += grad
            elif layer.residual == "double":
                dx += grad[:, : layer.n_in]
                dx += grad[:, layer.n_in :]
            grad = dx
        return y, grad
