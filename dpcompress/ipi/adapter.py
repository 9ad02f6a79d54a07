"""A :class:`dpcompress.Potential` seen from i-PI: a structure in atomic units in, i-PI's four
results out.  Both front ends (our socket client and the class for ``i-pi-py_driver -m custom``)
call this one object, so they cannot disagree.
"""

import os
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from ..core.errors import InputError
from ..potential import Potential
from .atoms import atom_types
from .units import results_to_ipi, structure_from_ipi


class IPIAdapter:
    """Evaluate structures given as i-PI gives them.

    Parameters
    ----------
    model : str, os.PathLike or Potential
        A ``.dpc`` file (compressed), a DeePMD-kit ``.dp`` file, a GPUMD ``nep.txt``, or a
        :class:`dpcompress.Potential` already made.
    elements : sequence of str
        The element of every atom, in i-PI's atom order (see :func:`dpcompress.ipi.atoms.elements_from`).
    n_threads : int or None
        Threads of the compiled kernels (``None``: all cores); ignored when ``model`` is a
        :class:`dpcompress.Potential`.
    periodic : bool
        ``False`` evaluates every structure as a cluster and ignores the cell i-PI sends.

    Raises
    ------
    InputError
        An element the model does not know (and everything :class:`dpcompress.Potential` raises
        for a bad model file).
    """

    def __init__(self, model: Union[str, os.PathLike, Potential], elements: Sequence[str], *,
                 n_threads: Optional[int] = None, periodic: bool = True):
        self.potential = model if isinstance(model, Potential) else Potential(model, n_threads=n_threads)
        self.elements = list(elements)
        self.types = atom_types(self.elements, self.potential.get_type_map())
        self.periodic = bool(periodic)
        self.n_structures = 0

    @property
    def natoms(self) -> int:
        return len(self.types)

    def __call__(self, h, positions) -> Tuple[float, np.ndarray, np.ndarray, str]:
        """Energy (Hartree), forces (Hartree/Bohr, shape (natoms, 3)), virial (Hartree, i-PI's
        convention) and the extras string (empty) of one structure.

        Parameters
        ----------
        h : array_like, shape (3, 3)
            Cell vectors as columns, Bohr.
        positions : array_like, shape (natoms, 3) or (3 * natoms,)
            Bohr.

        Raises
        ------
        InputError
            i-PI's atom count differs from the element list, or the structure is unusable
            (see :func:`dpcompress.ipi.units.structure_from_ipi`).
        """
        n = np.size(positions) // 3
        if n != self.natoms or np.size(positions) != 3 * n:
            raise InputError(
                f"i-PI sent {np.size(positions) / 3:g} atoms but the element list has {self.natoms}: "
                "the init file / --elements must describe the same atoms, in the same order, as i-PI's input"
            )
        cell, coords = structure_from_ipi(h, positions, periodic=self.periodic)
        e, f, w = self.potential.eval(coords[None], None if cell is None else cell[None], self.types)
        self.n_structures += 1
        energy, forces, virial = results_to_ipi(e[0, 0], f[0], w[0])
        return energy, forces, virial, ""
