"""Command line: ``dpcompress <command> ...``.

Commands
--------
info FILE
    What a model file holds (descriptor, sizes, types, min_nbor_dist).
eval MODEL DATA
    Evaluate a model on every frame of training-data systems (deepmd/npy
    directories or deepmd/hdf5 files); print energy and max |force| per frame
    and, when the data carry labels, the errors against them.
"""

import argparse
import sys

import numpy as np

from .errors import DPCompressError


def _cmd_info(args):
    from .models import load_model

    m = load_model(args.file)
    d = m.descriptor
    print(f"file:            {args.file}")
    print(f"type_map:        {list(m.type_map)}")
    print(f"descriptor:      {d.type_name}  rcut={d.rcut} Å  rcut_smth={d.rcut_smth} Å  sel={list(d.sel)}")
    print(f"embedding:       neuron={list(d.neuron)}  axis_neuron={d.axis_neuron}  type_one_side={d.type_one_side}  activation={d.activation}")
    widths = [m.fitting.networks[0].in_dim] + [l.n_out for l in m.fitting.networks[0].layers]
    print(f"fitting:         {len(m.fitting.networks)} net(s), widths {widths}")
    print(f"exclusions:      descriptor {sorted(d.exclude_types)}  pair {sorted(m.pair_exclude_types)}  atom {sorted(m.atom_exclude_types)}")
    print(f"min_nbor_dist:   {m.min_nbor_dist if m.min_nbor_dist is not None else 'not stored'}")
    return 0


def _cmd_eval(args):
    from .data import read_systems
    from .potential import Potential

    pot = Potential(args.model, n_threads=args.threads)
    for system in read_systems(args.data):
        types = system.atom_types
        if system.type_map is not None:
            names = [system.type_map[t] for t in np.ravel(types)]
            types = np.asarray(names).reshape(np.shape(types))
        e, f, _ = pot.eval(system.coords, system.cells, types, mixed_type=np.ndim(types) == 2)
        print(f"# {system.name}: {system.nframes} frames, {system.natoms} atoms")
        for k in range(system.nframes):
            line = f"frame {k:4d}  energy {e[k, 0]:.10f} eV  max|F| {np.abs(f[k]).max():.6f} eV/Å"
            if system.energy is not None:
                line += f"  |ΔE|/atom vs label {abs(e[k, 0] - system.energy[k]) / system.natoms:.3e} eV"
            print(line)
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="dpcompress", description="Compress and evaluate Deep Potential models.")
    sub = p.add_subparsers(dest="command", required=True)
    pi = sub.add_parser("info", help="describe a model file")
    pi.add_argument("file")
    pi.set_defaults(func=_cmd_info)
    pe = sub.add_parser("eval", help="evaluate a model on training-data frames")
    pe.add_argument("model")
    pe.add_argument("data", nargs="+", help="deepmd/npy system directories (searched recursively) or deepmd/hdf5 files")
    pe.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    pe.set_defaults(func=_cmd_eval)
    return p


def main(argv=None):
    """Entry point of the ``dpcompress`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DPCompressError as exc:
        print(f"dpcompress {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
