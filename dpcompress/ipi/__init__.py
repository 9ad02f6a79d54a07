"""i-PI front end: dpcompress models as force providers for i-PI (path-integral and classical MD).

Three routes, one computation (:class:`dpcompress.ipi.adapter.IPIAdapter` over
:class:`dpcompress.Potential`); see ``docs/ipi.md``:

* ``python -m dpcompress.ipi --address NAME --unix --model M.dpc --init init.xyz``: our own
  socket client (:mod:`dpcompress.ipi.client`); needs no i-PI on the driver's side;
* ``i-pi-py_driver -m custom -P $(python -m dpcompress.ipi path) -o model=M.dpc,template=init.xyz``:
  i-PI's own driver loop with our class (the file ``pes_driver.py`` of this package, the only
  module that imports i-PI), also usable in process through i-PI's ``<ffdirect>``;
* ASE's ``SocketClient`` with :class:`dpcompress.calculators.ase_calculator.DPCompressCalculator`.

Units and conventions on the wire: :mod:`dpcompress.ipi.units`.
"""

from .adapter import IPIAdapter
from .atoms import atom_types, elements_from, parse_elements, read_elements
from .client import IPIClient, ProtocolError
from .units import BOHR_PER_ANGSTROM, HARTREE_PER_EV, results_to_ipi, structure_from_ipi

__all__ = [
    "IPIAdapter",
    "IPIClient",
    "ProtocolError",
    "BOHR_PER_ANGSTROM",
    "HARTREE_PER_EV",
    "atom_types",
    "elements_from",
    "parse_elements",
    "read_elements",
    "results_to_ipi",
    "structure_from_ipi",
]
