"""A dpcompress model as a PES of i-PI's own Python driver (i-PI >= 3.3)::

    i-pi-py_driver -m custom -P $(python -m dpcompress.ipi path) \\
        -o model=water.dpc,template=init.xyz -a water -u

or in process, without a socket, from i-PI's input::

    <ffdirect name='dpcompress' pbc='true'>
      <pes>custom</pes> <pes_path>PATH PRINTED BY python -m dpcompress.ipi path</pes_path>
      <parameters>{model: water.dpc, template: init.xyz}</parameters>
    </ffdirect>

Parameters (``-o key=value,...``): ``model`` (a ``.dpc``, ``.dp`` or ``nep.txt`` file),
``template`` (a file with the atoms in i-PI's order: ``.xyz`` or anything ASE reads), ``threads``
(kernel threads; default all cores), ``pbc`` (``false``: evaluate clusters, ignore the cell).

i-PI loads this file by path and looks up ``__DRIVER_CLASS__``; it is the only dpcompress module
that imports i-PI.  The work is done by :class:`dpcompress.ipi.adapter.IPIAdapter`, as for
``python -m dpcompress.ipi``.
"""

__DRIVER_NAME__ = "dpcompress"
__DRIVER_CLASS__ = "DPCompressDriver"

from ipi.pes.dummy import Dummy_driver  # noqa: E402  (i-PI reads the two names above from the source)

from dpcompress.core.errors import InputError  # noqa: E402
from dpcompress.ipi.adapter import IPIAdapter  # noqa: E402
from dpcompress.ipi.atoms import elements_from  # noqa: E402


class DPCompressDriver(Dummy_driver):
    """i-PI driver class evaluating a dpcompress model.

    Parameters
    ----------
    model : str
        Model file: ``.dpc`` (compressed), DeePMD-kit ``.dp``, GPUMD ``nep.txt``.
    template : str
        File with the atoms in i-PI's order (i-PI's init file), read for the elements only.
    threads : int or None
        Kernel threads; ``None``: all cores.
    pbc : bool
        ``False`` evaluates every structure as a cluster (the cell i-PI sends is ignored).

    Raises
    ------
    InputError
        No model or no template, or what :class:`dpcompress.ipi.adapter.IPIAdapter` raises.
    """

    def __init__(self, model=None, template=None, threads=None, pbc=True, *args, **kwargs):
        self.model = model
        self.template = template
        self.threads = threads
        self.pbc = pbc
        super().__init__(*args, **kwargs)  # calls check_parameters

    def check_parameters(self):
        """Load the model and map the template's elements through its type_map."""
        if self.model is None or self.template is None:
            raise InputError(
                "the dpcompress i-PI driver needs a model and a template: -o model=MODEL.dpc,template=INIT.xyz "
                f"(got model={self.model!r}, template={self.template!r})"
            )
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)):
            raise InputError(f"threads must be an integer, got {self.threads!r}")
        if not isinstance(self.pbc, bool):
            raise InputError(f"pbc must be true or false, got {self.pbc!r}")
        # i-PI parses '-o model=123' into an int: a file name is a string
        self.adapter = IPIAdapter(str(self.model), elements_from(init=str(self.template)),
                                  n_threads=self.threads, periodic=self.pbc)

    def compute_structure(self, cell, pos):
        """Energy (Hartree), forces (Hartree/Bohr), virial (Hartree) and extras of one structure
        (cell vectors as columns and positions in Bohr)."""
        return self.adapter(cell, pos)
