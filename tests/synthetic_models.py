"""Small synthetic se_e2_r / se_atten_v2 models: deterministic edits of a tiny fixture's .dp tree.

Each variant copies a fixture's ``frozen.dp`` and edits its JSON tree (arrays are
``/variable_NNNN`` datasets; edited arrays are written as new datasets).  Only
numpy, h5py and json are used, so the same edits can be replayed in a
DeePMD-kit environment: ``variants_ref.npz`` in the test data folders holds
DeePMD-kit 3.2.0's outputs (``DeepPot`` of ``dp convert-backend model.dp model.pth``)
for the variants in :data:`DEEPMD_CHECKED`, on the first two test frames (se_atten_tiny's:
``tests/data/deepmd/make_variants_ref.py``).
"""

import json
import shutil

import h5py
import numpy as np

ACTIVATIONS = ("tanh", "gelu", "relu", "relu6", "softplus", "sigmoid", "silu", "linear")


class _Tree:
    """The JSON tree of an open .dp file plus access to its arrays."""

    def __init__(self, fh):
        self.fh = fh
        self.tree = json.loads(fh.attrs["json"])
        self._n = 0

    def get(self, path):
        return np.asarray(self.fh[path][()])

    def put(self, arr):
        self._n += 1
        path = f"/variable_edit_{self._n:04d}"
        self.fh.create_dataset(path, data=np.asarray(arr, dtype=np.float64))
        return path


def edit_dp(src, dst, edit):
    """Copy ``src`` to ``dst`` and apply ``edit(tree: _Tree)`` to its JSON tree; returns ``dst``."""
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as fh:
        t = _Tree(fh)
        edit(t)
        fh.attrs["json"] = json.dumps(t.tree)
    return str(dst)


def _desc(t):
    return t.tree["model"]["descriptor"]


def _nets(coll):
    return [n for n in coll["networks"] if n is not None]


def set_descriptor(**kw):
    """Change descriptor settings (e.g. exclude_types, env_protection)."""

    def edit(t):
        _desc(t).update(kw)

    return edit


def set_model(**kw):
    """Change model settings (pair_exclude_types, atom_exclude_types)."""

    def edit(t):
        t.tree["model"].update(kw)

    return edit


def activation(name):
    """Every embedding net of the descriptor (geometric and strip) uses activation ``name``."""

    def edit(t):
        d = _desc(t)
        d["activation_function"] = name
        for key in ("embeddings", "embeddings_strip"):
            if key in d:
                for net in _nets(d[key]):
                    net["activation_function"] = name
                    for layer in net["layers"]:
                        layer["activation_function"] = name

    return edit


def se_atten_one_side(t):
    """se_atten_v2 ``type_one_side`` true: the strip net's first layer keeps the neighbor half of its inputs."""
    d = _desc(t)
    d["type_one_side"] = True
    net = d["embeddings_strip"]["networks"][0]
    net["in_dim"] = d["tebd_dim"]
    v = net["layers"][0]["@variables"]
    v["w"] = t.put(t.get(v["w"])[: d["tebd_dim"]])


def se_atten_no_tebd_output(t):
    """se_atten_v2 ``concat_output_tebd`` false: the fitting nets lose their type-embedding inputs."""
    d = _desc(t)
    d["concat_output_tebd"] = False
    fit = t.tree["model"]["fitting"]
    fit["dim_descrpt"] -= d["tebd_dim"]
    for net in _nets(fit["nets"]):
        v = net["layers"][0]["@variables"]
        v["w"] = t.put(t.get(v["w"])[: fit["dim_descrpt"]])


def se_r_two_side(t):
    """se_e2_r ``type_one_side`` false (TensorFlow's form): one net per (center, neighbor) pair, flat
    index ``c + n*ntypes``; the net of center 1 is the neighbor's net with weights scaled by 1.1."""
    d = _desc(t)
    nt = len(d["sel"])
    one = d["embeddings"]["networks"]
    two = [None] * (nt * nt)
    for c in range(nt):
        for n in range(nt):
            net = json.loads(json.dumps(one[n]))
            if c == 1:
                for layer in net["layers"]:
                    layer["@variables"]["w"] = t.put(1.1 * t.get(layer["@variables"]["w"]))
            two[c + n * nt] = net
    d["type_one_side"] = False
    d["embeddings"]["ndim"] = 2
    d["embeddings"]["networks"] = two


def set_davg(rows):
    """Nonzero descriptor statistics ``davg`` (``set_davg_zero`` false): row ``rows[t]`` (4 numbers) for
    every slot of center type ``t``; in se_atten v1 the padding slots then add their (gated) term."""

    def edit(t):
        d = _desc(t)
        v = d["@variables"]
        davg = t.get(v["davg"])
        davg[:] = np.asarray(rows, dtype=np.float64)[:, None, :]
        v["davg"] = t.put(davg)
        d["set_davg_zero"] = False

    return edit


#: se_atten v1 with a nonzero davg: refused (DeePMD-kit gates padding by the frame's first atom's type)
V1_DAVG = set_davg([[0.12, 0.03, -0.02, 0.01], [0.07, -0.01, 0.02, 0.04]])


def chain(*edits):
    def edit(t):
        for e in edits:
            e(t)

    return edit


#: name -> (tiny fixture, edit); DeePMD-kit 3.2.0 evaluated these (variants_ref.npz)
DEEPMD_CHECKED = {
    "r_exclude": ("se_e2_r_tiny", set_descriptor(exclude_types=[[0, 1]])),
    "r_pair_exclude": ("se_e2_r_tiny", set_model(pair_exclude_types=[[0, 0]], atom_exclude_types=[1])),
    "r_silu_protection": ("se_e2_r_tiny", chain(activation("silu"), set_descriptor(env_protection=0.1))),
    "at_one_side": ("se_atten_v2_tiny", se_atten_one_side),
    "at_exclude": ("se_atten_v2_tiny", set_descriptor(exclude_types=[[0, 1]])),
    "at_one_side_exclude": ("se_atten_v2_tiny", chain(se_atten_one_side, set_descriptor(exclude_types=[[1, 1]]))),
    "at_pair_exclude": ("se_atten_v2_tiny", set_model(pair_exclude_types=[[0, 0]], atom_exclude_types=[1])),
    "at_no_tebd_output": ("se_atten_v2_tiny", se_atten_no_tebd_output),
    "at_gelu_protection": ("se_atten_v2_tiny", chain(activation("gelu"), set_descriptor(env_protection=0.1))),
    "v1_one_side": ("se_atten_tiny", se_atten_one_side),
    "v1_exclude": ("se_atten_tiny", set_descriptor(exclude_types=[[0, 1]])),
    "v1_pair_exclude": ("se_atten_tiny", set_model(pair_exclude_types=[[0, 0]], atom_exclude_types=[1])),
}
def se_e3_tebd_hybrid(t):
    """A hybrid of the se_e3_tebd descriptor and a copy with rcut 3.0 (rcut_smth 0.4): the fitting nets take
    both outputs, their first layer's weights ``[w; w/2]``."""
    d = _desc(t)
    second = json.loads(json.dumps(d))
    for node in (second, second["env_mat"]):
        node["rcut"], node["rcut_smth"] = 3.0, 0.4
    t.tree["model"]["descriptor"] = {"@class": "Descriptor", "type": "hybrid", "@version": 1, "list": [d, second]}
    fit = t.tree["model"]["fitting"]
    fit["dim_descrpt"] *= 2
    for net in _nets(fit["nets"]):
        v = net["layers"][0]["@variables"]
        w = t.get(v["w"])
        v["w"] = t.put(np.vstack([w, 0.5 * w]))
        net["layers"][0]["@variables"] = v
        net["in_dim"] = fit["dim_descrpt"]


DEEPMD_CHECKED.update({  # se_e3_tebd (issue 16)
    "t3_unsmooth": ("se_e3_tebd_tiny", set_descriptor(smooth=False)),
    "t3_exclude": ("se_e3_tebd_tiny", set_descriptor(exclude_types=[[0, 1]])),
    "t3_exclude_unsmooth": ("se_e3_tebd_tiny", set_descriptor(exclude_types=[[1, 1]], smooth=False)),
    "t3_pair_exclude": ("se_e3_tebd_tiny", set_model(pair_exclude_types=[[0, 0]], atom_exclude_types=[1])),
    "t3_no_tebd_output": ("se_e3_tebd_tiny", se_atten_no_tebd_output),
    "t3_gelu_protection": ("se_e3_tebd_tiny", chain(activation("gelu"), set_descriptor(env_protection=0.1))),
    "t3_hybrid": ("se_e3_tebd_tiny", se_e3_tebd_hybrid),
})
