r"""Activation functions of DeePMD-kit networks, with first and second derivatives.

Every function takes the pre-activation :math:`z` (and ``order``) and returns
:math:`(\varphi(z), \varphi'(z), \varphi''(z))` up to that derivative order.  The second derivative is what
the quintic table construction needs; the evaluator only uses the first.

===========  ==========================================  ===========================================
name         :math:`\varphi(z)`                          note
===========  ==========================================  ===========================================
tanh         :math:`\tanh z`
gelu         :math:`\tfrac12 z (1+\tanh u)`,             tanh approximation, as in every DeePMD-kit
             :math:`u = c(z + a z^3)`                    backend (``gelu`` and ``gelu_tf``);
                                                         :math:`c=\sqrt{2/\pi}`, :math:`a=0.044715`
relu         :math:`\max(z, 0)`                          :math:`\varphi'(0) = 0`
relu6        :math:`\min(\max(z, 0), 6)`                 :math:`\varphi' = 1` on :math:`0<z<6`
softplus     :math:`\ln(1 + e^z)`                        evaluated stably as ``logaddexp(0, z)``
sigmoid      :math:`\sigma(z) = 1/(1+e^{-z})`
silu         :math:`z\,\sigma(z)`
linear       :math:`z`                                   also ``none`` (output layers)
===========  ==========================================  ===========================================
"""

import numpy as np

from .errors import UnsupportedModelError

GELU_C = np.sqrt(2.0 / np.pi)
GELU_A = 0.044715


def _sigmoid(z):
    # Two-branch form: exp never overflows for large |z|.
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def tanh(z, order=2):
    y = np.tanh(z)
    d1 = 1.0 - y * y
    return (y, d1, -2.0 * y * d1)[: order + 1]


def gelu(z, order=2):
    z2 = z * z
    u = GELU_C * (z + GELU_A * z2 * z)
    du = GELU_C * (1.0 + 3.0 * GELU_A * z2)
    t = np.tanh(u)
    sech2 = 1.0 - t * t
    y = 0.5 * z * (1.0 + t)
    d1 = 0.5 * (1.0 + t) + 0.5 * z * sech2 * du
    if order < 2:
        return (y, d1)[: order + 1]
    # d/dz of [0.5(1+t) + 0.5 z sech2 du], with d(sech2)/dz = -2 t sech2 du and d(du)/dz = 6 c a z
    d2 = sech2 * du - z * t * sech2 * du * du + 3.0 * GELU_C * GELU_A * z2 * sech2
    return y, d1, d2


def relu(z, order=2):
    on = (z > 0).astype(z.dtype)
    return (z * on, on, np.zeros_like(z))[: order + 1]


def relu6(z, order=2):
    on = ((z > 0) & (z < 6)).astype(z.dtype)
    return (np.clip(z, 0.0, 6.0), on, np.zeros_like(z))[: order + 1]


def softplus(z, order=2):
    y = np.logaddexp(0.0, z)
    if order == 0:
        return (y,)
    s = _sigmoid(z)
    return (y, s, s * (1.0 - s))[: order + 1]


def sigmoid(z, order=2):
    s = _sigmoid(z)
    d1 = s * (1.0 - s)
    return (s, d1, d1 * (1.0 - 2.0 * s) if order > 1 else None)[: order + 1]


def silu(z, order=2):
    s = _sigmoid(z)
    ds = s * (1.0 - s)
    d1 = s + z * ds
    return (z * s, d1, 2.0 * ds + z * ds * (1.0 - 2.0 * s) if order > 1 else None)[: order + 1]


def linear(z, order=2):
    return (z.copy(), np.ones_like(z), np.zeros_like(z))[: order + 1]


ACTIVATIONS = {
    "tanh": tanh,
    "gelu": gelu,
    "relu": relu,
    "relu6": relu6,
    "softplus": softplus,
    "sigmoid": sigmoid,
    "silu": silu,
    "linear": linear,
}

# Spellings found in DeePMD-kit model files -> our canonical name.
ALIASES = {"gelu_tf": "gelu", "none": "linear", "": "linear", None: "linear"}


def canonical_name(name):
    """Map a DeePMD-kit activation spelling to our canonical name, or None if unknown."""
    key = name.lower() if isinstance(name, str) else name
    key = ALIASES.get(key, key)
    return key if key in ACTIVATIONS else None


def allowed_names():
    """Every activation spelling a model may use, canonical names and DeePMD-kit's aliases, sorted."""
    return sorted(set(ACTIVATIONS) | {k for k in ALIASES if isinstance(k, str) and k})


def check_activation(name, where=""):
    """The canonical name of activation ``name``, or an error naming it and the allowed ones.

    Parameters
    ----------
    name : str or None
        As found in a model file (DeePMD-kit spelling, any case; None or "" mean linear).
    where : str
        What to name in the message: file and key (``"model.dp: 'model.fitting.activation_function'"``).

    Raises
    ------
    UnsupportedModelError
        Not an activation dpcompress evaluates.
    """
    canon = canonical_name(name) if isinstance(name, (str, type(None))) else None
    if canon is None:
        prefix = f"{where} = " if where else "activation "
        raise UnsupportedModelError(f"{prefix}{name!r} is not a supported activation function "
                                    f"(supported: {', '.join(allowed_names())})")
    return canon


def activate(name, z, order=2):
    """Evaluate activation ``name`` (canonical) at ``z``.

    Returns ``(phi, phi', phi'')`` truncated to ``order + 1`` entries.
    """
    return ACTIVATIONS[name](np.asarray(z, dtype=np.float64), order)
