"""Trained models: file readers and the plain data classes they produce.

``load_model(path)`` reads a DeePMD-kit ``.dp`` / ``.yaml`` file into a
:class:`~dpcompress.models.structures.DPModel`.
"""

import os

from .deepmd_reader import model_from_tree
from .serialized_tree import load_tree
from .structures import DescriptorSeA, DPModel, EnergyFitting, Layer, Network

__all__ = ["load_model", "load_tree", "model_from_tree", "DPModel", "DescriptorSeA", "EnergyFitting", "Layer", "Network"]


def load_model(path):
    """Read a DeePMD-kit backend-neutral model file (``.dp`` or ``.yaml``).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    DPModel

    Raises
    ------
    ModelFormatError, UnsupportedModelError
    """
    path = os.fspath(path)
    return model_from_tree(load_tree(path), source=path)
