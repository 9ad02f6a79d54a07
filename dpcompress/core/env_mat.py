r"""The se_e2_a environment matrix and its derivative, in numpy.

For a neighbor at :math:`\mathbf r = \mathbf r_j - \mathbf r_i`, :math:`r = |\mathbf r|`,
:math:`\rho = r + p` (``protection``):

.. math::

    R = s(r)\Big(\frac1\rho, \frac{x}{\rho^2}, \frac{y}{\rho^2}, \frac{z}{\rho^2}\Big),\qquad
    s(r) = \begin{cases}1 & r \le r_s\\ u^3(-6u^2+15u-10)+1 & r_s<r<r_c\\ 0 & r\ge r_c\end{cases},
    \quad u = \frac{r-r_s}{r_c-r_s}

Derivatives with :math:`\hat{\mathbf r} = \mathbf r/r`:

.. math::

    \frac{\partial R_0}{\partial \mathbf r} = \Big(\frac{s'}{\rho} - \frac{s}{\rho^2}\Big)\hat{\mathbf r},\qquad
    \frac{\partial R_a}{\partial r_b} = \frac{s'\hat r_b x_a}{\rho^2}
        + s\Big(\frac{\delta_{ab}}{\rho^2} - \frac{2x_a\hat r_b}{\rho^3}\Big)

Padding slots have :math:`R = 0` and no derivative.
"""

import numpy as np


def smooth_switch(r, rcut_smth, rcut):
    """Return the switch :math:`s(r)` and :math:`s'(r)` (C² at both ends)."""
    u = np.clip((r - rcut_smth) / (rcut - rcut_smth), 0.0, 1.0)
    s = u * u * u * (-6.0 * u * u + 15.0 * u - 10.0) + 1.0
    ds = -30.0 * u * u * (u - 1.0) ** 2 / (rcut - rcut_smth)
    return s, ds


def smooth_switch_deepmd_order(r, rcut_smth, rcut):
    """:func:`smooth_switch` with DeePMD-kit's operation order (``u2 = u*u``, ``-6*u2``).

    The same function; only the rounding differs.  Within ~1e-4 Å of rcut, s is a few 1e-15 made
    of round-off, and DPA-1's attention divides by it (the floored direction of
    :mod:`dpcompress.evaluators.exact.dpa1_attention`), so there DeePMD-kit's rounding is reproduced.
    """
    u = np.clip((r - rcut_smth) / (rcut - rcut_smth), 0.0, 1.0)
    u2 = u * u
    s = u2 * u * (-6.0 * u2 + 15.0 * u - 10.0) + 1.0
    ds = -30.0 * u2 * (u - 1.0) ** 2 / (rcut - rcut_smth)
    return s, ds


def env_mat_se_a(vectors, real, rcut, rcut_smth, protection=0.0, switch=smooth_switch):
    """Raw environment rows and their derivative with respect to r_ij.

    Parameters
    ----------
    vectors : ndarray, shape (..., 3)
        :math:`\\mathbf r_{ij}`.
    real : ndarray of bool, shape (...)
        False on padding slots.

    Returns
    -------
    R : ndarray, shape (..., 4)
    dR : ndarray, shape (..., 4, 3)
        :math:`\\partial R_k / \\partial r_b`.
    """
    vec = np.where(real[..., None], vectors, 0.0)
    r = np.linalg.norm(vec, axis=-1)
    r = np.where(real, r, 1.0)  # keeps padding finite; masked below
    s, ds = switch(r, rcut_smth, rcut)
    s, ds = s * real, ds * real
    rho = r + protection
    rhat = vec / r[..., None]
    R = np.concatenate([(s / rho)[..., None], (s / rho**2)[..., None] * vec], axis=-1)
    dR = np.empty(vec.shape[:-1] + (4, 3))
    dR[..., 0, :] = ((ds / rho - s / rho**2)[..., None]) * rhat
    eye = np.eye(3)
    dR[..., 1:, :] = (
        (ds / rho**2)[..., None, None] * vec[..., :, None] * rhat[..., None, :]
        + (s / rho**2)[..., None, None] * eye
        - (2.0 * s / rho**3)[..., None, None] * vec[..., :, None] * rhat[..., None, :]
    )
    return R, dR
