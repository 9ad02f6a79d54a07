r"""Read a PWMLFF NEP checkpoint (``nep_model.ckpt``) as a :class:`~dpcompress.nep.NEPModel`.

PWMLFF trains GPUMD's NEP4 and saves it with ``torch.save``; its ``PWMLFF toneplmps`` writes the
same model as a ``nep.txt`` for LAMMPS (``nep_to_lmps.txt``, one output bias per element).  This
module builds that text from the checkpoint — without torch and without running pickle code
(:func:`dpcompress.models.torch_zip.read_checkpoint`) — and parses it with
:func:`dpcompress.nep.parse_nep_text`, so a checkpoint is evaluated, compressed and tested exactly
as the ``nep_to_lmps.txt`` would be, but from the checkpoint's float64 numbers (PWMLFF's text keeps
them to Python's shortest repr as well, so the two agree to the last bit for float64 checkpoints).

The checkpoint keys read, and where they go in the ``nep.txt`` (GPUMD's layout, docs/nep.md):

``json_file``
    ``model_type`` ("NEP"), ``atom_type`` (atomic numbers: the element line),
    ``model.descriptor``: ``cutoff`` :math:`(r_c^R, r_c^A)`, ``n_max``, ``basis_size``,
    ``l_max`` :math:`(l_\text{max}^{3b}, l^{4b}, l^{5b})`, optional ``zbl`` (outer ZBL cutoff
    :math:`r_o`; the inner one is :math:`r_o/2`); ``model.fitting_net.network_size[0]``
    (hidden width :math:`N_n`).
``state_dict``
    ``fitting_net.<t>.layers.0.{weight (D, N_n), bias (1, N_n)}``,
    ``fitting_net.<t>.layers.1.{weight (N_n, 1), bias (1, 1)}`` per element :math:`t`;
    ``c_param_2`` :math:`(T, T, n^R_\text{max}+1, k^R+1)` and, when :math:`l_\text{max}^{3b} > 0`,
    ``c_param_3`` :math:`(T, T, n^A_\text{max}+1, k^A+1)`.
``q_scaler``
    :math:`D` descriptor scales.

PWMLFF's network is :math:`E_i = \tanh(q W_0 + b_0)\,W_1 + b_1` while GPUMD subtracts its biases
(:math:`\tanh(W_0 q - b_0) \cdot w_1 - b_1`), so the text holds :math:`W_0^\top`, :math:`-b_0`,
:math:`W_1`, and :math:`-b_1` per element; the radial coefficients are written with the
:math:`(n, k)` axes first, :math:`c[n, k, t_i, t_j]`.
"""

import numpy as np

from ..core.elements import symbol
from ..core.errors import ModelFormatError, UnsupportedModelError
from ..models.torch_zip import is_torch_zip, read_checkpoint
from ..nep import NEPModel, parse_nep_text

#: Bounds on the sizes read (GPUMD's own limits are lower; these only stop absurd allocations).
_MAX_N = 64
_MAX_WIDTH = 4096


def is_pwmlff_nep_checkpoint(path):
    """True when ``path`` is a PyTorch zip checkpoint whose ``json_file.model_type`` is "NEP"."""
    if not is_torch_zip(path):
        return False
    try:
        ckpt = read_checkpoint(path)
    except ModelFormatError:
        return False
    return is_nep_checkpoint(ckpt)


def is_nep_checkpoint(ckpt):
    """True for a checkpoint dict (as read) of a PWMLFF NEP model."""
    js = ckpt.get("json_file") if isinstance(ckpt, dict) else None
    mtype = js.get("model_type") if isinstance(js, dict) else None
    return isinstance(mtype, str) and mtype.upper() == "NEP"


def read_pwmlff_nep(path) -> NEPModel:
    """The :class:`NEPModel` of a PWMLFF ``nep_model.ckpt`` (see the module docstring).

    Raises
    ------
    ModelFormatError, UnsupportedModelError
        Naming the file and the key that is missing or malformed.
    """
    return model_from_nep_checkpoint(read_checkpoint(path), source=str(path))


def model_from_nep_checkpoint(ckpt, source="") -> NEPModel:
    """The :class:`NEPModel` of a checkpoint dict read by :func:`read_checkpoint`."""
    return parse_nep_text(nep_text_from_checkpoint(ckpt, source), path=source)


def _ints(v, n, what, source, lo=0, hi=_MAX_N):
    if not isinstance(v, (list, tuple)) or len(v) != n or not all(
            isinstance(x, (int, np.integer)) and not isinstance(x, bool) and lo <= int(x) <= hi for x in v):
        raise ModelFormatError(f"{source}: '{what}' = {v!r}, expected {n} integers in [{lo}, {hi}]")
    return [int(x) for x in v]


def _array(state, key, shape, source):
    a = state.get(key) if isinstance(state, dict) else None
    if not isinstance(a, np.ndarray):
        raise ModelFormatError(f"{source}: the checkpoint has no 'state_dict.{key}'")
    if a.dtype.kind != "f" or tuple(a.shape) != tuple(shape) or not np.all(np.isfinite(a)):
        raise ModelFormatError(f"{source}: 'state_dict.{key}' has shape {a.shape} ({a.dtype}), expected finite floats "
                               f"of shape {tuple(shape)}")
    return a.astype(np.float64)


def _fmt(values):
    # repr of the float64 value: the shortest text that reads back to the same double
    return "\n".join(repr(float(x)) for x in np.asarray(values, dtype=np.float64).reshape(-1))


def nep_text_from_checkpoint(ckpt, source=""):
    """The ``nep.txt`` text (``nep_to_lmps.txt`` layout) of a PWMLFF NEP checkpoint dict.

    Raises
    ------
    ModelFormatError, UnsupportedModelError
    """
    if not is_nep_checkpoint(ckpt):
        raise UnsupportedModelError(f"{source}: not a PWMLFF NEP checkpoint (json_file.model_type is not 'NEP')")
    js = ckpt["json_file"]
    atom_type = js.get("atom_type")
    if not isinstance(atom_type, list) or not atom_type:
        raise ModelFormatError(f"{source}: 'json_file.atom_type' should be a list of atomic numbers")
    names = []
    for k, z in enumerate(atom_type):
        name = symbol(int(z)) if isinstance(z, (int, np.integer)) and not isinstance(z, bool) else None
        if name is None:
            raise ModelFormatError(f"{source}: 'json_file.atom_type[{k}]' = {z!r} is not an atomic number")
        names.append(name)
    order = ckpt.get("atom_type_order")
    if order is not None and np.asarray(order).reshape(-1).tolist() != [int(z) for z in atom_type]:
        raise UnsupportedModelError(f"{source}: 'atom_type_order' {np.asarray(order).reshape(-1).tolist()} differs "
                                    f"from 'json_file.atom_type' {atom_type}; refused rather than guessed")
    nt = len(names)
    model = js.get("model") if isinstance(js.get("model"), dict) else {}
    dsc = model.get("descriptor")
    if not isinstance(dsc, dict):
        raise ModelFormatError(f"{source}: the checkpoint has no 'json_file.model.descriptor'")
    cutoff = dsc.get("cutoff")
    if (not isinstance(cutoff, (list, tuple)) or len(cutoff) != 2
            or not all(isinstance(x, (int, float, np.number)) and 0 < float(x) < 100 for x in cutoff)):
        raise ModelFormatError(f"{source}: 'json_file.model.descriptor.cutoff' = {cutoff!r}, expected [rc_radial, "
                               "rc_angular] in Å")
    n_max = _ints(dsc.get("n_max"), 2, "json_file.model.descriptor.n_max", source)
    basis = _ints(dsc.get("basis_size"), 2, "json_file.model.descriptor.basis_size", source)
    l_max = _ints(dsc.get("l_max"), 3, "json_file.model.descriptor.l_max", source, hi=8)
    fit = model.get("fitting_net") if isinstance(model.get("fitting_net"), dict) else {}
    size = fit.get("network_size")
    if not isinstance(size, (list, tuple)) or not size:
        raise ModelFormatError(f"{source}: 'json_file.model.fitting_net.network_size' should list the layer widths")
    width = _ints(list(size[:1]), 1, "json_file.model.fitting_net.network_size[0]", source, lo=1, hi=_MAX_WIDTH)[0]
    zbl = dsc.get("zbl")

    # descriptor length (the radial, 3-, 4- and 5-body blocks, as GPUMD's NEP4 counts them)
    dim = n_max[0] + 1 + (n_max[1] + 1) * l_max[0] + (n_max[1] + 1) * ((l_max[1] > 0) + (l_max[2] > 0))
    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        raise ModelFormatError(f"{source}: the checkpoint has no 'state_dict'")
    nn, biases = [], []
    for t in range(nt):
        w0 = _array(state, f"fitting_net.{t}.layers.0.weight", (dim, width), source)
        b0 = _array(state, f"fitting_net.{t}.layers.0.bias", (1, width), source)
        w1 = _array(state, f"fitting_net.{t}.layers.1.weight", (width, 1), source)
        b1 = _array(state, f"fitting_net.{t}.layers.1.bias", (1, 1), source)
        nn += [w0.T, -b0, w1]  # GPUMD subtracts its biases (module docstring)
        biases.append(-b1)
    c2 = _array(state, "c_param_2", (nt, nt, n_max[0] + 1, basis[0] + 1), source)
    cs = [c2.transpose(2, 3, 0, 1)]
    if l_max[0] > 0:
        c3 = _array(state, "c_param_3", (nt, nt, n_max[1] + 1, basis[1] + 1), source)
        cs.append(c3.transpose(2, 3, 0, 1))
    q = ckpt.get("q_scaler")
    q = np.asarray(q) if isinstance(q, (np.ndarray, list)) else None
    if q is None or q.dtype.kind not in "fi" or q.size != dim or not np.all(np.isfinite(q)):
        raise ModelFormatError(f"{source}: 'q_scaler' should hold {dim} finite numbers (one per descriptor component), "
                               f"found {None if q is None else q.size}")

    if zbl is None:
        head = f"nep4   {nt} {' '.join(names)}\n"
    else:
        if not isinstance(zbl, (int, float, np.number)) or not 0 < float(zbl) < 100:
            raise ModelFormatError(f"{source}: 'json_file.model.descriptor.zbl' = {zbl!r}, expected a cutoff in Å")
        head = f"nep4_zbl   {nt} {' '.join(names)}\nzbl   {float(zbl) / 2} {float(zbl)}\n"
    head += (f"cutoff {float(cutoff[0])} {float(cutoff[1])}\nn_max  {n_max[0]} {n_max[1]}\n"
             f"basis_size {basis[0]} {basis[1]}\nl_max  {l_max[0]} {l_max[1]} {l_max[2]}\nANN    {width} 0\n")
    body = [_fmt(a) for a in nn] + [_fmt(biases), _fmt(np.concatenate([c.reshape(-1) for c in cs])), _fmt(q)]
    return head + "\n".join(body)  # no final newline, as PWMLFF writes it
