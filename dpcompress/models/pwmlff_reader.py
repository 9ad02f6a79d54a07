r"""Read a PWMLFF DP checkpoint (``dp_model.ckpt``, LonxunQuantum/PWMLFF) into a
:class:`~dpcompress.models.model.DPModel` with an se_e2_a descriptor.

PWMLFF's DP is DeePMD-kit's se_e2_a energy model with its own file layout.  For a center
:math:`i` of type :math:`a` and the neighbors :math:`j` of type :math:`b` (``max_neigh_num`` slots
per type, padded with zeros):

.. math::

    s(r) = \frac{\sigma(r)}{r},\quad
    \sigma(r) = \begin{cases} 1 & r < R_\text{min} \\ u^3(-6u^2 + 15u - 10) + 1 &
        R_\text{min} < r < R_\text{max},\ u = \frac{r - R_\text{min}}{R_\text{max} - R_\text{min}} \\
        0 & \text{otherwise} \end{cases}

    \tilde R_{ij} = \big((s, s\,x/r, s\,y/r, s\,z/r) - \bar R_{a j}\big) / \sigma_{a j},\qquad
    T_i = \frac1N \sum_j \tilde R_{ij}^\top G_{ab}(\tilde R_{ij,0}),\quad N = n_\text{types}\cdot
    \texttt{max\_neigh\_num}

    D_i = T_i^\top T_i[:, :M_2],\qquad E_i = F_a(D_i)

— DeePMD-kit's se_e2_a with ``rcut = Rmax``, ``rcut_smth = Rmin``, ``sel = [max_neigh_num] *
ntypes``, ``axis_neuron = M2``, ``type_one_side = false``, ``env_protection = 0``, and no
per-type energy bias outside the nets (PWMLFF's ``energy_shift`` only initialises the last
layer's bias during training; it is not added at inference).  The checkpoint keys read:

``json_file``
    ``model_type`` (``"DP"``), ``atom_type`` (atomic numbers, the type order), ``max_neigh_num``,
    ``model.descriptor`` (``Rmax``, ``Rmin``, ``M2``, ``network_size``, ``type_embedding``),
    ``model.fitting_net.network_size``.
``state_dict``
    ``embedding_net.<a*ntypes+b>.layers.<l>.{weight,bias,resnet_dt}`` (``weight`` is
    ``(n_in, n_out)``, ``y = x W + b``), ``fitting_net.<a>.layers.<l>.{weight,bias,resnet_dt}``.
``davg``, ``dstd``
    ``(ntypes, ntypes * max_neigh_num * 4)``, rows in ``atom_type_order`` (which must equal
    ``atom_type``).
``sij_max``
    The largest raw :math:`s` of the training set; :math:`s(r_\text{min}) = s_\text{max}` gives
    the model's ``min_nbor_dist`` (the compression range).

The nets' layer rules (PWMLFF's ``dp_embedding.py``): an embedding layer adds its input when
``n_out = n_in`` (``[x, x]`` when ``n_out = 2 n_in``) — DeePMD-kit's rule — and only such a layer
scales its output by ``resnet_dt`` when stored (DeePMD-kit scales every layer); a fitting hidden
layer after the first always adds its input (times ``resnet_dt``), so its width must equal its
input's; the last fitting layer is linear.

The type-embedding variant (``model.descriptor.type_embedding``) feeds the embedding net
:math:`G([\tilde s, v_b])` with a fixed property vector :math:`v_b` of the neighbor's element.  For
a fixed :math:`b` the first layer is :math:`\tanh(\tilde s\,W_{0,:} + (b_0 + v_b W_{1:,:}))`, so it is
se_e2_a with ``type_one_side = true`` and one net per neighbor type whose first bias absorbs
:math:`v_b W_{1:,:}`.  PWMLFF computes :math:`v_b` from a property table in its own source; an
uncompressed checkpoint does not store it, a PWMLFF-compressed one does (``compress.type_vector``),
:func:`model_from_checkpoint` also takes it as an argument, or computes it from the user's PWMLFF
source (``pwmlff_source=`` or ``$DPCOMPRESS_PWMLFF_SOURCE``; :mod:`.pwmlff_properties`).

PWMLFF differs from this (and from DeePMD-kit) in one respect: its inference sums only the
neighbor blocks of the element types present in the frame and divides by
``max_neigh_num`` times their count; dpcompress always uses every block (PWMLFF's result for any
frame that contains every element of the model).  See docs/pwmlff.md.
"""

import os
import re
import warnings

import numpy as np

from ..core.elements import symbol
from ..core.errors import InputError, ModelFormatError, UnsupportedModelError
from ..core.networks import Layer, Network
from ..descriptors.fields import MAX_SEL, MAX_TYPES, MAX_WIDTH
from ..descriptors.se_e2_a import DescriptorSeA
from . import pwmlff_properties
from .model import DPModel, EnergyFitting
from .torch_zip import read_checkpoint

_PARAM = re.compile(r"^(embedding_net|fitting_net)\.(\d+)\.layers\.(\d+)\.(weight|bias|resnet_dt)$")


def read_pwmlff(path, type_vectors=None, pwmlff_source=None):
    """A :class:`DPModel` from a PWMLFF DP checkpoint (see the module docstring).

    Parameters
    ----------
    path : str or os.PathLike
    type_vectors : dict or None
        Type-embedding checkpoints only: atomic number -> the neighbor property vector PWMLFF's
        ``get_normalized_data_list`` gives; None takes the checkpoint's ``compress.type_vector``,
        else computes them from ``pwmlff_source``.
    pwmlff_source : str, os.PathLike or None
        Type-embedding checkpoints only: PWMLFF's source directory or its
        ``utils/atom_type_emb_dict.py`` (see :mod:`~dpcompress.models.pwmlff_properties`); None
        takes ``$DPCOMPRESS_PWMLFF_SOURCE`` when set.

    Raises
    ------
    ModelFormatError, UnsupportedModelError
    """
    return model_from_checkpoint(read_checkpoint(path), source=str(path), type_vectors=type_vectors,
                                 pwmlff_source=pwmlff_source)


def _get(d, key, where, source, kind=None, default=KeyError):
    if not isinstance(d, dict) or key not in d:
        if default is not KeyError:
            return default
        raise ModelFormatError(f"{source}: the checkpoint has no '{where}{key}'")
    v = d[key]
    if kind is not None and not isinstance(v, kind):
        raise ModelFormatError(f"{source}: '{where}{key}' is a {type(v).__name__}, expected a {kind.__name__}")
    return v


def _int(v, what, source, lo=1, hi=MAX_SEL):
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
        raise ModelFormatError(f"{source}: '{what}' = {v!r}, expected an integer in [{lo}, {hi}]")
    return int(v)


def _float(v, what, source):
    if isinstance(v, np.ndarray) and v.size == 1:
        v = v.reshape(-1)[0].item()
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
        raise ModelFormatError(f"{source}: '{what}' = {v!r}, expected a non-negative number")
    return float(v)


def _collect_nets(state, source):
    """``{'embedding_net': {k: {l: {name: array}}}, 'fitting_net': ...}`` from the state dict."""
    nets = {"embedding_net": {}, "fitting_net": {}}
    for key, value in state.items():
        m = _PARAM.match(key) if isinstance(key, str) else None
        if m is None:
            raise UnsupportedModelError(f"{source}: state_dict entry {key!r} is not part of a PWMLFF DP model "
                                        "(embedding_net.* / fitting_net.*)")
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            raise ModelFormatError(f"{source}: state_dict[{key!r}] is not a floating-point tensor")
        if not np.all(np.isfinite(value)):
            raise ModelFormatError(f"{source}: state_dict[{key!r}] holds non-finite values")
        part, k, l, name = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
        nets[part].setdefault(k, {}).setdefault(l, {})[name] = value.astype(np.float64)
    return nets


def _layers(raw, part, k, source):
    """The layers of ``<part>.<k>`` in order, each a dict with weight / bias / resnet_dt."""
    if sorted(raw) != list(range(len(raw))):
        raise ModelFormatError(f"{source}: '{part}.{k}.layers' are numbered {sorted(raw)}, "
                               f"expected 0 ... {len(raw) - 1}")
    out = []
    for l in range(len(raw)):
        d = raw[l]
        where = f"{part}.{k}.layers.{l}"
        w = d.get("weight")
        if w is None or w.ndim != 2 or not (1 <= w.shape[0] <= MAX_WIDTH and 1 <= w.shape[1] <= MAX_WIDTH):
            raise ModelFormatError(f"{source}: '{where}.weight' is missing or has shape "
                                   f"{None if w is None else w.shape}, expected (n_in, n_out)")
        n = w.shape[1]
        for name in ("bias", "resnet_dt"):
            if name in d and d[name].size != n:
                raise ModelFormatError(f"{source}: '{where}.{name}' has shape {d[name].shape}, expected (1, {n})")
        if out and out[-1]["weight"].shape[1] != w.shape[0]:
            raise ModelFormatError(f"{source}: '{where}.weight' takes {w.shape[0]} inputs, the layer before gives "
                                   f"{out[-1]['weight'].shape[1]}")
        out.append(d)
    return out


def _embedding_network(raw, part, k, source):
    """PWMLFF's EmbeddingNet as a :class:`Network` (DeePMD-kit's layer rule, resnet on)."""
    layers = []
    for l, d in enumerate(_layers(raw, part, k, source)):
        w = d["weight"]
        b = d["bias"].reshape(-1) if "bias" in d else None
        # PWMLFF scales by resnet_dt only where the layer adds its input (DeePMD-kit always does)
        residual = w.shape[1] in (w.shape[0], 2 * w.shape[0])
        idt = d["resnet_dt"].reshape(-1) if "resnet_dt" in d and residual else None
        layers.append(Layer(w=w, b=b, idt=idt, activation="tanh", resnet=True))
    return Network(tuple(layers))


def _fitting_network(raw, k, source):
    """PWMLFF's FittingNet: first layer plain, later hidden layers residual, last layer linear."""
    ls = _layers(raw, "fitting_net", k, source)
    if len(ls) < 2 or ls[-1]["weight"].shape[1] != 1:
        raise ModelFormatError(f"{source}: 'fitting_net.{k}' should end in a layer with one output")
    layers = []
    for l, d in enumerate(ls):
        w = d["weight"]
        last = l == len(ls) - 1
        if 0 < l and not last and w.shape[0] != w.shape[1]:
            raise UnsupportedModelError(
                f"{source}: 'fitting_net.{k}.layers.{l}' maps {w.shape[0]} -> {w.shape[1]}; PWMLFF adds every "
                "hidden layer's input to its output, which needs equal widths")
        layers.append(Layer(w=w, b=d["bias"].reshape(-1) if "bias" in d else None,
                            idt=None if last or l == 0 or "resnet_dt" not in d else d["resnet_dt"].reshape(-1),
                            activation="linear" if last else "tanh", resnet=0 < l and not last))
    return Network(tuple(layers))


def radial_s(r, rmin, rmax):
    r"""PWMLFF's :math:`s(r) = \sigma(r)/r` (module docstring), for ``r`` > 0."""
    r = np.asarray(r, dtype=np.float64)
    u = np.clip((r - rmin) / (rmax - rmin), 0.0, 1.0)
    sw = u**3 * (-6 * u**2 + 15 * u - 10) + 1
    return np.where(r < rmax, sw / r, 0.0)


def min_nbor_dist_from_sij_max(sij_max, rmin, rmax):
    r"""The distance :math:`r` with :math:`s(r) = s_\text{max}` (``s`` decreases on (0, Rmax)), or None."""
    if not sij_max > 0:
        return None
    if sij_max >= 1.0 / rmin:
        return 1.0 / sij_max
    lo, hi = rmin, rmax
    for _ in range(200):  # bisection to the float's resolution
        mid = 0.5 * (lo + hi)
        if radial_s(mid, rmin, rmax) > sij_max:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _type_vectors(ckpt, type_vectors, atom_type, nprop, source, props=None, pwmlff_source=None):
    """Neighbor property vectors, one row per type (the type-embedding variant): the argument, else
    the checkpoint's ``compress.type_vector``, else PWMLFF's property table (argument or $ENV)."""
    if type_vectors is None:
        comp = ckpt.get("compress") if isinstance(ckpt.get("compress"), dict) else {}
        type_vectors = comp.get("type_vector")
    if type_vectors is None:
        pwmlff_source = pwmlff_source or os.environ.get(pwmlff_properties.ENV) or None
        if pwmlff_source is not None:
            if not (isinstance(props, list) and all(isinstance(p, str) for p in props)):
                raise ModelFormatError(f"{source}: 'json_file.model.descriptor.type_embedding.physical_property' "
                                       "should list the property names")
            type_vectors = pwmlff_properties.type_vectors_from_source(pwmlff_source, atom_type, props)
    if type_vectors is None:
        raise UnsupportedModelError(
            f"{source}: a PWMLFF type-embedding DP checkpoint does not store the neighbor property vectors its "
            "embedding net takes (PWMLFF computes them from the property table in its source); set "
            f"{pwmlff_properties.ENV} to your PWMLFF source directory (the one holding "
            "utils/atom_type_emb_dict.py), or compress it with `PWMLFF compress` first (the compressed "
            "checkpoint stores them as 'compress.type_vector'), or pass type_vectors= or pwmlff_source= to "
            "dpcompress.models.pwmlff_reader.read_pwmlff")
    rows = []
    for z in atom_type:
        v = type_vectors.get(z, type_vectors.get(str(z))) if isinstance(type_vectors, dict) else None
        v = None if v is None else np.asarray(v, dtype=np.float64).reshape(-1)
        if v is None or v.size != nprop or not np.all(np.isfinite(v)):
            raise ModelFormatError(f"{source}: the type vector of atomic number {z} is missing or not {nprop} "
                                   "finite numbers")
        rows.append(v)
    return np.array(rows)


def model_from_checkpoint(ckpt, source="", type_vectors=None, pwmlff_source=None):
    """Build the :class:`DPModel` of a PWMLFF DP checkpoint read by
    :func:`~dpcompress.models.torch_zip.read_checkpoint`."""
    if not isinstance(ckpt, dict):
        raise ModelFormatError(f"{source}: the checkpoint holds a {type(ckpt).__name__}, expected a dict")
    js = _get(ckpt, "json_file", "", source, dict)
    mtype = js.get("model_type")
    if not isinstance(mtype, str) or mtype.upper() != "DP":
        raise UnsupportedModelError(f"{source}: PWMLFF model_type {mtype!r} is not read (only 'DP' checkpoints)")
    atom_type = _get(js, "atom_type", "json_file.", source, list)
    if not atom_type or len(atom_type) > MAX_TYPES:
        raise ModelFormatError(f"{source}: 'json_file.atom_type' should list 1 ... {MAX_TYPES} atomic numbers")
    type_map = []
    for k, z in enumerate(atom_type):
        name = symbol(int(z)) if isinstance(z, (int, np.integer)) and not isinstance(z, bool) else None
        if name is None:
            raise ModelFormatError(f"{source}: 'json_file.atom_type[{k}]' = {z!r} is not an atomic number")
        type_map.append(name)
    atom_type = [int(z) for z in atom_type]
    if len(set(atom_type)) != len(atom_type):
        raise ModelFormatError(f"{source}: 'json_file.atom_type' repeats an element: {atom_type}")
    nt = len(atom_type)
    order = ckpt.get("atom_type_order")
    if order is not None and np.asarray(order).reshape(-1).tolist() != atom_type:
        raise UnsupportedModelError(
            f"{source}: 'atom_type_order' {np.asarray(order).reshape(-1).tolist()} differs from "
            f"'json_file.atom_type' {atom_type}; PWMLFF pairs davg/dstd rows with types by position, so this "
            "checkpoint is refused rather than guessed")
    sel = _int(js.get("max_neigh_num", 100), "json_file.max_neigh_num", source)
    model = js.get("model") if isinstance(js.get("model"), dict) else {}
    dsc = model.get("descriptor") if isinstance(model.get("descriptor"), dict) else {}
    rmax = _float(dsc.get("Rmax", 6.0), "json_file.model.descriptor.Rmax", source)
    rmin = _float(dsc.get("Rmin", 0.5), "json_file.model.descriptor.Rmin", source)
    if not 0 < rmin < rmax:
        raise ModelFormatError(f"{source}: descriptor Rmin = {rmin}, Rmax = {rmax}; expected 0 < Rmin < Rmax")
    m2 = _int(dsc.get("M2", 16), "json_file.model.descriptor.M2", source, hi=MAX_WIDTH)
    for part in ("descriptor", "fitting_net"):
        act = (model.get(part) or {}).get("activation", "tanh") if isinstance(model.get(part), dict) else "tanh"
        if act != "tanh":
            raise UnsupportedModelError(f"{source}: 'json_file.model.{part}.activation' = {act!r}; PWMLFF "
                                        "evaluates only tanh")
    typ_emb = dsc.get("type_embedding") is not None and dsc.get("type_embedding") is not False
    if isinstance(ckpt.get("compress"), dict):
        warnings.warn(f"{source}: a PWMLFF-compressed checkpoint; dpcompress evaluates its nets exactly (PWMLFF's "
                      "own tables are not used; compress with dpcompress for tables)", stacklevel=3)

    state = _get(ckpt, "state_dict", "", source, dict)
    nets = _collect_nets(state, source)
    nnei = nt * sel
    stats = []
    for key in ("davg", "dstd"):
        a = _get(ckpt, key, "", source, np.ndarray)
        if a.dtype.kind != "f" or a.shape != (nt, nnei * 4) or not np.all(np.isfinite(a)):
            raise ModelFormatError(f"{source}: '{key}' has shape {a.shape} ({a.dtype}), expected finite floats of "
                                   f"shape ({nt}, {nnei * 4}) (ntypes, ntypes * max_neigh_num * 4)")
        stats.append(a.astype(np.float64).reshape(nt, nnei, 4))
    davg, dstd = stats
    if not np.all(dstd > 0):
        raise ModelFormatError(f"{source}: 'dstd' has entries <= 0")

    emb = nets["embedding_net"]
    if typ_emb:
        props = dsc["type_embedding"].get("physical_property") if isinstance(dsc["type_embedding"], dict) else None
        if sorted(emb) != [0]:
            raise UnsupportedModelError(f"{source}: a type-embedding checkpoint with embedding nets {sorted(emb)}; "
                                        "only the variant without a type_embedding_net (one net, index 0) is read")
        w0 = emb[0].get(0, {}).get("weight")
        nprop = (w0.shape[0] - 1) if isinstance(w0, np.ndarray) and w0.ndim == 2 else -1
        if nprop < 1 or (isinstance(props, list) and len(props) != nprop):
            raise ModelFormatError(f"{source}: 'embedding_net.0.layers.0.weight' should take 1 + "
                                   f"{len(props) if isinstance(props, list) else 'n'} inputs (s and the properties)")
        if w0.shape[1] in (w0.shape[0], 2 * w0.shape[0]):
            raise UnsupportedModelError(f"{source}: the type-embedding net's first layer maps {w0.shape[0]} -> "
                                        f"{w0.shape[1]} with a residual over [s, properties]; not read")
        vec = _type_vectors(ckpt, type_vectors, atom_type, nprop, source, props, pwmlff_source)
        shared = _embedding_network(emb[0], "embedding_net", 0, source)
        first = shared.layers[0]
        # per neighbor type b: the first layer takes s alone and its bias absorbs v_b W[1:]
        embeddings = tuple(
            Network((Layer(w=first.w[:1], b=(first.b if first.b is not None else 0.0) + vec[b] @ first.w[1:],
                           idt=first.idt, activation="tanh", resnet=True),) + shared.layers[1:])
            for b in range(nt))
        type_one_side = True
    else:
        if sorted(emb) != list(range(nt * nt)):
            raise ModelFormatError(f"{source}: 'embedding_net' holds nets {sorted(emb)}, expected 0 ... {nt * nt - 1} "
                                   "(one per center/neighbor type pair)")
        flat = [_embedding_network(emb[k], "embedding_net", k, source) for k in range(nt * nt)]
        for k, net in enumerate(flat):
            if net.in_dim != 1:
                raise ModelFormatError(f"{source}: 'embedding_net.{k}' takes {net.in_dim} inputs, expected 1")
        embeddings = tuple(tuple(flat[a * nt:(a + 1) * nt]) for a in range(nt))
        type_one_side = False
    widths = {(n.layers[-1].n_out) for n in (embeddings if type_one_side else [x for r in embeddings for x in r])}
    if len(widths) != 1:
        raise ModelFormatError(f"{source}: the embedding nets end in different widths {sorted(widths)}")
    m1 = widths.pop()
    neuron = tuple(l.n_out for l in (embeddings[0] if type_one_side else embeddings[0][0]).layers)
    if m2 > m1:
        raise ModelFormatError(f"{source}: M2 = {m2} exceeds the embedding width {m1}")
    fit = nets["fitting_net"]
    if sorted(fit) != list(range(nt)):
        raise ModelFormatError(f"{source}: 'fitting_net' holds nets {sorted(fit)}, expected 0 ... {nt - 1}")
    fnets = tuple(_fitting_network(fit[a], a, source) for a in range(nt))
    for a, net in enumerate(fnets):
        if net.in_dim != m1 * m2:
            raise ModelFormatError(f"{source}: 'fitting_net.{a}' takes {net.in_dim} inputs, expected M1*M2 = "
                                   f"{m1}*{m2} = {m1 * m2}")

    descriptor = DescriptorSeA(rcut=rmax, rcut_smth=rmin, sel=(sel,) * nt, neuron=neuron, axis_neuron=m2,
                               type_one_side=type_one_side, exclude_types=frozenset(), env_protection=0.0,
                               davg=davg, dstd=dstd, embeddings=embeddings, activation="tanh",
                               resnet_dt=False)
    sij = ckpt.get("sij_max")
    min_nbor = None
    if sij is not None:
        min_nbor = min_nbor_dist_from_sij_max(_float(sij, "sij_max", source), rmin, rmax)
    return DPModel(type_map=tuple(type_map), descriptor=descriptor,
                   fitting=EnergyFitting(networks=fnets, bias_atom_e=np.zeros(nt)),
                   out_bias=np.zeros(nt), min_nbor_dist=min_nbor, source=source)


def restrict_to_present_types(model, present):
    r"""The model as PWMLFF's own inference evaluates a frame holding only the element types
    ``present``: the neighbor blocks of the other types are dropped (``sel`` 0, so their padding
    no longer enters :math:`T_i`) and :math:`N` becomes ``max_neigh_num * len(present)``.

    Parameters
    ----------
    model : DPModel
        Read by :func:`read_pwmlff` (uncompressed; compress the result if wanted).
    present : iterable of int or str
        Type indices or element names of the frame's atoms.

    Returns
    -------
    DPModel
        Equal to ``model`` when every type is present.
    """
    import dataclasses

    d = model.descriptor
    keep = set()
    for t in present:
        idx = model.type_map.index(t) if isinstance(t, str) and t in model.type_map else t
        if isinstance(idx, str) or not 0 <= int(idx) < model.ntypes:
            raise InputError(f"{model.source}: type {t!r} is not one of {model.type_map}")
        keep.add(int(idx))
    if model.is_compressed:
        raise UnsupportedModelError("restrict_to_present_types takes the uncompressed model (compress afterwards)")
    offsets = np.concatenate([[0], np.cumsum(d.sel)])
    slots = np.concatenate([np.arange(offsets[b], offsets[b + 1]) for b in range(d.ntypes) if b in keep])
    sel = tuple(s if b in keep else 0 for b, s in enumerate(d.sel))
    desc = dataclasses.replace(d, sel=sel, davg=d.davg[:, slots].copy(), dstd=d.dstd[:, slots].copy())
    return dataclasses.replace(model, descriptor=desc)
