"""``dpcompress info --plot FILE``: sampled table error against stride, from a ``.dpc`` compressed with
``--tolerance`` (the ``compression.table_search`` record: every stride tried per table and the
error it gave; matplotlib is the optional extra ``plot``)."""

import io
import os

from ..core.atomic_file import write_atomic
from ..core.errors import InputError

__all__ = ["plot_search"]


def plot_search(compression, path, inputs=()):
    """Draw error vs stride (log-log) per table, fine and coarse, with the budget; write ``path``.

    Parameters
    ----------
    compression : dict
        A compressed model's provenance (``model.compression``).
    path : str
        Image to write (format from the suffix, e.g. ``.png``, ``.pdf``), atomically.
    inputs : iterable of paths
        Files ``path`` must not be (the model).

    Raises
    ------
    InputError
        The model was not compressed with a tolerance, or matplotlib is missing.
    """
    search = (compression or {}).get("table_search")
    if not search:
        raise InputError("the model was not compressed with --tolerance: it holds no error-vs-step record")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'dpcompress[plot]'") from None
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for k, rows in enumerate(search):
        fine = sorted({(r[0], r[1]) for r in rows})
        coarse = sorted({(r[2], r[3]) for r in rows if r[3] > 0})
        line = ax.loglog([s for s, _ in fine], [max(e, 1e-300) for _, e in fine], "o-", label=f"table {k} fine")
        if coarse:
            ax.loglog([s for s, _ in coarse], [e for _, e in coarse], "s--", color=line[0].get_color(),
                      label=f"table {k} coarse (weighted)")
    budget = compression.get("table_budget")
    if budget:
        ax.axhline(budget[0], color="k", lw=0.8, label=f"fine budget {budget[0]:.1e}")
        ax.axhline(budget[1], color="k", lw=0.8, ls=":", label=f"coarse budget {budget[1]:.1e}")
    tol = compression.get("tolerance")
    ax.set_xlabel("stride (table input units)")
    ax.set_ylabel("sampled max |table - net| (value, derivative)")
    ax.set_title(f"tolerance {tol:g} eV/Å" if tol else "table error vs stride")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    try:
        fig.savefig(buf, format=fmt)
    except ValueError as exc:  # an image format matplotlib does not write
        raise InputError(f"--plot {path}: {exc}") from None
    finally:
        plt.close(fig)
    write_atomic(path, buf.getvalue(), inputs=inputs, what="--plot")
