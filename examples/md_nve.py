"""A plain NVE molecular-dynamics loop with a dpcompress Potential, serial or under MPI.

    python examples/md_nve.py MODEL SYSTEM [--steps N] [--dt FS]
    mpirun -n 4 python -m mpi4py examples/md_nve.py MODEL SYSTEM     # domain-decomposed

MODEL is a .dpc (compressed), .dp or nep.txt file; SYSTEM a deepmd/npy folder whose
first frame is the start (any elements: masses from ase.data; pip install ase).  Velocities are drawn at
300 K (seeded, identical on every rank); rank 0 prints the conserved energy every 10
steps and at the last one.  Under an MPI launcher (mpi4py's COMM_WORLD has more than one rank) the force
evaluation is domain-decomposed over the ranks; ``--no-mpi`` never imports mpi4py.
"""

import argparse

import numpy as np
from ase.data import atomic_masses, atomic_numbers

from dpcompress import Potential
from dpcompress.data import read_npy_system

AMU_A2_FS2_TO_EV = 103.6427  # 1 amu·Å²/fs² in eV
KB = 8.617333262e-5  # eV/K


def world():
    """MPI's COMM_WORLD when this process is one of several ranks, else None (mpi4py decides, not the environment)."""
    try:
        from mpi4py import MPI
    except ImportError:  # no mpi4py: a plain serial run
        return None
    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("system")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--dt", type=float, default=0.5, help="time step, fs")
    p.add_argument("--no-mpi", action="store_true", help="serial, without importing mpi4py")
    args = p.parse_args(argv)

    comm = None if args.no_mpi else world()
    rank = comm.rank if comm is not None else 0
    pot = Potential(args.model, comm=comm)
    system = read_npy_system(args.system)
    names = system.type_map or tuple(pot.get_type_map())
    symbols = np.array([names[t] for t in system.frame_types(0)])  # element names: any type order of the model
    x = system.coords[0].copy()
    cell = None if system.cells is None else system.cells[0]
    m = np.array([atomic_masses[atomic_numbers[s]] for s in symbols])[:, None]
    rng = np.random.default_rng(0)
    v = rng.normal(size=x.shape) * np.sqrt(KB * 300.0 / (m * AMU_A2_FS2_TO_EV))
    v -= (m * v).sum(axis=0) / m.sum()

    def forces(pos):
        e, f, _ = pot.eval(pos[None], None if cell is None else cell[None], symbols)
        return e[0, 0], f[0]

    e, f = forces(x)
    for step in range(args.steps + 1):
        if (step % 10 == 0 or step == args.steps) and rank == 0:
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
