"""Exceptions raised by dpcompress.

Every error a user can trigger with a file or an argument is one of these, and
its message names the file, key, atom index or argument at fault and what was
expected.  They derive from the matching built-in (``ValueError``,
``NotImplementedError``) so generic ``except ValueError`` code keeps working.
"""


class DPCompressError(Exception):
    """Base class of every dpcompress error."""


class ModelFormatError(DPCompressError, ValueError):
    """A model file is unreadable, truncated, corrupt, or lacks a required key."""


class UnsupportedModelError(DPCompressError, NotImplementedError):
    """A well-formed model uses a feature dpcompress does not implement (yet)."""


class InputError(DPCompressError, ValueError):
    """Coordinates, cells, atom types or another argument are invalid."""


class DataFormatError(DPCompressError, ValueError):
    """A training-data folder or file does not follow the deepmd/npy or deepmd/hdf5 layout."""


class NumericalError(DPCompressError, FloatingPointError):
    """Valid inputs gave a non-finite result (NaN or infinity): the model overflows there."""


#: status codes of the C library (src_c/dpc_common.h)
STATUS_OK, STATUS_ALLOC, STATUS_ARGUMENT, STATUS_INDEX, STATUS_NONFINITE, STATUS_COINCIDENT = range(6)


def status_error(status, message, error=InputError, by_status=None):
    """The exception for a non-zero C status: the one mapping every compiled wrapper uses.

    Parameters
    ----------
    status : int
        A ``dpc_status``.
    message : str
        What the C side said (or what the wrapper knows), already naming the problem.
    error : type
        The class for everything but a failed allocation: :class:`InputError` for a frame,
        :class:`ModelFormatError` for a model file, ``RuntimeError`` for arguments a wrapper
        validated itself (a bug if it happens).
    by_status : dict or None
        Other classes for some statuses (``{STATUS_NONFINITE: FloatingPointError}``).
    """
    if by_status and status in by_status:
        return by_status[status](message)
    if status == STATUS_ALLOC:
        return MemoryError(message or "out of memory in a dpcompress kernel")
    return error(message or f"a dpcompress kernel failed with status {status}")
