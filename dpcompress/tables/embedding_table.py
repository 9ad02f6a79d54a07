r"""Embedding-net tables: piecewise quintic (or cubic) Hermite polynomials on a two-stride grid.

An embedding net :math:`g: \mathbb R \to \mathbb R^M` is replaced by one
polynomial per interval and channel.  The grid, the layout and every formula
are those of ``src_c/dpc_table.h``; this module chooses the grid from the
user's range and strides, packs the net for the C builder
(``src_c/dpc_table_build.c``) and measures the result against the numpy net.

Grid from integer counts
------------------------
DeePMD-kit builds the nodes with a float ``arange`` and counts intervals with
``int()``; the two disagree whenever the stride does not divide the range in
floating point, shifting the whole coarse region by one interval.  Here every
position derives from two integers:

.. math::

    n_\text{fine} = \Big\lceil \frac{U - L}{s_0} - 10^{-9} \Big\rceil,\qquad
    U^* = L + n_\text{fine} s_0,\qquad
    n_\text{coarse} = \Big\lceil \frac{eU^* - U^*}{s_1} - 10^{-9} \Big\rceil
    \ (0 \text{ if } eU^* \le U^*),

so the fine region may end slightly above the requested :math:`U` (never
below), and for the usual integer :math:`L, U, e` with :math:`s_0 = 0.01`,
:math:`s_1 = 0.1` the counts equal DeePMD-kit's.
"""

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from .._ext import table_build as _tb
from .._ext.table_build import ACTIVATION_CODES, RESIDUAL_CODES
from .._ext.threads import effective_n_threads
from ..core.errors import InputError
from ..core.table_math import table_eval

#: Largest table (``nspline * (order+1) * M`` float64 values) the builder accepts: 16 GiB.
MAX_TABLE_ELEMENTS = 2**31

# Slack under ceil() so that a ratio that is an integer up to rounding
# (15/0.01 = 1500.0000000000002) does not gain a spurious interval.
_COUNT_SLACK = 1e-9


def grid_nodes(lower, stride0, stride1, n_fine, n_coarse, n_below=0):
    """All ``n_below + n_fine + n_coarse + 1`` node positions, each computed from its integer index.

    Coarse-below node ``l`` is ``lower - (n_below - l)*stride1``, fine node ``l``
    is ``lower + l*stride0``, coarse node ``j`` is ``upper + j*stride1`` with
    ``upper = lower + n_fine*stride0`` — one multiplication from an exact
    integer, so no error accumulates along the grid.
    """
    upper = lower + n_fine * stride0
    below = lower - np.arange(n_below, 0, -1) * stride1
    fine = lower + np.arange(n_fine + 1) * stride0
    coarse = upper + np.arange(1, n_coarse + 1) * stride1
    return np.concatenate([below, fine, coarse])


@dataclass(frozen=True)
class EmbeddingTable:
    r"""The tabulated channels :math:`g_m(x)` of one embedding net (layout: ``src_c/dpc_table.h``).

    Attributes
    ----------
    lower : float
        Start of the fine region :math:`L`.
    stride0, stride1 : float
        Fine and coarse interval widths.
    n_fine, n_coarse : int
        Interval counts; ``upper = lower + n_fine*stride0``, ``xmax = upper + n_coarse*stride1``.
    coef : ndarray, shape (n_below + n_fine + n_coarse, order + 1, M)
        ``coef[l, k, m]`` = coefficient of :math:`t^k`, :math:`t = x - x_l`, channel m.
    max_error : float
        Estimated max |table - net| over the table (value), from midpoint checks.
    n_below : int
        Coarse intervals below ``lower`` (the symmetric se_e3 grid); first node
        ``xmin = lower - n_below*stride1``.
    """

    lower: float
    stride0: float
    stride1: float
    n_fine: int
    n_coarse: int
    coef: np.ndarray
    max_error: float = float("nan")
    n_below: int = 0

    @property
    def xmin(self):
        return self.lower - self.n_below * self.stride1

    @property
    def upper(self):
        return self.lower + self.n_fine * self.stride0

    @property
    def xmax(self):
        return self.upper + self.n_coarse * self.stride1

    @property
    def order(self):
        return self.coef.shape[1] - 1

    @property
    def n_channels(self):
        return self.coef.shape[2]

    @property
    def nspline(self):
        return self.n_below + self.n_fine + self.n_coarse

    def nodes(self):
        """All ``nspline + 1`` node positions, from the integer counts."""
        return grid_nodes(self.lower, self.stride0, self.stride1, self.n_fine, self.n_coarse, self.n_below)

    def widths(self):
        """Width of every interval: ``stride0`` for the fine ones, ``stride1`` for the coarse ones."""
        l = np.arange(self.nspline)
        return np.where((l >= self.n_below) & (l < self.n_below + self.n_fine), self.stride0, self.stride1)

    def midpoints(self):
        """Centre of every interval (where the Hermite error is largest)."""
        return self.nodes()[:-1] + 0.5 * self.widths()

    def __call__(self, x):
        """Values and first derivatives ``(g, g')``, each (n, M), with C¹ linear extrapolation outside."""
        return table_eval(self, np.asarray(x, dtype=np.float64).reshape(-1))


class PackedNetwork(NamedTuple):
    """A :class:`~dpcompress.core.networks.Network` as the flat buffers of ``dpc_dense_net``.

    Layer k maps ``width[k] -> width[k+1]``; its weights (row-major) start at
    ``weights[w_offset[k]]``, its bias at ``bias[b_offset[k]]`` and its timestep at
    ``idt[idt_offset[k]]``, offset -1 meaning absent.  ``activation`` and
    ``residual`` hold the codes of ``src_c/dpc_activations.h`` / ``dpc_table_build.h``.
    """

    width: np.ndarray
    activation: np.ndarray
    residual: np.ndarray
    weights: np.ndarray
    w_offset: np.ndarray
    bias: np.ndarray
    b_offset: np.ndarray
    idt: np.ndarray
    idt_offset: np.ndarray


def pack_network(net):
    """Flatten a :class:`~dpcompress.core.networks.Network` for the C kernels.

    Raises
    ------
    InputError
        Unknown activation, or layer widths that do not chain.
    """
    layers = list(net.layers)
    if not layers:
        raise InputError("the network has no layers")
    width = [layers[0].n_in]
    acts, res, ws, bs, ds = [], [], [], [], []
    w_off, b_off, d_off = [], [], []
    nw = 0
    for k, layer in enumerate(layers):
        if layer.n_in != width[-1]:
            raise InputError(f"layer {k} takes {layer.n_in} inputs but layer {k - 1} gives {width[-1]}")
        if layer.activation not in ACTIVATION_CODES:
            raise InputError(f"layer {k}: activation {layer.activation!r} cannot be tabulated (known: {sorted(ACTIVATION_CODES)})")
        n_out = layer.n_out
        width.append(n_out)
        acts.append(ACTIVATION_CODES[layer.activation])
        res.append(RESIDUAL_CODES[layer.residual])
        ws.append(np.ascontiguousarray(layer.w, dtype=np.float64).ravel())
        w_off.append(nw)
        nw += ws[-1].size
        for arr, parts, offs, name in ((layer.b, bs, b_off, "b"), (layer.idt, ds, d_off, "idt")):
            if arr is None:
                offs.append(-1)
                continue
            arr = np.asarray(arr, dtype=np.float64).reshape(-1)
            if arr.size != n_out:
                raise InputError(f"layer {k}: {name} has {arr.size} entries, expected {n_out}")
            offs.append(sum(p.size for p in parts))
            parts.append(arr)

    def cat(parts):
        return np.concatenate(parts) if parts else np.zeros(0)

    return PackedNetwork(
        width=np.array(width, dtype=np.int64),
        activation=np.array(acts, dtype=np.intc),
        residual=np.array(res, dtype=np.intc),
        weights=cat(ws),
        w_offset=np.array(w_off, dtype=np.int64),
        bias=cat(bs),
        b_offset=np.array(b_off, dtype=np.int64),
        idt=cat(ds),
        idt_offset=np.array(d_off, dtype=np.int64),
    )


def _finite_number(name, value):
    if isinstance(value, bool):
        raise InputError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise InputError(f"{name} must be finite, got {value!r}")
    return v


def grid_counts(lower, upper, stride0, stride1, extrapolate):
    r"""Fine and coarse interval counts of the grid covering ``[lower, extrapolate*upper]``.

    See the module docstring for the rule.  Arguments are assumed valid.

    Returns
    -------
    n_fine, n_coarse : int
    """
    n_fine = max(1, math.ceil((upper - lower) / stride0 - _COUNT_SLACK))
    upper_eff = lower + n_fine * stride0
    top = extrapolate * upper_eff
    n_coarse = 0 if top <= upper_eff else max(0, math.ceil((top - upper_eff) / stride1 - _COUNT_SLACK))
    return n_fine, n_coarse


def build_embedding_table(net, lower, upper, stride0, stride1, extrapolate, order=5, n_threads=None, extrapolate_below=False,
                          stride_rule=None):
    r"""Tabulate a scalar-input embedding net as piecewise Hermite polynomials.

    The fine region :math:`[L, U^*]` has intervals of width :math:`s_0`, the
    coarse region :math:`[U^*, X]` (:math:`X \approx e U^*`) intervals of width
    :math:`s_1` (grid rule in the module docstring).  On interval :math:`l` of
    width :math:`w` each channel is the unique polynomial matching
    :math:`g, g', g''` (``order=5``, quintic) or :math:`g, g'` (``order=3``,
    cubic) at both end nodes, with node derivatives from forward-mode
    differentiation of the net (``resnet_dt`` timesteps and residuals included).
    Interpolation error:

    .. math::

        |g - P| \le \frac{w^6}{46080}\max|g^{(6)}| \ (\text{quintic}),\qquad
        |g - P| \le \frac{w^4}{384}\max|g^{(4)}| \ (\text{cubic}).

    Parameters
    ----------
    net : Network
        Embedding net with ``in_dim == 1``.
    lower, upper : float
        Fine region requested (``upper > lower``); see the descriptor units' ``table_bounds``.
    stride0, stride1 : float
        Fine and coarse widths, > 0 (DeePMD-kit: 0.01 and 0.1).
    extrapolate : float
        >= 1; the coarse region reaches ``extrapolate * upper`` (DeePMD-kit: 5).
    order : {5, 3}
    n_threads : int or None
        OpenMP threads (:func:`dpcompress._ext.threads.effective_n_threads`); the
        table does not depend on it, bit for bit.
    extrapolate_below : bool
        Also a coarse segment below the fine region, down to ``extrapolate * lower``
        (``lower < 0``): the symmetric three-segment grid of se_e3.
    stride_rule : callable or None
        ``stride_rule(build, net, stride0, stride1) -> EmbeddingTable`` chooses this table's own
        strides (``dpcompress.compression.table_error``); ``build(s0, s1)`` builds the table with
        every other argument as given here.  None: the given strides.

    Returns
    -------
    EmbeddingTable
        With ``max_error`` = the value error of :func:`estimate_table_error`.

    Raises
    ------
    InputError
        Invalid argument, or a table above :data:`MAX_TABLE_ELEMENTS` values.
    FloatingPointError
        The net gives a non-finite value or derivative at a node.
    """
    lower = _finite_number("lower", lower)
    upper = _finite_number("upper", upper)
    stride0 = _finite_number("stride0", stride0)
    stride1 = _finite_number("stride1", stride1)
    extrapolate = _finite_number("extrapolate", extrapolate)
    if not upper > lower:
        raise InputError(f"upper ({upper}) must be greater than lower ({lower})")
    if stride0 <= 0 or stride1 <= 0:
        raise InputError(f"strides must be positive, got stride0={stride0}, stride1={stride1}")
    if extrapolate < 1:
        raise InputError(f"extrapolate must be >= 1, got {extrapolate}")
    if isinstance(order, bool) or order not in (3, 5):
        raise InputError(f"order must be 3 (cubic) or 5 (quintic), got {order!r}")
    if not hasattr(net, "layers") or not net.layers:
        raise InputError("net must be a Network with at least one layer")
    if net.in_dim != 1:
        raise InputError(f"an embedding table needs a scalar-input net, this one takes {net.in_dim} inputs")
    if stride_rule is not None:
        def build(s0, s1):
            return build_embedding_table(net, lower, upper, s0, s1, extrapolate, order, n_threads, extrapolate_below)

        return stride_rule(build, net, stride0, stride1)
    n_threads = effective_n_threads(n_threads)
    M = net.out_dim
    # Size check in floating point first: a stride of 1e-300 must not build a 1e300-long int grid.
    approx = ((upper - lower) / stride0 + max(0.0, (extrapolate - 1) * abs(upper)) / stride1 + 2) * (order + 1) * M
    if approx > 2 * MAX_TABLE_ELEMENTS:
        raise InputError(
            f"the table would hold about {approx:.3g} values (> {MAX_TABLE_ELEMENTS}); "
            "use larger strides, a smaller range or a smaller extrapolate"
        )
    n_fine, n_coarse = grid_counts(lower, upper, stride0, stride1, extrapolate)
    n_below = 0
    if extrapolate_below and lower < 0:
        n_below = max(0, math.ceil((lower - extrapolate * lower) / stride1 - _COUNT_SLACK))
    size = (n_below + n_fine + n_coarse) * (order + 1) * M
    if size > MAX_TABLE_ELEMENTS:
        raise InputError(
            f"the table would hold {size} values ({size * 8 / 2**30:.1f} GiB, limit {MAX_TABLE_ELEMENTS}): "
            f"{n_fine} fine + {n_coarse} coarse intervals x {order + 1} coefficients x {M} channels; "
            "use larger strides, a smaller range or a smaller extrapolate"
        )
    x = grid_nodes(lower, stride0, stride1, n_fine, n_coarse, n_below)
    coef = _tb.build_table(pack_network(net), x, n_fine, n_coarse, stride0, stride1, order, n_threads, n_below=n_below)
    table = EmbeddingTable(
        lower=lower, stride0=stride0, stride1=stride1, n_fine=n_fine, n_coarse=n_coarse, coef=coef, n_below=n_below
    )
    value_err, _ = estimate_table_error(table, net, n_threads)
    return replace(table, max_error=value_err)


def estimate_table_error(table, net, n_threads=1):
    r"""Max |table - net| of the values and of the first derivatives, at the points where each peaks.

    On an interval of width :math:`w`, with :math:`u = t/w`, the Hermite
    remainder is :math:`e \propto u^3(u-1)^3` (quintic) or :math:`u^2(u-1)^2`
    (cubic) to leading order.  The value error peaks at the midpoint
    :math:`u = 1/2`, but :math:`e'` *vanishes* there by symmetry; it peaks at
    :math:`u = 1/2 \pm \sqrt{1/20}` (quintic) or :math:`1/2 \pm \sqrt{1/12}`
    (cubic).  So values are compared at the midpoints and derivatives at
    :math:`u = 1/2 - \sqrt{1/20}` (resp. :math:`\sqrt{1/12}`) of every interval —
    sharp estimates of the error over the whole table.  The net is evaluated by
    the compiled forward-mode evaluator (``table_build.embedding_derivatives``,
    held equal to the numpy reference by the tests) — fast enough that the whole
    compression of a water model takes a fraction of a second — and the table
    by the numpy lookup of :mod:`dpcompress.core.table_math`.

    Parameters
    ----------
    table : EmbeddingTable
    net : Network
        The net the table was built from.
    n_threads : int

    Returns
    -------
    value_error, derivative_error : float
    """
    x0, w = table.nodes()[:-1], table.widths()
    u_deriv = 0.5 - math.sqrt(1.0 / 20.0 if table.order == 5 else 1.0 / 12.0)
    x = np.concatenate([x0 + 0.5 * w, x0 + u_deriv * w])
    node = _tb.embedding_derivatives(pack_network(net), x, n_threads)
    g, dg = node[:, 0], node[:, 1]
    v, d = table_eval(table, x)
    n = x0.size
    return float(np.max(np.abs(v[:n] - g[:n]))), float(np.max(np.abs(d[n:] - dg[n:])))
