"""DeePMD-kit's outputs for the edited DPA-2 models of ``dpa2_options.py`` (one per non-default option).

Run from the repository root with DeePMD-kit 3.2.0's Python (PyTorch backend, CPU)::

    CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=1 /path/to/deepmd-venv/bin/python \
        tests/data/deepmd/make_dpa2_options_reference.py [--work /tmp/dpa2_options]

For each option set of ``OPTION_SETS``: the tree of ``dpa2_tiny/frozen.dp`` (read by DeePMD-kit's own
``load_dp_model``), edited by ``dpa2_options.edited_tree``, is turned into a TorchScript model by
``deepmd.pt.utils.serialization.deserialize_to_file`` (what ``dp convert-backend x.dp x.pth`` does), and
``DeepPot(model).eval(coords, None, atypes, atomic=True)`` (one discarded warm-up call first, see
``docs/dp-file-attention.md`` section 4) gives the reference on the open cluster
``dpa2_options.cluster(frame 0, radius 4.0)`` of ``se_e2_a_tiny/test_frames.npz``.
Writes ``dpa2_options_reference.npz``: ``<set>/energy`` [], ``<set>/force`` [n,3], ``<set>/atom_energy`` [n],
``<set>/atom_virial`` [n,9], with ``<set>`` the option names joined by "+"; ``cluster/coord``, ``cluster/atype``;
the same under ``lonely/<set>/`` for ``LONELY_SETS`` on ``dpa2_options.lonely`` (``lonely/coord``, ``lonely/atype``).
"""

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dpa2_options as opts  # noqa: E402

OPTION_SETS = [(name,) for name in opts.OPTIONS] + [("update_h2", "attn2_has_gate", "res_residual"),
                                                  ("repinit_concat", "exclude_types", "smooth_false")]
RADIUS = 4.0
#: also evaluated on ``dpa2_options.lonely`` (atoms without repformer neighbors / without any neighbor)
LONELY_SETS = [("use_sqrt_nnei_false",), ("smooth_false",)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/dpa2_options")
    args = ap.parse_args()
    from deepmd.dpmodel.utils.serialization import load_dp_model
    from deepmd.infer import DeepPot
    from deepmd.pt.utils.serialization import deserialize_to_file

    os.makedirs(args.work, exist_ok=True)
    tree = load_dp_model(os.path.join(HERE, "dpa2_tiny", "frozen.dp"))
    with np.load(os.path.join(HERE, "se_e2_a_tiny", "test_frames.npz")) as f:
        coords = f["coord"][0].astype(np.float64).reshape(-1, 3)
        types = f["atype"].astype(np.int64)
    c, t = opts.cluster(coords, types, radius=RADIUS)
    lc, lt = opts.lonely(coords, types)
    out = {"cluster/coord": c, "cluster/atype": t, "lonely/coord": lc, "lonely/atype": lt}
    for names in OPTION_SETS:
        key = "+".join(names)
        path = os.path.join(args.work, f"{key}.pth")
        deserialize_to_file(path, opts.edited_tree(tree, names))
        dp = DeepPot(path)
        dp.eval(c.reshape(1, -1), None, t, atomic=True)  # warm-up (TorchScript's profiling run)
        e, f, v, ae, av = dp.eval(c.reshape(1, -1), None, t, atomic=True)
        out.update({f"{key}/energy": np.float64(e.reshape(())), f"{key}/force": f.reshape(-1, 3),
                    f"{key}/atom_energy": ae.reshape(-1), f"{key}/atom_virial": av.reshape(-1, 9)})
        print(key, float(e.reshape(())))
        if names in LONELY_SETS:
            e, f, v, ae, av = dp.eval(lc.reshape(1, -1), None, lt, atomic=True)
            out.update({f"lonely/{key}/energy": np.float64(e.reshape(())), f"lonely/{key}/force": f.reshape(-1, 3),
                        f"lonely/{key}/atom_energy": ae.reshape(-1), f"lonely/{key}/atom_virial": av.reshape(-1, 9)})
    np.savez(os.path.join(HERE, "dpa2_options_reference.npz"), **out)


if __name__ == "__main__":
    main()
