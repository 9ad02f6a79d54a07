r"""i-PI's atomic units and conventions, and the conversions to and from dpcompress's.

i-PI works in Hartree atomic units and converts to and from user units only when it reads its
input files and writes its outputs, with the factors of its table ``ipi.utils.units.UnitMap``.
A driver has to use the *same* factors, not newer CODATA values: then a structure read by i-PI
from an ångström file reaches :class:`dpcompress.Potential` with the file's coordinates (to the
last bit or two), and the energy i-PI prints in electronvolt is the model's energy.

=====================  ==============================  ==========================================
quantity               i-PI 3.3.1's factor             in this module
=====================  ==============================  ==========================================
length                 1 Å = 1.8897261 Bohr            :data:`BOHR_PER_ANGSTROM`
energy                 1 eV = 0.036749326 Hartree      :data:`HARTREE_PER_EV`
=====================  ==============================  ==========================================

So :math:`a_0 = 1/1.8897261` Å :math:`= 0.5291772178` Å and :math:`E_h = 1/0.036749326` eV
:math:`= 27.21138341` eV.  These differ from CODATA 2018 (:math:`a_0 = 0.529177210903` Å,
:math:`E_h = 27.211386245988` eV) by :math:`+1.3\times10^{-8}` and :math:`-1.04\times10^{-7}`
relative, and from ASE's CODATA 2014 values by :math:`+1.4\times10^{-8}` and
:math:`-9.6\times10^{-8}`: ASE's ``SocketClient`` converts with its own values, so through it
the energies i-PI prints differ from the model's by about :math:`10^{-7}` relative.

Forces are converted with :math:`E_h/a_0`-consistent factors derived from the two above
(``HARTREE_PER_EV / BOHR_PER_ANGSTROM`` = 0.0194469061), not with i-PI's separately rounded
``ev/ang`` entry (0.019446904): the forces i-PI integrates are then exactly the gradient of the
energy it integrates, in its own units.  (Forces that i-PI *prints* in eV/Å therefore differ from
the model's by :math:`1.1\times10^{-7}` relative; energies it prints in eV do not differ.)

Conventions on the wire (``POSDATA`` / ``FORCEREADY``):

* the cell matrix :math:`\mathbf h` has the cell vectors as *columns* (i-PI keeps it upper
  triangular), sent row-major; dpcompress's ``cells`` have them as rows: ``cell = h.T``;
* positions and forces are ``(natoms, 3)`` row-major;
* the virial i-PI wants is :math:`\Xi_{ab} = -\sum_c \frac{\partial E}{\partial h_{ac}} h_{bc}
  = \sum_i F_{ia} r_{ib}` (a strain :math:`\mathbf h \to (1+\varepsilon)\mathbf h` moves every
  atom with the cell, and :math:`\Xi = -\partial E/\partial\varepsilon`), while DeePMD-kit's
  virial is :math:`W_{ab} = \sum_i r_{ia} F_{ib}`: so :math:`\Xi = W^\mathsf{T}`.  For a
  rotation-invariant model both are symmetric and the transposition changes nothing but
  rounding; i-PI's ``ase`` driver and ASE's ``SocketClient`` send the same transpose.
"""

from typing import Optional, Tuple

import numpy as np

from ..core.errors import InputError

#: Bohr per ångström: i-PI's ``UnitMap["length"]["angstrom"]``.
BOHR_PER_ANGSTROM = 1.8897261
#: Hartree per electronvolt: i-PI's ``UnitMap["energy"]["electronvolt"]``.
HARTREE_PER_EV = 0.036749326
#: (Hartree/Bohr) per (eV/Å), derived so that atomic-unit forces stay −∂E/∂x of atomic-unit energies.
HARTREE_PER_BOHR_PER_EV_PER_ANGSTROM = HARTREE_PER_EV / BOHR_PER_ANGSTROM


def structure_from_ipi(h, positions, *, periodic: bool = True) -> Tuple[Optional[np.ndarray], np.ndarray]:
    r"""A structure as i-PI sends it, in dpcompress's units and layout.

    Parameters
    ----------
    h : array_like, shape (3, 3) or (9,)
        i-PI's cell matrix, Bohr, cell vectors as columns (row-major on the wire).
    positions : array_like, shape (natoms, 3) or (3 * natoms,)
        Cartesian positions, Bohr.
    periodic : bool
        ``False``: the cell is ignored (a cluster) and ``None`` is returned for it.

    Returns
    -------
    cell : ndarray, shape (3, 3), or None
        :math:`\mathbf h^\mathsf{T} / b` with :math:`b` = :data:`BOHR_PER_ANGSTROM`: cell vectors
        as rows, Å.
    coords : ndarray, shape (natoms, 3)
        :math:`\mathbf r / b`, Å.

    Raises
    ------
    InputError
        Non-finite numbers, or (``periodic``) a cell with no volume: i-PI sends a zero cell for
        systems without one, which a periodic model cannot use.
    """
    h = np.asarray(h, dtype=np.float64).reshape(3, 3)
    r = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    if not np.all(np.isfinite(r)):
        raise InputError("i-PI sent non-finite positions")
    coords = r / BOHR_PER_ANGSTROM
    if not periodic:
        return None, coords
    if not np.all(np.isfinite(h)):
        raise InputError("i-PI sent a cell with non-finite entries")
    cell = h.T / BOHR_PER_ANGSTROM
    # relative to |a||b||c| so that the test does not depend on the size of the box
    scale = float(np.prod(np.linalg.norm(cell, axis=1)))
    if scale == 0.0 or abs(np.linalg.det(cell)) <= 1e-10 * scale:
        raise InputError(
            f"i-PI sent a cell with no volume (h = {h.tolist()} Bohr): give the system a cell in i-PI's "
            "input, or evaluate it as a cluster (--nopbc / pbc=false)"
        )
    return cell, coords


def results_to_ipi(energy, forces, virial) -> Tuple[float, np.ndarray, np.ndarray]:
    r"""dpcompress's energy, forces and virial in i-PI's units and conventions.

    Parameters
    ----------
    energy : float
        :math:`E`, eV.
    forces : array_like, shape (natoms, 3)
        :math:`\mathbf F_i`, eV/Å.
    virial : array_like, shape (3, 3) or (9,)
        DeePMD-kit's :math:`W = \sum_i \mathbf r_i \otimes \mathbf F_i`, eV.

    Returns
    -------
    energy : float
        :math:`E\,k_E` Hartree, :math:`k_E` = :data:`HARTREE_PER_EV`.
    forces : ndarray, shape (natoms, 3), float64, C-contiguous
        :math:`\mathbf F_i\,k_E/b` Hartree/Bohr, :math:`b` = :data:`BOHR_PER_ANGSTROM`.
    virial : ndarray, shape (3, 3), float64, C-contiguous
        :math:`\Xi = W^\mathsf{T} k_E` Hartree: i-PI's :math:`-\partial E/\partial\varepsilon`.
    """
    e = float(energy) * HARTREE_PER_EV
    f = np.ascontiguousarray(np.asarray(forces, dtype=np.float64).reshape(-1, 3) * HARTREE_PER_BOHR_PER_EV_PER_ANGSTROM)
    w = np.asarray(virial, dtype=np.float64).reshape(3, 3)
    return e, f, np.ascontiguousarray(w.T * HARTREE_PER_EV)
