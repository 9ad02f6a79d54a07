"""Molecular dynamics of liquid water in ASE with the dpcompress calculator.

    python examples/ase_md.py [--steps N] [--thermostat {langevin,nve}] [--model MODEL]

Compresses the bundled water model (``examples/data/water/model.dp``, about a second) unless
``--model`` names a ``.dpc`` (or any model file), puts the bundled 192-atom frame in an ASE
``Atoms``, draws velocities at 300 K and runs ``--steps`` steps of 0.5 fs: Langevin at 300 K
(default) or NVE (velocity Verlet).  Prints the potential, kinetic and total energy and the
temperature every 10 steps and at the last one.  ``--steps 2`` is the short run CI makes.
"""

import argparse
import os

import numpy as np
from ase import Atoms, units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet

import dpcompress
from dpcompress.data import read_npy_system

WATER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "water")


def thermalize(atoms, temperature_K):
    """Maxwell-Boltzmann momenta at ``temperature_K`` (seeded: every run starts alike)."""
    m = atoms.get_masses()[:, None]
    atoms.set_momenta(np.random.default_rng(0).normal(size=(len(atoms), 3)) * np.sqrt(m * units.kB * temperature_K))


def run_with_report(atoms, dyn, steps):
    """Run ``steps`` steps of ``dyn``, printing the energies at step 0, every 10 steps and at the last."""

    def report():
        step = dyn.get_number_of_steps()
        if step % 10 and step != steps:
            return
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        print(f"step {step:6d}  potential {epot:.6f} eV  kinetic {ekin:.6f} eV  total {epot + ekin:.6f} eV  "
              f"T {atoms.get_temperature():.1f} K", flush=True)

    dyn.attach(report, interval=1)  # ASE calls it at step 0 too
    dyn.run(steps)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200, help="MD steps [200]")
    p.add_argument("--thermostat", choices=("langevin", "nve"), default="langevin", help="[langevin]")
    p.add_argument("--model", default=None, help="a model file (default: compress the bundled water model)")
    p.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    args = p.parse_args(argv)

    model = args.model or dpcompress.compress(os.path.join(WATER, "model.dp"))  # a DPModel, tabulated in memory
    frame = read_npy_system(os.path.join(WATER, "frame"))
    symbols = [frame.type_map[t] for t in frame.frame_types(0)]
    atoms = Atoms(symbols, positions=frame.coords[0], cell=frame.cells[0], pbc=True)
    atoms.calc = dpcompress.Calculator(model, n_threads=args.threads)

    thermalize(atoms, 300.0)
    Stationary(atoms)
    dt = 0.5 * units.fs
    if args.thermostat == "nve":
        dyn = VelocityVerlet(atoms, timestep=dt)
    else:
        dyn = Langevin(atoms, timestep=dt, temperature_K=300, friction=0.01 / units.fs, fixcm=False,
                       rng=np.random.default_rng(1))

    run_with_report(atoms, dyn, args.steps)


if __name__ == "__main__":
    main()
