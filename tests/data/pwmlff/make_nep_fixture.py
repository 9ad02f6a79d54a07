"""Make the tiny PWMLFF NEP checkpoint of tests/test_pwmlff_nep.py and PWMLFF's own nep.txt of it.

Run from the repository root with a Python that has torch, and ``$PWMLFF_SRC`` naming a checkout of
PWMLFF's source (github.com/LonxunQuantum/PWMLFF)::

    PWMLFF_SRC=/path/to/PWMLFF python tests/data/pwmlff/make_nep_fixture.py

PWMLFF's ``NEP`` class needs its compiled custom ops, so the checkpoint is written here with
``torch.save`` in the layout of a public ``nep_model.ckpt`` (PWMLFF's ``example/Ag-Au-D3/NEP``: the keys
``json_file``, ``epoch``, ``state_dict`` (an OrderedDict of tensors), ``energy_shift``, ``q_scaler``,
``atom_type_order``), small and with seeded random parameters.  The references are written by
PWMLFF's own conversions (``utils/nep_to_gpumd.py``, ``extract_model``): ``nep_tiny_to_lmps.txt`` as
``PWMLFF toneplmps`` writes it and ``nep_tiny_gpumd_3_5.txt`` as ``PWMLFF togpumd -t 29 8 -n 3 5``.
"""

import collections
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TYPES = [29, 8]  # Cu, O
N_MAX, BASIS, L_MAX, WIDTH = [4, 3], [5, 4], [4, 2, 1], 6


def main():
    src = os.environ.get("PWMLFF_SRC")
    if not src:
        sys.exit("set PWMLFF_SRC to a checkout of PWMLFF's source")
    sys.path.insert(0, os.path.join(src, "utils"))
    import nep_to_gpumd  # PWMLFF's conversion

    rng = np.random.default_rng(17)
    nt = len(TYPES)
    dim = N_MAX[0] + 1 + (N_MAX[1] + 1) * L_MAX[0] + (N_MAX[1] + 1) * 2
    state = collections.OrderedDict()
    state["c_param_2"] = torch.tensor(rng.uniform(-1, 1, (nt, nt, N_MAX[0] + 1, BASIS[0] + 1)))
    state["c_param_3"] = torch.tensor(rng.uniform(-1, 1, (nt, nt, N_MAX[1] + 1, BASIS[1] + 1)))
    for t in range(nt):
        state[f"fitting_net.{t}.layers.0.weight"] = torch.tensor(rng.normal(0, 0.5, (dim, WIDTH)))
        state[f"fitting_net.{t}.layers.0.bias"] = torch.tensor(rng.normal(0, 0.5, (1, WIDTH)))
        state[f"fitting_net.{t}.layers.1.weight"] = torch.tensor(rng.normal(0, 0.5, (WIDTH, 1)))
        state[f"fitting_net.{t}.layers.1.bias"] = torch.tensor([[-3.5 - t]])
    ckpt = {
        "json_file": {"model_type": "NEP", "atom_type": TYPES, "max_neigh_num": 100,
                      "model": {"descriptor": {"cutoff": [4.5, 3.5], "n_max": N_MAX, "basis_size": BASIS,
                                               "l_max": L_MAX},
                                "fitting_net": {"network_size": [WIDTH, 1]}}},
        "epoch": 1,
        "state_dict": state,
        "energy_shift": np.array([-3.5, -4.5]),
        "q_scaler": rng.uniform(0.5, 3.0, dim),
        "atom_type_order": np.array(TYPES),
    }
    path = os.path.join(HERE, "nep_tiny.ckpt")
    torch.save(ckpt, path)
    _load = torch.load
    # PWMLFF was written for torch < 2.6 (weights_only=False); this file was written just above
    torch.load = lambda *a, **k: _load(*a, **{**k, "weights_only": False})
    text, _, _ = nep_to_gpumd.extract_model(path)
    with open(os.path.join(HERE, "nep_tiny_to_lmps.txt"), "w") as fh:
        fh.write(text)
    text, _, _ = nep_to_gpumd.extract_model(path, [29, 8], [3, 5], togpumd=True)
    with open(os.path.join(HERE, "nep_tiny_gpumd_3_5.txt"), "w") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
