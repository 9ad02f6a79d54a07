"""DeePMD-kit's own ``DeepPot.eval_descriptor`` of each tiny fixture, for tests/test_batching.py.

Run with DeePMD-kit 3.2.0's Python (``CUDA_VISIBLE_DEVICES= python make_descriptors.py [fixture ...]``) from this
folder: the model is each ``../<fixture>/frozen.dp`` converted by ``dp convert-backend`` to the PyTorch
backend (the numpy backend has no ``eval_descriptor``) in a temporary folder, the
frame is frame 0 of ``../se_e2_a_tiny/test_frames.npz`` (192 water atoms); the first ``KEEP`` atoms'
descriptors are stored (the file stays small), in ``<fixture>.npy``.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
from deepmd.infer import DeepPot

KEEP = 12
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = tuple(sys.argv[1:]) or ("se_e2_a_tiny", "se_e2_r_tiny", "se_e3_tiny", "se_atten_v2_tiny", "hybrid_tiny",
                                    "se_e3_tebd_tiny")  # names on the command line: only those

frames = np.load(os.path.join(HERE, "..", "se_e2_a_tiny", "test_frames.npz"))
coord, box, atype = frames["coord"][:1], frames["box"][:1], frames["atype"]
dp_cli = os.path.join(os.path.dirname(sys.executable), "dp")
for name in FIXTURES:
    tmp = tempfile.mkdtemp()
    pth = os.path.join(tmp, "frozen.pth")
    subprocess.run([dp_cli, "convert-backend", os.path.join(HERE, "..", name, "frozen.dp"), pth], check=True)
    dp = DeepPot(pth)
    d = np.asarray(dp.eval_descriptor(coord, box, atype))
    np.save(os.path.join(HERE, f"{name}.npy"), np.ascontiguousarray(d[0, :KEEP], dtype=np.float64))
    print(name, d.shape)
