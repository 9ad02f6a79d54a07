r"""Input range of the embedding tables of a descriptor.

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

from ..errors import InputError, UnsupportedModelError
from ..reference.env_mat import smooth_switch


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


def table_bounds(descriptor, min_nbor_dist):
    """Integer ``(lower, upper)`` of every embedding table of a descriptor, DeePMD-kit's rule.

    Parameters
    ----------
    descriptor : DescriptorSeA
    min_nbor_dist : float
        Smallest pair distance of the training data (``DPModel.min_nbor_dist``), Å, > 0.

    Returns
    -------
    tuple
        Indexed like ``descriptor.embeddings``: ``[center][neighbor]`` when
        ``type_one_side`` is False (table (c, n) takes center c's range),
        ``[neighbor]`` when True (table n takes the min of the lowers and the max
        of the uppers over the centers c with (c, n) not excluded — all centers
        if every one is excluded).  ``None`` where the embedding net is None.

    Raises
    ------
    InputError
        ``min_nbor_dist`` not a positive finite number.
    UnsupportedModelError
        Not an se_e2_a descriptor.
    """
    if getattr(descriptor, "type_name", None) not in ("se_e2_a", "se_e2_r"):  # same per-type layout and rule
        raise UnsupportedModelError(
            f"table bounds are implemented for se_e2_a only, not {getattr(descriptor, 'type_name', type(descriptor).__name__)}"
        )
    try:
        r = float(min_nbor_dist)
    except (TypeError, ValueError):
        raise InputError(f"min_nbor_dist must be a positive number, got {min_nbor_dist!r}") from None
    if isinstance(min_nbor_dist, bool) or not math.isfinite(r) or r <= 0:
        raise InputError(f"min_nbor_dist must be a positive finite distance (Å), got {min_nbor_dist!r}")
    per_center = center_type_bounds(descriptor.davg, descriptor.dstd, descriptor.rcut_smth, descriptor.rcut, r)
    nt = descriptor.ntypes
    emb = descriptor.embeddings
    if not descriptor.type_one_side:
        return tuple(tuple(None if emb[c][n] is None else per_center[c] for n in range(nt)) for c in range(nt))
    out = []
    for n in range(nt):
        if emb[n] is None:
            out.append(None)
            continue
        # Tuples of ints on both sides: DeePMD-kit tests tuples against JSON lists
        # here, never matches, and so never shrinks the range of excluded pairs.
        centers = [c for c in range(nt) if (c, n) not in descriptor.exclude_types] or list(range(nt))
        out.append((min(per_center[c][0] for c in centers), max(per_center[c][1] for c in centers)))
    return tuple(out)


def se_e3_table_bounds(descriptor, min_nbor_dist):
    r"""Integer, symmetric ``(-U, U)`` of every se_e3 table: the range of :math:`e_{jk}` over the training set.

    The table of the neighbor-type pair :math:`(a, b)` sees
    :math:`e_{jk} = \tilde{\mathbf r}_j\cdot\tilde{\mathbf r}_k` with
    :math:`\tilde{\mathbf r}_j = (s_j\hat{\mathbf r}_j - \bar{\mathbf R}_j)/\boldsymbol\sigma_j`
    (component-wise), :math:`s = \mathrm{sw}(r)/r \le s_\text{max}` at the training
    set's closest pair, so :math:`|e_{jk}| \le \rho_a\rho_b` with, per center type
    :math:`t` and block :math:`a` (over its slots and the three angular components),

    .. math::

        \rho_{t,a} = \frac{s_\text{max}}{\min \sigma} + \max\Big|\frac{\bar{\mathbf R}}{\boldsymbol\sigma}\Big|,\qquad
        U_{ab} = \Big\lceil \max_t \rho_{t,a}\,\rho_{t,b} \Big\rceil .

    With DeePMD-kit's statistics (angular average 0, one angular σ per center
    type) this is its own ``ceil((s_max/σ_a)^2)`` (``_get_env_mat_range``, type
    "T"), except that DeePMD-kit takes the center type :math:`t = a` only,
    although the net of :math:`(a, b)` serves every center type: its table is
    then too narrow for the other centers, whose values land in the coarse
    region and, through DeePMD-kit's interval-width off-by-one, in a wrongly
    built interval.  Here the max runs over every center type for which neither
    block :math:`a` nor :math:`b` is zeroed by ``exclude_types`` (all of them
    when that leaves none).
    (DeePMD-kit's PyTorch code also lets the radial σ enter; it is larger than
    the angular one in practice, so it never decides the bound.)

    Parameters
    ----------
    descriptor : DescriptorSeT
    min_nbor_dist : float
        Smallest pair distance of the training data, Å, > 0.

    Returns
    -------
    tuple
        ``bounds[a][b] = (-U_ab, U_ab)`` for ``a <= b``, None for ``a > b``.
    """
    if getattr(descriptor, "type_name", None) != "se_e3":
        raise UnsupportedModelError(f"se_e3 table bounds asked for a {getattr(descriptor, 'type_name', '?')} descriptor")
    try:
        r = float(min_nbor_dist)
    except (TypeError, ValueError):
        raise InputError(f"min_nbor_dist must be a positive number, got {min_nbor_dist!r}") from None
    if isinstance(min_nbor_dist, bool) or not math.isfinite(r) or r <= 0:
        raise InputError(f"min_nbor_dist must be a positive finite distance (Å), got {min_nbor_dist!r}")
    sw, _ = smooth_switch(np.array([r]), descriptor.rcut_smth, descriptor.rcut)
    s_max = float(sw[0]) / r
    nt = descriptor.ntypes
    offsets = np.concatenate([[0], np.cumsum(descriptor.sel)])
    rho = np.zeros((descriptor.davg.shape[0], nt))
    silent = np.ones((descriptor.davg.shape[0], nt), dtype=bool)  # padding rows are zero
    for b in range(nt):
        if descriptor.sel[b] == 0:
            continue
        avg = np.asarray(descriptor.davg, dtype=np.float64)[:, offsets[b] : offsets[b + 1], 1:]
        std = np.asarray(descriptor.dstd, dtype=np.float64)[:, offsets[b] : offsets[b + 1], 1:]
        rho[:, b] = s_max / np.abs(std).min(axis=(1, 2)) + np.linalg.norm(avg / std, axis=2).max(axis=1)
        silent[:, b] = np.all(avg == 0, axis=(1, 2))
    excl = descriptor.exclude_types
    out = []
    for a in range(nt):
        row = []
        for b in range(nt):
            if a > b:
                row.append(None)
                continue
            # a block zeroed by exclude_types (with zero padding rows) gives e = 0 for center t
            off = [t for t in range(rho.shape[0]) if any((t, x) in excl and silent[t, x] for x in (a, b))]
            centers = [t for t in range(rho.shape[0]) if t not in off] or list(range(rho.shape[0]))
            # at least 1: a table needs a fine region (s_max = 0 when min_nbor_dist >= rcut)
            u = max(1, int(math.ceil(max(rho[t, a] * rho[t, b] for t in centers))))
            row.append((-u, u))
        out.append(tuple(row))
    return tuple(out)


def se_atten_table_bounds(descriptor, min_nbor_dist):
    r"""Integer ``(lower, upper)`` of the one geometric table of se_atten_v2.

    DeePMD-kit's rule for "Atten" descriptors: the per-center-type bounds of
    :func:`center_type_bounds` (all four components, as for se_e2_a), then
    :math:`L = \min_t L_t`, :math:`U = \max_t U_t`, since one net serves every
    center type.
    """
    if getattr(descriptor, "type_name", None) != "se_atten_v2":
        raise UnsupportedModelError(f"se_atten table bounds asked for a {getattr(descriptor, 'type_name', '?')} descriptor")
    try:
        r = float(min_nbor_dist)
    except (TypeError, ValueError):
        raise InputError(f"min_nbor_dist must be a positive number, got {min_nbor_dist!r}") from None
    if isinstance(min_nbor_dist, bool) or not math.isfinite(r) or r <= 0:
        raise InputError(f"min_nbor_dist must be a positive finite distance (Å), got {min_nbor_dist!r}")
    per_center = center_type_bounds(descriptor.davg, descriptor.dstd, descriptor.rcut_smth, descriptor.rcut, r)
    return min(lo for lo, _ in per_center), max(hi for _, hi in per_center)
