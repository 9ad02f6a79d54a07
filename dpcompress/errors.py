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
