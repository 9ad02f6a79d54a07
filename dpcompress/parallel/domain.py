r"""Spatial domain decomposition of one frame over MPI ranks.

Every rank receives the whole frame (the :meth:`Potential.eval` contract) and
owns the atoms whose wrapped fractional coordinates fall in its block of a
``px × py × pz`` grid of the cell (of the bounding box when non-periodic).
Its ghosts are the atoms — and, periodic, their images — within ``rcut`` of
its block, found on the rank itself from the frame it holds: exactly the
atoms a halo exchange with the neighboring ranks would deliver.  The rank
evaluates its own atoms as centers (ghosts only serve as neighbors, and
receive the reaction forces), then one ``Allreduce`` sums energies, forces
(mapped from ghost images back to their atoms) and virials, so every rank
returns the full result.

Slab width: the planes of constant fractional coordinate :math:`k` are
:math:`1/|\mathbf b_k|` apart (:math:`\mathbf b_k` the reciprocal vectors,
rows of :math:`(C^{-1})^\top`), so a distance ``rcut`` spans
:math:`\delta_k = r_c |\mathbf b_k|` in fractional units.
"""

import itertools

import numpy as np


def rank_grid(size, lengths):
    """Factor ``size`` into (px, py, pz), splitting the longest directions most.

    Among all factorizations pick the one with the most cube-like domains
    (smallest max/min ratio of ``lengths[k] / p[k]``); ties go to the first found.
    """
    best, best_score = (size, 1, 1), None
    for px in range(1, size + 1):
        if size % px:
            continue
        for py in range(1, size // px + 1):
            if (size // px) % py:
                continue
            pz = size // px // py
            d = np.asarray(lengths, dtype=float) / np.array([px, py, pz])
            score = d.max() / max(d.min(), 1e-300)
            if best_score is None or score < best_score - 1e-12:
                best, best_score = (px, py, pz), score
    return best


def local_system(coords, cell, rank, size, rcut):
    """Owned atoms and ghosts of ``rank`` for one frame.

    Parameters
    ----------
    coords : ndarray, shape (natoms, 3)
    cell : ndarray, shape (3, 3) or None
    rank, size : int
    rcut : float
        Largest cutoff of the model.

    Returns
    -------
    local_coords : ndarray, shape (n_local, 3)
        Owned atoms first (in input order), then ghosts (explicit images).
    origin : ndarray of int64, shape (n_local,)
        Input index of each local atom.
    n_owned : int
    """
    if cell is not None:
        inv = np.linalg.inv(cell)
        frac = coords @ inv
        frac -= np.floor(frac)  # wrapped into [0, 1)
        basis = cell
        lengths = 1.0 / np.linalg.norm(inv.T, axis=1)  # plane spacings
        delta = rcut / lengths
    else:
        lo = coords.min(axis=0) - 1e-9
        span = np.maximum(coords.max(axis=0) - lo, 1e-6) * (1 + 1e-9)
        basis = np.diag(span)
        frac = (coords - lo) / span
        lengths = span
        delta = rcut / span
    grid = np.array(rank_grid(size, lengths))
    idx = np.array(np.unravel_index(rank, grid))
    f0, f1 = idx / grid, (idx + 1) / grid
    cellno = np.minimum((frac * grid).astype(np.int64), grid - 1)
    owned = np.flatnonzero(np.all(cellno == idx, axis=1))
    # ghosts: every image (periodic) within delta of the block, except the owned atoms themselves
    if cell is not None:
        ranges = [range(int(np.floor(f0[k] - delta[k])) - 1, int(np.ceil(f1[k] + delta[k])) + 1) for k in range(3)]
        shifts = np.array(list(itertools.product(*ranges)), dtype=np.int64)
    else:
        shifts = np.zeros((1, 3), dtype=np.int64)
    ghost_idx, ghost_pos = [], []
    owned_mask = np.zeros(len(coords), dtype=bool)
    owned_mask[owned] = True
    for s in shifts:
        f = frac + s
        inside = np.all((f >= f0 - delta) & (f < f1 + delta), axis=1)
        if not s.any():
            inside &= ~owned_mask
        sel = np.flatnonzero(inside)
        if sel.size:
            ghost_idx.append(sel)
            ghost_pos.append(f[sel] @ basis + (0.0 if cell is not None else lo))
    local_owned = frac[owned] @ basis + (0.0 if cell is not None else lo)
    origin = np.concatenate([owned] + ghost_idx).astype(np.int64)
    local = np.concatenate([local_owned] + ghost_pos) if ghost_pos else local_owned
    return np.ascontiguousarray(local), origin, len(owned)


def rank_contribution(plan, coords, cell, atom_types, rank, size, rcut, n_threads=1):
    """This rank's share, packed for one Allreduce: [energy, forces, atom energies, atom virials], and its overflow.

    The shares of all ranks sum to the full result (see :func:`unpack`).
    """
    from ..evaluate.frame import evaluate_frame

    natoms = len(atom_types)
    buf = np.zeros(1 + 3 * natoms + natoms + 9 * natoms)
    local, origin, n_owned = local_system(coords, cell, rank, size, rcut)
    if not n_owned:
        return buf, 0
    r = evaluate_frame(plan, local, None, atom_types[origin], n_threads=n_threads, n_centers=n_owned)
    f = np.zeros((natoms, 3))
    np.add.at(f, origin, r["force"])
    av = np.zeros((natoms, 3, 3))
    np.add.at(av, origin, r["atom_virial"])
    buf[0] = r["energy"]
    buf[1 : 1 + 3 * natoms] = f.ravel()
    buf[1 + 3 * natoms + origin[:n_owned]] = r["atom_energy"]
    buf[1 + 4 * natoms :] = av.ravel()
    return buf, int(sum(o.sum() for o in r["overflow"]))


def unpack(total, natoms):
    """The result dict of :func:`dpcompress.evaluate.frame.evaluate_frame` from the summed buffer."""
    av = total[1 + 4 * natoms :].reshape(natoms, 3, 3)
    return dict(
        energy=float(total[0]),
        force=total[1 : 1 + 3 * natoms].reshape(natoms, 3).copy(),
        virial=av.sum(axis=0),
        atom_energy=total[1 + 3 * natoms : 1 + 4 * natoms].copy(),
        atom_virial=av.copy(),
    )


def evaluate_decomposed(plan, coords, cell, atom_types, comm, rcut, n_threads=1):
    """One frame over the ranks of ``comm``; every rank gets the full result dict."""
    buf, overflow = rank_contribution(plan, coords, cell, atom_types, comm.rank, comm.size, rcut, n_threads)
    total = np.empty_like(buf)
    comm.Allreduce(buf, total)
    out = unpack(total, len(atom_types))
    out["overflow_total"] = comm.allreduce(overflow)
    return out
