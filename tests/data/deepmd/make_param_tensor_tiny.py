"""Train, freeze, convert, compress and evaluate the tiny fparam/aparam, dipole, polar and se_atten (v1) models.

Run from the repository root with DeePMD-kit 3.2.0's Python (PyTorch backend, CPU)::

    CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=1 /path/to/deepmd-venv/bin/python \
        tests/data/deepmd/make_param_tensor_tiny.py --work /tmp/dpc_tiny_build [--only NAME ...]

Shared data: ``$DPC_SHARED_FIXTURES`` (the shared DeePMD-kit fixtures folder, ``.../fixtures/deepmd``) or
``../shared/fixtures/deepmd`` next to the repository; the water training data are read from its
``water-data``.  The test frames are the repository's own
``tests/data/deepmd/se_e2_a_tiny/test_frames.npz`` (its first ``NFRAMES`` frames).

Per model ``NAME`` (folder ``tests/data/deepmd/NAME``):

1. derived training data under ``--work/data`` (``train/data_0`` and ``valid/data_3`` of the water data, energies
   and forces kept) with *synthetic* labels (see :func:`synthetic_labels`): ``fparam.npy`` [nf, 1],
   ``aparam.npy`` [nf, natoms], ``dipole.npy`` [nf, 3], ``polarizability.npy`` [nf, 9];
2. ``dp --pt train input.json`` (tiny nets, ``STEPS`` steps), ``dp --pt freeze -o frozen.pth``,
   ``dp convert-backend frozen.pth frozen.dp``, ``dp --pt compress -i frozen.pth -o compressed.pth``;
3. references by DeePMD-kit's ``DeepPot`` / ``DeepDipole`` / ``DeepPolar`` on frozen.pth and compressed.pth.

The ``default_fparam`` variant (``se_e2_a_fparam_default_tiny``) is not trained: it is the trained
``se_e2_a_fparam_tiny`` model with ``fitting.default_fparam`` set in its serialized tree and written back by
DeePMD-kit (``deepmd.dpmodel.utils.serialization.save_dp_model``), then converted/compressed/evaluated like
the others (a model trained with ``default_fparam`` differs from one without only in that entry).
Training quality is irrelevant: the fixtures test that an evaluator reproduces DeePMD-kit's numbers.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
FRAMES = os.path.join(HERE, "se_e2_a_tiny", "test_frames.npz")
NFRAMES = 2
STEPS = 150

DESCRIPTOR_SE_E2_A = {
    "type": "se_e2_a", "sel": [46, 92], "rcut_smth": 0.5, "rcut": 6.0, "neuron": [4, 8, 16],
    "resnet_dt": False, "axis_neuron": 4, "type_one_side": False, "precision": "float64", "seed": 1,
}
DESCRIPTOR_SE_ATTEN = {
    "type": "se_atten", "sel": 120, "rcut_smth": 0.5, "rcut": 6.0, "neuron": [4, 8, 16],
    "resnet_dt": False, "axis_neuron": 4, "tebd_dim": 4, "tebd_input_mode": "strip", "attn": 128,
    "attn_layer": 0, "attn_dotr": True, "attn_mask": False, "precision": "float64", "seed": 1,
}
DESCRIPTOR_SE_ATTEN_V2 = {
    "type": "se_atten_v2", "sel": 120, "rcut_smth": 0.5, "rcut": 6.0, "neuron": [4, 8, 16],
    "resnet_dt": False, "axis_neuron": 4, "tebd_dim": 4, "attn": 128, "attn_layer": 0, "precision": "float64",
    "seed": 1,
}
FITTING = {"neuron": [16, 16], "resnet_dt": True, "precision": "float64", "seed": 1}
LOSS_ENER = {"type": "ener", "start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000,
             "limit_pref_f": 1, "start_pref_v": 0, "limit_pref_v": 0}
# DeePMD-kit 3.2's PyTorch backend ignores the fitting's ``sel_type`` (TensorFlow only; the argument check
# accepts it silently): its selection is the complement of the model's ``atom_exclude_types`` (copied into the
# fitting's ``exclude_types``).  Both are given, so that the model predicts for O only, as sel_type [0] means.
LOSS_TENSOR = {"type": "tensor", "pref": 1.0, "pref_atomic": 0.0}

MODELS = {
    "se_e2_a_fparam_tiny": dict(descriptor=DESCRIPTOR_SE_E2_A,
                                fitting=dict(FITTING, numb_fparam=1, numb_aparam=1),
                                loss=LOSS_ENER, kind="ener"),
    "dipole_tiny": dict(descriptor=DESCRIPTOR_SE_E2_A,
                        fitting=dict(FITTING, type="dipole", sel_type=[0]), model_extra={"atom_exclude_types": [1]},
                        loss=LOSS_TENSOR, kind="dipole"),
    "polar_tiny": dict(descriptor=DESCRIPTOR_SE_E2_A,
                       fitting=dict(FITTING, type="polar", sel_type=[0]), model_extra={"atom_exclude_types": [1]},
                       loss=LOSS_TENSOR, kind="polar"),
    "se_atten_tiny": dict(descriptor=DESCRIPTOR_SE_ATTEN, fitting=FITTING, loss=LOSS_ENER, kind="ener"),
    # the tensor kinds' other branches: a dipole on se_atten_v2, a polarizability without fit_diag and with scale
    "dipole_atten_v2_tiny": dict(descriptor=DESCRIPTOR_SE_ATTEN_V2,
                                 fitting=dict(FITTING, type="dipole", sel_type=[0]),
                                 model_extra={"atom_exclude_types": [1]}, loss=LOSS_TENSOR, kind="dipole"),
    "dipole_fparam_tiny": dict(descriptor=DESCRIPTOR_SE_E2_A,
                               fitting=dict(FITTING, type="dipole", sel_type=[0], numb_fparam=1, numb_aparam=1),
                               model_extra={"atom_exclude_types": [1]}, loss=LOSS_TENSOR, kind="dipole"),
    "polar_full_tiny": dict(descriptor=DESCRIPTOR_SE_E2_A,
                            fitting=dict(FITTING, type="polar", sel_type=[0], fit_diag=False, scale=[1.7, 1.0]),
                            model_extra={"atom_exclude_types": [1]}, loss=LOSS_TENSOR, kind="polar"),
}
DEFAULT_VARIANT = "se_e2_a_fparam_default_tiny"
DEFAULT_FPARAM = [1.15]


def shared_fixtures():
    root = os.environ.get("DPC_SHARED_FIXTURES")
    if not root:
        root = os.path.join(os.path.dirname(REPO), "shared", "fixtures", "deepmd")
    if not os.path.isdir(os.path.join(root, "water-data")):
        sys.exit(f"no water data under {root}/water-data: set DPC_SHARED_FIXTURES")
    return root


def min_image_vectors(pos_o, pos_h, box):
    """Minimum-image vectors r_H - r_O, shape [nO, nH, 3] (general cell via fractional coordinates)."""
    d = pos_h[None, :, :] - pos_o[:, None, :]
    frac = d @ np.linalg.inv(box)
    frac -= np.round(frac)
    return frac @ box


def synthetic_labels(coord, box, atype, system_id):
    """Synthetic per-frame labels (smooth functions of the frame, quality irrelevant).

    fparam[f] = 1 + 0.25 cos(0.7 f + system_id); aparam[f, i] = 0.3 sin(0.11 i + 0.5 f) + (0.2 if O else -0.1);
    atomic dipole of O = 0.5 sum_{H within 1.25 A} (r_H - r_O), H: none (sel_type [0]);
    atomic polarizability of O = 0.3 I + sum_{H within 1.25 A} d d^T; global labels = sums over atoms.
    """
    nf = coord.shape[0]
    natoms = atype.size
    f = np.arange(nf, dtype=float)[:, None]
    i = np.arange(natoms, dtype=float)[None, :]
    fparam = 1.0 + 0.25 * np.cos(0.7 * f + system_id)
    aparam = 0.3 * np.sin(0.11 * i + 0.5 * f) + np.where(atype == 0, 0.2, -0.1)[None, :]
    dipole = np.zeros((nf, 3))
    polar = np.zeros((nf, 3, 3))
    for k in range(nf):
        pos = coord[k].reshape(natoms, 3).astype(np.float64)
        cell = box[k].reshape(3, 3).astype(np.float64)
        d = min_image_vectors(pos[atype == 0], pos[atype == 1], cell)
        near = (np.linalg.norm(d, axis=-1) < 1.25)[..., None]
        dipole[k] = 0.5 * (d * near).sum(axis=(0, 1))
        polar[k] = 0.3 * np.eye(3) * np.sum(atype == 0) + np.einsum("ohx,ohy->xy", d * near, d)
    return {"fparam": fparam, "aparam": aparam, "dipole": dipole, "polarizability": polar.reshape(nf, 9)}


def make_data(water, work):
    out = {}
    for sid, sub in enumerate(("train/data_0", "valid/data_3")):
        src = os.path.join(water, sub)
        dst = os.path.join(work, "data", sub)
        shutil.rmtree(dst, ignore_errors=True)
        os.makedirs(os.path.join(dst, "set.000"))
        for name in ("type.raw", "type_map.raw"):
            shutil.copy(os.path.join(src, name), dst)
        atype = np.loadtxt(os.path.join(src, "type.raw"), dtype=int)
        arrays = {k: np.load(os.path.join(src, "set.000", f"{k}.npy")) for k in ("coord", "box", "energy", "force")}
        arrays.update(synthetic_labels(arrays["coord"], arrays["box"], atype, sid))
        for key, value in arrays.items():
            np.save(os.path.join(dst, "set.000", f"{key}.npy"), value)
        out[sub] = dst
    return out


def input_json(spec, data):
    fitting = dict(spec["fitting"])
    return {
        "model": dict({"type_map": ["O", "H"], "descriptor": spec["descriptor"], "fitting_net": fitting},
                      **spec.get("model_extra", {})),
        "learning_rate": {"type": "exp", "decay_steps": 20, "start_lr": 0.001, "stop_lr": 1e-05},
        "loss": spec["loss"],
        "training": {
            "training_data": {"systems": [data["train/data_0"]], "batch_size": "auto"},
            "validation_data": {"systems": [data["valid/data_3"]], "batch_size": 1, "numb_btch": 1},
            "numb_steps": STEPS, "seed": 10, "disp_file": "lcurve.out", "disp_freq": 50, "save_freq": STEPS,
        },
    }


def run(cmd, cwd):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def dp_bin():
    return os.path.join(os.path.dirname(sys.executable), "dp")


def train(name, spec, data, work):
    folder = os.path.join(work, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "input.json"), "w") as fh:
        json.dump(input_json(spec, data), fh, indent=1)
    dp = dp_bin()
    run([dp, "--pt", "train", "input.json"], folder)
    run([dp, "--pt", "freeze", "-o", "frozen.pth"], folder)
    convert_and_compress(folder)


def convert_and_compress(folder):
    dp = dp_bin()
    if not os.path.exists(os.path.join(folder, "frozen.pth")):
        run([dp, "convert-backend", "frozen.dp", "frozen.pth"], folder)
    else:
        run([dp, "convert-backend", "frozen.pth", "frozen.dp"], folder)
    run([dp, "--pt", "compress", "-i", "frozen.pth", "-o", "compressed.pth"], folder)


def make_default_variant(work):
    from deepmd.dpmodel.utils.serialization import load_dp_model, save_dp_model

    src = os.path.join(work, "se_e2_a_fparam_tiny", "frozen.dp")
    folder = os.path.join(work, DEFAULT_VARIANT)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    tree = load_dp_model(src)
    tree["model"]["fitting"]["default_fparam"] = list(DEFAULT_FPARAM)
    # the training settings too: `dp --pt compress` rebuilds the model from them before loading the weights
    script = tree.get("model_def_script", tree["model"].get("model_def_script"))
    script["fitting_net"]["default_fparam"] = list(DEFAULT_FPARAM)
    save_dp_model(os.path.join(folder, "frozen.dp"), tree)
    convert_and_compress(folder)


def test_params(natoms, atype):
    """fparam [NFRAMES, 1] and aparam [NFRAMES, natoms, 1] the references are evaluated with."""
    f = np.arange(NFRAMES, dtype=float)[:, None]
    i = np.arange(natoms, dtype=float)[None, :]
    fparam = 0.9 + 0.35 * f
    aparam = (0.25 * np.cos(0.13 * i + 0.4 * f) + np.where(atype == 0, 0.15, -0.05)[None, :])[..., None]
    return fparam, aparam


def evaluate(name, kind, work, with_fparam, default_too):
    from deepmd.infer import DeepPot
    from deepmd.infer.deep_dipole import DeepDipole
    from deepmd.infer.deep_polar import DeepPolar

    frames = np.load(FRAMES)
    coord = frames["coord"][:NFRAMES].astype(np.float64).reshape(NFRAMES, -1)
    box = frames["box"][:NFRAMES].astype(np.float64).reshape(NFRAMES, 9)
    atype = frames["atype"].astype(int)
    fparam, aparam = test_params(atype.size, atype)
    out = {}
    nonatomic_diff = {}
    for tag in ("uncompressed", "compressed"):
        path = os.path.join(work, name, "frozen.pth" if tag == "uncompressed" else "compressed.pth")
        if kind == "ener":
            dp = DeepPot(path)
            cases = {"": dict(fparam=fparam, aparam=aparam)} if with_fparam else {"": {}}
            if default_too:  # fparam omitted only (given, it is the base model's case): the folder stays < 200 kB
                cases = {"default_": dict(aparam=aparam)}
            for prefix, kw in cases.items():
                e, f, v, ae, av = dp.eval(coord, box, atype, atomic=True, **kw)
                e2, f2, v2 = dp.eval(coord, box, atype, atomic=False, **kw)
                # atomic=False runs another graph path: the same numbers up to round-off
                nonatomic_diff[f"{tag}.{prefix}"] = max(float(np.max(np.abs(a - b)))
                                                        for a, b in ((e, e2), (f, f2), (v, v2)))
                res = {"energy": e.reshape(NFRAMES), "force": f.reshape(NFRAMES, -1, 3),
                       "virial": v.reshape(NFRAMES, 3, 3), "atom_energy": ae.reshape(NFRAMES, -1),
                       "atom_virial": av.reshape(NFRAMES, -1, 3, 3)}
                out[tag] = out.get(tag, {})
                out[tag].update({prefix + k: val for k, val in res.items()})
            out[tag]["dim_fparam"] = np.array(dp.get_dim_fparam())
            out[tag]["dim_aparam"] = np.array(dp.get_dim_aparam())
        else:
            model = (DeepDipole if kind == "dipole" else DeepPolar)(path)
            kw = dict(fparam=fparam, aparam=aparam) if with_fparam else {}
            glob = model.eval(coord, box, atype, atomic=False, **kw)
            atom = model.eval(coord, box, atype, atomic=True, **kw)
            # the global tensor is the sum of the atomic ones (up to round-off)
            nonatomic_diff[tag] = float(np.max(np.abs(np.asarray(atom).sum(axis=1) - np.asarray(glob))))
            out[tag] = {"global": np.asarray(glob), "atomic": np.asarray(atom),
                        "sel_type": np.asarray(model.get_sel_type(), dtype=int)}
        print(name, tag, {k: np.shape(v) for k, v in out[tag].items()}, flush=True)
    dest = os.path.join(HERE, name)
    os.makedirs(dest, exist_ok=True)
    for tag, arrays in out.items():
        np.savez_compressed(os.path.join(dest, f"ref_{tag}_pth.npz"), **arrays)
    if with_fparam:
        np.savez(os.path.join(dest, "test_params.npz"), fparam=fparam, aparam=aparam)
    diff = {k: float(np.max(np.abs(out["compressed"][k] - out["uncompressed"][k])))
            for k in out["uncompressed"] if out["uncompressed"][k].dtype.kind == "f"}
    shutil.copy(os.path.join(work, name, "frozen.dp"), dest)
    src_input = os.path.join(work, name, "input.json")
    if os.path.exists(src_input):
        with open(src_input) as fh:
            settings = json.load(fh)
        # data paths relative to --work (no machine paths in the repository)
        for part in ("training_data", "validation_data"):
            systems = settings["training"][part]["systems"]
            settings["training"][part]["systems"] = [os.path.relpath(s, work) for s in systems]
        with open(os.path.join(dest, "input.json"), "w") as fh:
            json.dump(settings, fh, indent=1)
            fh.write("\n")
    with open(os.path.join(dest, "errors.json"), "w") as fh:
        json.dump({"max_abs_compressed_minus_uncompressed": diff, "nframes": NFRAMES,
                   "max_abs_atomic_false_minus_true": nonatomic_diff,
                   "frames": "tests/data/deepmd/se_e2_a_tiny/test_frames.npz"}, fh, indent=1)
        fh.write("\n")


ABOUT = {
    "se_e2_a_fparam_tiny": "se_e2_a energy model with one frame parameter and one atomic parameter "
                           "(`numb_fparam` 1, `numb_aparam` 1, no `default_fparam`).",
    "se_e2_a_fparam_default_tiny": f"`se_e2_a_fparam_tiny` with `default_fparam` {DEFAULT_FPARAM} set in the "
                                   "fitting (written back by DeePMD-kit's `save_dp_model`; not trained again).",
    "dipole_tiny": "dipole model (`fitting_net.type` \"dipole\", `sel_type` [0] and the model's "
                   "`atom_exclude_types` [1]: atomic dipoles on O only) on se_e2_a.",
    "polar_tiny": "polarizability model (`fitting_net.type` \"polar\", defaults `fit_diag` true, `shift_diag` true, "
                  "`scale` 1; `sel_type` [0] and the model's `atom_exclude_types` [1]) on se_e2_a.",
    "dipole_atten_v2_tiny": "dipole model (`fitting_net.type` \"dipole\", `sel_type` [0], `atom_exclude_types` [1]) "
                            "on se_atten_v2 (attn_layer 0, tebd_dim 4): the rotation matrix of the gated descriptor.",
    "dipole_fparam_tiny": "`dipole_tiny` with one frame parameter and one atomic parameter (`numb_fparam` 1, "
                          "`numb_aparam` 1) in the dipole fitting.",
    "polar_full_tiny": "polarizability model with `fit_diag` false (M x M net output, symmetrised) and `scale` "
                       "[1.7, 1.0], `shift_diag` true; `sel_type` [0], `atom_exclude_types` [1]; on se_e2_a.",
    "se_atten_tiny": "se_atten (DPA-1 version 1: `\"type\": \"se_atten\"`, serialised as `dpa1`) with "
                     "`tebd_input_mode` \"strip\", `attn_layer` 0 (so `smooth_type_embedding` false and "
                     "`set_davg_zero` true, the v1 defaults) energy model.",
}


def write_readme(name, kind, with_fparam, default_too):
    dest = os.path.join(HERE, name)
    errors = json.load(open(os.path.join(dest, "errors.json")))
    trained = name != DEFAULT_VARIANT
    lines = [f"# DeePMD-kit 3.2.0 tiny fixture: `{name}`", "",
             ABOUT[name], "",
             "Made by `tests/data/deepmd/make_param_tensor_tiny.py` (DeePMD-kit 3.2.0, PyTorch backend, CPU, "
             "float64; read its docstring). Training quality is irrelevant (the weights are trained, not random).", "",
             "## How", ""]
    if trained:
        lines += [f"1. Training data: `water-data/train/data_0` (80 frames), validation `valid/data_3`, with synthetic "
                  "`fparam.npy`, `aparam.npy`, `dipole.npy`, `polarizability.npy` (`synthetic_labels` in the script; "
                  "energies and forces as shipped).",
                  f"2. `dp --pt train input.json` ({STEPS} steps; `input.json` here, data paths relative to the "
                  "script's `--work` folder), `dp --pt freeze -o frozen.pth`,",
                  "3. `dp convert-backend frozen.pth frozen.dp`, `dp --pt compress -i frozen.pth -o compressed.pth` "
                  "(defaults: step 0.01, extrapolate 5)."]
    else:
        lines += ["1. `frozen.dp` of `se_e2_a_fparam_tiny` with `model.fitting.default_fparam` set "
                  "(`deepmd.dpmodel.utils.serialization.load_dp_model` / `save_dp_model`),",
                  "2. `dp convert-backend frozen.dp frozen.pth`, `dp --pt compress -i frozen.pth -o compressed.pth`."]
    if kind == "ener":
        call = "DeepPot(model).eval(coord, box, atype, atomic=True" + (", fparam=fparam, aparam=aparam" if with_fparam
                                                                        else "") + ")"
        lines += [f"4. `{call}` on frames 0-{NFRAMES - 1} of `../se_e2_a_tiny/test_frames.npz` (float64 of the "
                  "stored float32 coordinates), for model = frozen.pth and compressed.pth; atomic=False gives the "
                  "same energy/force/virial to the round-off in `errors.json`."]
    else:
        params = ", fparam=fparam, aparam=aparam" if with_fparam else ""
        lines += [f"4. `{'DeepDipole' if kind == 'dipole' else 'DeepPolar'}(model).eval(coord, box, atype, atomic=...{params})` "
                  f"on frames 0-{NFRAMES - 1} of `../se_e2_a_tiny/test_frames.npz`, model = frozen.pth and "
                  "compressed.pth."]
    lines += ["", "## Files", "", "- `frozen.dp`: the model (backend-neutral HDF5).",
              "- `errors.json`: max |compressed - uncompressed| (DeePMD-kit's own) per output, and "
              "max |atomic=False - atomic=True| (energy models) / max |sum of atomic - global| (tensor models)."]
    if trained:
        lines += ["- `input.json`: the training input."]
    if kind == "ener":
        keys = "`energy` [nf] eV, `force` [nf,192,3] eV/Å, `virial` [nf,3,3] eV, `atom_energy` [nf,192], " \
               "`atom_virial` [nf,192,3,3], `dim_fparam`, `dim_aparam`"
        if default_too:
            keys = keys.replace("`energy`", "`default_energy`").replace("`force`", "`default_force`") \
                .replace("`virial`", "`default_virial`").replace("`atom_energy`", "`default_atom_energy`") \
                .replace("`atom_virial`", "`default_atom_virial`")
            keys += " (fparam omitted: the model's default_fparam; aparam from `test_params.npz`; with fparam given " \
                    "the model is `se_e2_a_fparam_tiny`, whose references apply)"
        lines += [f"- `ref_uncompressed_pth.npz`, `ref_compressed_pth.npz` (frozen.pth, compressed.pth): {keys}."]
    else:
        width = 3 if kind == "dipole" else 9
        lines += [f"- `ref_uncompressed_pth.npz`, `ref_compressed_pth.npz`: `global` [nf,{width}] (atomic=False), "
                  f"`atomic` [nf,192,{width}] (atomic=True; zero for H, the unselected type), `sel_type`."]
    if with_fparam:
        lines += ["- `test_params.npz`: `fparam` [nf,1] and `aparam` [nf,192,1] the references were evaluated with."]
    lines += ["", "## DeePMD-kit's compressed vs uncompressed", "", "```json", json.dumps(errors, indent=1), "```", ""]
    with open(os.path.join(dest, "README.md"), "w") as fh:
        fh.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, help="build folder outside the repository (data, .pth files)")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--eval-only", action="store_true", help="skip data/training (models already in --work)")
    ap.add_argument("--readme-only", action="store_true", help="only rewrite the README.md files")
    args = ap.parse_args()
    water = os.path.join(shared_fixtures(), "water-data")
    work = os.path.abspath(args.work)
    names = args.only or list(MODELS) + [DEFAULT_VARIANT]
    if args.readme_only:
        for name in names:
            spec = MODELS.get(name, {"kind": "ener", "fitting": {"numb_fparam": 1}})
            write_readme(name, spec["kind"], "numb_fparam" in spec["fitting"], name == DEFAULT_VARIANT)
        return
    data = make_data(water, work) if not args.eval_only else None
    for name in names:
        if name == DEFAULT_VARIANT:
            if not args.eval_only:
                make_default_variant(work)
            evaluate(name, "ener", work, with_fparam=True, default_too=True)
            write_readme(name, "ener", True, True)
            continue
        spec = MODELS[name]
        if not args.eval_only:
            train(name, spec, data, work)
        with_fparam = "numb_fparam" in spec["fitting"]
        evaluate(name, spec["kind"], work, with_fparam=with_fparam, default_too=False)
        write_readme(name, spec["kind"], with_fparam, False)


if __name__ == "__main__":
    main()
