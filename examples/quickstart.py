"""Quickstart: compress the bundled water model and evaluate a bundled frame with it.

Run from anywhere after ``pip install .``::

    python examples/quickstart.py

It writes ``water.dpc`` to a temporary folder, evaluates energy and forces of a
192-atom water frame with the compressed model and with the exact uncompressed
one, and prints both next to what DeePMD-kit 3.2.0 computed for the same frame.
"""

import json
import os
import tempfile
import time

import numpy as np

import dpcompress
from dpcompress.data import read_npy_system

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "water")

with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    compressed = dpcompress.compress(os.path.join(HERE, "model.dp"))  # step 0.01, quintic, extrapolate 5
    dpcompress.save_model(compressed, os.path.join(tmp, "water.dpc"))
    print(f"compressed examples/data/water/model.dp in {time.perf_counter() - t0:.2f} s "
          f"(max |table - net| {compressed.compression['max_table_error']:.1e})")
    potential = dpcompress.Potential(os.path.join(tmp, "water.dpc"))

frame = read_npy_system(os.path.join(HERE, "frame"))
energy, force, virial = potential.eval(frame.coords, frame.cells, frame.atom_types)
exact_energy, exact_force, _ = dpcompress.Potential(os.path.join(HERE, "model.dp")).eval(frame.coords, frame.cells, frame.atom_types)
reference = json.load(open(os.path.join(HERE, "deepmd_kit_reference.json")))

print(f"atoms:                 {frame.natoms} ({', '.join(potential.get_type_map())}), rcut {potential.get_rcut()} Å")
print(f"energy (compressed):   {energy[0, 0]:.10f} eV")
print(f"max |force|:           {np.abs(force[0]).max():.10f} eV/Å")
print(f"energy (exact):        {exact_energy[0, 0]:.10f} eV   max |ΔF| compressed-exact {np.abs(force - exact_force).max():.1e} eV/Å")
print(f"energy (DeePMD-kit):   {reference['energy_eV']:.10f} eV   |difference| {abs(energy[0, 0] - reference['energy_eV']):.1e} eV")
