"""se_atten v1 (DPA-1, ``"type": "se_atten"`` stored as "dpa1": ``smooth_type_embedding`` false,
``tebd_input_mode`` "strip", ``attn_layer`` 0): the type gate without the switch,
G_s(x)(1 + S) instead of se_atten_v2's G_s(x)(1 + S sw(r)), and padding slots gated by the padding
type's row (their term is zero: v1 is read only with davg = 0, ``set_davg_zero``).

References: DeePMD-kit 3.2.0's outputs stored in ``tests/data/deepmd/se_atten_tiny`` (its README)
for the trained fixture, and ``variants_ref.npz`` (``tests/data/deepmd/make_variants_ref.py``) for
its type_one_side / exclude_types / pair-exclusion edits; the numpy twin of the kernels (also
with a nonzero davg, where the padding slots' gated term is not zero); finite differences.
"""

import dataclasses
import os

import numpy as np
import pytest

from conftest import DATA
from dpcompress import Potential, compress, load_model
from dpcompress._ext import runtime
from dpcompress._ext import se_a_tab as compiled
from dpcompress.cli import main
from dpcompress.core.errors import ModelFormatError, UnsupportedModelError
from dpcompress.evaluators.exact import remove_pairs
from dpcompress.modelfile import model_bytes
from dpcompress.modelfile.container import decode
from dpcompress.neighbors import build_neighbor_list
from dpcompress.reference import runtime as twin_runtime
from dpcompress.reference import se_a_tab as twin
from kernel_helpers import gate_rows, packed_tables
from synthetic_models import DEEPMD_CHECKED, V1_DAVG, edit_dp, set_descriptor
from test_model_integrity import both_refuse, edit_arrays, edit_header

FOLDER = os.path.join(DATA, "deepmd", "se_atten_tiny")
MODEL = os.path.join(FOLDER, "frozen.dp")
FRAMES = os.path.join(DATA, "deepmd", "se_e2_a_tiny", "test_frames.npz")  # the fixture's references use these
VARIANTS = [n for n, (f, _) in DEEPMD_CHECKED.items() if f == "se_atten_tiny"]
# the bounds: |ΔE|/atom, |ΔF| eV/Å, |ΔV| eV
TOL = dict(energy_per_atom=1e-10, force=1e-9, virial=1e-9, atom_energy=1e-10, atom_virial=1e-9)


def frames(n=2):
    fr = np.load(FRAMES)
    return fr["coord"][:n].astype(float), fr["box"][:n].astype(float).reshape(n, 9), fr["atype"].astype(np.int64)


def errors(pot, ref, atomic=True):
    coords, cells, types = frames()
    e, f, v, ae, av = pot.eval(coords, cells, types, atomic=True)
    err = dict(energy_per_atom=np.abs(e[:, 0] - ref["energy"]).max() / len(types), force=np.abs(f - ref["force"]).max(),
               virial=np.abs(v.reshape(-1, 9) - ref["virial"].reshape(-1, 9)).max(),
               atom_energy=np.abs(ae[..., 0] - ref["atom_energy"]).max())
    if atomic:
        err["atom_virial"] = np.abs(av.reshape(-1, 9) - ref["atom_virial"].reshape(-1, 9)).max()
    return err


def assert_within(err, tol=TOL, factor=1.0):
    for key, value in err.items():
        assert value <= tol[key] * factor, f"{key}: {value:.3e} > {tol[key] * factor:.0e} ({err})"


def test_read_as_the_unswitched_gate():
    d = load_model(MODEL).descriptor
    assert not d.smooth_type_embedding and d.display_name == "se_atten"
    assert not d.davg.any()  # set_davg_zero: the padding rows are zero
    np.testing.assert_array_equal(d.padding_gate_rows(), [2, 5])  # c * (ntypes + 1) + ntypes


@pytest.mark.parametrize("ref", ["uncompressed", "compressed"])
def test_exact_matches_deepmd(ref):
    assert_within(errors(Potential(MODEL), np.load(os.path.join(FOLDER, f"ref_{ref}_pth.npz"))))


@pytest.mark.parametrize("ref", ["uncompressed", "compressed"])
def test_compressed_matches_deepmd(ref):
    """Our table (step 0.01, order 5) against DeePMD-kit's frozen and compressed models."""
    assert_within(errors(Potential(compress(MODEL)), np.load(os.path.join(FOLDER, f"ref_{ref}_pth.npz"))))


def test_the_switch_is_what_differs():
    """The same weights read as se_atten_v2 (gate times sw) miss DeePMD-kit's numbers by far more than
    the bounds: the fixture tells the two gates apart."""
    model = load_model(MODEL)
    smooth = dataclasses.replace(model, descriptor=dataclasses.replace(model.descriptor, smooth_type_embedding=True))
    err = errors(Potential(smooth), np.load(os.path.join(FOLDER, "ref_uncompressed_pth.npz")), atomic=False)
    assert err["force"] > 1e-3, err


@pytest.mark.parametrize("name", VARIANTS)
def test_variants_match_deepmd(name, tmp_path):
    """type_one_side, exclude_types, pair/atom exclusions: exact and compressed within the bounds of
    DeePMD-kit's outputs."""
    path = edit_dp(MODEL, tmp_path / "v.dp", DEEPMD_CHECKED[name][1])
    model = load_model(path)
    assert not model.descriptor.smooth_type_embedding
    ref = np.load(os.path.join(FOLDER, "variants_ref.npz"))
    ref = {k.split("/")[1]: ref[k] for k in ref.files if k.startswith(name + "/")}
    for pot in (Potential(model), Potential(compress(model))):
        assert_within(errors(pot, ref, atomic=False))


# --- .dpc file, both readers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dpc_bytes(tmp_path_factory):
    out = tmp_path_factory.mktemp("v1") / "v1.dpc"
    assert main(["compress", "-i", MODEL, "-o", str(out)]) == 0
    return out.read_bytes()


def test_dpc_round_trip(dpc_bytes, tmp_path, capsys):
    path = tmp_path / "v1.dpc"
    path.write_bytes(dpc_bytes)
    c = decode(dpc_bytes)
    assert c.header["model"]["descriptor"][0]["smooth_type_embedding"] is False
    np.testing.assert_array_equal(c.arrays["part0.gate_pad"], [2, 5])
    coords, cells, types = frames()
    a = Potential(str(path)).eval(coords, cells, types, atomic=True)
    b = Potential(compress(MODEL)).eval(coords, cells, types, atomic=True)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert_within(errors(Potential(str(path)), np.load(os.path.join(FOLDER, "ref_compressed_pth.npz"))))
    assert main(["info", str(path)]) == 0
    assert "se_atten " in capsys.readouterr().out


def test_se_atten_v2_files_carry_no_gate_pad():
    c = decode(model_bytes(compress(os.path.join(DATA, "deepmd", "se_atten_v2_tiny", "frozen.dp"))))
    assert "part0.gate_pad" not in c.arrays
    assert c.header["model"]["descriptor"][0]["smooth_type_embedding"] is True


@pytest.mark.parametrize("change, match", [
    (lambda a: a.__setitem__("part0.gate_pad", np.array([2, 9])), "padding gate row 9 out of range"),
    (lambda a: a.__setitem__("part0.gate_pad", np.array([-1, 5])), "padding gate row -1 out of range"),
    (lambda a: a.__setitem__("part0.gate_pad", np.array([2, 5, 5])), "part0.gate_pad"),
    (lambda a: a.__setitem__("part0.gate_pad", np.array([2.0, 5.0])), "part0.gate_pad"),
], ids=["above", "negative", "shape", "dtype"])
def test_edited_gate_pad_is_refused_by_both_readers(dpc_bytes, change, match):
    both_refuse(edit_arrays(dpc_bytes, change), match)


def test_header_and_gate_pad_must_agree(dpc_bytes):
    """What only the Python model reads (the switch in the header) agrees with the array the C reader uses."""
    def smooth(h):
        h["model"]["descriptor"][0]["smooth_type_embedding"] = True

    with pytest.raises(Exception, match="smooth_type_embedding"):
        decode(edit_header(dpc_bytes, smooth), "edited.dpc")
    with pytest.raises(Exception, match="smooth_type_embedding"):
        decode(edit_arrays(dpc_bytes, lambda a: a.pop("part0.gate_pad")), "edited.dpc")
    runtime.check_model_bytes(dpc_bytes, "ok.dpc")


# --- kernels: the unswitched gate against the numpy twins ---------------------------------------------------


def with_davg(model):
    """``model`` with a nonzero davg (the reader refuses such a v1 file; the kernels and twins still agree)."""
    d = model.descriptor
    davg = np.repeat(np.array([[0.12, 0.03, -0.02, 0.01], [0.07, -0.01, 0.02, 0.04]])[:, None, :], d.nnei, axis=1)
    return dataclasses.replace(model, descriptor=dataclasses.replace(d, davg=davg))


def kernel_inputs(tmp_path, variant="v1_one_side", k=0, davg=True):
    model = load_model(edit_dp(MODEL, tmp_path / "v.dp", DEEPMD_CHECKED[variant][1]))
    cm = compress(with_davg(model) if davg else model)
    coords, cells, types = frames(k + 1)
    d = cm.descriptor
    nl = remove_pairs(build_neighbor_list(coords[k].reshape(-1, 3), cells[k].reshape(3, 3), types, d.rcut, list(d.sel),
                                          mixed_types=True), types, cm.pair_exclude_types)
    return cm, packed_tables(cm), types, nl, gate_rows(cm, types, nl.index), coords[k].reshape(-1, 3), cells[k]


@pytest.mark.parametrize("variant", VARIANTS)
def test_kernels_equal_numpy_twins(variant, tmp_path):
    """With a nonzero davg, so that the padding slots' gated term is not zero."""
    cm, p, types, nl, q, coords, cell = kernel_inputs(tmp_path, variant)
    assert p.gate_pad is not None and (nl.counts[:, 0] < nl.index.shape[1]).any()  # padding slots exist
    T, beyond = compiled.se_a_tab_forward(p, types, nl.vectors, nl.counts, 2, True, gate_index=q)
    T_ref, beyond_ref = twin.se_a_tab_forward(p, types, nl.vectors, nl.counts, check=True, gate_index=q)
    np.testing.assert_allclose(T, T_ref, rtol=1e-12, atol=1e-12 * np.abs(T_ref).max())
    np.testing.assert_array_equal(beyond, beyond_ref)
    dT = np.random.default_rng(0).normal(size=T.shape)
    g = compiled.se_a_tab_backward(p, types, nl.vectors, nl.counts, dT, 2, gate_index=q)
    g_ref = twin.se_a_tab_backward(p, types, nl.vectors, nl.counts, dT, gate_index=q)
    np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-12 * np.abs(g_ref).max())
    # the whole compressed step against the runtime's twin
    ae, f, _, _ = twin_runtime.compute(cm, coords, cell.reshape(3, 3), types)
    _, f_c, _, ae_c, _ = Potential(cm).eval(coords[None], cell.reshape(1, 9), types, atomic=True)
    assert np.abs(ae_c[0, :, 0] - ae).max() < 1e-11 and np.abs(f_c[0] - f).max() < 1e-11


def test_gate_pad_arguments_are_validated(tmp_path):
    _, p, *_ = kernel_inputs(tmp_path)
    args = (p.sel_offsets, p.avg, p.std, p.block_mode, p.table_of, p.tab_real, p.tab_count, p.tab_offset, p.coef,
            p.ncoef, p.n_channels, p.rcut, p.rcut_smth, p.protection)
    with pytest.raises(ValueError, match="gate_pad out of range"):
        compiled.PackedTables(*args, gate=p.gate, gate_pad=np.array([0, p.n_gate_rows]))
    with pytest.raises(ValueError, match="gate_pad needs a gate"):
        compiled.PackedTables(*args, gate_pad=np.array([0, 1]))


def test_forces_are_minus_gradient_of_compressed_energy(tmp_path):
    """Nonzero davg, a pair closer than the training set, neighbors in the switching region."""
    pot = Potential(compress(with_davg(load_model(MODEL))))
    coords = np.array([[0.0, 0.0, 0.0], [0.7, 0.0, 0.0], [-0.24, 0.93, 0.05], [2.6, 0.4, -0.3], [3.1, 1.1, 0.2],
                       [5.3, -0.5, 0.4]])
    types = np.array([0, 1, 1, 0, 1, 1])
    _, f, _ = pot.eval(coords[None], None, types)
    h = 1e-5
    for a in range(len(types)):
        for c in range(3):
            p, m = coords.copy(), coords.copy()
            p[a, c] += h
            m[a, c] -= h
            fd = -(pot.eval(p[None], None, types)[0][0, 0] - pot.eval(m[None], None, types)[0][0, 0]) / (2 * h)
            assert abs(fd - f[0, a, c]) <= 1e-6 * max(1.0, abs(f[0, a, c])), (a, c, fd, f[0, a, c])


def test_gpu_path_refuses_with_the_name(tmp_path):
    from dpcompress.gpu.se_a_compressed import upload

    _, p, *_ = kernel_inputs(tmp_path)
    with pytest.raises(UnsupportedModelError, match="se_atten"):
        upload(None, p, (120,))


def test_still_refused_settings(tmp_path):
    with pytest.raises(UnsupportedModelError, match="nonzero davg.*first atom"):
        load_model(edit_dp(MODEL, tmp_path / "d.dp", V1_DAVG))
    # attn_layer > 0 is read (tests/test_dpa1_attention.py); this file has no attention weights
    with pytest.raises(ModelFormatError, match=r"layer_num' = 0 disagrees with 'model.descriptor.attn_layer' \(2\)"):
        load_model(edit_dp(MODEL, tmp_path / "a.dp", set_descriptor(attn_layer=2)))
    with pytest.raises(UnsupportedModelError, match="tebd_input_mode = 'concat'"):
        load_model(edit_dp(MODEL, tmp_path / "c.dp", set_descriptor(tebd_input_mode="concat")))
