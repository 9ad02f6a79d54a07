"""PWMLFF's own DP inference on a frame, for the reference numbers of tests/test_pwmlff.py.

Run with a Python that has torch and a checkout of PWMLFF's source (github.com/LonxunQuantum/PWMLFF)
named by ``$PWMLFF_SRC`` (nothing of PWMLFF is copied here).  PWMLFF builds its neighbor list with a
Fortran extension; this module builds the same input arrays in numpy instead (every neighbor with
0 < r < Rmax, per neighbor type in ``max_neigh_num`` slots, 1-based indices, ``dR = r_j - r_i``) and
then calls PWMLFF's ``DP`` / ``TypeDP`` forward, which computes energies and (by autograd) forces.
"""

import os
import sys
import types

import numpy as np


def import_pwmlff():
    """PWMLFF's model classes; its compiled ops library (GPU kernels) is not needed on CPU."""
    src = os.environ.get("PWMLFF_SRC")
    if not src or not os.path.isdir(os.path.join(src, "src", "model")):
        raise SystemExit("set PWMLFF_SRC to a checkout of LonxunQuantum/PWMLFF (with src/ and utils/)")
    import torch

    torch.ops.load_library = lambda path: None  # the CPU path never calls the custom ops
    sys.path[:0] = [src, os.path.join(src, "src")]
    for name in ("src.lib", "src.lib.NeighConst", "NeighConst", "matplotlib", "matplotlib.pyplot"):
        # imported by PWMLFF's modules but unused here: the Fortran neighbor finder, plotting
        stub = types.ModuleType(name)
        stub.__path__ = []
        stub.__getattr__ = lambda attr: None
        sys.modules.setdefault(name, stub)
    from src.model.dp_dp import DP
    from src.model.dp_dp_typ_emb import TypeDP
    from utils.atom_type_emb_dict import get_normalized_data_list

    return DP, TypeDP, get_normalized_data_list


def model_config(js, state):
    """The config dict PWMLFF's DP/TypeDP constructors read, from a checkpoint's json_file."""
    d = js["model"]["descriptor"]
    f = js["model"]["fitting_net"]
    emb_dt = any(k.startswith("embedding_net.") and k.endswith("resnet_dt") for k in state)
    cfg = {
        "model_type": "DP",
        "atomType": [{"type": z, "Rc": d["Rmax"], "Rm": d["Rmin"]} for z in js["atom_type"]],
        "M2": d["M2"], "Rc_M": d["Rmax"], "maxNeighborNum": js["max_neigh_num"], "training_type": "float64",
        "net_cfg": {
            "embedding_net": {"network_size": d["network_size"], "bias": True, "resnet_dt": emb_dt,
                              "activation": "tanh"},
            "fitting_net": {"network_size": f["network_size"], "bias": True, "resnet_dt": True, "activation": "tanh"},
        },
    }
    if d.get("type_embedding"):
        cfg["net_cfg"]["type_embedding_net"] = {"network_size": [], "bias": True, "resnet_dt": False,
                                                "activation": "tanh",
                                                "physical_property": d["type_embedding"]["physical_property"]}
    return cfg


def load(ckpt):
    """PWMLFF's model object for a checkpoint dict (torch.load'ed), state loaded strictly."""
    import torch

    DP, TypeDP, _ = import_pwmlff()
    js = ckpt["json_file"]
    cfg = model_config(js, ckpt["state_dict"])
    cls = TypeDP if js["model"]["descriptor"].get("type_embedding") else DP
    torch.set_default_dtype(torch.float64)  # PWMLFF's training_type float64; load_state_dict keeps it
    model = cls(cfg, ckpt["davg"], ckpt["dstd"], ckpt["energy_shift"])
    model.load_state_dict(ckpt["state_dict"], strict=True)
    for name, p in model.named_parameters():
        assert p.dtype == torch.float64 and torch.equal(p.detach(), ckpt["state_dict"][name].double()), name
    model.eval()
    return model


def neighbor_arrays(coord, cell, types, ntypes, rmax, max_neigh):
    """PWMLFF's ``list_neigh`` (1-based, 0 = empty) and ``ImageDR`` ([r, dx, dy, dz], dR = r_j - r_i)
    for one periodic frame; neighbors sorted by distance within each type block."""
    n = len(coord)
    shifts = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]) @ cell
    if np.min(np.linalg.norm(cell, axis=1)) <= rmax:
        raise ValueError("cell too small for one image shell")
    list_neigh = np.zeros((n, ntypes * max_neigh), dtype=np.int32)
    dr = np.zeros((n, ntypes * max_neigh, 4))
    for i in range(n):
        d = (coord[None, :, :] + shifts[:, None, :]) - coord[i]
        r = np.linalg.norm(d, axis=-1)
        for t in range(ntypes):
            sel = [(r[s, j], j, s) for s in range(len(shifts)) for j in range(n)
                   if types[j] == t and 1e-8 < r[s, j] < rmax]
            sel.sort()
            if len(sel) > max_neigh:
                raise ValueError(f"atom {i} has {len(sel)} neighbors of type {t} (> {max_neigh})")
            for k, (rr, j, s) in enumerate(sel):
                list_neigh[i, t * max_neigh + k] = j + 1
                dr[i, t * max_neigh + k] = (rr, *d[s, j])
    return list_neigh, dr


def evaluate(model, coord, cell, types, atom_numbers, present=None):
    """PWMLFF's total energy, forces (natoms, 3) and virial (9,) of one frame.

    ``present``: the atomic numbers PWMLFF is told are in the frame (its ``atom_type`` argument;
    default every type of the model, the frames here contain every element).
    """
    import torch

    types = np.asarray(types)
    order = np.argsort(types, kind="stable")  # PWMLFF concatenates atomic energies type by type
    inv = np.argsort(order)
    c, t = coord[order], types[order]
    ln, dr = neighbor_arrays(c, cell, t, len(atom_numbers), model.Rmax, model.maxNeighborNum)
    # list_neigh holds indices into the sorted frame already
    at = torch.tensor(np.asarray(atom_numbers if present is None else present))
    etot, ei, force, _, virial = model(torch.tensor(ln)[None], torch.tensor(t.astype(np.int32)), at,
                                       torch.tensor(dr)[None], 0)
    f = force.detach().numpy()[0][: len(c)]
    return float(etot.detach().numpy().reshape(-1)[0]), f[inv], virial.detach().numpy()[0]
