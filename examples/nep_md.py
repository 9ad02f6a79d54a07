"""Molecular dynamics of a PbTe crystal in ASE with a GPUMD NEP model, tabulated by dpcompress.

    python examples/nep_md.py [NEP_TXT] [--steps N] [--repeat R] [--temperature K]

NEP_TXT defaults to the PbTe NEP4 model of the repository's tests (``tests/data/nep/
PbTe_NEP4_example/nep.txt``: GPUMD's example model, GPL-3.0, see the README next to it).
``dpcompress.compress`` tabulates its radial functions (what ``dpcompress compress -i nep.txt
-o nep.dpc`` writes to a file); the rock-salt crystal (a = 6.46 Å, R x R x R conventional cells)
runs ``--steps`` NVE steps of 2 fs from velocities at the temperature (300 K), printing the
conserved energy every 10 steps and at the last one.  ``--steps 2`` is the short run CI makes.
"""

import argparse
import os

from ase.build import bulk
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet
from ase import units

import dpcompress
from ase_md import run_with_report, thermalize  # examples/ is on sys.path when this runs as a script

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PBTE = os.path.join(REPO, "tests", "data", "nep", "PbTe_NEP4_example", "nep.txt")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("nep", nargs="?", default=PBTE, help="a GPUMD nep.txt for Pb and Te [the tests' PbTe model]")
    p.add_argument("--steps", type=int, default=200, help="MD steps [200]")
    p.add_argument("--repeat", type=int, default=2, help="conventional cells per direction [2: 64 atoms]")
    p.add_argument("--temperature", type=float, default=300.0, help="initial temperature, K [300]")
    args = p.parse_args(argv)

    model = dpcompress.compress(args.nep)  # a NEPModel with tables of its radial functions
    atoms = bulk("PbTe", "rocksalt", a=6.46, cubic=True).repeat(args.repeat)
    atoms.calc = dpcompress.Calculator(model)
    thermalize(atoms, args.temperature)
    Stationary(atoms)
    dyn = VelocityVerlet(atoms, timestep=2.0 * units.fs)

    run_with_report(atoms, dyn, args.steps)


if __name__ == "__main__":
    main()
