r"""Detail files in ``dp test -d DETAIL``'s layout (DeePMD-kit 3.2, ``deepmd/infer/model_test/ener.py``).

``DETAIL.e.out``, ``DETAIL.e_peratom.out``, ``DETAIL.f.out``, ``DETAIL.v.out``, ``DETAIL.v_peratom.out``
and ``DETAIL.s.out`` (the suffix of ``DETAIL``, if any, is replaced, as ``pathlib.Path.with_suffix`` does): columns label
then prediction, one row per frame (per atom for forces), numbers as ``numpy.savetxt`` writes them
(``%.18e``), the systems one after another, the header line (``# SYSTEM: data_e pred_e``, ...)
written by the first system only.  As in ``dp test``, the virial files are written for every system,
with label columns of zeros when it has no virial labels; the stress file
(:math:`\sigma = -W / V`, eV/Å³, header ``# SYSTEM (eV/Å³): data_sxx ... pred_szz``) only for
the periodic systems with virial labels, its header written by the first of them (and the file
not at all when no system has stress).
"""

import io
from pathlib import Path

import numpy as np

from ..core.atomic_file import write_atomic

VIRIAL_COLUMNS = ("data_vxx data_vxy data_vxz data_vyx data_vyy data_vyz data_vzx data_vzy data_vzz "
                  "pred_vxx pred_vxy pred_vxz pred_vyx pred_vyy pred_vyz pred_vzx pred_vzy pred_vzz")
#: (suffix, columns of the header)
FILES = (
    (".e.out", "data_e pred_e"),
    (".e_peratom.out", "data_e pred_e"),
    (".f.out", "data_fx data_fy data_fz pred_fx pred_fy pred_fz"),
    (".v.out", VIRIAL_COLUMNS),
    (".v_peratom.out", VIRIAL_COLUMNS),
    (".s.out", " ".join(f"{side}_s{a}{b}" for side in ("data", "pred") for a in "xyz" for b in "xyz")),
)
#: Files written for the systems with stress only; their header names the unit.
STRESS_FILES = {".s.out": " (eV/Å³)"}


def table_text(rows, header):
    """``rows`` as ``numpy.savetxt`` writes them (``%.18e``, ``# header`` first), as a string to write atomically."""
    text = io.StringIO()
    np.savetxt(text, rows, header=header)
    return text.getvalue()


def detail_paths(prefix):
    """``{suffix: path}`` of the detail files of ``prefix``."""
    base = Path(prefix)
    return {suffix: str(base.with_suffix(suffix)) for suffix, _ in FILES}


class DetailWriter:
    """Collects the systems' rows and writes the files at the end (each atomically).

    Parameters
    ----------
    prefix : str
        ``-d DETAIL``.
    """

    def __init__(self, prefix):
        self.paths = detail_paths(prefix)
        self.texts = {suffix: io.StringIO() for suffix, _ in FILES}
        self.started = set()

    def add(self, system, pred, labels, natoms, cells=None):
        """Add one system: ``pred`` and ``labels`` as in :func:`~.metrics.system_errors`.

        A missing energy or force label is written as zeros, as ``dp test`` does.  ``cells``
        (nframes, 3, 3) of a periodic system: with a virial label, its stress rows too.
        """
        nframes = np.size(pred["energy"])

        def label(key, width):
            value = labels.get(key)
            return np.zeros((nframes, width)) if value is None else np.reshape(value, (nframes, width))

        pe = np.concatenate((label("energy", 1), np.reshape(pred["energy"], (-1, 1))), axis=1)
        pf = np.concatenate((np.reshape(label("force", 3 * natoms), (-1, 3)), np.reshape(pred["force"], (-1, 3))),
                            axis=1)
        pv = np.concatenate((label("virial", 9), np.reshape(pred["virial"], (-1, 9))), axis=1)
        rows = {".e.out": pe, ".e_peratom.out": pe / natoms, ".f.out": pf, ".v.out": pv, ".v_peratom.out": pv / natoms}
        if cells is not None and labels.get("virial") is not None:
            volume = np.abs(np.linalg.det(np.reshape(cells, (-1, 3, 3)))).reshape(-1, 1)
            rows[".s.out"] = np.concatenate((-label("virial", 9) / volume, -np.reshape(pred["virial"], (-1, 9)) / volume),
                                            axis=1)
        for suffix, columns in FILES:
            if suffix not in rows:
                continue
            header = f"{system}{STRESS_FILES.get(suffix, '')}: {columns}" if suffix not in self.started else ""
            np.savetxt(self.texts[suffix], rows[suffix], header=header)
            self.started.add(suffix)

    def write(self):
        """Write the files (those some system has rows for); returns their paths."""
        written = []
        for suffix, _ in FILES:
            if suffix in self.started:
                write_atomic(self.paths[suffix], self.texts[suffix].getvalue())
                written.append(self.paths[suffix])
        return written
