"""PWMLFF DP checkpoints (docs/pwmlff.md): the PyTorch zip reader, the model reader, exact and
compressed evaluation against PWMLFF's own inference.

References: tests/data/pwmlff/*_ref.npz hold PWMLFF's own outputs (its ``DP`` / ``TypeDP`` forward,
torch float64, forces by autograd) on rattled periodic frames, made by
tests/data/pwmlff/make_fixtures.py from tiny checkpoints that PWMLFF's classes initialised.  The
exact evaluation must agree to float64 rounding (1e-10 eV/atom, 1e-9 eV/Å); the compressed one
(quintic tables, step 0.01) to the table error (1e-7 eV/atom, 1e-5 eV/Å).  The public alloy
checkpoints of PWMLFF_library are read from ``$DPCOMPRESS_PWMLFF_FIXTURES`` (default
``../shared/fixtures/pwmlff`` next to the repository: ``dp/dp_model.ckpt``,
``dp_type_embedding/dp_model.ckpt``) when present.
"""

import hashlib
import os
import struct
import zipfile

import numpy as np
import pytest

from conftest import SHARED_DEEPMD
from dpcompress import Potential, compress
from dpcompress.cli import main
from dpcompress.core.errors import InputError, ModelFormatError, UnsupportedModelError
from dpcompress.modelfile import load_model
from dpcompress.models.pwmlff_reader import (
    min_nbor_dist_from_sij_max,
    model_from_checkpoint,
    radial_s,
    read_pwmlff,
    restrict_to_present_types,
)
from dpcompress.models.torch_zip import is_torch_zip, read_checkpoint

DATA = os.path.join(os.path.dirname(__file__), "data", "pwmlff")
FIXTURES = ("cu_1el", "nicu_2el", "alcu_te")
E_TOL, F_TOL = 1e-10, 1e-9  # exact vs PWMLFF: eV/atom, eV/Å
E_TOL_C, F_TOL_C = 1e-7, 1e-5  # compressed (step 0.01, quintic) vs exact


def _model(name):
    ref = np.load(os.path.join(DATA, f"{name}_ref.npz"))
    path = os.path.join(DATA, f"{name}.ckpt")
    if ref["type_vectors"].size:
        zs = read_checkpoint(path)["json_file"]["atom_type"]
        return read_pwmlff(path, type_vectors=dict(zip(zs, ref["type_vectors"]))), ref
    return load_model(path), ref


def _check(pot, ref, e_tol, f_tol, prefix=""):
    for k in range(len(ref[prefix + "energy"])):
        types = ref[prefix + "types"][k]
        n = len(types)
        e, f, v = pot.eval(ref[prefix + "coord"][k].reshape(1, -1), ref[prefix + "cell"][k].reshape(1, 9), types)
        assert abs(e.reshape(-1)[0] - ref[prefix + "energy"][k]) / n < e_tol, k
        np.testing.assert_allclose(f.reshape(-1, 3), ref[prefix + "force"][k], rtol=0, atol=f_tol)
        np.testing.assert_allclose(v.reshape(9) / n, ref[prefix + "virial"][k] / n, rtol=0, atol=f_tol)


# --- the PyTorch zip reader --------------------------------------------------------------------

def test_checkpoint_structure():
    ck = read_checkpoint(os.path.join(DATA, "nicu_2el.ckpt"))
    assert set(ck) >= {"json_file", "state_dict", "davg", "dstd", "energy_shift", "atom_type_order", "sij_max"}
    assert ck["json_file"]["atom_type"] == [29, 28] and ck["json_file"]["model_type"] == "DP"
    sd = ck["state_dict"]
    assert len([k for k in sd if k.startswith("embedding_net.")]) == 4 * 2 * 2  # 4 nets, 2 layers, w + b
    w = sd["embedding_net.3.layers.1.weight"]
    assert w.shape == (6, 6) and w.dtype == np.float64
    assert sd["fitting_net.1.layers.1.resnet_dt"].shape == (1, 8)
    assert ck["davg"].shape == (2, 2 * 30 * 4) and ck["sij_max"].shape == ()
    assert is_torch_zip(os.path.join(DATA, "nicu_2el.ckpt"))
    assert not is_torch_zip(os.path.join(DATA, "nicu_2el_ref.npz"))  # a zip, but no data.pkl


class _P:
    """A hand-written protocol-2 pickle (the opcodes torch.save emits, and hostile ones)."""

    def __init__(self):
        self.b = bytearray(b"\x80\x02")

    def glob(self, mod, name):
        self.b += b"c" + mod.encode() + b"\n" + name.encode() + b"\n"
        return self

    def str(self, s):
        e = s.encode()
        self.b += b"X" + struct.pack("<I", len(e)) + e
        return self

    def int(self, i):
        self.b += b"J" + struct.pack("<i", i)
        return self

    def op(self, code):
        self.b += code
        return self

    def tuple(self, *ints):
        self.b += b"("
        for i in ints:
            self.int(i)
        self.b += b"t"
        return self

    def tensor(self, key, numel, offset, size, stride, storage="DoubleStorage"):
        self.glob("torch._utils", "_rebuild_tensor_v2").op(b"(")
        self.op(b"(").str("storage").glob("torch", storage).str(key).str("cpu").int(numel).op(b"tQ")
        self.int(offset).tuple(*size).tuple(*stride).op(b"\x89")
        return self.glob("collections", "OrderedDict").op(b")R").op(b"tR")

    def done(self):
        return bytes(self.b + b".")


def _zip(tmp_path, pkl, storages=(), name="m.ckpt"):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("m/data.pkl", pkl)
        zf.writestr("m/byteorder", b"little")
        for key, data in storages:
            zf.writestr(f"m/data/{key}", data)
    return path


def test_crafted_tensor_is_read(tmp_path):
    data = np.arange(6, dtype="<f8").tobytes()
    p = _P().op(b"}").str("w").tensor("0", 6, 1, (2, 2), (1, 2)).op(b"s").done()
    out = read_checkpoint(_zip(tmp_path, p, [("0", data)]))
    np.testing.assert_array_equal(out["w"], np.array([[1.0, 3.0], [2.0, 4.0]]))  # storage[1 + i + 2j]


@pytest.mark.parametrize("mod,name", [("os", "system"), ("builtins", "eval"), ("posix", "system"),
                                      ("torch", "load"), ("numpy", "load")])
def test_refuses_unknown_globals(tmp_path, mod, name):
    p = _P().glob(mod, name).str("echo pwned").op(b"\x85R").done()  # TUPLE1, REDUCE
    with pytest.raises(ModelFormatError, match=f"'{mod}.{name}'.*refused"):
        read_checkpoint(_zip(tmp_path, p))


def test_refuses_out_of_bounds_tensor(tmp_path):
    data = np.zeros(4, dtype="<f8").tobytes()
    p = _P().tensor("0", 4, 0, (3,), (2,)).done()  # reads element 4 of 4
    with pytest.raises(ModelFormatError, match="reads element 4, but the storage holds 4"):
        read_checkpoint(_zip(tmp_path, p, [("0", data)]))
    p = _P().tensor("0", 8, 0, (2,), (1,)).done()  # declares 8 elements, the entry holds 4
    with pytest.raises(ModelFormatError, match="holds 32 bytes; its 8 elements"):
        read_checkpoint(_zip(tmp_path, p, [("0", data)]))
    p = _P().tensor("1", 4, 0, (2,), (1,)).done()
    with pytest.raises(ModelFormatError, match="'m/data/1' is missing"):
        read_checkpoint(_zip(tmp_path, p, [("0", data)]))


def test_refuses_unbounded_sizes(tmp_path):
    data = np.zeros(1, dtype="<f8").tobytes()
    p = _P().tensor("0", 1, 0, (1 << 20, 1 << 20), (0, 0)).done()  # stride 0: one element, 2**40 times
    with pytest.raises(ModelFormatError, match="over the memory limit"):
        read_checkpoint(_zip(tmp_path, p, [("0", data)]))
    # a pickled numpy array whose shape product would wrap around in int64
    arr = (_P().glob("numpy.core.multiarray", "_reconstruct").glob("numpy", "ndarray").tuple(0).op(b"C\x01b")
           .op(b"\x87R").op(b"(").int(1).tuple(1 << 30, 1 << 30, 1 << 30, 16)
           .glob("numpy", "dtype").str("f8").int(0).int(1)
           .op(b"\x87R").op(b"(").int(3).str("<").op(b"NNN").int(-1).int(-1).int(0).op(b"tb\x89C\x00tb"))
    with pytest.raises(ModelFormatError, match="the file holds 0"):  # 2**94 elements, not 0
        read_checkpoint(_zip(tmp_path, arr.done()))


def test_torchscript_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "model.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("model/data.pkl", b"\x80\x02}.")
        zf.writestr("model/code/__torch__.py", "")
    assert not is_torch_zip(path)
    with pytest.raises(UnsupportedModelError, match="convert-backend"):
        load_model(path)


def test_refuses_object_arrays_and_bad_storage(tmp_path):
    p = _P().glob("numpy", "dtype").str("O8").int(0).int(1).op(b"\x87R").done()  # TUPLE3, REDUCE
    with pytest.raises(ModelFormatError, match="numpy dtype 'O8' is refused"):
        read_checkpoint(_zip(tmp_path, p))
    p = (_P().glob("numpy._core.multiarray", "scalar").glob("numpy", "dtype").str("f8").int(0).int(1).op(b"\x87R")
         .op(b"(").int(3).str("<").op(b"NNN").int(-1).int(-1).int(0).op(b"tb").op(b"C\x04abcd\x86R").done())
    with pytest.raises(ModelFormatError, match="float64 scalar needs 8 bytes"):
        read_checkpoint(_zip(tmp_path, p))
    p = _P().tensor("0", 1, 0, (1,), (1,), storage="ComplexDoubleStorage").done()
    with pytest.raises(ModelFormatError, match="'torch.ComplexDoubleStorage'"):
        read_checkpoint(_zip(tmp_path, p, [("0", b"\0" * 16)]))


def test_truncated_checkpoint(tmp_path):
    raw = open(os.path.join(DATA, "nicu_2el.ckpt"), "rb").read()
    for cut in (len(raw) // 2, len(raw) - 30, 100):
        path = tmp_path / f"cut{cut}.ckpt"
        path.write_bytes(raw[:cut])
        assert is_torch_zip(path)
        with pytest.raises(ModelFormatError, match="cut.*ckpt"):
            load_model(path)


# --- the model reader, exact evaluation ------------------------------------------------------------

@pytest.mark.parametrize("name", FIXTURES)
def test_exact_matches_pwmlff(name):
    model, ref = _model(name)
    _check(Potential(model), ref, E_TOL, F_TOL)


@pytest.mark.parametrize("name", FIXTURES)
def test_frame_without_an_element(name):
    """PWMLFF's inference uses only the neighbor blocks of the types in the frame:
    restrict_to_present_types reproduces it; the full model (every block) differs."""
    model, ref = _model(name)
    args = (ref["miss_coord"].reshape(1, -1), ref["miss_cell"].reshape(1, 9), ref["miss_types"])
    n = len(ref["miss_types"])
    present = [model.type_map[t] for t in ref["miss_present"]]
    for m in (restrict_to_present_types(model, present), compress(restrict_to_present_types(model, present))):
        e, f, v = Potential(m).eval(*args)
        tol = (E_TOL, F_TOL) if not m.is_compressed else (E_TOL_C, F_TOL_C)
        assert abs(e.reshape(-1)[0] - ref["miss_energy"]) / n < tol[0]
        np.testing.assert_allclose(f.reshape(-1, 3), ref["miss_force"], rtol=0, atol=tol[1])
    with pytest.raises(InputError, match="'Xx' is not one of"):
        restrict_to_present_types(model, ["Xx"])
    e_all = Potential(model).eval(*args)[0].reshape(-1)[0]
    if len(present) < model.ntypes:
        assert abs(e_all - ref["miss_energy"]) / n > 1e-4
    else:
        assert abs(e_all - ref["miss_energy"]) / n < E_TOL


def test_model_mapping():
    m = load_model(os.path.join(DATA, "nicu_2el.ckpt"))
    d = m.descriptor
    assert m.type_map == ("Cu", "Ni") and d.sel == (30, 30) and (d.rcut, d.rcut_smth) == (4.0, 1.0)
    assert d.axis_neuron == 3 and d.neuron == (6, 6) and not d.type_one_side and d.env_protection == 0
    assert np.all(m.out_bias == 0) and np.all(m.fitting.bias_atom_e == 0)
    # min_nbor_dist: the distance where PWMLFF's s(r) equals the stored sij_max
    sij = float(read_checkpoint(os.path.join(DATA, "nicu_2el.ckpt"))["sij_max"])
    assert abs(radial_s(m.min_nbor_dist, 1.0, 4.0) - sij) < 1e-12
    assert min_nbor_dist_from_sij_max(4.0, 0.5, 6.0) == 0.25  # inside Rmin: s = 1/r


def test_type_embedding_needs_vectors(monkeypatch):
    monkeypatch.delenv("DPCOMPRESS_PWMLFF_SOURCE", raising=False)
    with pytest.raises(UnsupportedModelError, match="type_vector"):
        load_model(os.path.join(DATA, "alcu_te.ckpt"))
    # what `PWMLFF compress alcu_te.ckpt -d 0.05 -o 3` writes (make_fixtures.py runs PWMLFF's own
    # compression functions): its 'compress' entry stores the type vectors (numpy scalars)
    ref = np.load(os.path.join(DATA, "alcu_te_ref.npz"))
    with pytest.warns(UserWarning, match="PWMLFF-compressed"):
        m = load_model(os.path.join(DATA, "alcu_te_pwmlff_cmp.ckpt"))
    assert m.descriptor.type_one_side and not m.is_compressed
    _check(Potential(m), ref, E_TOL, F_TOL)


@pytest.mark.parametrize("edit,error,match", [
    (lambda c: c["json_file"].update(model_type="NEP"), UnsupportedModelError, "model_type 'NEP'"),
    (lambda c: c.update(atom_type_order=np.array([28, 29])), UnsupportedModelError, "differs from"),
    (lambda c: c.pop("davg"), ModelFormatError, "no 'davg'"),
    (lambda c: c.update(dstd=c["dstd"][:, :10]), ModelFormatError, "'dstd' has shape"),
    (lambda c: c["json_file"].update(atom_type=[29, 0]), ModelFormatError, r"atom_type\[1\]"),
    (lambda c: c["state_dict"].pop("embedding_net.2.layers.0.weight"), ModelFormatError,
     "embedding_net.2.layers.0.weight"),
    (lambda c: c["state_dict"].update(extra=np.zeros(1)), UnsupportedModelError, "'extra'"),
    (lambda c: c["state_dict"]["fitting_net.0.layers.0.bias"].__setitem__((0, 0), np.nan), ModelFormatError,
     "non-finite"),
])
def test_bad_checkpoints(edit, error, match):
    ck = read_checkpoint(os.path.join(DATA, "nicu_2el.ckpt"))
    edit(ck)
    with pytest.raises(error, match=match):
        model_from_checkpoint(ck, "bad.ckpt")


# --- compression -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", FIXTURES)
def test_compressed_matches_exact(name):
    model, ref = _model(name)
    exact = Potential(model)
    comp = Potential(compress(model, step=0.01))
    for k in range(len(ref["energy"])):
        args = (ref["coord"][k].reshape(1, -1), ref["cell"][k].reshape(1, 9), ref["types"][k])
        e0, f0, _ = exact.eval(*args)
        e1, f1, _ = comp.eval(*args)
        assert abs(e1 - e0).max() / len(ref["types"][k]) < E_TOL_C
        np.testing.assert_allclose(f1, f0, rtol=0, atol=F_TOL_C)


def test_cli_compress(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # PWMLFF's `compress dp_model.ckpt -d 0.01 -o 3` spelled for dpcompress (docs/pwmlff.md)
    assert main(["compress", "-i", os.path.join(DATA, "nicu_2el.ckpt"), "-o", "m.dpc", "-s", "0.01", "--order", "3",
                 "-e", "10"]) == 0
    _, ref = _model("nicu_2el")
    _check(Potential("m.dpc"), ref, 1e-5, 1e-3)  # cubic tables: looser


# --- the public alloy checkpoints (PWMLFF_library), when available --------------------------------------

#: ``../shared/fixtures/pwmlff`` next to the repository, beside the DeePMD-kit fixtures (conftest)
PUBLIC = os.environ.get("DPCOMPRESS_PWMLFF_FIXTURES", os.path.join(os.path.dirname(SHARED_DEEPMD), "pwmlff"))


@pytest.mark.slow
@pytest.mark.parametrize("key", ["dp", "dp_type_embedding"])
def test_public_alloy(key):
    path = os.path.join(PUBLIC, key, "dp_model.ckpt")
    if not os.path.exists(path):
        pytest.skip(f"{path} absent (PWMLFF_library's alloy/models/{key}/dp_model.ckpt, 1.5-2 MB)")
    ref = np.load(os.path.join(DATA, "public_alloy_refs.npz"))
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == str(ref[f"{key}_sha256"])
    if f"{key}_type_vectors" in ref:
        model = read_pwmlff(path, type_vectors=dict(zip([28, 44, 45, 46, 77], ref[f"{key}_type_vectors"])))
    else:
        model = load_model(path)
    _check(Potential(model), ref, E_TOL, F_TOL, prefix=f"{key}_")
    _check(Potential(compress(model, step=0.01)), ref, E_TOL_C, F_TOL_C * 10, prefix=f"{key}_")
