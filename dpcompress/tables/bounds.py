r"""Input range of the embedding tables: DeePMD-kit's rule per center type (the descriptor units
turn it into the range of each of their tables).

The embedding net of se_e2_a sees :math:`x = (s - \bar R_{t,0})/\sigma_{t,0}`
with :math:`s = \mathrm{sw}(r)/r` and :math:`t` the center type.  Over a data set
whose closest pair is :math:`r_\text{min}`, :math:`s \in [0, s_\text{max}]`,
:math:`s_\text{max} = \mathrm{sw}(r_\text{min})/r_\text{min}` (0 is padding or
:math:`r \ge r_c`).

We reproduce DeePMD-kit's PyTorch rule (``deepmd/utils/tabulate.py::
_get_env_mat_range`` on ``[ntypes, nnei, 4]`` statistics), *including* its use of
all four components of slot 0 of ``davg``/``dstd``:

.. math::

    L_t = \Big\lfloor \min_{k=0..3} \frac{0 - \bar R_{t,0,k}}{\sigma_{t,0,k}} \Big\rfloor,\qquad
    U_t = \Big\lceil \max_{k=0..3} \frac{s_\text{max} - \bar R_{t,0,k}}{\sigma_{t,0,k}} \Big\rceil.

Only :math:`k = 0` (radial) is the table's real input; the angular components
(:math:`\bar R = 0`, smaller :math:`\sigma`) only widen :math:`U` (water: 14
instead of 8).  We keep them on purpose:

* **parity** — with the same integer :math:`L, U` our grid is DeePMD-kit's node
  for node, so tables compare row by row against ``dp compress`` output;
* **same extrapolation region** — the table (fine region up to :math:`U`,
  coarse up to :math:`5U`) covers the same :math:`x` as DeePMD-kit's, so a
  frame with a pair closer than the training set gets the same treatment
  (tabulated, not linearly extrapolated) in both codes.

The price is about 50 % more rows than radial-only bounds, a few MB.

Tables shared by several center types
-------------------------------------
A table that several center types use (se_e2_a / se_e2_r with ``type_one_side``,
se_atten_v2) takes the union of their ranges, :func:`union_bounds`, over **every**
center type.  ``exclude_types`` never narrows it.  This is deliberate, and it
matches what DeePMD-kit does in practice: its exclusion test in
``BaseTabulate.build`` compares ``(center, neighbor)`` tuples with the JSON lists that
a model's ``exclude_types`` holds, so the test never matches and every center
type with ``sel > 0`` enters the range.  An exclusion-aware range (as dpcompress
had before) is narrower than DeePMD-kit's whenever an excluded center type
has the widest range.  An exclusion skews that center's statistics
(water, ``exclude_types [[0, 1]]``: O centers see only distant O neighbors,
so their σ is small and their :math:`U` is 109 instead of 37 for H).
Then a close contact that DeePMD-kit's coarse table still covers fell
beyond ours and was extrapolated.  Rule: **the range of every table covers
at least DeePMD-kit's range for the same ``-e``** (``tests/test_close_contact.py``
checks this against ``dp compress`` output).  Extra rows cost memory, never accuracy.

se_e3 has its own (wider) rule in :mod:`dpcompress.descriptors.se_e3`. It is
raised to at least DeePMD-kit's per-center-type "T" range,
:func:`deepmd_se_t_bounds`.
"""

import math

import numpy as np

from ..core.env_mat import smooth_switch


def center_type_ranges(davg, dstd, rcut_smth, rcut, min_nbor_dist):
    """Raw (not yet floored/ceiled) ``lower_t, upper_t`` per center type, as DeePMD-kit logs them.

    Parameters
    ----------
    davg, dstd : ndarray, shape (ntypes, nnei, 4)
    rcut_smth, rcut : float
    min_nbor_dist : float
        Smallest pair distance of the training data, Å.

    Returns
    -------
    lower, upper : ndarray, shape (ntypes,)
    """
    r = float(min_nbor_dist)
    sw, _ = smooth_switch(np.array([r]), rcut_smth, rcut)
    s_max = float(sw[0]) / r
    avg = np.asarray(davg, dtype=np.float64)[:, 0, :]
    std = np.asarray(dstd, dtype=np.float64)[:, 0, :]
    return np.min((0.0 - avg) / std, axis=1), np.max((s_max - avg) / std, axis=1)


def center_type_bounds(davg, dstd, rcut_smth, rcut, min_nbor_dist):
    """Integer ``(floor(lower_t), ceil(upper_t))`` per center type ``t`` (see :func:`center_type_ranges`).

    Returns
    -------
    list of (int, int)
    """
    lo, hi = center_type_ranges(davg, dstd, rcut_smth, rcut, min_nbor_dist)
    return [(int(math.floor(a)), int(math.ceil(b))) for a, b in zip(lo, hi)]


def union_bounds(bounds):
    """The smallest integer range that contains every ``(lower, upper)`` in ``bounds``.

    Parameters
    ----------
    bounds : iterable of (int, int)

    Returns
    -------
    (int, int)
    """
    bounds = list(bounds)
    return min(lo for lo, _ in bounds), max(hi for _, hi in bounds)


def deepmd_se_t_bounds(dstd, rcut_smth, rcut, min_nbor_dist):
    r"""DeePMD-kit's integer se_e3 ("T") range per center type: ``(floor(min -v), ceil(max v))``.

    :math:`v = (s_\text{max} / \sigma)^2` over ``dstd[t, 1:4, :]``.  The
    PyTorch statistics are ``[ntypes, nnei, 4]``, so this takes slots 1-3 with all
    four components (``_get_env_mat_range``).  DeePMD-kit gives the
    table of neighbor-type pair :math:`(a, b)` the range of center type
    :math:`a`.  dpcompress's se_e3 tables are at least this wide.

    Parameters
    ----------
    dstd : ndarray, shape (ntypes, nnei, 4)
    rcut_smth, rcut : float
    min_nbor_dist : float
        Smallest pair distance of the training data, Å.

    Returns
    -------
    list of (int, int)
    """
    r = float(min_nbor_dist)
    sw, _ = smooth_switch(np.array([r]), rcut_smth, rcut)
    std = np.asarray(dstd, dtype=np.float64)
    std = std[:, 1:4] if std.ndim == 3 else std[:, 1:4, None]
    v = np.square(float(sw[0]) / (r * std)).reshape(std.shape[0], -1)
    return [(int(math.floor(np.min(-row))), int(math.ceil(np.max(row)))) for row in v]
