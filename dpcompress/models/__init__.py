"""Trained models: file readers and the plain data classes they produce.

``load_model(path)`` reads a DeePMD-kit ``.dp`` / ``.yaml`` file, or a
dpcompress ``.dpc`` compressed model, into a
:class:`~dpcompress.models.structures.DPModel`.
"""

import os

from .deepmd_reader import model_from_tree
from .compressed_file import is_compressed_file, load_compressed
from .serialized_tree import file_kind, load_tree
from .structures import DescriptorSeA, DPModel, EnergyFitting, Layer, Network

__all__ = ["load_model", "load_tree", "model_from_tree", "DPModel", "DescriptorSeA", "EnergyFitting", "Layer", "Network"]


def load_model(path):
    """Read a model file: DeePMD-kit's ``.dp`` / ``.yaml``, or our compressed ``.dpc``.

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
    if file_kind(path) == "hdf5" and is_compressed_file(path):
        return load_compressed(path)
    return model_from_tree(load_tree(path), source=path)
