r"""ASE calculator for dpcompress models (compressed ``.dpc`` or DeePMD-kit ``.dp``).

::

    from dpcompress.calculators.ase_calculator import DPCompressCalculator
    atoms.calc = DPCompressCalculator("water.dpc")

Conventions (ASE): energies eV, forces eV/Å, ``stress`` in eV/Å³ in Voigt order
``[xx, yy, zz, yz, xz, xy]``, positive when the cell is under tension:
:math:`\sigma = -W_\text{sym}/V` with :math:`W` DeePMD-kit's virial (eV).
Stress exists only for fully periodic cells.
"""

import os
from typing import Optional, Union

import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from ..core.errors import InputError
from ..models import DPModel
from ..nep import NEPModel
from ..potential import Potential


class DPCompressCalculator(Calculator):
    """ASE calculator wrapping :class:`dpcompress.Potential`.

    Parameters
    ----------
    model : str, os.PathLike, DPModel or Potential
    n_threads : int or None
        ``None``: all cores.
    check_frequency : int or None
        See :class:`dpcompress.Potential`.
    overflow : {"warn", "error", "ignore"}
        What the first neighbor beyond a compressed model's table does; see
        :class:`dpcompress.Potential`.  Ignored when ``model`` is a ``Potential`` (it has its own).
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]
    nolabel = True

    def __init__(self, model: Union[str, os.PathLike, DPModel, NEPModel, Potential], *, n_threads: Optional[int] = None,
                 check_frequency: Optional[int] = None, overflow: str = "warn", **kwargs):
        super().__init__(**kwargs)
        self.potential = model if isinstance(model, Potential) else Potential(
            model, n_threads=n_threads, check_frequency=check_frequency, overflow=overflow)
        self._lookup = {name: k for k, name in enumerate(self.potential.get_type_map())}

    def _types(self, atoms):
        types = np.empty(len(atoms), dtype=np.int64)
        for k, sym in enumerate(atoms.get_chemical_symbols()):
            if sym not in self._lookup:
                raise InputError(f"atom {k} is {sym!r}, which the model's type_map {self.potential.get_type_map()} lacks")
            types[k] = self._lookup[sym]
        return types

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        pbc = np.asarray(atoms.pbc, dtype=bool)
        if pbc.any() and not pbc.all():
            raise InputError(f"mixed periodicity {pbc.tolist()} is not supported: use all True or all False")
        cell = atoms.cell.array[None] if pbc.all() else None
        e, f, v, ae, _ = self.potential.eval(atoms.positions[None], cell, self._types(atoms), atomic=True)
        self.results["energy"] = float(e[0, 0])
        self.results["free_energy"] = float(e[0, 0])
        self.results["energies"] = ae[0, :, 0].copy()
        self.results["forces"] = f[0].copy()
        if pbc.all() and atoms.cell.rank == 3:
            w = v[0].reshape(3, 3)
            stress = -0.5 * (w + w.T) / atoms.get_volume()
            self.results["stress"] = stress.flat[[0, 4, 8, 5, 2, 1]].copy()
        elif "stress" in properties:
            raise PropertyNotImplementedError("stress needs a fully periodic cell")
