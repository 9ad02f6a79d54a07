"""The accuracy table of docs/pwmlff.md: dpcompress (exact, quintic and cubic tables) against PWMLFF's
own outputs (public_alloy_refs.npz) on the public alloy checkpoints.

    DPCOMPRESS_PWMLFF_FIXTURES=DIR python tests/data/pwmlff/public_accuracy.py

``DIR`` holds ``dp/dp_model.ckpt`` and ``dp_type_embedding/dp_model.ckpt`` (PWMLFF_library, alloy/models).
"""

import os
import warnings

import numpy as np

from dpcompress import Potential, compress
from dpcompress.modelfile import load_model
from dpcompress.models.pwmlff_reader import read_pwmlff

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    warnings.simplefilter("ignore")
    ref = np.load(os.path.join(HERE, "public_alloy_refs.npz"))
    folder = os.environ["DPCOMPRESS_PWMLFF_FIXTURES"]
    for key in ("dp", "dp_type_embedding"):
        path = os.path.join(folder, key, "dp_model.ckpt")
        if f"{key}_type_vectors" in ref:
            model = read_pwmlff(path, type_vectors=dict(zip([28, 44, 45, 46, 77], ref[f"{key}_type_vectors"])))
        else:
            model = load_model(path)
        pots = {"exact": Potential(model),
                "-s 0.01 (quintic)": Potential(compress(model, step=0.01)),
                "-s 0.01 --order 3 -e 10": Potential(compress(model, step=0.01, order=3, extrapolate=10))}
        for label, pot in pots.items():
            de = df = dw = 0.0
            for k in range(len(ref[f"{key}_energy"])):
                n = len(ref[f"{key}_types"][k])
                e, f, w = pot.eval(ref[f"{key}_coord"][k].reshape(1, -1), ref[f"{key}_cell"][k].reshape(1, 9),
                                   ref[f"{key}_types"][k])
                de = max(de, abs(e.ravel()[0] - ref[f"{key}_energy"][k]) / n)
                df = max(df, np.abs(f.reshape(-1, 3) - ref[f"{key}_force"][k]).max())
                dw = max(dw, np.abs(w.ravel() - ref[f"{key}_virial"][k]).max() / n)
            print(f"| {key} | {label} | {de:.1e} | {df:.1e} | {dw:.1e} |")


if __name__ == "__main__":
    main()
