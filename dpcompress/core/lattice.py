r"""Lattice reduction: the same periodic lattice, written with short, nearly orthogonal vectors.

A periodic cell :math:`A` (rows :math:`\mathbf a_0, \mathbf a_1, \mathbf a_2`) and the cell
:math:`A' = U A` with :math:`U` an integer matrix of determinant :math:`\pm 1` (unimodular)
generate the same lattice :math:`\{\mathbf n A : \mathbf n \in \mathbb Z^3\}`, so every pair
vector, energy, force and virial of a frame is the same in both.  The cost of a neighbor search
is not: it grows with :math:`\prod_c (1 + 2 r_c / h_c)`, :math:`h_c` the distance between the
cell's faces, and a sheared cell (:math:`\mathbf a_2 + 1000\,\mathbf a_0` in place of
:math:`\mathbf a_2`, say) has one tiny :math:`h_c` although its lattice is the plain one.
:func:`reduce_cell` returns the reduced basis, so the search costs what the atoms cost, however
the cell was written.

The reduction is greedy and exact, two kinds of step (in the spirit of Nguyen and Stehlé's greedy
reduction):

* *pair step*: :math:`\mathbf a_i \leftarrow \mathbf a_i - k\,\mathbf a_j`,
  :math:`k = \operatorname{round}(\mathbf a_i\cdot\mathbf a_j / |\mathbf a_j|^2)`;
* *triple step*: :math:`\mathbf a_i \leftarrow \mathbf a_i + s\,\mathbf a_j + t\,\mathbf a_l`,
  :math:`s, t = \pm 1`;

each taken only when it makes :math:`|\mathbf a_i|` strictly shorter (by a relative
:data:`STRICT` at least), until no step does.  Every step shortens a vector of a discrete lattice,
so it ends; at the end :math:`|\mathbf a_i| \le |\mathbf a_i + \sum_{j \ne i} \varepsilon_j
\mathbf a_j|` for all :math:`\varepsilon_j \in \{-1, 0, 1\}` (a pair step exists whenever
:math:`|\mathbf a_i \pm \mathbf a_j| < |\mathbf a_i|`), the conditions that in three dimensions
make the basis Minkowski-reduced (up to the order of its vectors): the face distances are then
within a bounded factor of the vector lengths.  A basis that is already reduced, orthorhombic and
the usual triclinic and hexagonal cells included, is returned unchanged (:math:`U = I`, the same
array), so results on such cells are bit for bit what they were.  Every step has determinant
:math:`+1`: the handedness is kept.  The integer matrix :math:`U` is kept exactly (Python
integers) and each reduced vector is :math:`\sum_l U_{il}\mathbf a_l` computed in exact rational
arithmetic and rounded once, so no rounding accumulates over the steps.
"""

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

#: A step must shorten a vector's squared length by at least this relative amount: it stops the
#: reduction on ties (the two shortest choices of a hexagonal cell) and on rounding noise.
STRICT = 1e-12
#: Steps of the whole reduction before it stops (a bound the reduction never reaches in practice:
#: every pair step at least halves the component along the other vector, so a shear of 10^k cells
#: takes O(k) steps).
MAX_ROUNDS = 10000


@dataclass(frozen=True)
class ReducedCell:
    """A cell and its reduced equivalent.

    Attributes
    ----------
    cell : ndarray (3, 3)
        The reduced cell :math:`A' = U A` (rows = cell vectors), the input array itself when
        :math:`U = I`.
    transform : ndarray of int64 (3, 3)
        :math:`U`, unimodular (determinant +1).
    """

    cell: np.ndarray
    transform: np.ndarray

    @property
    def changed(self):
        """Whether the reduced cell differs from the input cell (:math:`U \\ne I`)."""
        return not np.array_equal(self.transform, np.eye(3, dtype=np.int64))


def _combine(exact_rows, u):
    """:math:`\\sum_l u_l \\mathbf a_l`, exact, rounded once to float64."""
    return [float(sum((u[l] * exact_rows[l][d] for l in range(3)), Fraction(0))) for d in range(3)]


def _norm2(v):
    return (v[0] * v[0] + v[1] * v[1]) + v[2] * v[2]


def _dot(v, w):
    return (v[0] * w[0] + v[1] * w[1]) + v[2] * w[2]


def reduce_cell(cell):
    r"""Reduce a periodic cell to an equivalent basis of short, nearly orthogonal vectors.

    Parameters
    ----------
    cell : ndarray (3, 3)
        Rows are the cell vectors, finite and linearly independent (validated by
        :func:`dpcompress.core.inputs.check_cell`).

    Returns
    -------
    ReducedCell
        ``cell`` :math:`= U A` and ``transform`` :math:`U`; ``cell`` is the input array
        (unchanged, not a copy) when the input is reduced already.

    Notes
    -----
    Idempotent: a reduced cell reduces to itself.  The decisions use float64 dot products; the
    vectors are exact integer combinations of the input rows, so whatever the decisions, the
    result spans the input lattice.
    """
    cell = np.asarray(cell, dtype=np.float64)
    if _is_reduced(cell):
        return ReducedCell(cell, np.eye(3, dtype=np.int64))
    rows = [[float(x) for x in cell[i]] for i in range(3)]
    exact = None  # the input rows as exact rationals, made on the first step
    u = [[1 if i == j else 0 for j in range(3)] for i in range(3)]
    for _ in range(MAX_ROUNDS):
        step = _best_step(rows)
        if step is None:
            break
        i, coef = step
        if exact is None:
            exact = [[Fraction(x) for x in cell[l]] for l in range(3)]
        new_u = [u[i][c] + sum(coef[j] * u[j][c] for j in range(3) if j != i) for c in range(3)]
        new = _combine(exact, new_u)
        if not _norm2(new) < (1.0 - STRICT) * _norm2(rows[i]):
            break  # the exact vector is not shorter after all (rounding of the decision): done
        u[i], rows[i] = new_u, new
    if exact is None:
        return ReducedCell(cell, np.eye(3, dtype=np.int64))
    transform = np.array(u, dtype=object)
    if any(abs(x) >= 2**62 for x in transform.ravel()):  # pragma: no cover - cells this skewed are singular
        raise OverflowError("lattice reduction: transform entries beyond int64")
    return ReducedCell(np.array(rows, dtype=np.float64), transform.astype(np.int64))


def _is_reduced(cell):
    r"""No step applies: the common case, checked on the Gram matrix :math:`G = A A^T` alone.

    Pair steps need :math:`|G_{ij}| > G_{jj}/2`; the triple step
    :math:`\mathbf a_i + s\mathbf a_j + t\mathbf a_l` shortens :math:`\mathbf a_i` when
    :math:`G_{jj} + G_{ll} + 2sG_{ij} + 2tG_{il} + 2stG_{jl} < 0`.  Near the limits (within
    :data:`STRICT`-sized margins) it answers False and :func:`_best_step` decides.
    """
    g = (cell @ cell.T).tolist()
    for i in range(3):
        for j in range(3):
            if i != j and abs(g[i][j]) >= 0.5 * g[j][j] * (1.0 - 1e-9):
                return False
    for i in range(3):
        j, l = [x for x in range(3) if x != i]
        for s in (1, -1):
            for t in (1, -1):
                if g[j][j] + g[l][l] + 2.0 * (s * g[i][j] + t * g[i][l] + s * t * g[j][l]) < 1e-9 * g[i][i]:
                    return False
    return True


def _best_step(rows):
    r"""The first step that shortens a vector strictly: ``(i, coef)`` with
    :math:`\mathbf a_i \leftarrow \mathbf a_i + \sum_{j \ne i} \text{coef}_j \mathbf a_j`, or None."""
    n2 = [_norm2(r) for r in rows]
    for i in range(3):
        for j in range(3):
            if i == j:
                continue
            mu = _dot(rows[i], rows[j]) / n2[j]
            k = round(mu)
            if k == 0:
                continue
            cand = [rows[i][d] - k * rows[j][d] for d in range(3)]
            if _norm2(cand) < (1.0 - STRICT) * n2[i]:
                coef = [0, 0, 0]
                coef[j] = -int(k)
                return i, coef
    for i in range(3):
        j, l = [x for x in range(3) if x != i]
        for s in (1, -1):
            for t in (1, -1):
                cand = [rows[i][d] + s * rows[j][d] + t * rows[l][d] for d in range(3)]
                if _norm2(cand) < (1.0 - STRICT) * n2[i]:
                    coef = [0, 0, 0]
                    coef[j], coef[l] = s, t
                    return i, coef
    return None


def face_distances(cell):
    r"""Distances :math:`h_c = |\det A| / |\mathbf a_{c+1} \times \mathbf a_{c+2}|` between opposite faces."""
    cell = np.asarray(cell, dtype=np.float64)
    volume = abs(float(np.linalg.det(cell)))
    return np.array([volume / np.linalg.norm(np.cross(cell[(c + 1) % 3], cell[(c + 2) % 3])) for c in range(3)])




#: Vacuum beyond the atoms' extent along a non-periodic direction, in units of the cutoff: the
#: nearest periodic image along it is then at least this many cutoffs away (2 > 1 with a margin
#: for the search radius, which is a hair above the cutoff).
VACUUM_CUTOFFS = 2.0


def _complement(periodic_rows):
    """Orthonormal vectors spanning the complement of the periodic rows' span (3 - k of them)."""
    k = len(periodic_rows)
    if k == 2:
        n = np.cross(periodic_rows[0], periodic_rows[1])
        return [n / np.linalg.norm(n)]
    u = periodic_rows[0] / np.linalg.norm(periodic_rows[0])
    e = np.zeros(3)
    e[int(np.argmin(np.abs(u)))] = 1.0  # the axis furthest from u: a well-conditioned projection
    v = e - np.dot(e, u) * u
    v /= np.linalg.norm(v)
    return [v, np.cross(u, v)]


def vacuum_cell(cell, pbc, coords, rcut):
    r"""A fully periodic cell whose images reproduce a partly periodic frame within ``rcut``.

    Parameters
    ----------
    cell : ndarray (3, 3)
        Rows are the cell vectors; the rows of the periodic directions are finite and linearly
        independent (:func:`dpcompress.core.inputs.check_cell` with ``pbc``), the others are
        ignored (ASE writes zeros there).
    pbc : sequence of 3 bool
        Periodic directions, one or two of them (all or none are not "partly periodic").
    coords : ndarray (natoms, 3)
        The frame's positions, Å.
    rcut : float
        The model's cutoff, Å.

    Returns
    -------
    ndarray (3, 3)
        The periodic rows unchanged; each non-periodic row :math:`c` replaced by
        :math:`L\,\hat{\mathbf n}`, with :math:`\hat{\mathbf n}` orthonormal vectors spanning the
        complement of the periodic rows' span and

        .. math::  L = \max_i \mathbf r_i\cdot\hat{\mathbf n} - \min_i \mathbf r_i\cdot\hat{\mathbf n}
                       + 2 r_c .

    Notes
    -----
    Vacuum padding done internally.  Two atoms' separation along :math:`\hat{\mathbf n}` is at
    most the extent :math:`e`, so every image shifted by :math:`m \ne 0` vectors :math:`L\hat{\mathbf
    n}` lies at least :math:`|m| L - e \ge 2 r_c` away: no image along a non-periodic direction
    falls within the cutoff, and the neighbor rows (pair vectors
    :math:`\mathbf r_j - \mathbf r_i + \mathbf S A`, with no component of :math:`\mathbf S`
    along the padded rows) are those of the partly periodic system.  The periodic rows are not
    touched, so the lattice reduction (:func:`reduce_cell`) reduces the periodic lattice only: an
    orthogonal vector this long never enters a step of the others, and no step shortens it.  The
    virial :math:`W = -\sum_{ij} \mathbf r_{ij} \otimes \mathbf f_{ij}` is a sum over pair
    vectors, the same in both systems.
    """
    pbc = [bool(p) for p in pbc]
    periodic = [np.asarray(cell[c], dtype=np.float64) for c in range(3) if pbc[c]]
    if not 0 < len(periodic) < 3:
        raise ValueError(f"vacuum_cell needs one or two periodic directions, got pbc={pbc}")
    out = np.array(cell, dtype=np.float64)
    free = [c for c in range(3) if not pbc[c]]
    for c, n in zip(free, _complement(periodic)):
        proj = coords @ n
        out[c] = (float(proj.max() - proj.min()) + VACUUM_CUTOFFS * float(rcut)) * n
    if np.linalg.det(out) < 0:  # keep the handedness of a right-handed basis (results do not depend on it)
        out[free[-1]] *= -1.0
    return out


def frame_cell(cell, pbc, coords, rcut):
    """The reduced, fully periodic cell that the neighbor search uses for one frame, or None.

    ``pbc`` None or all True: :func:`reduce_cell` of ``cell``; all False: None (a cluster); one or
    two periodic directions: :func:`reduce_cell` of :func:`vacuum_cell`.
    """
    if cell is None:
        return None
    if pbc is None or all(pbc):
        return reduce_cell(cell).cell
    if not any(pbc):
        return None
    return reduce_cell(vacuum_cell(cell, pbc, coords, rcut)).cell


__all__ = ["ReducedCell", "reduce_cell", "face_distances", "vacuum_cell", "frame_cell", "STRICT", "MAX_ROUNDS",
           "VACUUM_CUTOFFS"]
