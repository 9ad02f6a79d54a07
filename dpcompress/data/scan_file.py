"""Reading the JSON file a training-set scan writes (``python -m dpcompress.scan``)."""

import json

from ..core.errors import InputError

FORMAT = "dpcompress-scan"
FORMAT_VERSION = 1


def load_scan(path):
    """Read a scan JSON file written by the scan.

    Raises
    ------
    InputError
        Unreadable, not a scan document, or of an unknown version.
    """
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the scan file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"{path}: not a dpcompress scan file (no \"format\": \"{FORMAT}\")")
    if doc.get("version") != FORMAT_VERSION:
        raise InputError(f"{path}: scan file version {doc.get('version')!r}, this dpcompress reads {FORMAT_VERSION}")
    return doc


def scan_min_nbor_dist(path):
    """``min_nbor_dist`` of a scan file (what ``compress --scan`` uses), checked to be a positive number."""
    doc = load_scan(path)
    value = doc.get("min_nbor_dist")
    if value is None:
        raise InputError(f"{path}: the scan found no atom pair within rcut = {doc.get('rcut')} Å")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise InputError(f"{path}: min_nbor_dist must be a positive number, got {value!r}")
    return float(value)
