"""Quickstart: evaluate the bundled water model on a bundled frame.

Run from anywhere after ``pip install .``::

    python examples/quickstart.py

It prints the energy and the largest force component, next to what DeePMD-kit
3.2.0 computed for the same model and frame.
"""

import json
import os

import numpy as np

import dpcompress
from dpcompress.data import read_npy_system

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "water")

potential = dpcompress.Potential(os.path.join(HERE, "model.dp"))
frame = read_npy_system(os.path.join(HERE, "frame"))
energy, force, virial = potential.eval(frame.coords, frame.cells, frame.atom_types)

reference = json.load(open(os.path.join(HERE, "deepmd_kit_reference.json")))
print(f"model:            examples/data/water/model.dp ({', '.join(potential.get_type_map())}, rcut {potential.get_rcut()} Å)")
print(f"atoms:            {frame.natoms}")
print(f"energy:           {energy[0, 0]:.10f} eV")
print(f"max |force|:      {np.abs(force[0]).max():.10f} eV/Å")
print(f"DeePMD-kit energy {reference['energy_eV']:.10f} eV  (|difference| {abs(energy[0, 0] - reference['energy_eV']):.1e} eV)")
