r"""Readable numpy reference of NEP energy, forces and virials (the test oracle of the C kernel).

Math (see docs/nep.md): for a pair i→j, r_ij = r_j − r_i, r = |r_ij|, types t_i, t_j,

* f_c(r) = ½[1 + cos(π r/r_c)],  x = 2(r/r_c − 1)² − 1,  f_k = ½[T_k(x) + 1] f_c,
* g_n(r) = Σ_k c[n, k, t_i, t_j] f_k(r)   (radial with r_c^R, angular with r_c^A),
* q_n = Σ_j g_n^R(r_ij);  s_{n,k} = Σ_j g_n^A(r_ij) Y_k(r̂_ij)  (real Cartesian "s" sums),
* angular descriptors are polynomials of s (constants.block_monomials),
* U_i = w1·tanh(w0 (q ∘ q_scaler) − b0) − b1_type[t_i] − b1  (+ ½ Σ_j φ_ZBL),
* partial force f_ij = ∂U_i/∂r_ij;  F_i = Σ_j f_ij − f_ji;  W_j −= r_ij ⊗ f_ij (per-atom virial, NEP_CPU split).
"""

import numpy as np

from ..nep.constants import K_C_SP, ZBL_A_FACTOR, ZBL_PARA, block_monomials, z_table

PI = np.pi


def basis(r, rc, nb):
    """f_k(r) and f_k'(r), k = 0..nb, for arrays r, rc (same shape P); returns (nb+1, P) arrays."""
    rcinv = 1.0 / rc
    inside = r < rc
    fc = np.where(inside, 0.5 * np.cos(PI * r * rcinv) + 0.5, 0.0)
    fcp = np.where(inside, -0.5 * PI * np.sin(PI * r * rcinv) * rcinv, 0.0)
    u = r * rcinv - 1.0
    x = 2.0 * u * u - 1.0
    dxdr = 4.0 * u * rcinv
    T = np.empty((nb + 1,) + r.shape)
    dT = np.empty_like(T)
    T[0], dT[0] = 1.0, 0.0
    if nb >= 1:
        T[1], dT[1] = x, 1.0
    U_prev, U_cur = np.ones_like(x), 2.0 * x  # U_0, U_1 (Chebyshev 2nd kind)
    for k in range(2, nb + 1):
        T[k] = 2.0 * x * T[k - 1] - T[k - 2]
        dT[k] = k * U_cur  # T_k' = k U_{k-1}
        U_prev, U_cur = U_cur, 2.0 * x * U_cur - U_prev
    half = 0.5 * (T + 1.0)
    f = half * fc
    fp = 0.5 * dT * dxdr * fc + half * fcp
    return f, fp


def radial_functions(c, rc_pair, ti, tj, r):
    """g_n(r) and g_n'(r) for pairs: c (n+1, nb+1, T, T) → arrays (n+1, P)."""
    nb = c.shape[1] - 1
    f, fp = basis(r, rc_pair[ti, tj], nb)
    cp = c[:, :, ti, tj]  # (n+1, nb+1, P)
    return np.einsum("nkp,kp->np", cp, f), np.einsum("nkp,kp->np", cp, fp)


def harmonics(u, lneed):
    """Y_k(û) (80, P) and its Cartesian gradient wrt the (free) unit-vector components (80, P, 3)."""
    Z = z_table()
    P = u.shape[0]
    x, y, z = u[:, 0], u[:, 1], u[:, 2]
    Y = np.zeros((80, P))
    G = np.zeros((80, P, 3))
    zp = [np.ones(P)]
    for p in range(1, 9):
        zp.append(zp[-1] * z)
    w = [np.ones(P, dtype=complex)]
    for m in range(1, 9):
        w.append(w[-1] * (x + 1j * y))
    for l in range(1, lneed + 1):
        b = l * l - 1
        for m in range(l + 1):
            zf = sum(Z[l - 1, m, p] * zp[p] for p in range(l + 1))
            dzf = sum(Z[l - 1, m, p] * p * zp[p - 1] for p in range(1, l + 1))
            if m == 0:
                Y[b] = zf
                G[b, :, 2] = dzf
                continue
            wm, wm1 = w[m], w[m - 1]
            kr, ki = b + 2 * m - 1, b + 2 * m
            Y[kr] = zf * wm.real
            Y[ki] = zf * wm.imag
            G[kr, :, 0] = zf * m * wm1.real
            G[kr, :, 1] = -zf * m * wm1.imag
            G[kr, :, 2] = dzf * wm.real
            G[ki, :, 0] = zf * m * wm1.imag
            G[ki, :, 1] = zf * m * wm1.real
            G[ki, :, 2] = dzf * wm.imag
    return Y, G


def monomial_values(mono, start, s):
    """q_b = Σ_m c_m Π s[idx] per block, and ∂q_b/∂s; s (..., 80) → q (..., nblock), dq (..., nblock, 80)."""
    nb = len(start) - 1
    q = np.zeros(s.shape[:-1] + (nb,))
    dq = np.zeros(s.shape[:-1] + (nb, s.shape[-1]))
    for b in range(nb):
        for row in mono[start[b]: start[b + 1]]:
            c, idx = row[0], [int(i) for i in row[1:] if i >= 0]
            fac = [s[..., i] for i in idx]
            q[..., b] += c * np.prod(fac, axis=0)
            for a, i in enumerate(idx):
                others = [fac[k] for k in range(len(idx)) if k != a]
                dq[..., b, i] += c * (np.prod(others, axis=0) if others else 1.0)
    return q, dq


def zbl_pair(model, ti, tj, r):
    """φ(r) and φ'(r) of the ZBL term per pair (full pair energy; each atom gets half)."""
    zb = model.zbl
    Z = model.atomic_numbers.astype(float)
    zi, zj = Z[ti], Z[tj]
    a_inv = (zi**0.23 + zj**0.23) * ZBL_A_FACTOR
    zizj = K_C_SP * zi * zj
    x = r * a_inv
    if zb["kind"] == "flexible":
        para = zb["params"][ti, tj]  # (P, 8)
    else:
        para = np.broadcast_to(np.array(ZBL_PARA), (len(r), 8))
    phi = np.zeros_like(r)
    dphi = np.zeros_like(r)
    for p in range(4):
        t = para[:, 2 * p] * np.exp(-para[:, 2 * p + 1] * x)
        phi += t
        dphi -= para[:, 2 * p + 1] * t
    f = zizj * phi / r
    fp = zizj * dphi * a_inv / r - f / r
    r1, r2 = zb["inner"][ti, tj], zb["outer"][ti, tj]
    fc = np.where(r < r1, 1.0, np.where(r < r2, 0.5 * np.cos(PI * (r - r1) / (r2 - r1)) + 0.5, 0.0))
    fcp = np.where((r >= r1) & (r < r2), -0.5 * PI / (r2 - r1) * np.sin(PI * (r - r1) / (r2 - r1)), 0.0)
    return f * fc, fp * fc + f * fcp


def evaluate_pairs(model, types, pi, pj, vec, natoms, *, gfun=None):
    """Energy, per-atom energies, forces, per-atom virials and descriptors from a full pair list.

    Parameters
    ----------
    types : (N,) int;  pi, pj : (P,) int centre/neighbour atom;  vec : (P, 3) r_ij = r_j − r_i
        (every pair within the largest cutoff, periodic images included, both directions).
    gfun : callable(part, ti, tj, r) -> (g, g') or None
        Replaces the analytic g_n (``part`` is 'R' or 'A'); used to test tables.

    Returns
    -------
    dict with energy, atom_energy (N,), force (N,3), atom_virial (N,9) row-major
    [xx,xy,xz,yx,...], virial (3,3), descriptor (N, D) after q_scaler.
    """
    m = model
    types = np.asarray(types)
    r = np.sqrt(np.einsum("pd,pd->p", vec, vec))
    ti, tj = types[pi], types[pj]
    nA1 = m.n_max_angular + 1
    f_pair = np.zeros_like(vec)
    # radial
    selR = r < m.rc_radial[ti, tj]
    if gfun is None:
        gR, gpR = radial_functions(m.c_radial, m.rc_radial, ti[selR], tj[selR], r[selR])
    else:
        gR, gpR = gfun("R", ti[selR], tj[selR], r[selR])
    qR = np.zeros((natoms, m.n_max_radial + 1))
    np.add.at(qR, pi[selR], gR.T)
    # angular
    selA = r < m.rc_angular[ti, tj]
    rA, vA = r[selA], vec[selA]
    if gfun is None:
        gA, gpA = radial_functions(m.c_angular, m.rc_angular, ti[selA], tj[selA], rA)
    else:
        gA, gpA = gfun("A", ti[selA], tj[selA], rA)
    mono, start, lneed = block_monomials(m.l_max, m.flags)
    u = vA / rA[:, None]
    Y, G = harmonics(u, lneed)
    s = np.zeros((natoms, nA1, 80))
    np.add.at(s, pi[selA], np.einsum("np,kp->pnk", gA, Y))
    qA, dq = monomial_values(mono, start, s)  # (N, nA1, nblock), (N, nA1, nblock, 80)
    desc = np.concatenate([qR, qA.transpose(0, 2, 1).reshape(natoms, -1)], axis=1)
    xs = desc * m.q_scaler
    h = np.tanh(np.einsum("imd,id->im", m.w0[types], xs) - m.b0[types])
    U = np.einsum("im,im->i", m.w1[types], h) - m.b1_type[types] - m.b1
    dUdx = np.einsum("im,imd->id", m.w1[types] * (1.0 - h * h), m.w0[types])
    F = dUdx * m.q_scaler  # dU/dq
    FR = F[:, : m.n_max_radial + 1]
    FA = F[:, m.n_max_radial + 1:].reshape(natoms, -1, nA1).transpose(0, 2, 1)  # (N, nA1, nblock)
    dUds = np.einsum("inb,inbk->ink", FA, dq)  # (N, nA1, 80)
    # partial forces
    uR = vec[selR] / r[selR][:, None]
    f_pair[selR] += np.einsum("pn,np->p", FR[pi[selR]], gpR)[:, None] * uR
    D = dUds[pi[selA]]  # (PA, nA1, 80)
    a = np.einsum("pnk,np,kp->p", D, gpA, Y)  # radial-derivative part
    b = np.einsum("pnk,np,kpd->pd", D, gA, G)  # ∇_u part
    b = (b - u * np.einsum("pd,pd->p", b, u)[:, None]) / rA[:, None]
    f_pair[selA] += a[:, None] * u + b
    if m.zbl is not None:
        selZ = selA & (r < m.zbl["outer"][ti, tj])
        phi, dphi = zbl_pair(m, ti[selZ], tj[selZ], r[selZ])
        np.add.at(U, pi[selZ], 0.5 * phi)
        f_pair[selZ] += (0.5 * dphi / r[selZ])[:, None] * vec[selZ]
    force = np.zeros((natoms, 3))
    np.add.at(force, pi, f_pair)
    np.add.at(force, pj, -f_pair)
    av = np.zeros((natoms, 9))
    np.add.at(av, pj, -np.einsum("pa,pb->pab", vec, f_pair).reshape(-1, 9))
    return {"energy": float(U.sum()), "atom_energy": U, "force": force, "atom_virial": av,
            "virial": av.sum(0).reshape(3, 3), "descriptor": xs}
