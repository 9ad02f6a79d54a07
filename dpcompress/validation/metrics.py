r"""Errors of a model against labels, computed and weighted as DeePMD-kit's ``dp test`` does.

Per system (:func:`system_errors`), with :math:`N` atoms per frame and :math:`n_f` frames:

.. math::

    \text{MAE}(x) = \frac1{|x|}\sum_k |x_k|, \qquad \text{RMSE}(x) = \sqrt{\frac1{|x|}\sum_k x_k^2},

of :math:`\Delta E_f = E^\text{pred}_f - E^\text{label}_f` (weight :math:`n_f`; per atom: the same
numbers times :math:`1/N`), of every force component :math:`\Delta F_{fic}` (weight :math:`3 N n_f`)
and, for periodic systems with virial labels, of every virial component :math:`\Delta W_{fab}`
(weight :math:`9 n_f`; per atom: times :math:`1/N`) and of the stress
:math:`\sigma_f = -W_f / V_f` (:math:`V_f = |\det h_f|`, the cell volume; frames with
:math:`V_f = 0` left out; weight :math:`9 n_f`; eV/Å³).  Where the system has the force weights
``atom_pref.npy`` (:math:`p_{fi}`), also the weighted force errors

.. math::

    \text{MAE}_w = \frac{\sum_{fic} p_{fi} |\Delta F_{fic}|}{\sum_{fic} p_{fi}}, \qquad
    \text{RMSE}_w = \sqrt{\frac{\sum_{fic} p_{fi} \Delta F_{fic}^2}{\sum_{fic} p_{fi}}}

(weight :math:`\sum_{fic} p_{fi}`), and with ``-a`` the atomic energies' errors against
``atom_ener.npy`` (every :math:`\Delta e_{fi}`; per system only, as ``dp test``: not averaged
over systems).  Over several systems (:func:`merge`) each
quantity is averaged with its weights: MAEs linearly, RMSEs in quadrature,

.. math::

    \text{MAE} = \frac{\sum_s w_s \text{MAE}_s}{\sum_s w_s}, \qquad
    \text{RMSE} = \sqrt{\frac{\sum_s w_s \text{RMSE}_s^2}{\sum_s w_s}},

over the systems that have the quantity (DeePMD-kit 3.2's ``deepmd/utils/eval_metrics.py`` and
``deepmd/utils/weight_avg.py``; the operations are the same, in the same order, so the numbers agree
to round-off: tests/test_dp_test.py holds them to DeePMD-kit's own at 1e-10 relative).
"""

import numpy as np

#: Our names of the quantities and DeePMD-kit's keys (``deepmd/utils/eval_metrics.py``).
QUANTITIES = (
    ("energy", "mae_e", "rmse_e"),
    ("energy_per_atom", "mae_ea", "rmse_ea"),
    ("force", "mae_f", "rmse_f"),
    ("virial", "mae_v", "rmse_v"),
    ("virial_per_atom", "mae_va", "rmse_va"),
    ("stress", "mae_s", "rmse_s"),
    ("force_weighted", "mae_fw", "rmse_fw"),
    ("atomic_energy", "mae_ae", "rmse_ae"),
)
#: Reported per system, left out of the average over systems (``dp test``'s ``per_system_only``).
PER_SYSTEM_ONLY = ("atomic_energy",)


def _mae(diff):
    return float(np.mean(np.abs(diff)))


def _rmse(diff):
    return float(np.sqrt(np.mean(diff * diff)))


def _stat(diff, scale=1.0):
    """(MAE, RMSE, weight) of ``diff``, both scaled by ``scale`` after the mean, as DeePMD-kit does."""
    return _mae(diff) * scale, _rmse(diff) * scale, float(diff.size)


def system_errors(pred, labels, natoms, periodic, cells=None):
    """Errors of one system: ``{quantity: (mae, rmse, weight)}`` for the quantities it has labels of.

    Parameters
    ----------
    pred : dict
        ``energy`` (nframes,), ``force`` (nframes, natoms, 3), ``virial`` (nframes, 9): the model's;
        ``atom_energy`` (nframes, natoms) with ``-a``.
    labels : dict
        ``energy``, ``force``, ``virial`` and the per-atom ``atom_pref`` (force weights) and
        ``atom_ener`` (nframes, natoms), each present only when the system has that label.
    natoms : int
    periodic : bool
        Virial errors only for periodic systems (``dp test``'s rule).
    cells : ndarray, shape (nframes, 3, 3), optional
        The frames' cells: with them, also the stress errors (periodic systems with virial labels).
    """
    out = {}
    if labels.get("energy") is not None:
        d = np.reshape(pred["energy"], (-1, 1)) - np.reshape(labels["energy"], (-1, 1))
        out["energy"] = _stat(d)
        out["energy_per_atom"] = _stat(d, 1.0 / natoms)
    if labels.get("force") is not None:
        out["force"] = _stat(np.reshape(pred["force"], -1) - np.reshape(labels["force"], -1))
        if labels.get("atom_pref") is not None:
            out["force_weighted"] = _weighted_stat(np.reshape(pred["force"], -1) - np.reshape(labels["force"], -1),
                                                   np.repeat(np.reshape(labels["atom_pref"], -1), 3))
    if periodic and labels.get("virial") is not None:
        d = np.reshape(pred["virial"], (-1, 9)) - np.reshape(labels["virial"], (-1, 9))
        out["virial"] = _stat(d)
        out["virial_per_atom"] = _stat(d, 1.0 / natoms)
        if cells is not None:
            stress = stress_errors(pred["virial"], labels["virial"], cells)
            if stress is not None:
                out["stress"] = stress
    if pred.get("atom_energy") is not None and labels.get("atom_ener") is not None:
        out["atomic_energy"] = _stat(np.reshape(pred["atom_energy"], -1) - np.reshape(labels["atom_ener"], -1))
    return out


def _weighted_stat(diff, weight):
    """(MAE, RMSE, weight) of ``diff`` weighted by ``weight`` (zeros when the weights sum to 0, as DeePMD-kit)."""
    total = float(np.sum(weight))
    if total <= 0.0:
        return 0.0, 0.0, total
    return (float(np.sum(np.abs(diff) * weight) / total), float(np.sqrt(np.sum(diff * diff * weight) / total)), total)


def stress_errors(pred_virial, label_virial, cells):
    r"""(MAE, RMSE, weight) of the stress :math:`\sigma = -W / V` over the frames with :math:`V > 0`.

    Each side is scaled by :math:`-1/V` before the difference is taken, as DeePMD-kit does (the
    same operations, so the same bits).  None when no frame has a volume.
    """
    volume = np.abs(np.linalg.det(np.reshape(cells, (-1, 3, 3))))
    keep = volume > 0.0
    if not np.any(keep):
        return None
    scale = -1.0 / volume[keep, None]
    d = np.reshape(pred_virial, (-1, 9))[keep] * scale - np.reshape(label_virial, (-1, 9))[keep] * scale
    return _stat(d)


def merge(errors, per_system=False):
    """Weighted average of several systems' :func:`system_errors` (``dp test``'s weighting).

    Each quantity is averaged over the systems that have it; returns the same layout.  The
    quantities of :data:`PER_SYSTEM_ONLY` are left out, unless ``per_system`` (merging the chunks
    of one system).
    """
    mae_sum, sq_sum, weight = {}, {}, {}
    for err in errors:
        for name, (mae, rmse, w) in err.items():
            if name in PER_SYSTEM_ONLY and not per_system:
                continue
            mae_sum[name] = mae_sum.get(name, 0.0) + mae * w
            sq_sum[name] = sq_sum.get(name, 0.0) + rmse * rmse * w
            weight[name] = weight.get(name, 0.0) + w
    # a total weight of 0 (force weights all 0): DeePMD-kit's merge gives 0 (numpy: nan, with a warning)
    return {name: (mae_sum[name] / weight[name], float(np.sqrt(sq_sum[name] / weight[name])), weight[name])
            if weight[name] > 0 else (0.0, 0.0, 0.0) for name in weight}


def as_metrics(errors, nframes):
    """The JSON form: ``nframes``, ``energy_mae``, ``energy_rmse``, ``energy_mae_per_atom``, ...

    Keys: ``{q}_mae`` and ``{q}_rmse`` for q in energy, force, virial, stress, and ``{q}_mae_per_atom``,
    ``{q}_rmse_per_atom`` for energy and virial; only the quantities ``errors`` holds.  eV, eV/Å, eV/Å³.
    """
    out = {"nframes": int(nframes)}
    for name, _, _ in QUANTITIES:
        if name not in errors:
            continue
        mae, rmse, _ = errors[name]
        if name.endswith("_per_atom"):
            base = name[: -len("_per_atom")]
            out[f"{base}_mae_per_atom"], out[f"{base}_rmse_per_atom"] = mae, rmse
        else:
            out[f"{name}_mae"], out[f"{name}_rmse"] = mae, rmse
    return out


#: Lines of the printed report, DeePMD-kit's wording (``deepmd/infer/model_test/ener.py``).
REPORT_LINES = (
    ("energy", "Energy MAE         : {mae:e} eV", "Energy RMSE        : {rmse:e} eV"),
    ("energy_per_atom", "Energy MAE/Natoms  : {mae:e} eV", "Energy RMSE/Natoms : {rmse:e} eV"),
    ("force", "Force  MAE         : {mae:e} eV/Å", "Force  RMSE        : {rmse:e} eV/Å"),
    ("force_weighted", "Force weighted MAE : {mae:e} eV/Å", "Force weighted RMSE: {rmse:e} eV/Å"),
    ("virial", "Virial MAE         : {mae:e} eV", "Virial RMSE        : {rmse:e} eV"),
    ("virial_per_atom", "Virial MAE/Natoms  : {mae:e} eV", "Virial RMSE/Natoms : {rmse:e} eV"),
    ("stress", "Stress MAE         : {mae:e} eV/Å³", "Stress RMSE        : {rmse:e} eV/Å³"),
    ("atomic_energy", "Atomic ener MAE    : {mae:e} eV", "Atomic ener RMSE   : {rmse:e} eV"),
)


def report_lines(errors):
    """The printed report of :func:`system_errors` / :func:`merge` output, one string per line."""
    lines = []
    for name, mae_line, rmse_line in REPORT_LINES:
        if name in errors:
            mae, rmse, _ = errors[name]
            lines += [mae_line.format(mae=mae), rmse_line.format(mae=mae, rmse=rmse)]
    return lines


def differences(a, b, natoms, periodic):
    r"""Largest and RMS differences of two models' predictions on the same frames.

    ``a`` and ``b``: dicts as ``pred`` of :func:`system_errors`.  Returns ``energy_per_atom_max``,
    ``energy_per_atom_rms`` (of :math:`\Delta E_f / N`), ``force_max``, ``force_rms`` (over force
    components) and, when periodic, ``virial_max``, ``virial_rms`` (virial components, eV) and
    ``virial_per_atom_max``, ``virial_per_atom_rms``.  ``None`` for an empty set of frames.
    """
    if np.size(a["energy"]) == 0:
        return None
    de = (np.reshape(a["energy"], -1) - np.reshape(b["energy"], -1)) / natoms
    df = np.reshape(a["force"], -1) - np.reshape(b["force"], -1)
    out = {"energy_per_atom_max": float(np.abs(de).max()), "energy_per_atom_rms": _rmse(de),
           "force_max": float(np.abs(df).max()), "force_rms": _rmse(df)}
    if periodic:
        dv = np.reshape(a["virial"], -1) - np.reshape(b["virial"], -1)
        out.update({"virial_max": float(np.abs(dv).max()), "virial_rms": _rmse(dv),
                    "virial_per_atom_max": float(np.abs(dv).max()) / natoms, "virial_per_atom_rms": _rmse(dv) / natoms})
    return out


def merge_differences(parts):
    """:func:`differences` of several systems combined: maxima of maxima, RMS weighted by size.

    ``parts``: list of ``(differences, n_energy, n_force, n_virial)`` with the element counts each
    RMS was taken over.
    """
    out, sums, counts = {}, {}, {}
    for diff, ne, nf, nv in parts:
        if diff is None:
            continue
        for key, value in diff.items():
            if key.endswith("_max"):
                out[key] = max(out.get(key, 0.0), value)
            else:
                n = ne if key.startswith("energy") else nf if key.startswith("force") else nv
                sums[key] = sums.get(key, 0.0) + value * value * n
                counts[key] = counts.get(key, 0) + n
    for key in sums:
        out[key] = float(np.sqrt(sums[key] / counts[key]))
    return out
