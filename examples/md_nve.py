"""A plain NVE molecular-dynamics loop with a dpcompress Potential, serial or under MPI.

    python examples/md_nve.py MODEL SYSTEM [--steps N] [--dt FS]
    mpirun -n 4 python -m mpi4py examples/md_nve.py MODEL SYSTEM     # domain-decomposed

MODEL is a .dpc (compressed) or .dp file; SYSTEM a deepmd/npy folder whose first
frame is the start.  Velocities are drawn at 300 K (seeded, identical on every
rank); rank 0 prints the conserved energy every 10 steps.
"""

import argparse
import os

import numpy as np

from dpcompress import Potential
from dpcompress.data import read_npy_system

AMU_A2_FS2_TO_EV = 103.6427  # 1 amu·Å²/fs² in eV
KB = 8.617333262e-5  # eV/K
MASSES = {"H": 1.008, "O": 15.999, "C": 12.011, "N": 14.007}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("system")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--dt", type=float, default=0.5, help="time step, fs")
    args = p.parse_args(argv)

    comm = None
    if "OMPI_COMM_WORLD_SIZE" in os.environ or "PMI_SIZE" in os.environ:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    rank = comm.rank if comm is not None else 0
    pot = Potential(args.model, comm=comm)
    system = read_npy_system(args.system)
    names = system.type_map or tuple(pot.get_type_map())
    types = system.frame_types(0)
    x = system.coords[0].copy()
    cell = None if system.cells is None else system.cells[0]
    m = np.array([MASSES[names[t]] for t in types])[:, None]
    rng = np.random.default_rng(0)
    v = rng.normal(size=x.shape) * np.sqrt(KB * 300.0 / (m * AMU_A2_FS2_TO_EV))
    v -= (m * v).sum(axis=0) / m.sum()

    def forces(pos):
        e, f, _ = pot.eval(pos[None], None if cell is None else cell[None], types)
        return e[0, 0], f[0]

    e, f = forces(x)
    for step in range(args.steps + 1):
        if step % 10 == 0 and rank == 0:
            kin = 0.5 * (m * v * v).sum() * AMU_A2_FS2_TO_EV
            print(f"step {step:6d}  potential {e:.6f} eV  kinetic {kin:.6f} eV  total {e + kin:.6f} eV", flush=True)
        if step == args.steps:
            break
        v += 0.5 * args.dt * f / (m * AMU_A2_FS2_TO_EV)
        x += args.dt * v
        e, f = forces(x)
        v += 0.5 * args.dt * f / (m * AMU_A2_FS2_TO_EV)


if __name__ == "__main__":
    main()
