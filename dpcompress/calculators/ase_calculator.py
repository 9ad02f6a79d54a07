r"""ASE calculator for dpcompress models (compressed ``.dpc``, DeePMD-kit ``.dp``, GPUMD ``nep.txt``).

::

    from dpcompress import Calculator        # or dpcompress.calculators.ase_calculator.DPCompressCalculator
    atoms.calc = Calculator("water.dpc")

Conventions (ASE): energies eV, forces eV/Å, ``stress`` in eV/Å³ in Voigt order
``[xx, yy, zz, yz, xz, xy]``, positive when the cell is under tension:
:math:`\sigma = -W_\text{sym}/V` with :math:`W` DeePMD-kit's virial (eV).
Stress exists only for fully periodic cells.  ``atoms.pbc`` is honoured direction by direction:
a slab (``pbc=[True, True, False]``) has no images along c (:meth:`dpcompress.Potential.eval`'s
``pbc``).
"""

import os
from typing import Optional, Union

import numpy as np
from ase.calculators.calculator import Calculator as ASECalculator
from ase.calculators.calculator import PropertyNotImplementedError, all_changes

from ..core.errors import InputError
from ..models import DPModel
from ..nep import NEPModel
from ..potential import Potential

__all__ = ["Calculator", "DPCompressCalculator"]

#: The keywords of ASE's own ``Calculator`` that this calculator passes on (``restart`` is not
#: one: a potential has no files to restart from).
ASE_KEYWORDS = ("label", "atoms", "directory")
#: The keywords of :class:`DPCompressCalculator`'s own.
OWN_KEYWORDS = ("comm", "device", "n_threads", "type_dict", "check_frequency", "overflow")


class DPCompressCalculator(ASECalculator):
    """ASE calculator wrapping :class:`dpcompress.Potential` (also importable as ``dpcompress.Calculator``).

    Parameters
    ----------
    model : str, os.PathLike, DPModel, NEPModel or Potential
        A model file or object (as :class:`dpcompress.Potential` takes it), or a ready
        ``Potential`` (then ``comm``, ``device``, ``n_threads``, ``check_frequency`` and ``overflow``
        must be left at their defaults: the ``Potential`` has its own).
    comm : mpi4py communicator or None
        MPI domain decomposition (:class:`dpcompress.Potential`): every rank makes the calculator and
        the same MD steps, and every rank gets the full result.
    device : str
        ``"cpu"`` (default) or ``"gpu"`` / ``"gpu:N"``.
    n_threads : int or None
        ``None``: all cores.
    type_dict : dict or None
        Element symbol -> type index of the model (DeePMD-kit's ASE calculator's ``type_dict``);
        ``None``: the model's ``type_map``.
    check_frequency : int or None
        See :class:`dpcompress.Potential`.
    overflow : {"warn", "error", "ignore"}
        What the first neighbor beyond a compressed model's table does; see
        :class:`dpcompress.Potential`.
    label, atoms, directory
        ASE's own :class:`ase.calculators.calculator.Calculator` keywords.

    Notes
    -----
    A model with frame or atomic parameters takes them from ``atoms.info["fparam"]`` and
    ``atoms.info["aparam"]`` (DeePMD-kit's ASE calculator's keys; shapes as :meth:`dpcompress.Potential.eval`
    takes them).  ASE does not see a change of ``atoms.info``: call ``calc.reset()`` after changing them.

    Raises
    ------
    TypeError
        An unknown keyword (a typo such as ``n_thread``), naming it and the accepted ones: ASE's base
        class would store it and ignore it.
    InputError
        A bad ``type_dict`` or option, or options given with a ready ``Potential``.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]
    nolabel = True

    def __init__(self, model: Union[str, os.PathLike, DPModel, NEPModel, Potential], *, comm=None,
                 device: str = "cpu", n_threads: Optional[int] = None, type_dict: Optional[dict] = None,
                 check_frequency: Optional[int] = None, overflow: str = "warn", **kwargs):
        unknown = sorted(set(kwargs) - set(ASE_KEYWORDS))
        if unknown:
            raise TypeError(
                f"{type(self).__name__}() got unexpected keyword argument{'s' * (len(unknown) > 1)} "
                f"{', '.join(map(repr, unknown))}; accepted: {', '.join(OWN_KEYWORDS + ASE_KEYWORDS)}"
            )
        super().__init__(**kwargs)
        if isinstance(model, Potential):
            given = {k: v for k, v, default in (("comm", comm, None), ("device", device, "cpu"),
                                                ("n_threads", n_threads, None),
                                                ("check_frequency", check_frequency, None),
                                                ("overflow", overflow, "warn")) if v != default}
            if given:
                raise InputError(f"{sorted(given)} given with a ready Potential, which has its own: "
                                 "pass them to Potential(...) instead")
            self.potential = model
        else:
            self.potential = Potential(model, n_threads=n_threads, check_frequency=check_frequency, overflow=overflow,
                                       comm=comm, device=device)
        type_map = self.potential.get_type_map()
        self._lookup = _type_lookup(type_dict, type_map)

    def set(self, **kwargs):
        """Refuse every parameter change: a model's options are fixed when it is made (unlike ASE's default)."""
        if kwargs:
            raise TypeError(f"{type(self).__name__}.set() takes no parameters (got {', '.join(sorted(kwargs))}); "
                            "make a new calculator to change options")
        return {}

    def _types(self, atoms):
        types = np.empty(len(atoms), dtype=np.int64)
        for k, sym in enumerate(atoms.get_chemical_symbols()):
            if sym not in self._lookup:
                raise InputError(f"atom {k} is {sym!r}, which the model's types {sorted(self._lookup)} lack")
            types[k] = self._lookup[sym]
        return types

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        pbc = tuple(bool(p) for p in atoms.pbc)
        cell = atoms.cell.array[None] if any(pbc) else None
        e, f, v, ae, _ = self.potential.eval(atoms.positions[None], cell, self._types(atoms), atomic=True,
                                             pbc=pbc if any(pbc) else None, fparam=atoms.info.get("fparam"),
                                             aparam=atoms.info.get("aparam"))
        self.results["energy"] = float(e[0, 0])
        self.results["free_energy"] = float(e[0, 0])
        self.results["energies"] = ae[0, :, 0].copy()
        self.results["forces"] = f[0].copy()
        if all(pbc) and atoms.cell.rank == 3:
            w = v[0].reshape(3, 3)
            stress = -0.5 * (w + w.T) / atoms.get_volume()
            self.results["stress"] = stress.flat[[0, 4, 8, 5, 2, 1]].copy()
        elif "stress" in properties:
            raise PropertyNotImplementedError("stress needs a fully periodic cell (atoms.pbc all True)")


def _type_lookup(type_dict, type_map):
    """Element symbol -> type index: ``type_dict`` validated against the model's ``type_map``."""
    if type_dict is None:
        return {name: k for k, name in enumerate(type_map)}
    if not isinstance(type_dict, dict) or not type_dict:
        raise InputError(f"type_dict must be a non-empty dict of element symbol -> type index, got {type_dict!r}")
    out = {}
    for sym, t in type_dict.items():
        if not isinstance(sym, str):
            raise InputError(f"type_dict: key {sym!r} is not an element symbol (str)")
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < len(type_map):
            raise InputError(f"type_dict[{sym!r}] = {t!r}: expected a type index in [0, {len(type_map)}) "
                             f"(the model's type_map is {list(type_map)})")
        out[sym] = int(t)
    return out


#: ``from dpcompress import Calculator``: the name most ASE calculators export.
Calculator = DPCompressCalculator
