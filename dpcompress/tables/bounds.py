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
