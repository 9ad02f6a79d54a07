r"""Per-table strides from a table-error budget: each table gets the largest fine and coarse
strides whose sampled error stays within the budget (``compress(..., table_error=eps)``).

Error of one table
------------------
On an interval :math:`[a, b]` of width :math:`h` the quintic Hermite interpolant :math:`P` of
a smooth channel :math:`g` (matching :math:`g, g', g''` at both ends) has the remainder

.. math::

    g(x) - P(x) = \frac{g^{(6)}(\xi)}{720}\,(x-a)^3 (x-b)^3,\qquad
    \max_{[a,b]} |(x-a)^3 (x-b)^3| = (h/2)^6,

so :math:`|g - P| \le h^6 \max|g^{(6)}| / 46080` (value, largest at the midpoint) and, from the
derivative of :math:`u^3 (u-1)^3` (:math:`u = (x-a)/h`), :math:`|g' - P'| \lesssim 7.5\cdot10^{-5}\,
h^5 \max|g^{(6)}|`, largest at :math:`u = 1/2 \pm \sqrt{1/20}` (cubic: :math:`h^4/384`,
:math:`u = 1/2 \pm \sqrt{1/12}`).  Rather than estimate :math:`g^{(6)}`, every candidate table is
built and *checked by sampling against the net* at exactly those points of every interval
(:func:`region_errors`): the table error of an interval is

.. math::

    e_l = w_l \max_m \max\big(|g_m - P_m|(\text{mid}),\ |g'_m - P'_m|(u_\pm)\big),

the larger of the value and first-derivative errors over the channels (both are in the units of
the net's output per unit table input), with the weight :math:`w_l = 1` in the fine region and
:math:`w_l = (|x_l| / R)^2` beyond it (:math:`x_l` the interval's end farthest from 0,
:math:`R = \max(|L|, |U|)` the fine region's reach).  The weight is the growth of the force per
unit table error there: the input is :math:`x = (s - \bar R)/\sigma` with :math:`s \approx 1/r`,
so :math:`|dx/dr| = s^2/\sigma` — a neighbor in the coarse region (closer than the training set's
closest pair) moves the force :math:`(x/U)^2` times more per unit table error than one at the
fine region's end.

Search
------
Per table, the fine stride (error of the fine intervals) and the coarse stride (weighted error of
the coarse intervals, above and — se_e3 — below) are searched together: start at the nominal
strides, step by the :math:`h^5` law (:math:`s \leftarrow 0.98\, s (\varepsilon/e)^{1/5}`, at
most ×4 or ÷4 per step) until each is bracketed between a stride that meets the budget and one
that does not (5 % apart), or meets it within 30 %.  The result is the largest stride seen that
meets the budget, checked once more on the final table.
"""

import math

import numpy as np

from .._ext import table_build as _tb
from .._ext.threads import effective_n_threads
from ..core.errors import InputError
from ..core.table_math import table_eval
from ..tables import pack_network

#: strides of the search stay at least nominal / MIN_FACTOR (memory), and at most a quarter of
#: their region (a wider fine stride would move the fine region's end, and with it the table's)
MIN_FACTOR = 64.0
MAX_SHARE = 0.25
#: builds per table at most
MAX_BUILDS = 16
#: a region is done when its error is in [ACCEPT * budget, budget], or bracketed within BRACKET
ACCEPT = 0.7
BRACKET = 1.05


def region_errors(table, net, n_threads=1):
    """Sampled table error of the fine region and (weighted) of the coarse segments.

    Parameters
    ----------
    table : EmbeddingTable
    net : Network
        The net the table was built from.
    n_threads : int

    Returns
    -------
    fine, coarse : float
        :math:`\\max_l e_l` over the fine intervals and over the coarse ones (0 when there are
        none); see the module docstring.
    """
    x0, w = table.nodes()[:-1], table.widths()
    u = 0.5 - math.sqrt(1.0 / 20.0 if table.order == 5 else 1.0 / 12.0)
    x = np.concatenate([x0 + 0.5 * w, x0 + u * w, x0 + (1.0 - u) * w])
    node = _tb.embedding_derivatives(pack_network(net), x, n_threads)
    v, d = table_eval(table, x)
    n = x0.size
    ev = np.max(np.abs(v[:n] - node[:n, 0]), axis=1)
    ed = np.maximum(np.max(np.abs(d[n:2 * n] - node[n:2 * n, 1]), axis=1),
                    np.max(np.abs(d[2 * n:] - node[2 * n:, 1]), axis=1))
    e = np.maximum(ev, ed)
    l = np.arange(n)
    fine = (l >= table.n_below) & (l < table.n_below + table.n_fine)
    reach = max(abs(table.lower), abs(table.upper), 1e-300)
    far = np.maximum(np.abs(x0), np.abs(x0 + w))
    weight = np.where(fine, 1.0, np.maximum(1.0, (far / reach) ** 2))
    e = e * weight
    return (float(e[fine].max()) if fine.any() else 0.0), (float(e[~fine].max()) if (~fine).any() else 0.0)


class _Bracket:
    """The search of one stride: the largest that met the budget, the smallest that did not."""

    def __init__(self, stride, smin, smax):
        self.s, self.smin, self.smax = stride, smin, smax
        self.good, self.bad = None, None
        self.done = False

    def update(self, err, budget):
        s = self.s
        if err <= budget:
            self.good = s if self.good is None else max(self.good, s)
        else:
            self.bad = s if self.bad is None else min(self.bad, s)
        guess = s * min(4.0, max(0.25, 0.98 * (budget / err) ** 0.2)) if err > 0 else 4.0 * s
        if self.good is not None and self.bad is not None:
            if self.bad / self.good < BRACKET:
                self.done, self.s = True, self.good
                return
            lo, hi = self.good * 1.01, self.bad / 1.01
            self.s = min(hi, max(lo, guess)) if lo < hi else math.sqrt(self.good * self.bad)
        elif self.good is not None:  # every stride so far met the budget: grow
            if err >= ACCEPT * budget or s >= self.smax:
                self.done, self.s = True, self.good
                return
            self.s = min(self.smax, max(guess, 1.05 * s))
        else:  # none met it yet: shrink
            if s <= self.smin:
                self.done = True
                return
            self.s = max(self.smin, min(guess, s / 1.05))


class StrideSearch:
    """``stride_rule`` of :func:`~dpcompress.tables.build_embedding_table`: each table gets its own
    strides, the largest whose sampled table error (module docstring) is at most ``budget``.

    Parameters
    ----------
    budget : float or (float, float)
        Table error :math:`\\varepsilon` (net output per unit input, see :func:`region_errors`), or
        one for the fine region and one for the coarse segments.
    min_factor : float
        Strides stay at least ``nominal / min_factor`` (memory: see ``compress``).
    n_threads : int

    Attributes
    ----------
    records : dict
        ``id(table)`` -> ``dict(fine=, coarse=, history=[[s0, e_fine, s1, e_coarse], ...])``.
    """

    def __init__(self, budget, min_factor=MIN_FACTOR, n_threads=1):
        pair = tuple(budget) if isinstance(budget, (tuple, list)) else (budget, budget)
        if len(pair) != 2 or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) and b > 0
                                     for b in pair):
            raise InputError(f"table error budget must be a number > 0 or a pair of them, got {budget!r}")
        self.budget, self.min_factor = (float(pair[0]), float(pair[1])), float(min_factor)
        self.n_threads = effective_n_threads(n_threads)
        self.records = {}

    def __call__(self, build, net, stride0, stride1):
        eps, eps_c = self.budget
        fine = _Bracket(stride0, stride0 / self.min_factor, math.inf)
        coarse = _Bracket(stride1, stride1 / self.min_factor, math.inf)
        history, seen = [], {}
        for _ in range(MAX_BUILDS):
            key = (fine.s, coarse.s)
            table = build(*key)
            ef, ec = region_errors(table, net, self.n_threads)
            seen[key] = (table, ef, ec)
            history.append([key[0], ef, key[1], ec])
            if len(history) == 1:  # the regions' widths, from the nominal grid
                fine.smax = max(stride0, MAX_SHARE * table.n_fine * table.stride0)
                wide = max(table.n_coarse, table.n_below) * table.stride1
                coarse.smax = max(stride1, MAX_SHARE * wide) if wide > 0 else stride1
            if not fine.done:
                fine.update(ef, eps)
            if not coarse.done:
                coarse.update(ec, eps_c)
            if fine.done and coarse.done:
                break
        if fine.good is None or coarse.good is None:
            which, err = ("fine", min(h[1] for h in history)) if fine.good is None else ("coarse", min(h[3] for h in history))
            raise InputError(
                f"table error budget {eps if which == 'fine' else eps_c:.2e} not reached: the {which} region's sampled error is still {err:.2e} at "
                f"strides {fine.s:.3g}/{coarse.s:.3g} ({self.min_factor:g} times below the nominal ones); round-off "
                "or a kink of the activation (relu, relu6) sets a floor: use a larger tolerance"
            )
        s0, s1 = fine.good, coarse.good
        for _ in range(8):  # the coarse grid starts where the fine one ends: check the pair together
            if (s0, s1) not in seen:
                table = build(s0, s1)
                ef, ec = region_errors(table, net, self.n_threads)
                seen[(s0, s1)] = (table, ef, ec)
                history.append([s0, ef, s1, ec])
            table, ef, ec = seen[(s0, s1)]
            if ef <= eps and ec <= eps_c:
                self.records[id(table)] = dict(fine=ef, coarse=ec, history=history)
                return table
            s0, s1 = (s0 / 1.03 if ef > eps else s0), (s1 / 1.03 if ec > eps_c else s1)
        raise InputError(f"table error budget {eps:.2e} not reached at strides {s0:.3g}/{s1:.3g}")


class FixedStrides(StrideSearch):
    """``stride_rule`` with given strides per table: the ``k``-th table built gets ``strides[k]``.

    The tolerance's growth pass (:mod:`dpcompress.tolerance`) passes one to
    ``compress(..., table_error=FixedStrides(...))``: it tries larger strides table by table, so
    the tables it does not change come from ``cache`` (shared between its compressions, keyed by
    the table's position, net and strides) instead of being built again.

    Parameters
    ----------
    budget : (float, float)
        The budget the strides were first searched with (provenance: ``table_budget``).
    strides : list of (float, float)
        Fine and coarse stride per table, in the order the descriptor builds them.
    histories : list of list
        Per table, the search record so far (``[[s0, e_fine, s1, e_coarse], ...]``); the sampled
        error of the table built here is appended to a copy.
    cache : dict
    n_threads : int
    """

    def __init__(self, budget, strides, histories, cache, n_threads=1):
        super().__init__(budget, MIN_FACTOR, n_threads)
        self.strides, self.histories, self.cache, self.calls = strides, histories, cache, 0

    def __call__(self, build, net, stride0, stride1):
        k = self.calls
        self.calls += 1
        s0, s1 = self.strides[k]
        key = (k, id(net), s0, s1)
        if key not in self.cache:
            table = build(s0, s1)
            self.cache[key] = (table, *region_errors(table, net, self.n_threads))
        table, ef, ec = self.cache[key]
        history = list(self.histories[k])
        if not history or history[-1] != [s0, ef, s1, ec]:
            history.append([s0, ef, s1, ec])
        self.records[id(table)] = dict(fine=ef, coarse=ec, history=history)
        return table
