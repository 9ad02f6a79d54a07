#!/usr/bin/env python
r"""Make the many-element benchmark model: a 5-type DeePMD-kit se_e2_a model, frozen and compressed.

The model (issue 17, item 5) has the sizes of a production alloy model, not its accuracy: embedding
[25, 50, 100], axis 16, fitting [240, 240, 240], rcut 6 Å, ``type_one_side`` false (25 embedding
nets), ``sel`` 32 per type (an fcc alloy of lattice constant 3.85 Å has about 63 neighbours within
6 Å, 12.6 per type on average; 32 leaves room for local composition swings).  It is trained for
``--steps`` steps only: the timing does not depend on the weights' quality.

Training data: ``--frames`` rattled (σ = 0.1 Å) 3×3×3 fcc supercells (108 atoms) of a random
equiatomic Cu-Ni-Pd-Ag-Au alloy, labelled with ASE's EMT (cheap; any labels would do).  Test frame
(``test_frames.npz``, the frame :mod:`bench_descriptors` replicates ``--rep`` times; use ``--rep 1``):
one rattled ``--cells``\ :sup:`3` fcc supercell, 4 ``cells``\ :sup:`3` atoms (8 → 2048 atoms).

Output (``--out``, default ``$DPC_MANY_ELEMENT_MODELS`` or ``many_element_models``), the layout
``bench_descriptors.py --fixtures OUT --models OUT --descriptors se_e2_a_5types`` reads::

    OUT/se_e2_a_5types/input.json, data/ (deepmd/npy), frozen.pth, frozen.dp, compressed.pth, test_frames.npz

Steps (DeePMD-kit 3.2.0, CPU; ``--dp`` is its ``dp`` command)::

    dp --pt train input.json && dp --pt freeze -o frozen.pth
    dp convert-backend frozen.pth frozen.dp
    dp --pt compress -i frozen.pth -o compressed.pth     # defaults: step 0.01, extrapolate 5

Run with the dpcompress environment's python (it needs ASE for EMT)::

    python benchmarks/make_many_element_model.py --dp /path/to/deepmd/venv/bin/dp [--out DIR]
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

NAME = "se_e2_a_5types"
ELEMENTS = ("Cu", "Ni", "Pd", "Ag", "Au")
LATTICE = 3.85


def alloy(cells, rng, rattle=0.1):
    """A rattled ``cells``³ fcc supercell with random equiatomic types: (coords, box, types)."""
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]) * LATTICE
    grid = np.array([[i, j, k] for i in range(cells) for j in range(cells) for k in range(cells)], float) * LATTICE
    coords = (grid[:, None] + basis[None]).reshape(-1, 3)
    n = len(coords)
    types = rng.permutation(np.arange(n) % len(ELEMENTS))
    coords = coords + rng.normal(0.0, rattle, coords.shape)
    return coords, np.eye(3) * LATTICE * cells, types


def write_training_data(folder, frames, rng):
    """deepmd/npy system of ``frames`` EMT-labelled 108-atom alloy frames."""
    from ase import Atoms
    from ase.calculators.emt import EMT

    os.makedirs(os.path.join(folder, "set.000"), exist_ok=True)
    coords, types0 = [], None
    rows = dict(coord=[], box=[], energy=[], force=[], virial=[])
    for _ in range(frames):
        x, box, types = alloy(3, rng)
        if types0 is None:
            types0 = types
        # one atom list per system: keep the first frame's types, rattle positions only
        atoms = Atoms([ELEMENTS[t] for t in types0], positions=x, cell=box, pbc=True)
        atoms.calc = EMT()
        stress = atoms.get_stress(voigt=False)
        rows["coord"].append(x.ravel())
        rows["box"].append(box.ravel())
        rows["energy"].append(atoms.get_potential_energy())
        rows["force"].append(atoms.get_forces().ravel())
        rows["virial"].append((-atoms.get_volume() * stress).ravel())
        coords.append(x)
    with open(os.path.join(folder, "type.raw"), "w") as fh:
        fh.write("\n".join(str(int(t)) for t in types0) + "\n")
    with open(os.path.join(folder, "type_map.raw"), "w") as fh:
        fh.write("\n".join(ELEMENTS) + "\n")
    for key, v in rows.items():
        np.save(os.path.join(folder, "set.000", key + ".npy"), np.array(v, dtype=np.float64))


def input_json(steps):
    return {
        "model": {
            "type_map": list(ELEMENTS),
            "descriptor": {"type": "se_e2_a", "sel": [32] * len(ELEMENTS), "rcut_smth": 0.5, "rcut": 6.0,
                           "neuron": [25, 50, 100], "resnet_dt": False, "axis_neuron": 16, "type_one_side": False,
                           "precision": "float64", "seed": 1},
            "fitting_net": {"neuron": [240, 240, 240], "resnet_dt": True, "precision": "float64", "seed": 1},
        },
        "learning_rate": {"type": "exp", "decay_steps": 5, "start_lr": 0.001, "stop_lr": 1e-4},
        "loss": {"type": "ener", "start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000, "limit_pref_f": 1,
                 "start_pref_v": 0, "limit_pref_v": 0},
        "training": {"training_data": {"systems": ["data"], "batch_size": 1},
                     "numb_steps": steps, "seed": 10, "disp_file": "lcurve.out", "disp_freq": steps,
                     "save_freq": steps},
    }


def run(cmd, cwd, env):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, env=env, check=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.environ.get("DPC_MANY_ELEMENT_MODELS", "many_element_models"))
    p.add_argument("--dp", default=os.environ.get("DEEPMD_DP", "dp"), help="DeePMD-kit's dp command")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cells", type=int, default=8, help="test frame: cells^3 fcc cells (4 atoms each)")
    p.add_argument("--seed", type=int, default=2026)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    folder = os.path.abspath(os.path.join(a.out, NAME))
    os.makedirs(folder, exist_ok=True)
    write_training_data(os.path.join(folder, "data"), a.frames, rng)
    with open(os.path.join(folder, "input.json"), "w") as fh:
        json.dump(input_json(a.steps), fh, indent=1)
    x, box, types = alloy(a.cells, rng)
    np.savez(os.path.join(folder, "test_frames.npz"), coord=x.reshape(1, -1), box=box.reshape(1, 9),
             atype=types.astype(np.int64))
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", DP_INTRA_OP_PARALLELISM_THREADS="1",
               DP_INTER_OP_PARALLELISM_THREADS="1")
    run([a.dp, "--pt", "train", "input.json"], folder, env)
    run([a.dp, "--pt", "freeze", "-o", "frozen.pth"], folder, env)
    run([a.dp, "convert-backend", "frozen.pth", "frozen.dp"], folder, env)
    run([a.dp, "--pt", "compress", "-i", "frozen.pth", "-o", "compressed.pth"], folder, env)
    print(f"made {folder}: {len(types)}-atom test frame", file=sys.stderr)


if __name__ == "__main__":
    main()
