"""Parity plots of ``dpcompress test --plot FILE.png`` (matplotlib: the optional extra ``plot``).

Panels: energy per atom predicted vs label; force components predicted vs label (every system,
one colour each, the diagonal dashed); and the distribution of the force differences, compressed
minus original with ``--against``, else predicted minus label (log-scaled counts).
"""

import numpy as np

from ..core.atomic_file import write_atomic
from ..core.errors import InputError

#: The message when matplotlib is missing.
MISSING = "--plot needs matplotlib: pip install 'dpcompress[plot]' (or pip install matplotlib)"


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError(MISSING) from None
    return plt


def check_available():
    """Raise :class:`InputError` naming the extra when matplotlib is missing (before any work)."""
    _pyplot()


def parity_plot(result, path):
    """Write the parity plots of a :class:`~.runner.TestResult` to ``path`` (PNG, atomically).

    Returns
    -------
    str
        ``path``.
    """
    import io

    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    ax_e, ax_f, ax_d = axes
    diffs, diff_label = [], ""
    for s in result.systems:
        if "energy" in s.labels:
            ax_e.plot(s.labels["energy"] / s.natoms, s.pred["energy"] / s.natoms, ".", ms=4, label=s.name)
        if "force" in s.labels:
            ax_f.plot(s.labels["force"].ravel(), s.pred["force"].ravel(), ".", ms=1.5, label=s.name)
        if s.original is not None:
            diffs.append((s.pred["force"] - s.original["force"]).ravel())
            diff_label = "force, compressed − original (eV/Å)"
        elif "force" in s.labels:
            diffs.append((s.pred["force"] - s.labels["force"]).ravel())
            diff_label = "force, predicted − label (eV/Å)"
    for ax, what, unit in ((ax_e, "energy per atom", "eV"), (ax_f, "force component", "eV/Å")):
        lims = [*ax.get_xlim(), *ax.get_ylim()]
        lo, hi = min(lims), max(lims)
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"label {what} ({unit})")
        ax.set_ylabel(f"predicted {what} ({unit})")
        ax.set_title(f"{what}: predicted vs label")
        ax.ticklabel_format(useOffset=False)  # energies per atom differ in the 4th digit: no "-1.559e2" offsets
    if len(result.systems) <= 8:
        ax_e.legend(fontsize=7)
    if diffs:
        d = np.concatenate(diffs)
        ax_d.hist(d, bins=100, log=True)
        ax_d.set_xlabel(diff_label)
        ax_d.set_ylabel("count")
        ax_d.set_title(f"max |Δ| {np.abs(d).max():.2e}, RMS {np.sqrt(np.mean(d * d)):.2e}")
    fig.suptitle(f"dpcompress test: {result.model}" + (f" vs {result.against}" if result.against else ""), fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_atomic(path, buf.getvalue(), what="--plot")
    return path
