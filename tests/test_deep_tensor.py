"""DeepDipole and DeepPolar against DeePMD-kit 3.2.0's own outputs, and their error messages.

References: ``tests/data/deepmd/{dipole,polar,dipole_atten_v2,polar_full}_tiny/ref_{uncompressed,compressed}_pth.npz``
(DeePMD-kit's ``DeepDipole`` / ``DeepPolar`` on its frozen and its own compressed model, frames 0-1
of ``se_e2_a_tiny/test_frames.npz``; README of each folder).  Tolerance 1e-10 (absolute, in the
tensors' units; the observed differences are ~1e-14).  Independent of DeePMD-kit: rotating a
cluster rotates its dipoles (``Q d``) and polarizabilities (``Q A Qᵀ``), translating it changes
nothing.
"""

import copy
import os

import numpy as np
import pytest

from conftest import DATA
from dpcompress import DeepDipole, DeepPolar, Potential, compress, load_model, save_model
from dpcompress.core.errors import InputError, ModelFormatError, UnsupportedModelError
from dpcompress._ext.runtime import check_model_bytes
from dpcompress.modelfile.container import decode, encode
from dpcompress.models import load_tree, model_from_tree

DEEPMD = os.path.join(DATA, "deepmd")
FRAMES = os.path.join(DEEPMD, "se_e2_a_tiny", "test_frames.npz")
TOL = 1e-10
#: se_e2_a dipole; se_e2_a polarizability (fit_diag, shift_diag, scale 1); se_atten_v2 dipole; se_e2_a
#: polarizability without fit_diag (M x M output) and with scale [1.7, 1]
KINDS = [(DeepDipole, "dipole_tiny", 3), (DeepPolar, "polar_tiny", 9), (DeepDipole, "dipole_atten_v2_tiny", 3),
         (DeepPolar, "polar_full_tiny", 9)]


def _path(name):
    return os.path.join(DEEPMD, name, "frozen.dp")


@pytest.fixture(scope="module")
def frames():
    fr = np.load(FRAMES)
    return fr["coord"][:2], fr["box"][:2], fr["atype"]


@pytest.fixture(scope="module")
def compressed_models():
    return {name: compress(_path(name)) for _, name, _ in KINDS}


def _model(cls, name, tag, compressed_models):
    return cls(_path(name)) if tag == "uncompressed" else cls(compressed_models[name])


@pytest.mark.parametrize("tag", ["uncompressed", "compressed"])
@pytest.mark.parametrize("cls, name, width", KINDS)
def test_equals_deepmd(cls, name, width, tag, frames, compressed_models):
    """Atomic and global tensors, two frames at once and each frame alone, equal DeePMD-kit's (1e-10)."""
    coord, box, atype = frames
    ref = np.load(os.path.join(DEEPMD, name, f"ref_{tag}_pth.npz"))
    dp = _model(cls, name, tag, compressed_models)
    atomic = dp.eval(coord.reshape(2, -1), box.reshape(2, 9), atype)
    total = dp.eval(coord, box, atype, atomic=False)
    assert atomic.shape == (2, 192, width) and total.shape == (2, width)
    assert np.max(np.abs(atomic - ref["atomic"])) < TOL
    assert np.max(np.abs(total - ref["global"])) < TOL
    assert not atomic[:, 64:].any()  # H is not selected: exact zeros
    for f in range(2):
        one = dp.eval(coord[f : f + 1], box[f : f + 1], atype)
        assert np.max(np.abs(one[0] - ref["atomic"][f])) < TOL
        assert np.max(np.abs(dp.eval(coord[f], box[f], atype, atomic=False)[0] - ref["global"][f])) < TOL
    mixed = dp.eval(coord, box, np.stack([atype, atype]), mixed_type=True)
    assert np.array_equal(mixed, atomic)


@pytest.mark.parametrize("cls, name, width", KINDS)
def test_introspection(cls, name, width, compressed_models):
    for dp in (cls(_path(name)), cls(compressed_models[name])):
        assert dp.get_sel_type() == [0]
        assert dp.get_type_map() == ["O", "H"]
        assert dp.get_ntypes() == 2
        assert dp.get_rcut() == 6.0
        assert dp.output_dim == width
        assert dp.get_dim_fparam() == 0 and dp.get_dim_aparam() == 0
    assert compressed_models[name].is_compressed


def _rotation():
    rng = np.random.default_rng(7)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.mark.parametrize("tag", ["uncompressed", "compressed"])
@pytest.mark.parametrize("cls, name, width", KINDS)
def test_rotation_equivariance(cls, name, width, tag, frames, compressed_models):
    """A cluster (no cell) rotated by Q: dipoles become Q d, polarizabilities Q A Qᵀ; a shift changes nothing."""
    coord, _, atype = frames
    xyz = coord[0][:40]
    types = atype[:40]
    Q = _rotation()
    dp = _model(cls, name, tag, compressed_models)
    a = dp.eval(xyz[None], None, types)[0]
    b = dp.eval((xyz @ Q.T)[None], None, types)[0]
    c = dp.eval((xyz + np.array([3.1, -2.0, 7.5]))[None], None, types)[0]
    assert np.abs(a).max() > 1e-3
    if width == 3:
        expect = a @ Q.T
    else:
        expect = np.einsum("ij,njk,lk->nil", Q, a.reshape(-1, 3, 3), Q).reshape(-1, 9)
    assert np.max(np.abs(b - expect)) < 1e-10
    assert np.max(np.abs(c - a)) < 1e-10


@pytest.mark.parametrize("name", ["polar_tiny", "polar_full_tiny"])
def test_polar_is_symmetric(name, frames):
    coord, box, atype = frames
    A = DeepPolar(_path(name)).eval(coord[:1], box[:1], atype)[0].reshape(-1, 3, 3)
    assert np.max(np.abs(A - np.transpose(A, (0, 2, 1)))) < 1e-12


@pytest.mark.parametrize("cls, name, width", KINDS)
def test_energy_front_ends_refuse_tensor_models(cls, name, width, tmp_path, compressed_models):
    """Potential and the .dpc writer name the class that evaluates the model."""
    with pytest.raises(UnsupportedModelError, match=f"dpcompress.{cls.__name__}"):
        Potential(_path(name))
    with pytest.raises(UnsupportedModelError, match=f"dpcompress.{cls.__name__}"):
        Potential(compressed_models[name])
    save_model(compressed_models[name], tmp_path / "t.dpc")
    with pytest.raises(UnsupportedModelError, match=f"dpcompress.{cls.__name__}"):
        Potential(tmp_path / "t.dpc")
    with pytest.raises(ModelFormatError, match="dipole/polarizability model .kind 3.: the runtime computes energy"):
        check_model_bytes(open(tmp_path / "t.dpc", "rb").read(), "t.dpc")  # the C runtime does not open them


def test_tensor_classes_refuse_other_models(tmp_path):
    with pytest.raises(UnsupportedModelError, match="energy model.*dpcompress.Potential"):
        DeepDipole(os.path.join(DEEPMD, "se_e2_a_tiny", "frozen.dp"))
    with pytest.raises(UnsupportedModelError, match="'dipole' model, not a 'polar' one: use dpcompress.DeepDipole"):
        DeepPolar(_path("dipole_tiny"))
    with pytest.raises(UnsupportedModelError, match="'polar' model, not a 'dipole' one: use dpcompress.DeepPolar"):
        DeepDipole(_path("polar_tiny"))
    energy = compress(os.path.join(DEEPMD, "se_e2_a_tiny", "frozen.dp"))
    save_model(energy, tmp_path / "e.dpc")
    with pytest.raises(UnsupportedModelError, match="energy model.*dpcompress.Potential"):
        DeepDipole(tmp_path / "e.dpc")
    with pytest.raises(InputError, match="DeepDipole takes a model file or a DPModel"):
        DeepDipole(3)


def test_bad_inputs(frames):
    coord, box, atype = frames
    dp = DeepDipole(_path("dipole_tiny"))
    with pytest.raises(InputError, match="coords has shape"):
        dp.eval(coord[:, :10], box, atype)
    with pytest.raises(InputError, match="fparam given"):
        dp.eval(coord, box, atype, fparam=[1.0])
    with pytest.raises(InputError, match="efield"):
        dp.eval(coord, box, atype, efield=np.zeros((2, 192, 3)))
    with pytest.raises(TypeError, match="unexpected keyword"):
        dp.eval(coord, box, atype, bogus=1)
    with pytest.raises(InputError, match="mixed_type"):
        dp.eval(coord, box, np.stack([atype, atype[::-1]]))
    empty = dp.eval(np.zeros((3, 0)), None, np.zeros(0, dtype=int), atomic=False)
    assert empty.shape == (3, 3) and not empty.any()


def _tree(name):
    return copy.deepcopy(load_tree(_path(name)))


@pytest.mark.parametrize("edit, error, match", [
    (lambda f: f.update(embedding_width=8), ModelFormatError, "embedding_width' = 8"),
    (lambda f: f["nets"]["networks"][1]["layers"][-1]["@variables"].update(w=np.zeros((16, 4)), b=np.zeros(4)),
     ModelFormatError, r"networks\[1\]' maps 64 -> 4, expected 64 -> 16"),
    (lambda f: f["@variables"].update(scale=np.ones((3, 1))), ModelFormatError, "scale' has shape"),
    (lambda f: f["@variables"].update(bias_atom_e=np.zeros((2, 3))), ModelFormatError, "bias_atom_e' has shape"),
    (lambda f: f.update(dim_case_embd=2), UnsupportedModelError, "dim_case_embd"),
])
def test_reader_checks(edit, error, match):
    """A malformed polar fitting is refused naming the key (model files are untrusted)."""
    tree = _tree("polar_tiny")
    edit(tree["model"]["fitting"])
    with pytest.raises(error, match=match):
        model_from_tree(tree, "bad.dp")


def test_reader_refuses_other_descriptors():
    tree = _tree("dipole_tiny")
    tree["model"]["descriptor"]["type"] = "se_e2_r"
    with pytest.raises((UnsupportedModelError, ModelFormatError)):
        model_from_tree(tree, "bad.dp")
    tree = _tree("dipole_tiny")
    tree["model"]["@variables"]["out_bias"] = np.zeros((1, 2, 1))
    with pytest.raises(ModelFormatError, match=r"out_bias' has shape .*expected \(1, 2, 3\)"):
        model_from_tree(tree, "bad.dp")


def test_loaded_model_is_a_tensor_model():
    m = load_model(_path("polar_tiny"))
    f = m.fitting
    assert (f.kind, f.width, f.net_out, f.fit_diag, f.shift_diag) == ("polar", 9, 16, True, True)
    assert m.out_bias.shape == (2, 9)
    f = load_model(_path("polar_full_tiny")).fitting
    assert (f.net_out, f.fit_diag, list(f.scale)) == (256, False, [1.7, 1.0])
    m = load_model(_path("dipole_atten_v2_tiny"))
    assert m.descriptor.type_name == "se_atten_v2" and len(m.fitting.networks) == 1


@pytest.mark.parametrize("cls, name, width", KINDS)
def test_dpc_round_trip(cls, name, width, tmp_path, frames, compressed_models):
    """`dpcompress compress` output (a dp_tensor .dpc) gives the in-memory compressed model's tensors bit for bit."""
    coord, box, atype = frames
    path = tmp_path / "t.dpc"
    save_model(compressed_models[name], path)
    back = cls(path)
    assert back.model.is_compressed and back.get_sel_type() == [0]
    assert np.array_equal(back.eval(coord, box, atype), cls(compressed_models[name]).eval(coord, box, atype))
    ref = np.load(os.path.join(DEEPMD, name, "ref_compressed_pth.npz"))
    assert np.max(np.abs(back.eval(coord, box, atype, atomic=False) - ref["global"])) < TOL


def _edited(path, header=None, arrays=None):
    c = decode(open(path, "rb").read())
    h = copy.deepcopy(c.header)
    a = {k: np.array(v) for k, v in c.arrays.items()}
    (header or (lambda h: None))(h)
    (arrays or (lambda a: None))(a)
    return encode(h, sorted(a.items()))


@pytest.mark.parametrize("header, arrays, match", [
    (lambda h: h["model"]["tensor"].update(kind="quadrupole"), None, "model.tensor.kind"),
    (lambda h: h["model"]["tensor"].update(embedding_width=8), None,
     r"fit.bias. has shape \(2, 16\), expected \(2, 8\)"),
    (lambda h: h["model"].pop("tensor"), None, "'model.tensor' is missing"),
    (lambda h: h.update(kind="dp_energy"), None, "header key 'kind' is not"),
    (None, lambda a: a.pop("tensor.scale"), "tensor.scale"),
    (None, lambda a: a.update({"fit.bias": np.zeros(2)}), "fit.bias"),
    (None, lambda a: a.update({"model.out_bias": np.zeros((2, 3))}), "model.out_bias"),
    (None, lambda a: a.update({"tensor.constant_matrix": np.array([0.0, np.nan])}), "tensor.constant_matrix"),
])
def test_damaged_tensor_files_are_refused(header, arrays, match, tmp_path, compressed_models):
    path = tmp_path / "p.dpc"
    save_model(compressed_models["polar_tiny"], path)
    (tmp_path / "bad.dpc").write_bytes(_edited(path, header, arrays))
    with pytest.raises(ModelFormatError, match=match):
        DeepPolar(tmp_path / "bad.dpc")


def test_cli_compress_and_info(tmp_path, capsys, frames):
    """`dpcompress compress` writes a tensor model's .dpc; `info` names the fitting; `eval` (energies) refuses it."""
    from dpcompress.cli import main

    out = tmp_path / "dipole.dpc"
    assert main(["compress", "-i", _path("dipole_tiny"), "-o", str(out)]) == 0
    assert main(["info", str(out)]) == 0
    assert "fitting:         dipole, 2 net(s)" in capsys.readouterr().out
    coord, box, atype = frames
    ref = np.load(os.path.join(DEEPMD, "dipole_tiny", "ref_compressed_pth.npz"))
    assert np.max(np.abs(DeepDipole(out).eval(coord, box, atype) - ref["atomic"])) < TOL
    assert main(["eval", str(out), os.path.join(DATA, "deepmd", "se_e2_a_tiny")]) == 2
    assert "DeepDipole" in capsys.readouterr().err


@pytest.mark.parametrize("tag", ["uncompressed", "compressed", "dpc"])
def test_frame_and_atomic_parameters(tag, frames, tmp_path):
    """A dipole fitting with numb_fparam = numb_aparam = 1 (``dipole_fparam_tiny``) equals DeePMD-kit's (1e-10)
    with the parameters of its ``test_params.npz``; without fparam (and no default) it is refused."""
    coord, box, atype = frames
    name = "dipole_fparam_tiny"
    params = np.load(os.path.join(DEEPMD, name, "test_params.npz"))
    which = "uncompressed" if tag == "uncompressed" else "compressed"
    ref = np.load(os.path.join(DEEPMD, name, f"ref_{which}_pth.npz"))
    model = _path(name)
    if tag != "uncompressed":
        model = compress(model)
        if tag == "dpc":
            save_model(model, tmp_path / "d.dpc")
            model = tmp_path / "d.dpc"
    dp = DeepDipole(model)
    assert (dp.get_dim_fparam(), dp.get_dim_aparam()) == (1, 1)
    kw = dict(fparam=params["fparam"], aparam=params["aparam"])
    assert np.max(np.abs(dp.eval(coord, box, atype, **kw) - ref["atomic"])) < TOL
    assert np.max(np.abs(dp.eval(coord, box, atype, atomic=False, **kw) - ref["global"])) < TOL
    with pytest.raises(InputError, match="fparam"):
        dp.eval(coord, box, atype, aparam=params["aparam"])
    with pytest.raises(InputError, match="aparam"):
        dp.eval(coord, box, atype, fparam=params["fparam"])


def test_overflow_warnings(frames, compressed_models):
    """Neighbors beyond sel and pairs beyond a compressed model's table are reported, as by Potential."""
    from dpcompress import NeighborOverflowWarning, TableOverflowWarning

    coord, box, atype = frames
    dp = DeepDipole(compressed_models["dipole_tiny"])
    with pytest.warns(NeighborOverflowWarning, match="did not fit into sel"):
        dp.eval(coord[:1] * 0.6, box[:1] * 0.6, atype)
    close = coord[:1].copy()
    close[0, 1] = close[0, 0] + [0.05, 0.0, 0.0]
    with pytest.warns(TableOverflowWarning, match="beyond the compressed model's table"):
        dp.eval(close, box[:1], atype)
    assert dp.table_overflow_total["beyond_table"] == 2
