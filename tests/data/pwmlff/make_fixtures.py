"""Make the tiny PWMLFF DP checkpoints of tests/test_pwmlff.py and PWMLFF's own outputs on them.

Run from the repository root with a Python that has torch, and ``$PWMLFF_SRC`` naming a checkout of
PWMLFF's source (github.com/LonxunQuantum/PWMLFF)::

    PWMLFF_SRC=/path/to/PWMLFF python tests/data/pwmlff/make_fixtures.py

Each model is built by PWMLFF's own ``DP`` / ``TypeDP`` classes (their random initialisation, seeded),
given per-block ``davg``/``dstd`` as PWMLFF's statistics have them, and saved with ``torch.save`` in the
layout of PWMLFF's ``dp_model.ckpt``.  The outputs (energy, forces, virial on rattled periodic frames)
come from PWMLFF's forward (:mod:`pwmlff_reference`).  With ``--public DIR`` it also writes
``public_alloy_refs.npz``: PWMLFF's outputs for the public alloy checkpoints of PWMLFF_library
(``DIR/dp/dp_model.ckpt``, ``DIR/dp_type_embedding/dp_model.ckpt``).
"""

import argparse
import hashlib
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pwmlff_reference as pr  # noqa: E402

#: name -> (atomic numbers, Rmax, Rmin, max_neigh_num, embedding sizes, M2, fitting sizes, embedding
#: resnet_dt, type-embedding properties or None, fcc lattice constant)
MODELS = {
    "cu_1el": ([29], 4.0, 0.5, 30, [4, 8], 4, [10, 10, 1], True, None, 3.61),
    "nicu_2el": ([29, 28], 4.0, 1.0, 30, [6, 6], 3, [8, 8, 1], False, None, 3.56),
    "alcu_te": ([13, 29], 4.0, 0.5, 30, [6, 6], 3, [8, 8, 1], False, ["atomic_number", "atom_mass", "pauling"], 3.8),
}


def fcc_frame(rng, a, ntypes, n=2, rattle=0.15):
    base = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    pts = np.array([b + [i, j, k] for i in range(n) for j in range(n) for k in range(n) for b in base]) * a
    cell = np.eye(3) * a * n + rng.normal(scale=0.05, size=(3, 3))  # a slightly triclinic cell
    frac = pts / (a * n)
    coord = frac @ cell + rng.normal(scale=rattle, size=pts.shape)
    types = rng.integers(0, ntypes, len(pts))
    types[:ntypes] = np.arange(ntypes)
    return coord, cell, types


def make_model(name, spec, rng):
    import torch

    zs, rmax, rmin, mnn, emb, m2, fit, emb_dt, props, a = spec
    nt = len(zs)
    js = {"model_type": "DP", "atom_type": zs, "max_neigh_num": mnn, "seed": 1,
          "model": {"descriptor": {"Rmax": rmax, "Rmin": rmin, "M2": m2, "network_size": emb},
                    "fitting_net": {"network_size": fit}}}
    if props:
        js["model"]["descriptor"]["type_embedding"] = {"physical_property": props}
    # statistics as PWMLFF computes them: one value per (center type, component kind), every slot alike
    davg = np.zeros((nt, nt * mnn, 4))
    dstd = np.zeros((nt, nt * mnn, 4))
    for t in range(nt):
        davg[t, :, 0] = rng.uniform(0.02, 0.06)
        dstd[t, :, 0] = rng.uniform(0.05, 0.1)
        dstd[t, :, 1:] = rng.uniform(0.03, 0.06)
    davg, dstd = davg.reshape(nt, -1), dstd.reshape(nt, -1)
    energy_shift = rng.uniform(-5, -3, nt)
    torch.manual_seed(int(rng.integers(1 << 30)))
    DP, TypeDP, _ = pr.import_pwmlff()
    torch.set_default_dtype(torch.float64)
    cfg = pr.model_config(js, {"embedding_net.0.layers.0.resnet_dt": None} if emb_dt else {})
    model = (TypeDP if props else DP)(cfg, davg, dstd, energy_shift)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # sij_max: the largest raw s of the "training set" (here: the test frames themselves)
    return {"json_file": js, "epoch": 1, "state_dict": state, "davg": davg, "dstd": dstd,
            "energy_shift": energy_shift, "atom_type_order": np.array(zs)}


def pwmlff_compress(path, out, model, dx, order=3):
    """What ``PWMLFF compress path -d dx -o 3`` writes (src/user/ckpt_compress.py's compress_force_field:
    its range and table functions, the same ``compress`` entry), for a type-embedding model."""
    import torch
    import src.user.ckpt_compress as cc
    from utils.atom_type_emb_dict import get_normalized_data_list

    ck = torch.load(path, map_location="cpu", weights_only=False)
    order_types = ck["atom_type_order"].tolist()
    sij, smin, smax, sout, slen, soutlen = cc.set_sij_range(ck["davg"], ck["dstd"], order_types, torch.float64,
                                                            torch.device("cpu"), float(ck["sij_max"]), dx)
    tv = get_normalized_data_list(order_types, ck["json_file"]["model"]["descriptor"]["type_embedding"]
                                  ["physical_property"])
    table = cc.dp_type_model_compress_3order(sij, model, dx, order_types, tv, slen, soutlen, torch.device("cpu"))
    ck["compress"] = {"table": table, "dx": dx, "order": order, "davg": ck["davg"][:, 0], "dstd": ck["dstd"][:, 0],
                      "sij_min": smin, "sij_max": smax, "sij_out_max": sout, "sij_len": slen,
                      "sij_out_len": soutlen, "type_vector": tv}
    torch.save(ck, out)
    print(os.path.basename(out), os.path.getsize(out), "bytes")


def main():
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--public", help="folder with PWMLFF_library's alloy/models (dp/, dp_type_embedding/)")
    args = ap.parse_args()
    rng = np.random.default_rng(20261206)
    _, _, normalized = pr.import_pwmlff()
    for name, spec in MODELS.items():
        ckpt = make_model(name, spec, rng)
        zs, rmax, rmin, a = spec[0], spec[1], spec[2], spec[-1]
        frames = [fcc_frame(rng, a, len(zs)) for _ in range(2)]
        smax = 0.0
        for coord, cell, types in frames:
            _, dr = pr.neighbor_arrays(coord, cell, types, len(zs), rmax, spec[3])
            r = dr[..., 0][dr[..., 0] > 0]
            u = np.clip((r - rmin) / (rmax - rmin), 0, 1)
            smax = max(smax, float(np.max((u**3 * (-6 * u**2 + 15 * u - 10) + 1) / r)))
        ckpt["sij_max"] = torch.tensor(smax)
        path = os.path.join(HERE, f"{name}.ckpt")
        torch.save(ckpt, path)
        model = pr.load(torch.load(path, map_location="cpu", weights_only=False))
        out = [pr.evaluate(model, c, cell, t, zs) for c, cell, t in frames]
        tv = normalized(zs, spec[8]) if spec[8] else None
        # a frame without the model's first element: PWMLFF told the types present (its inference)
        coord, cell, types = fcc_frame(rng, a, len(zs))
        types[types == 0] = len(zs) - 1
        present = sorted(set(np.array(zs)[types].tolist()), key=zs.index)
        e_p, f_p, v_p = pr.evaluate(model, coord, cell, types, zs, present=present)
        np.savez_compressed(os.path.join(HERE, f"{name}_ref.npz"),
                            miss_coord=coord, miss_cell=cell, miss_types=types, miss_energy=e_p, miss_force=f_p,
                            miss_virial=v_p, miss_present=np.array([zs.index(z) for z in present]),
                            coord=np.array([f[0] for f in frames]), cell=np.array([f[1] for f in frames]),
                            types=np.array([f[2] for f in frames]), energy=np.array([o[0] for o in out]),
                            force=np.array([o[1] for o in out]), virial=np.array([o[2] for o in out]),
                            type_vectors=np.array([tv[z] for z in zs]) if tv else np.zeros((0,)))
        print(name, os.path.getsize(path), "bytes;", [round(o[0], 6) for o in out])
        if spec[8]:
            pwmlff_compress(path, os.path.join(HERE, f"{name}_pwmlff_cmp.ckpt"), model, dx=0.05)
    if args.public:
        refs = {}
        for key in ("dp", "dp_type_embedding"):
            path = os.path.join(args.public, key, "dp_model.ckpt")
            ck = torch.load(path, map_location="cpu", weights_only=False)
            zs = ck["json_file"]["atom_type"]
            model = pr.load(ck)
            prng = np.random.default_rng(7)
            frames = [fcc_frame(prng, 3.75, len(zs), n=4, rattle=0.1) for _ in range(2)]
            out = [pr.evaluate(model, c, cell, t, zs) for c, cell, t in frames]
            refs[f"{key}_sha256"] = np.array(hashlib.sha256(open(path, "rb").read()).hexdigest())
            refs[f"{key}_coord"] = np.array([f[0] for f in frames])
            refs[f"{key}_cell"] = np.array([f[1] for f in frames])
            refs[f"{key}_types"] = np.array([f[2] for f in frames])
            refs[f"{key}_energy"] = np.array([o[0] for o in out])
            refs[f"{key}_force"] = np.array([o[1] for o in out])
            refs[f"{key}_virial"] = np.array([o[2] for o in out])
            if ck["json_file"]["model"]["descriptor"].get("type_embedding"):
                props = ck["json_file"]["model"]["descriptor"]["type_embedding"]["physical_property"]
                tv = normalized(zs, props)
                refs[f"{key}_type_vectors"] = np.array([tv[z] for z in zs])
            print(key, [round(o[0], 6) for o in out])
        np.savez_compressed(os.path.join(HERE, "public_alloy_refs.npz"), **refs)


if __name__ == "__main__":
    main()
