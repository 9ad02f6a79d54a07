"""Energy models with frame and atomic parameters (``numb_fparam``, ``numb_aparam``, ``default_fparam``).

References: DeePMD-kit 3.2.0's own ``DeepPot`` outputs (``tests/data/deepmd/se_e2_a_fparam_tiny`` and
``se_e2_a_fparam_default_tiny``, made by ``tests/data/deepmd/make_param_tensor_tiny.py``) on two water frames
with the parameters of ``test_params.npz``.  Tolerances (the issue's): 1e-10 eV/atom for energies,
1e-9 eV/Å for forces, 1e-9 eV for virials; the measured differences are ~1e-15 (round-off).
"""

import json
import os
import shutil

import h5py
import numpy as np
import pytest

from conftest import DATA, TINY
from dpcompress import Potential, load_model
from dpcompress.compression import compress
from dpcompress.core.errors import DPCompressError, InputError, ModelFormatError, UnsupportedModelError
from dpcompress.evaluators.frame_params import frame_parameters
from dpcompress._ext import runtime
from dpcompress.modelfile import save_model
from dpcompress.modelfile.container import decode, encode
from dpcompress.modelfile.dp import refuse_fitting_params

FP = os.path.join(DATA, "deepmd", "se_e2_a_fparam_tiny")
FP_DEFAULT = os.path.join(DATA, "deepmd", "se_e2_a_fparam_default_tiny")
NATOMS = 192
TOL_E_ATOM, TOL_F, TOL_V = 1e-10, 1e-9, 1e-9


@pytest.fixture(scope="module")
def frames():
    fr = np.load(os.path.join(TINY, "test_frames.npz"))
    return fr["coord"][:2].astype(np.float64), fr["box"][:2].astype(np.float64), fr["atype"]


@pytest.fixture(scope="module")
def params():
    p = np.load(os.path.join(FP, "test_params.npz"))
    return p["fparam"], p["aparam"]


def rewrite_json(src, dst, edit):
    shutil.copy(src, dst)
    os.chmod(dst, 0o644)
    with h5py.File(dst, "r+") as fh:
        tree = json.loads(fh.attrs["json"])
        edit(tree)
        fh.attrs["json"] = json.dumps(tree)
    return dst


def assert_matches(out, ref, prefix=""):
    e, f, v, ae, av = out
    nf = e.shape[0]
    assert np.max(np.abs(e[:, 0] - ref[prefix + "energy"])) / NATOMS < TOL_E_ATOM
    assert np.max(np.abs(f - ref[prefix + "force"])) < TOL_F
    assert np.max(np.abs(v - ref[prefix + "virial"].reshape(nf, 9))) < TOL_V
    assert np.max(np.abs(ae[..., 0] - ref[prefix + "atom_energy"])) < TOL_E_ATOM
    assert np.max(np.abs(av - ref[prefix + "atom_virial"].reshape(nf, NATOMS, 9))) < TOL_V


def test_reader_keeps_sizes_and_statistics():
    fit = load_model(os.path.join(FP, "frozen.dp")).fitting
    assert (fit.numb_fparam, fit.numb_aparam) == (1, 1)
    for arr in (fit.fparam_avg, fit.fparam_inv_std, fit.aparam_avg, fit.aparam_inv_std):
        assert arr.shape == (1,) and np.isfinite(arr).all()
    assert fit.default_fparam is None
    assert all(net.in_dim == 64 + 2 for net in fit.networks)  # descriptor 16 x 4, then fparam, aparam
    assert np.array_equal(load_model(os.path.join(FP_DEFAULT, "frozen.dp")).fitting.default_fparam, [1.15])


@pytest.mark.parametrize("tag", ["uncompressed", "compressed"])
def test_exact_equals_deepmd(frames, params, tag):
    """Against DeePMD-kit's frozen.pth and its own compressed.pth (which agree to 5e-15)."""
    ref = np.load(os.path.join(FP, f"ref_{tag}_pth.npz"))
    pot = Potential(os.path.join(FP, "frozen.dp"))
    assert (pot.get_dim_fparam(), pot.get_dim_aparam()) == (int(ref["dim_fparam"]), int(ref["dim_aparam"]))
    assert not pot.has_default_fparam()
    coord, box, atype = frames
    assert_matches(pot.eval(coord, box, atype, atomic=True, fparam=params[0], aparam=params[1]), ref)


@pytest.mark.parametrize("tag", ["uncompressed", "compressed"])
def test_default_fparam_equals_deepmd(frames, params, tag):
    """fparam omitted: DeePMD-kit's default_fparam; given: the base model's numbers (same weights)."""
    ref = np.load(os.path.join(FP_DEFAULT, f"ref_{tag}_pth.npz"))
    pot = Potential(os.path.join(FP_DEFAULT, "frozen.dp"))
    assert pot.has_default_fparam()
    coord, box, atype = frames
    assert_matches(pot.eval(coord, box, atype, atomic=True, aparam=params[1]), ref, "default_")
    base = np.load(os.path.join(FP, f"ref_{tag}_pth.npz"))
    assert_matches(pot.eval(coord, box, atype, atomic=True, fparam=params[0], aparam=params[1]), base)
    explicit = pot.eval(coord, box, atype, fparam=[1.15], aparam=params[1])
    assert np.array_equal(explicit[0], pot.eval(coord, box, atype, aparam=params[1])[0])


def test_broadcasting_follows_deeppot(frames, params):
    """(nf,) for every frame, (natoms, na) for every frame, (na,) for every atom: as the full arrays."""
    coord, box, atype = frames
    pot = Potential(os.path.join(FP, "frozen.dp"))
    fp = np.full((2, 1), 1.2)
    ap = np.tile(params[1][:1], (2, 1, 1))
    full = pot.eval(coord, box, atype, fparam=fp, aparam=ap)
    for f_in, a_in in [([1.2], ap), (fp.ravel(), params[1][0]), (1.2, params[1][0].ravel())]:
        out = pot.eval(coord, box, atype, fparam=f_in, aparam=a_in)
        assert all(np.array_equal(x, y) for x, y in zip(out, full))
    const = pot.eval(coord, box, atype, fparam=fp, aparam=np.full((2, NATOMS, 1), 0.3))
    assert all(np.array_equal(x, y) for x, y in zip(pot.eval(coord, box, atype, fparam=fp, aparam=[0.3]), const))
    # the parameters matter (the model is not blind to them)
    assert abs(const[0][0, 0] - full[0][0, 0]) > 1e-6


@pytest.mark.parametrize("kw, match", [
    ({"aparam": np.zeros((2, NATOMS, 1))}, "numb_fparam = 1.*no.*default_fparam"),
    ({"fparam": np.ones((2, 1))}, "numb_aparam = 1"),
    ({"fparam": np.ones(3), "aparam": np.zeros(NATOMS)}, "fparam has 3 values"),
    ({"fparam": np.ones(2), "aparam": np.zeros(5)}, "aparam has 5 values"),
    ({"fparam": [np.nan, 1.0], "aparam": np.zeros(NATOMS)}, "fparam holds a non-finite"),
])
def test_missing_or_bad_parameters(frames, kw, match):
    coord, box, atype = frames
    with pytest.raises(InputError, match=match):
        Potential(os.path.join(FP, "frozen.dp")).eval(coord, box, atype, **kw)


def test_frame_parameters_rules():
    fp, ap = frame_parameters([0.5, 0.7], [1.0, 2.0], nframes=2, natoms=3, dim_fparam=1, dim_aparam=2)
    assert fp.shape == (2, 1) and np.array_equal(fp[:, 0], [0.5, 0.7])
    assert ap.shape == (2, 3, 2) and np.array_equal(ap[1, 2], [1.0, 2.0])
    assert frame_parameters(None, None, 2, 3, 1, 0, has_default_fparam=True) == (None, None)
    with pytest.raises(InputError, match="takes no frame parameters"):
        frame_parameters([1.0], None, 1, 3, 0, 0)


@pytest.mark.parametrize("edit, error, match", [
    (lambda f: f.__setitem__("numb_fparam", 2), ModelFormatError, "fparam_avg.*expected \\(2,\\)"),
    (lambda f: f.__setitem__("numb_aparam", 10**9), ModelFormatError, "numb_aparam"),
    (lambda f: f.__setitem__("numb_fparam", -1), ModelFormatError, "numb_fparam"),
    (lambda f: f["@variables"].__setitem__("aparam_inv_std", None), ModelFormatError, "aparam_inv_std"),
    (lambda f: f.__setitem__("default_fparam", [1.0, 2.0]), ModelFormatError, "default_fparam"),
    (lambda f: f.__setitem__("default_fparam", ["x"]), ModelFormatError, "default_fparam"),
    (lambda f: f.__setitem__("use_aparam_as_mask", True), UnsupportedModelError, "use_aparam_as_mask"),
])
def test_malformed_parameters_refused(tmp_path, edit, error, match):
    path = rewrite_json(os.path.join(FP, "frozen.dp"), tmp_path / "m.dp", lambda t: edit(t["model"]["fitting"]))
    with pytest.raises(error, match=match):
        load_model(path)


def test_fitting_width_must_include_parameters(tmp_path):
    """numb_fparam set on a model whose nets take the descriptor only: refused, naming the widths."""
    def edit(tree):
        fit = tree["model"]["fitting"]
        fit["numb_fparam"] = 1
        fit["@variables"]["fparam_avg"] = fit["@variables"]["bias_atom_e"]  # (2, 1): wrong size too
    path = rewrite_json(os.path.join(TINY, "frozen.dp"), tmp_path / "m.dp", edit)
    with pytest.raises(ModelFormatError, match="fparam_avg"):
        load_model(path)


@pytest.fixture(scope="module")
def compressed_files(tmp_path_factory):
    """Both fixture models compressed with DeePMD-kit's defaults and written as .dpc (C runtime)."""
    out = {}
    for folder in (FP, FP_DEFAULT):
        path = tmp_path_factory.mktemp("dpc") / "model.dpc"
        save_model(compress(os.path.join(folder, "frozen.dp")), path)
        out[folder] = str(path)
    out["plain"] = str(tmp_path_factory.mktemp("dpc") / "plain.dpc")
    save_model(compress(os.path.join(TINY, "frozen.dp")), out["plain"])
    return out


@pytest.mark.parametrize("tag", ["uncompressed", "compressed"])
def test_runtime_equals_deepmd(frames, params, compressed_files, tag):
    """The compressed model through the C runtime (the fitting input gets the parameters' columns)."""
    coord, box, atype = frames
    pot = Potential(compressed_files[FP])
    assert (pot.get_dim_fparam(), pot.get_dim_aparam()) == (1, 1) and not pot.has_default_fparam()
    ref = np.load(os.path.join(FP, f"ref_{tag}_pth.npz"))
    assert_matches(pot.eval(coord, box, atype, atomic=True, fparam=params[0], aparam=params[1]), ref)
    pot = Potential(compressed_files[FP_DEFAULT])
    assert pot.has_default_fparam()
    ref = np.load(os.path.join(FP_DEFAULT, f"ref_{tag}_pth.npz"))
    assert_matches(pot.eval(coord, box, atype, atomic=True, aparam=params[1]), ref, "default_")


def test_runtime_broadcasting_and_errors(frames, params, compressed_files):
    coord, box, atype = frames
    pot = Potential(compressed_files[FP])
    full = pot.eval(coord, box, atype, fparam=np.full((2, 1), 1.2), aparam=np.tile(params[1][:1], (2, 1, 1)))
    out = pot.eval(coord, box, atype, fparam=1.2, aparam=params[1][0])
    assert all(np.array_equal(x, y) for x, y in zip(out, full))
    with pytest.raises(InputError, match="numb_aparam = 1"):
        pot.eval(coord, box, atype, fparam=[1.0])


def test_runtime_normalises_raw_parameters_and_refuses_missing_or_extra_ones(frames, params, compressed_files):
    """The C runtime takes the RAW parameters (as the LAMMPS plugin hands them) and normalises them with the
    file's statistics; it refuses a caller that passes none (no default) or passes ones the model does not take."""
    from dpcompress.neighbors import find_candidates

    coord, box, atype = frames
    pot = Potential(compressed_files[FP])
    ev = pot.evaluator
    cand = find_candidates(coord[0], box[0], ev.rcut)
    types = np.ascontiguousarray(atype, dtype=np.int32)
    ref = np.load(os.path.join(FP, "ref_compressed_pth.npz"))
    e, f, _, _ = ev.compute(cand, types, 1, fparam=params[0][0].astype(float),
                            aparam=np.ascontiguousarray(params[1][0], dtype=float))
    assert abs(e.sum() - ref["energy"][0]) / NATOMS < TOL_E_ATOM
    assert np.max(np.abs(f - ref["force"][0])) < TOL_F
    with pytest.raises(DPCompressError, match="takes 1 frame parameters.*stores no default_fparam.*passes none"):
        ev.compute(cand, types, 1, aparam=np.ascontiguousarray(params[1][0], dtype=float))
    with pytest.raises(DPCompressError, match="takes 1 atomic parameters per atom.*passes none"):
        ev.compute(cand, types, 1, fparam=np.ones(1))
    plain = Potential(compressed_files["plain"]).evaluator
    with pytest.raises(DPCompressError, match="frame parameters given, but the model takes none"):
        plain.compute(cand, types, 1, fparam=np.ones(0))


def test_dpc_round_trip_keeps_parameters(compressed_files):
    fit = load_model(compressed_files[FP_DEFAULT]).fitting
    src = load_model(os.path.join(FP_DEFAULT, "frozen.dp")).fitting
    for key in ("fparam_avg", "fparam_inv_std", "aparam_avg", "aparam_inv_std", "default_fparam"):
        assert np.array_equal(getattr(fit, key), getattr(src, key)), key
    assert (fit.numb_fparam, fit.numb_aparam) == (1, 1)


def test_gpu_and_decomposition_refuse():
    fit = load_model(os.path.join(FP, "frozen.dp")).fitting
    with pytest.raises(UnsupportedModelError, match="numb_fparam = 1, numb_aparam = 1"):
        refuse_fitting_params(fit, "domain decomposition (comm=...)")


def _rewrite(path, edit_arrays=None, edit_header=None):
    """The bytes of ``path`` with its arrays / header edited and every checksum recomputed (a deliberate edit)."""
    c = decode(open(path, "rb").read())
    arrays = {k: np.array(v) for k, v in c.arrays.items()}
    header = json.loads(json.dumps(c.header))
    if edit_arrays:
        edit_arrays(arrays)
    if edit_header:
        edit_header(header)
    return encode(header, sorted(arrays.items()))


@pytest.mark.parametrize("edit_arrays, edit_header, match", [
    (lambda a: a.__setitem__("fit.nparam", np.array([3])), None, "fit.param_avg"),
    (lambda a: a.pop("fit.nparam"), None, "array 'fit.nfparam' without 'fit.nparam'"),
    (lambda a: [a.pop(k) for k in ("fit.nparam", "fit.nfparam", "fit.param_avg", "fit.param_inv_std")], None,
     "maps 66 -> 16 after width 64"),
    (lambda a: a.__setitem__("fit.nparam", np.array([10**6])), None, "fit.nparam"),
    (lambda a: a.__setitem__("fit.nfparam", np.array([3])), None, "fit.nfparam: 3 frame parameters"),
    (lambda a: a.__setitem__("fit.param_inv_std", np.array([1.0, np.nan])), None, "fit.param_inv_std"),
    (lambda a: a.__setitem__("fit.default_fparam", np.array([np.inf])), None, "fit.default_fparam"),
    (lambda a: a.__setitem__("fit.default_fparam", np.array([1.0, 2.0])), None, "fit.default_fparam"),
    # the format of 0e4980a (statistics in the header, count only in the arrays): refused, with the remedy
    (lambda a: [a.pop(k) for k in ("fit.nfparam", "fit.param_avg", "fit.param_inv_std")], None,
     "earlier development format.*compress the model again"),
])
def test_edited_parameter_arrays_are_refused_by_both_readers(compressed_files, tmp_path, edit_arrays, edit_header,
                                                             match):
    data = _rewrite(compressed_files[FP], edit_arrays, edit_header)
    with pytest.raises(ModelFormatError, match=match):
        runtime.check_model_bytes(data, "edited.dpc")
    path = tmp_path / "edited.dpc"
    path.write_bytes(data)
    with pytest.raises(ModelFormatError, match=match):
        Potential(str(path))


def test_a_header_with_the_earlier_parameter_entry_is_refused(compressed_files, tmp_path):
    path = tmp_path / "edited.dpc"
    path.write_bytes(_rewrite(compressed_files[FP], None,
                              lambda h: h["model"].__setitem__("fitting_params", {"numb_fparam": 1})))
    with pytest.raises(ModelFormatError, match="model.fitting_params.*earlier development format"):
        Potential(str(path))


def test_ase_calculator_takes_parameters_from_atoms_info(frames, params, compressed_files):
    """As DeePMD-kit's ASE calculator: atoms.info["fparam"] / ["aparam"]."""
    from ase import Atoms

    from dpcompress.calculators.ase_calculator import DPCompressCalculator

    coord, box, atype = frames
    ref = np.load(os.path.join(FP, "ref_compressed_pth.npz"))
    atoms = Atoms(symbols=["O" if t == 0 else "H" for t in atype], positions=coord[0], cell=box[0], pbc=True)
    atoms.info["fparam"] = params[0][0]
    atoms.info["aparam"] = params[1][0]
    atoms.calc = DPCompressCalculator(compressed_files[FP])
    assert abs(atoms.get_potential_energy() - ref["energy"][0]) / NATOMS < TOL_E_ATOM
    assert np.max(np.abs(atoms.get_forces() - ref["force"][0])) < TOL_F
    del atoms.info["fparam"]
    atoms.calc.reset()
    with pytest.raises(InputError, match="numb_fparam = 1"):
        atoms.get_potential_energy()


def test_info_shows_what_a_model_takes(compressed_files, capsys):
    """`dpcompress info` names the parameters a model needs (what pair_style dpcompress must be given)."""
    from dpcompress.cli import main

    assert main(["info", compressed_files[FP_DEFAULT]]) == 0
    assert "numb_fparam 1 (default_fparam [1.15])  numb_aparam 1" in capsys.readouterr().out
    assert main(["info", compressed_files["plain"]]) == 0
    assert "numb_fparam" not in capsys.readouterr().out
