"""Model files: reading every kind dpcompress evaluates, and the ``.dpc`` format it writes.

* :func:`load_model` reads DeePMD-kit's ``.dp`` / ``.yaml`` (:mod:`dpcompress.models`), GPUMD's
  ``nep.txt`` (:mod:`dpcompress.nep`) and our ``.dpc`` (compressed DP or NEP models);
* :func:`model_bytes` is the one writer: a compressed model as the bytes of a ``.dpc`` file
  (the same bytes :class:`dpcompress.Potential`, the C runtime and the LAMMPS plug-in read);
  :func:`save_model` writes them atomically.

Layout: docs/model-file.md.  Reading checks the container (sizes, offsets, checksums) in Python
and every array in C (``src_c/dpc_model.c``) before any array is used.
"""

import datetime
import os
from typing import Optional, Union

from .._ext.runtime import check_model_bytes
from .._version import __version__
from ..core.errors import ModelFormatError, UnsupportedModelError
from ..models import DPModel, DPZBLModel, file_kind, read_deepmd
from ..models.pwmlff_reader import read_pwmlff
from ..models.torch_zip import is_torch_zip
from ..nep import NEPModel, is_nep_text_file, read_nep
from . import dp, dp_tensor, dp_zbl, nep
from .pwmlff_nep import is_pwmlff_nep_checkpoint, read_pwmlff_nep
from .container import MAGIC, Container, decode, encode, read_file, write_file

FORMAT = "dpcompress.model"
_HDF5 = b"\x89HDF\r\n\x1a\n"


def model_bytes(model: Union[DPModel, NEPModel], tabulated=None) -> bytes:
    """The ``.dpc`` bytes of a compressed DP model or of a NEP model (tabulated when it has tables)."""
    if isinstance(model, NEPModel):
        header, arrays = nep.pack(model, tabulated)
    elif dp_tensor.is_tensor_model(model):  # DeepDipole / DeepPolar: read in Python only
        header, arrays = dp_tensor.pack(model)
    elif isinstance(model, DPZBLModel):  # DP + ZBL: the DP part's arrays and the pair table's (docs/dp-zbl.md)
        header, arrays = dp_zbl.add_arrays(*dp.pack(model.dp), model)
    else:
        header, arrays = dp.pack(model)
    header.update(
        format=FORMAT,
        dpcompress_version=__version__,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    return encode(header, sorted(arrays.items()))


def save_model(model: Union[DPModel, NEPModel], path: Union[str, os.PathLike]) -> None:
    """Write a compressed model (or a NEP model) to ``path`` as ``.dpc``, atomically."""
    write_file(path, model_bytes(model))


def is_dpc_file(path):
    """True when ``path`` starts with the ``.dpc`` signature."""
    try:
        with open(os.fspath(path), "rb") as fh:
            return fh.read(8) == MAGIC
    except OSError:
        return False


def read_dpc(source, name: Optional[str] = None) -> Container:
    """The checked container of a ``.dpc`` file (a path) or of its bytes.

    Raises
    ------
    ModelFormatError
        A damaged, truncated or foreign file, or an old (HDF5) ``.dpc``, with a message saying what to do.
    """
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        buffer = read_file(source)
    else:
        buffer = source
        name = name or "<memory>"
    head = bytes(memoryview(buffer)[:8])
    if head == _HDF5:
        raise ModelFormatError(
            f"{name}: an HDF5 .dpc written by dpcompress 0.1; this version writes a flat, memory-mappable "
            "format: regenerate it with `dpcompress compress -i <model.dp or nep.txt> -o <model.dpc>`"
        )
    container = decode(buffer, name)
    if container.header.get("format") != FORMAT:
        raise ModelFormatError(f"{name}: not a dpcompress model (format tag {container.header.get('format')!r})")
    if container.header.get("kind") != "dp_tensor":  # the runtime computes energy models; tensor ones: dp_tensor
        check_model_bytes(buffer, name)
    return container


def load_model(path: Union[str, os.PathLike]) -> Union[DPModel, NEPModel]:
    """Any model file dpcompress reads.

    Parameters
    ----------
    path : str or os.PathLike
        DeePMD-kit ``.dp`` / ``.yaml`` (an uncompressed :class:`DPModel`), a PWMLFF DP checkpoint
        ``dp_model.ckpt`` (an uncompressed :class:`DPModel`, docs/pwmlff.md) or NEP checkpoint
        ``nep_model.ckpt`` (:class:`NEPModel`), a ``nep.txt``
        (:class:`NEPModel`), or a ``.dpc`` (compressed :class:`DPModel`, or a NEP model).

    Raises
    ------
    ModelFormatError, UnsupportedModelError
    """
    path = os.fspath(path)
    if is_dpc_file(path):
        return unpack(read_dpc(path), path)
    if is_nep_text_file(path):
        return read_nep(path)
    if is_torch_zip(path):  # PWMLFF's dp_model.ckpt or nep_model.ckpt (docs/pwmlff.md)
        return read_pwmlff_nep(path) if is_pwmlff_nep_checkpoint(path) else read_pwmlff(path)
    if file_kind(path) == "hdf5":
        import h5py

        try:
            with h5py.File(path, "r") as fh:
                old = fh.attrs.get("format") in ("dpcompress.compressed-model", "dpcompress.nep-tables",
                                                 b"dpcompress.compressed-model", b"dpcompress.nep-tables")
        except OSError:
            old = False
        if old:
            read_dpc(read_file(path), path)  # raises the regeneration message
    return read_deepmd(path)


def unpack(container, source=""):
    """The Python model of a checked container."""
    kind = container.header.get("kind")
    if kind == "dp_energy":
        m = dp.unpack(container.header, container.arrays, source)
        return dp_zbl.unpack(m, container.arrays, source) if dp_zbl.is_zbl(container.arrays) else m
    if kind == "nep":
        return nep.unpack(container.header, container.arrays, source)
    if kind == "dp_tensor":
        return dp_tensor.unpack(container.header, container.arrays, source)
    raise UnsupportedModelError(f"{source}: model kind {kind!r} is not known to this dpcompress")


__all__ = ["load_model", "save_model", "model_bytes", "read_dpc", "is_dpc_file", "unpack", "FORMAT"]
