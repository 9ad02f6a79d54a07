"""The most memory dpcompress allocates for one model's arrays or tables, and how to change it.

A model file is untrusted and a table step is a user's number: both can ask for far more memory
than any real model needs (a 70 kB ``.dp`` declaring an 8 GiB array, ``compress -s 1e-7``).  Such
sizes are estimated first and compared with this limit, so the answer is an error naming both
numbers instead of a machine that swaps or an out-of-memory kill.

The limit is, in order: the ``max_bytes`` argument of the function asking (``dpcompress
compress --max-bytes``), the environment variable ``DPCOMPRESS_MAX_BYTES``, or 2 GiB.  Sizes are
written as a number of bytes with an optional binary suffix: ``1500000000``, ``512M``, ``4G``,
``4GiB``.
"""

import os
import re
from typing import Optional, Union

from .errors import InputError

ENV_VAR = "DPCOMPRESS_MAX_BYTES"
DEFAULT_MAX_BYTES = 2 * 2**30

_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_bytes(text: Union[str, int, float], what: str = "size") -> int:
    """A byte count from ``text`` (``"512M"``, ``"2G"``, ``"2GiB"``, ``3e9``); > 0.

    Raises
    ------
    InputError
        Not a positive size.
    """
    if isinstance(text, bool):
        raise InputError(f"{what}: expected a size in bytes such as 512M or 2G, found {text!r}")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", str(text))
        if not m:
            raise InputError(f"{what}: expected a size in bytes such as 512M or 2G, found {text!r}")
        value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not (value >= 1 and value < 2**63):
        raise InputError(f"{what}: expected a positive size in bytes, found {text!r}")
    return int(value)


def max_bytes(value: Optional[Union[str, int, float]] = None) -> int:
    """The memory limit in bytes: ``value`` if given, else ``$DPCOMPRESS_MAX_BYTES``, else 2 GiB."""
    if value is not None:
        return parse_bytes(value, "max_bytes")
    env = os.environ.get(ENV_VAR)
    if env:
        return parse_bytes(env, ENV_VAR)
    return DEFAULT_MAX_BYTES


def format_bytes(n: float) -> str:
    """``n`` bytes for a message: ``8.00 GiB (8589934592 bytes)``, or ``1.01e+296 bytes`` past 1024 TiB."""
    if not n < 2**50:  # also inf and nan: an estimate from a step of 1e-300
        return f"{n:.3g} bytes"
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit} ({int(n)} bytes)"
    return f"{int(n)} bytes"


def how_to_raise() -> str:
    """The sentence every limit message ends with."""
    return f"raise the limit with --max-bytes or {ENV_VAR} if this is intended"
