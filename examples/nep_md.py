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

import numpy as np
from ase.build import bulk
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet
from ase import units

import dpcompress

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PBTE = os.path.join(REPO, "tests", "data", "nep", "PbTe_NEP4_example", "nep.txt")


def thermalize(atoms, temperature_K):
    """Maxwell-Boltzmann momenta at ``temperature_K`` (seeded: every run starts alike)."""
    m = atoms.get_masses()[:, None]
    atoms.set_momenta(np.random.default_rng(0).normal(size=(len(atoms), 3)) * np.sqrt(m * units.kB * temperature_K))


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

    def report():
        step = dyn.get_number_of_steps()
        if step % 10 and step != args.steps:
            return
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        print(f"step {step:6d}  potential {epot:.6f} eV  kinetic {ekin:.6f} eV  total {epot + ekin:.6f} eV  "
              f"T {atoms.get_temperature():.1f} K", flush=True)

    dyn.attach(report, interval=1)  # ASE calls it at step 0 too
    dyn.run(args.steps)


if __name__ == "__main__":
    main()
