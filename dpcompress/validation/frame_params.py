"""Frame and atomic parameters of the tested systems, for models that take them (``dp test``'s rules).

A model with ``numb_fparam`` :math:`n_f > 0` reads ``set.*/fparam.npy`` (nframes, :math:`n_f`) of every
set, unless it stores ``default_fparam`` and the system has no ``fparam.npy`` (then the default is
used); a model with ``numb_aparam`` :math:`n_a > 0` needs ``set.*/aparam.npy`` (nframes,
natoms :math:`\\cdot n_a`).  This is what DeePMD-kit's ``dp test`` requires of its data
(``fparam``: ``must`` unless the model has a default; ``aparam``: always ``must``); parameters a
model does not take are ignored.
"""

from ..core.errors import DataFormatError


def param_widths(info, pot):
    """Numbers per frame of the parameters to read for ``pot`` from system ``info``.

    Parameters
    ----------
    info : SystemInfo
        Opened with labels (its ``params()`` lists what every set holds).
    pot : Potential

    Returns
    -------
    dict
        ``{"fparam": n_f, "aparam": natoms * n_a}``, only the keys the model takes and the
        system provides (``fparam`` absent: the model's ``default_fparam``).

    Raises
    ------
    DataFormatError
        The model needs a parameter the system lacks (in any of its sets).
    """
    nf, na = pot.get_dim_fparam(), pot.get_dim_aparam()
    have = info.params()
    out = {}
    if nf > 0:
        if "fparam" in have:
            out["fparam"] = nf
        elif not pot.has_default_fparam():
            raise DataFormatError(
                f"{info.name}: the model takes {nf} frame parameter(s) per frame (numb_fparam = {nf}, no "
                f"default_fparam), but not every set of the system has fparam.npy (shape (nframes, {nf}))"
            )
    if na > 0:
        if "aparam" not in have:
            raise DataFormatError(
                f"{info.name}: the model takes {na} atomic parameter(s) per atom (numb_aparam = {na}), but not every "
                f"set of the system has aparam.npy (shape (nframes, natoms * {na}) = (nframes, {info.natoms * na}))"
            )
        out["aparam"] = info.natoms * na
    return out


def describe(pot):
    """``numb_fparam = .., numb_aparam = ..`` of ``pot`` (named in read errors)."""
    return f"the model takes numb_fparam = {pot.get_dim_fparam()} per frame, numb_aparam = {pot.get_dim_aparam()} per atom"
