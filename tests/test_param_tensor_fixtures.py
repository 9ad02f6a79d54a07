"""The tiny DeePMD-kit 3.2.0 fixtures of dipole, polar and se_atten (v1) models: consistent.

The fixtures (``tests/data/deepmd/{dipole,polar,se_atten}_tiny``, made by
``tests/data/deepmd/make_param_tensor_tiny.py``) are the references for evaluating these kinds: dipole
and polar models by ``DeepDipole`` / ``DeepPolar`` (``tests/test_deep_tensor.py``), se_atten v1 by
``Potential`` (``tests/test_se_atten_v1.py``).
"""

import os

import numpy as np
import pytest

from conftest import DATA

DEEPMD = os.path.join(DATA, "deepmd")


@pytest.mark.parametrize("name, width", [("dipole_tiny", 3), ("polar_tiny", 9), ("dipole_atten_v2_tiny", 3),
                                         ("polar_full_tiny", 9), ("dipole_fparam_tiny", 3)])
def test_tensor_references_are_consistent(name, width):
    """DeePMD-kit's atomic tensors: zero on H (sel_type [0]); their sum is the global tensor (to 1e-12)."""
    for tag in ("uncompressed", "compressed"):
        ref = np.load(os.path.join(DEEPMD, name, f"ref_{tag}_pth.npz"))
        assert ref["global"].shape == (2, width) and ref["atomic"].shape == (2, 192, width)
        assert list(ref["sel_type"]) == [0]
        assert not ref["atomic"][:, 64:].any() and ref["atomic"][:, :64].any()
        assert np.max(np.abs(ref["atomic"].sum(axis=1) - ref["global"])) < 1e-12
