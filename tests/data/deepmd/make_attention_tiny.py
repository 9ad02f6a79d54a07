"""Train, freeze, convert, compress and evaluate the tiny attention-descriptor models (issue 16).

``dpa1_attn2_tiny`` (DPA-1, two attention layers, strip mode), ``dpa2_tiny`` (DPA-2, two repformer layers)
and ``se_e3_tebd_tiny`` (se_e3_tebd, strip mode).  Run from the repository root with DeePMD-kit 3.2.0's
Python (PyTorch backend, CPU)::

    CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=1 /path/to/deepmd-venv/bin/python \
        tests/data/deepmd/make_attention_tiny.py --work /tmp/dpc_attention_build [--only NAME ...]

Shared data as in ``make_param_tensor_tiny.py`` (whose data preparation, training and evaluation this script
reuses): ``$DPC_SHARED_FIXTURES`` or ``../shared/fixtures/deepmd`` next to the repository, its ``water-data``.
Per model ``NAME`` (folder ``tests/data/deepmd/NAME``): ``dp --pt train input.json`` (``STEPS`` steps),
``dp --pt freeze -o frozen.pth``, ``dp convert-backend frozen.pth frozen.dp``,
``dp --pt compress -i frozen.pth -o compressed.pth`` (where DeePMD-kit refuses, its message goes to
``errors.json`` and only the uncompressed references are written), then ``DeepPot.eval`` on frames 0-1 of
``tests/data/deepmd/se_e2_a_tiny/test_frames.npz``.
Training quality is irrelevant: the fixtures test that an evaluator reproduces DeePMD-kit's numbers.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_param_tensor_tiny as base  # noqa: E402  (same folder: shared data, training, helpers)

STEPS = 120
# sel/nsel cover every neighbor of the water frames (77 to 101 within 6 A, 18 to 36 within 4 A): with a
# smaller sel DeePMD-kit keeps the nearest ones only, and the references would test that truncation too.
FITTING = {"neuron": [16, 16], "resnet_dt": True, "precision": "float64", "seed": 1}

DESCRIPTOR_DPA1 = {
    "type": "dpa1", "sel": 120, "rcut_smth": 0.5, "rcut": 6.0, "neuron": [4, 8, 16], "resnet_dt": False,
    "axis_neuron": 4, "tebd_dim": 4, "tebd_input_mode": "strip", "attn": 8, "attn_layer": 2, "attn_dotr": True,
    "attn_mask": False, "precision": "float64", "seed": 1,
}
DESCRIPTOR_DPA2 = {
    "type": "dpa2",
    "repinit": {"rcut": 6.0, "rcut_smth": 0.5, "nsel": 120, "neuron": [4, 8, 16], "axis_neuron": 4,
                "tebd_dim": 4, "tebd_input_mode": "strip"},
    "repformer": {"rcut": 4.0, "rcut_smth": 0.5, "nsel": 40, "nlayers": 2, "g1_dim": 8, "g2_dim": 4,
                  "axis_neuron": 4, "attn1_hidden": 8, "attn2_hidden": 4},
    "precision": "float64", "seed": 1,
}
DESCRIPTOR_SE_E3_TEBD = {
    "type": "se_e3_tebd", "sel": 40, "rcut_smth": 0.5, "rcut": 4.0, "neuron": [4, 8, 16], "tebd_dim": 4,
    "tebd_input_mode": "strip", "precision": "float64", "seed": 1,
}
MODELS = {
    "dpa1_attn2_tiny": dict(descriptor=DESCRIPTOR_DPA1, fitting=FITTING, loss=base.LOSS_ENER, kind="ener"),
    "dpa2_tiny": dict(descriptor=DESCRIPTOR_DPA2, fitting=FITTING, loss=base.LOSS_ENER, kind="ener"),
    "se_e3_tebd_tiny": dict(descriptor=DESCRIPTOR_SE_E3_TEBD, fitting=FITTING, loss=base.LOSS_ENER, kind="ener"),
}
ABOUT = {
    "dpa1_attn2_tiny": "DPA-1 (`\"type\": \"dpa1\"`) with `attn_layer` 2, `attn` 8, `attn_dotr` true, "
                       "`tebd_input_mode` \"strip\", other options at DeePMD-kit 3.2's defaults "
                       "(`smooth_type_embedding` false, `normalize` true, `temperature` unset, `scaling_factor` 1, "
                       "`set_davg_zero` true, `type_one_side` false), energy model. With attention layers "
                       "`dp --pt compress` precomputes only the type-embedding net per type pair "
                       "(`compress.geo_compress` false; the "
                       "geometric net stays a net), so compressed and uncompressed agree to the last bit here.",
    "dpa2_tiny": "DPA-2 (`\"type\": \"dpa2\"`) with 2 repformer layers at DeePMD-kit 3.2's default options "
                 "(update_g1_has_conv/drrd/grrg/attn, update_g2_has_g1g1/attn true, update_h2 false, "
                 "update_style \"res_avg\", no three-body repinit, g1_out_conv/g1_out_mlp true, use_sqrt_nnei "
                 "true); tiny widths; the repinit's `tebd_input_mode` \"strip\" (default \"concat\") so that "
                 "`dp --pt compress` accepts it. Energy model.",
    "se_e3_tebd_tiny": "se_e3_tebd (`\"type\": \"se_e3_tebd\"`, serialised as `se_e3_tebd`) with "
                       "`tebd_input_mode` \"strip\", energy model.",
}


def compress(folder):
    """``dp --pt compress``; returns None, or DeePMD-kit's refusal (last lines of its output)."""
    cmd = [base.dp_bin(), "--pt", "compress", "-i", "frozen.pth", "-o", "compressed.pth"]
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    tail = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()][-3:]
    print("\n".join(tail), flush=True)
    return " | ".join(tail)


def train(name, spec, data, work):
    folder = os.path.join(work, name)
    os.makedirs(folder, exist_ok=True)
    settings = base.input_json(spec, data)
    settings["training"]["numb_steps"] = STEPS
    settings["training"]["save_freq"] = STEPS
    with open(os.path.join(folder, "input.json"), "w") as fh:
        json.dump(settings, fh, indent=1)
    dp = base.dp_bin()
    base.run([dp, "--pt", "train", "input.json"], folder)
    base.run([dp, "--pt", "freeze", "-o", "frozen.pth"], folder)
    base.run([dp, "convert-backend", "frozen.pth", "frozen.dp"], folder)
    return compress(folder)


def evaluate(name, work, refusal):
    """Write ``ref_*_pth.npz``, ``errors.json``, ``frozen.dp`` and ``input.json`` into the fixture folder."""
    import shutil

    from deepmd.infer import DeepPot

    nf = base.NFRAMES
    frames = np.load(base.FRAMES)
    coord = frames["coord"][:nf].astype(np.float64).reshape(nf, -1)
    box = frames["box"][:nf].astype(np.float64).reshape(nf, 9)
    atype = frames["atype"].astype(int)
    out, nonatomic, batch_spread = {}, {}, {}
    tags = ("uncompressed",) if refusal else ("uncompressed", "compressed")
    for tag in tags:
        dp = DeepPot(os.path.join(work, name, "frozen.pth" if tag == "uncompressed" else "compressed.pth"))
        # the first call of a DeepPot in a process (TorchScript's profiling run) gave DPA-1's frame-1 forces
        # 1.6e-8 eV/A away from every later call: one discarded warm-up call first
        dp.eval(coord, box, atype, atomic=True)
        parts = [dp.eval(coord[k:k + 1], box[k:k + 1], atype, atomic=True) for k in range(nf)]
        e, f, v, ae, av = (np.concatenate([p[q] for p in parts]) for q in range(5))
        e2, f2, v2 = dp.eval(coord, box, atype, atomic=False)
        nonatomic[tag] = max(float(np.max(np.abs(a - b))) for a, b in ((e, e2), (f, f2), (v, v2)))
        batched = dp.eval(coord, box, atype, atomic=True)
        batch_spread[tag] = max(float(np.max(np.abs(a - b))) for a, b in zip((e, f, v, ae, av), batched))
        out[tag] = {"energy": e.reshape(nf), "force": f.reshape(nf, -1, 3), "virial": v.reshape(nf, 3, 3),
                    "atom_energy": ae.reshape(nf, -1), "atom_virial": av.reshape(nf, -1, 3, 3)}
    dest = os.path.join(HERE, name)
    os.makedirs(dest, exist_ok=True)
    for tag, arrays in out.items():
        np.savez_compressed(os.path.join(dest, f"ref_{tag}_pth.npz"), **arrays)
    errors = {"nframes": nf, "frames": "tests/data/deepmd/se_e2_a_tiny/test_frames.npz",
              "max_abs_atomic_false_minus_true": nonatomic,
              "max_abs_batched_atomic_true_minus_per_frame": batch_spread}
    if refusal:
        errors["compress_refused"] = refusal
    else:
        errors["max_abs_compressed_minus_uncompressed"] = {
            k: float(np.max(np.abs(out["compressed"][k] - out["uncompressed"][k]))) for k in out["uncompressed"]}
    with open(os.path.join(dest, "errors.json"), "w") as fh:
        json.dump(errors, fh, indent=1)
        fh.write("\n")
    shutil.copy(os.path.join(work, name, "frozen.dp"), dest)
    with open(os.path.join(work, name, "input.json")) as fh:
        settings = json.load(fh)
    for part in ("training_data", "validation_data"):  # no machine paths in the repository
        settings["training"][part]["systems"] = [os.path.relpath(s, work)
                                                 for s in settings["training"][part]["systems"]]
    with open(os.path.join(dest, "input.json"), "w") as fh:
        json.dump(settings, fh, indent=1)
        fh.write("\n")
    return errors


def write_readme(name, errors):
    dest = os.path.join(HERE, name)
    compressed = "compress_refused" not in errors
    lines = [f"# DeePMD-kit 3.2.0 tiny fixture: `{name}`", "", ABOUT[name], "",
             "Made by `tests/data/deepmd/make_attention_tiny.py` (DeePMD-kit 3.2.0, PyTorch backend, CPU, float64; "
             "read its docstring). Training quality is irrelevant (the weights are trained, not random).", "",
             "## How", "",
             "1. Training data: `water-data/train/data_0` (80 frames), validation `valid/data_3` (prepared by "
             "`make_param_tensor_tiny.make_data`; energies and forces as shipped).",
             f"2. `dp --pt train input.json` ({STEPS} steps; `input.json` here, data paths relative to the script's "
             "`--work` folder), `dp --pt freeze -o frozen.pth`, `dp convert-backend frozen.pth frozen.dp`,",
             "3. `dp --pt compress -i frozen.pth -o compressed.pth` (defaults: step 0.01, extrapolate 5)"
             + ("." if compressed else f": **refused by DeePMD-kit** (`{errors['compress_refused']}`)."),
             "4. `DeepPot(model).eval(coord, box, atype, atomic=True)` on frames 0-1 of "
             "`../se_e2_a_tiny/test_frames.npz` (float64 of the stored float32 coordinates), **one frame per call**, "
             "model = frozen.pth" + (" and compressed.pth" if compressed else "") + ". `errors.json`: "
             "`max_abs_atomic_false_minus_true` compares with one atomic=False call on both frames (round-off), "
             "`max_abs_batched_atomic_true_minus_per_frame` with one atomic=True call on both frames (round-off). "
             "Each DeepPot gets one discarded warm-up call first: the first call in a process (TorchScript's "
             "profiling run) gave `dpa1_attn2_tiny`'s frame-1 forces 1.6e-8 eV/Å (virial 4e-8 eV) away from every "
             "later call.", "",
             "## Files", "", "- `frozen.dp`: the model (backend-neutral HDF5).", "- `input.json`: the training input.",
             "- `errors.json`: max |compressed - uncompressed| (DeePMD-kit's own) per output"
             + ("" if compressed else " (absent: not compressed)") + ", max |atomic=False - atomic=True|.",
             "- `ref_uncompressed_pth.npz`" + (", `ref_compressed_pth.npz` (frozen.pth, compressed.pth)"
                                              if compressed else " (frozen.pth)")
             + ": `energy` [nf] eV, `force` [nf,192,3] eV/Å, `virial` [nf,3,3] eV, `atom_energy` [nf,192], "
             "`atom_virial` [nf,192,3,3].", "",
             "## errors.json", "", "```json", json.dumps(errors, indent=1), "```", ""]
    with open(os.path.join(dest, "README.md"), "w") as fh:
        fh.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, help="build folder outside the repository (data, .pth files)")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--eval-only", action="store_true", help="models already in --work: only evaluate")
    ap.add_argument("--readme-only", action="store_true", help="only rewrite README.md from errors.json")
    args = ap.parse_args()
    if args.readme_only:
        for name in args.only or list(MODELS):
            with open(os.path.join(HERE, name, "errors.json")) as fh:
                write_readme(name, json.load(fh))
        return
    water = os.path.join(base.shared_fixtures(), "water-data")
    work = os.path.abspath(args.work)
    data = None if args.eval_only else base.make_data(water, work)
    for name in args.only or list(MODELS):
        if args.eval_only:
            errors = os.path.join(HERE, name, "errors.json")
            refusal = json.load(open(errors)).get("compress_refused") if os.path.exists(errors) else None
        else:
            refusal = train(name, MODELS[name], data, work)
        write_readme(name, evaluate(name, work, refusal))


if __name__ == "__main__":
    main()
