"""Deep Potential models as plain data, and the reader of DeePMD-kit's ``.dp`` / ``.yaml`` files.

``read_deepmd(path)`` returns a :class:`DPModel`; every kind of model file (``.dpc`` and
``nep.txt`` included) is read by :func:`dpcompress.load_model`.
"""

import os
from typing import Union

from .deepmd_reader import model_from_tree
from .dp_zbl import DPZBLModel, dp_zbl_from_tree, is_linear_tree
from .model import DPModel, EnergyFitting
from .tensor_fitting import TensorFitting
from .serialized_tree import file_kind, load_tree

__all__ = ["read_deepmd", "load_tree", "model_from_tree", "file_kind", "DPModel", "EnergyFitting", "TensorFitting", "DPZBLModel"]


def read_deepmd(path: Union[str, os.PathLike]) -> DPModel:
    """A :class:`DPModel` from a DeePMD-kit ``.dp`` (HDF5) or ``.yaml`` file.

    Raises
    ------
    ModelFormatError, UnsupportedModelError
    """
    path = os.fspath(path)
    tree = load_tree(path)
    if is_linear_tree(tree):  # DP + ZBL (docs/dp-zbl.md)
        return dp_zbl_from_tree(tree, source=path)
    return model_from_tree(tree, source=path)
