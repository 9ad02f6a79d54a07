"""Compressed DPA-2, the numpy twin (issue 16): the repinit's table in the exact frame evaluator.

References: ``tests/data/deepmd/dpa2_tiny`` (DeePMD-kit 3.2.0's ``DeepPot.eval`` of its ``dp --pt compress``
model on two periodic water frames of 192 atoms, README there), the exact (net) evaluation of the same
model, and central finite differences of the tabulated energy; the repformer arrays of the planned
``.dpc`` part (kind 7) round-trip bit-identically and damaged ones are named.  Writing and reading the
part: ``test_dpa2_part.py``; the C runtime's frame path does not exist: ``compress`` refuses DPA-2 (``test_dpa2.py``).
"""

import dataclasses
import os
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import DATA, water_frames

from dpcompress import load_model
from dpcompress.core.errors import UnsupportedModelError
from dpcompress.descriptors.dpa2_tables import check_compressible, tabulate_repinit, unsupported_option
from dpcompress.evaluators.exact import dpa2 as exact_dpa2

FIXTURE = os.path.join(DATA, "deepmd", "dpa2_tiny")
MODEL = os.path.join(FIXTURE, "frozen.dp")


def _grid(step):
    """DeePMD-kit's dp compress grid (fine stride ``step``, coarse 10x, extrapolate 5, quintic)."""
    return dict(stride0=step, stride1=10 * step, extrapolate=5, order=5, n_threads=1)


@pytest.fixture(scope="module")
def model():
    return load_model(MODEL)


@pytest.fixture(scope="module")
def frames():
    return water_frames()


def _tabulated(model, step):
    return dataclasses.replace(model, descriptor=tabulate_repinit(model.descriptor, model.min_nbor_dist, _grid(step)))


def test_tabulated_repinit_matches_deepmd_compressed(model, frames):
    """DeePMD-kit's defaults (step 0.01): energy per atom to 1e-10 eV, forces to 1e-9 eV/Å, virial and
    per-atom energies/virials to 1e-9 eV against DeePMD-kit's compressed model (measured: 2e-14 eV,
    5e-15 eV/Å, 1e-14 eV, 3e-14 eV, 2e-14 eV); the exact evaluation to 1e-12 (measured 4e-15 eV/Å)."""
    coords, cells, types = frames
    tab = _tabulated(model, 0.01)
    assert tab.descriptor.repinit.embeddings is None and tab.descriptor.repinit.strip_net is None
    n = len(types)
    with np.load(os.path.join(FIXTURE, "ref_compressed_pth.npz"), allow_pickle=False) as ref:
        for f in range(2):
            res = exact_dpa2.evaluate_frame(tab, coords[f], cells[f], types)
            assert abs(res.energy - ref["energy"][f]) / n < 1e-10
            np.testing.assert_allclose(res.force, ref["force"][f], rtol=0, atol=1e-9)
            np.testing.assert_allclose(res.virial, ref["virial"][f].reshape(3, 3), rtol=0, atol=1e-9)
            np.testing.assert_allclose(res.atom_energy, ref["atom_energy"][f], rtol=0, atol=1e-9)
            np.testing.assert_allclose(res.atom_virial, ref["atom_virial"][f].reshape(n, 3, 3), rtol=0, atol=1e-9)
            net = exact_dpa2.evaluate_frame(model, coords[f], cells[f], types)
            np.testing.assert_allclose(res.force, net.force, rtol=0, atol=1e-12)


def test_the_table_stands_in_for_the_net(model, frames):
    """A coarse table (step 0.5, sampled error 1e-6) moves the forces off the net's, but only by about the
    table's error times the repinit's small weight (measured 1e-11 eV/Å): the table is what is evaluated."""
    coords, cells, types = frames
    tab = _tabulated(model, 0.5)
    err = tab.descriptor.repinit.tables.max_error
    assert 1e-8 < err < 1e-5
    diff = np.abs(exact_dpa2.evaluate_frame(tab, coords[0], cells[0], types).force
                  - exact_dpa2.evaluate_frame(model, coords[0], cells[0], types).force).max()
    assert 0 < diff < 1e-8


def test_forces_and_virial_match_finite_differences_of_the_tabulated_energy(model, frames):
    """A coarse table (step 0.1) in a 7 Å triclinic cell holding 12 atoms (images interact; g1 crosses the
    cell): forces vs Richardson-extrapolated central differences of the tabulated energy (1e-7 eV/Å), the
    virial vs the strain derivative (1e-6 eV)."""
    coords, _, types = frames
    centre = coords[0][0]
    keep = np.argsort(np.linalg.norm(coords[0] - centre, axis=1))[:12]
    x = coords[0][keep] - coords[0][keep].min(axis=0) + 0.3
    t = types[keep]
    cell = np.diag([7.0, 7.35, 6.65]) + 0.2 * np.eye(3)[[1, 2, 0]]
    tab = _tabulated(model, 0.1)

    def energy(c, box=cell):
        return exact_dpa2.evaluate_frame(tab, c, box, t).energy

    res = exact_dpa2.evaluate_frame(tab, x, cell, t)
    h = 1e-4
    fd = np.zeros_like(x)
    for a in range(len(x)):
        for c in range(3):
            def central(step):
                p, m = x.copy(), x.copy()
                p[a, c] += step
                m[a, c] -= step
                return (energy(p) - energy(m)) / (2 * step)
            fd[a, c] = -(4 * central(h / 2) - central(h)) / 3
    np.testing.assert_allclose(res.force, fd, rtol=0, atol=1e-7)
    dE = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            eps = np.zeros((3, 3))
            eps[a, b] = 1e-5
            dE[a, b] = (energy(x @ (np.eye(3) + eps), cell @ (np.eye(3) + eps))
                        - energy(x @ (np.eye(3) - eps), cell @ (np.eye(3) - eps))) / 2e-5
    np.testing.assert_allclose(res.virial, -dE.T, rtol=0, atol=1e-6)


def _edit_layer(desc, k, **changes):
    layers = list(desc.layers)
    layers[k] = dataclasses.replace(layers[k], **changes)
    return dataclasses.replace(desc, layers=tuple(layers))


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: _edit_layer(d, 1, update_style="res_incr"), "repformer layer 1: update_style = 'res_incr' .*one value"),
        (lambda d: _edit_layer(d, 1, g1_has_attn=False), "repformer layer 1: update_g1_has_attn = False"),
        (lambda d: _edit_layer(d, 0, g2_has_attn=False), "repformer layer 0: update_g2_has_attn = False"),
        (lambda d: _edit_layer(d, 0, update_h2=True), "repformer layer 0: update_h2 = True"),
        (lambda d: _edit_layer(d, 0, g1_has_drrd=False), "repformer layer 0: update_g1_has_drrd = False"),
        (lambda d: _edit_layer(d, 1, g1_out_conv=False), "g1_out_conv = False"),
        (lambda d: dataclasses.replace(d, smooth=False), "smooth = False"),
        (lambda d: dataclasses.replace(d, use_sqrt_nnei=False), "use_sqrt_nnei = False"),
        (lambda d: dataclasses.replace(d, direct_dist=True), "direct_dist = True"),
        (lambda d: dataclasses.replace(d, concat_output_tebd=False), "concat_output_tebd = False"),
        (lambda d: dataclasses.replace(d, exclude_types=frozenset({(0, 1)})), r"exclude_types = \[\(0, 1\)\]"),
        (lambda d: dataclasses.replace(d, repinit=SimpleNamespace(tebd_input_mode="concat")),
         "tebd_input_mode = 'concat'"),
    ],
)
def test_options_outside_the_compressed_form_are_refused_naming_them(model, edit, match):
    """The fixture's options (DeePMD-kit's defaults) pass; any other is named, tabulating refuses it."""
    assert unsupported_option(model.descriptor) is None
    check_compressible(model.descriptor)
    desc = edit(model.descriptor)
    with pytest.raises(UnsupportedModelError, match="compressed DPA-2: .*" + match):
        tabulate_repinit(desc, model.min_nbor_dist, _grid(0.01))


def _packed(model):
    from dpcompress.descriptors import se_atten_v2
    from dpcompress.descriptors.dpa2_pack import pack_repformers

    desc = _tabulated(model, 0.01).descriptor
    part = se_atten_v2.pack(desc.repinit, ())
    return desc, part, pack_repformers(desc)


def test_repformer_arrays_round_trip_bit_identically(model, frames):
    """pack_repformers -> unpack_repformers (around the se_atten_v2 part's own round trip) evaluates
    bit-identically to the tabulated descriptor (energy, forces, atomic virials)."""
    from dpcompress.descriptors import se_atten_v2
    from dpcompress.descriptors.dpa2_pack import unpack_repformers

    coords, cells, types = frames
    desc, part, arrays = _packed(model)
    repinit = se_atten_v2.unpack(part.ints, part.real, part.arrays, part.settings)
    back = unpack_repformers(arrays, repinit, desc.activation, "x.dpc")
    a = exact_dpa2.evaluate_frame(dataclasses.replace(model, descriptor=desc), coords[1], cells[1], types)
    b = exact_dpa2.evaluate_frame(dataclasses.replace(model, descriptor=back), coords[1], cells[1], types)
    assert a.energy == b.energy
    np.testing.assert_array_equal(a.force, b.force)
    np.testing.assert_array_equal(a.atom_virial, b.atom_virial)


def _set(name, value):
    def edit(arrays):
        arrays[name] = value(arrays[name]) if callable(value) else value
    return edit


def _nan(a):
    a = a.copy()
    a.flat[3] = np.nan
    return a


def _drop(name):
    return lambda arrays: arrays.pop(name)


@pytest.mark.parametrize(
    "edit, match",
    [
        (_drop("rf0.mapkv.w"), r"array 'rf0.mapkv.w' is missing"),
        (_set("rf1.linear1.w", lambda a: a[:-1]), r"array 'rf1.linear1.w' is float64\[47, 8\], expected float64\[48, 8\]"),
        (_set("rf0.ln_w", lambda a: a.astype(np.float32)), r"array 'rf0.ln_w' is float32\[4\], expected float64\[4\]"),
        (_set("rf0.head_map2.w", _nan), r"array 'rf0.head_map2.w' holds a non-finite value"),
        (_set("rf.dstd", lambda a: -a), r"array 'rf.dstd' holds a value <= 0"),
        (_set("rf.real", np.array([4.0, 4.0])), r"array 'rf.real' = \[4, 4\]: expected rcut > rcut_smth"),
        (_set("rf.int", lambda a: a * np.array([100, 1, 1, 1, 1, 1])), r"array 'rf.int' = \[200, .*nlayers <= 64"),
        (_set("rf.int", lambda a: a * np.array([1, 1, 1, 1, -1, 1])), r"array 'rf.int' holds .* expected values in"),
        (_set("rf.layer_int", lambda a: a[:, ::1] * np.array([1, 1, 1, 0, 1, 1, 1, 1])),
         r"array 'rf.layer_int' row 0 .* update_chnnl_2 = 1"),
        (_set("rf.layer_real", lambda a: a * np.array([1.0, 1.0, 0.0])), r"array 'rf.layer_real': .*positive layer-norm eps"),
        (_set("rf1.linear2.w", np.zeros((4, 4))), r"array 'rf1.linear2.w' is not part of this compressed DPA-2"),
    ],
)
def test_damaged_repformer_arrays_are_named(model, edit, match):
    """Every damaged, missing or extra array is named with what was expected (the C reader is to say the same)."""
    from dpcompress.core.errors import ModelFormatError
    from dpcompress.descriptors.dpa2_pack import check_arrays

    desc, _, arrays = _packed(model)
    assert set(check_arrays(arrays, 2, desc.repinit.tebd_dim, "x.dpc")) <= set(arrays)
    edit(arrays)
    with pytest.raises(ModelFormatError, match="^x.dpc: " + match):
        check_arrays(arrays, 2, desc.repinit.tebd_dim, "x.dpc")
