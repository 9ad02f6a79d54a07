"""Hybrid descriptors: parts side by side, each with its own cutoff and neighbor list."""

import dataclasses
import os

import numpy as np
import pytest

from conftest import DATA, TINY, shared_fixture
from dpcompress import Potential
from dpcompress import compress, save_model
from dpcompress.core.errors import UnsupportedModelError
from dpcompress import load_model
from dpcompress.core.networks import Network
from dpcompress.descriptors import DescriptorHybrid

HYBRID_TINY = os.path.join(DATA, "deepmd", "hybrid_tiny")


def padded_fitting(model, extra):
    """The model's fitting nets, taking ``extra`` more (ignored) inputs after its descriptor."""
    nets = []
    for net in model.fitting.networks:
        first = net.layers[0]
        w = np.vstack([first.w, np.zeros((extra, first.n_out))])
        nets.append(Network((dataclasses.replace(first, w=w),) + net.layers[1:]))
    return dataclasses.replace(model.fitting, networks=tuple(nets))


def short_range_copy(desc, rcut, sel):
    """The same descriptor with a smaller cutoff (statistics of the first slots reused)."""
    nnei = sum(sel)
    return dataclasses.replace(desc, rcut=rcut, sel=tuple(sel), davg=desc.davg[:, :nnei].copy(), dstd=desc.dstd[:, :nnei].copy())


@pytest.fixture(scope="module")
def models():
    base = load_model(os.path.join(TINY, "frozen.dp"))
    second = short_range_copy(base.descriptor, 4.0, (20, 40))
    hybrid = dataclasses.replace(
        base,
        descriptor=DescriptorHybrid(parts=(base.descriptor, second)),
        fitting=padded_fitting(base, second.dim_out),
    )
    return base, hybrid


def frames():
    f = np.load(os.path.join(TINY, "test_frames.npz"))
    return f["coord"][:2].astype(float), f["box"][:2].astype(float).reshape(2, 9), f["atype"]


def test_hybrid_with_an_ignored_part_equals_the_plain_model(models):
    """Zero fitting weights on the second part: same energies, forces and virials as the plain model."""
    base, hybrid = models
    coords, cells, types = frames()
    a = Potential(base).eval(coords, cells, types, atomic=True)
    b = Potential(hybrid).eval(coords, cells, types, atomic=True)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-12)


def test_hybrid_parts_all_contribute_and_compress(models, tmp_path):
    base, hybrid = models
    rng = np.random.default_rng(0)
    nets = []
    for net in hybrid.fitting.networks:  # give the second part real weights
        first = net.layers[0]
        w = first.w.copy()
        w[base.descriptor.dim_out :] = rng.normal(scale=0.3, size=w[base.descriptor.dim_out :].shape)
        nets.append(Network((dataclasses.replace(first, w=w),) + net.layers[1:]))
    model = dataclasses.replace(hybrid, fitting=dataclasses.replace(hybrid.fitting, networks=tuple(nets)))
    coords, cells, types = frames()
    exact = Potential(model)
    e0 = Potential(hybrid).eval(coords, cells, types)[0]
    e1, f1, v1 = exact.eval(coords, cells, types)
    assert np.abs(e1 - e0).max() > 1e-3  # the second part matters now
    cm = compress(model)
    save_model(cm, tmp_path / "h.dpc")
    e2, f2, v2 = Potential(tmp_path / "h.dpc").eval(coords, cells, types)
    assert np.abs(e2 - e1).max() / len(types) < 1e-9
    assert np.abs(f2 - f1).max() < 1e-7
    # finite differences of the compressed energy, a few components
    pot = Potential(cm)
    c = coords[0].reshape(-1, 3)
    h = 1e-5
    for a, k in [(0, 0), (70, 2), (150, 1)]:
        p, m = c.copy(), c.copy()
        p[a, k] += h
        m[a, k] -= h
        fd = -(pot.eval(p[None], cells[:1], types)[0][0, 0] - pot.eval(m[None], cells[:1], types)[0][0, 0]) / (2 * h)
        assert abs(fd - f2[0, a, k]) < 1e-6


def test_nested_hybrid_is_rejected(models):
    base, hybrid = models
    nested = dataclasses.replace(hybrid, descriptor=DescriptorHybrid(parts=(hybrid.descriptor,)))
    with pytest.raises(UnsupportedModelError, match="hybrid descriptor inside a hybrid"):
        Potential(nested)


def compare_fixture(folder, stress=""):
    model = load_model(os.path.join(folder, "frozen.dp"))
    fr = np.load(os.path.join(folder, f"test_frames{stress}.npz"))
    ref = np.load(os.path.join(folder, f"ref_uncompressed_pth{stress}.npz"))
    coords, cells, types = fr["coord"].astype(float), fr["box"].astype(float).reshape(len(fr["coord"]), 9), fr["atype"]
    e, f, v, ae, av = Potential(model).eval(coords, cells, types, atomic=True)
    n = len(types)
    assert np.abs(e[:, 0] - ref["energy"]).max() / n <= 1e-10
    assert np.abs(f - ref["force"]).max() <= 1e-9
    assert np.abs(v - ref["virial"].reshape(-1, 9)).max() <= 1e-8
    assert np.abs(ae[..., 0] - ref["atom_energy"]).max() <= 1e-10
    assert np.abs(av - ref["atom_virial"].reshape(av.shape)).max() <= 1e-8
    ec, fc, vc = Potential(compress(model)).eval(coords, cells, types)
    return np.abs(ec - e).max() / n, np.abs(fc - f).max()


def needs_se_e2_r():
    try:
        load_model(os.path.join(HYBRID_TINY, "frozen.dp"))
    except UnsupportedModelError as exc:
        pytest.skip(f"hybrid fixture needs se_e2_r: {exc}")


@pytest.mark.parametrize("stress", ["", "_stress"])
def test_hybrid_fixture_matches_deepmd(stress):
    if not os.path.isdir(HYBRID_TINY):
        pytest.skip("tests/data/deepmd/hybrid_tiny missing")
    needs_se_e2_r()
    de, df = compare_fixture(HYBRID_TINY, stress)
    if not stress:
        assert de <= 1e-9 and df <= 1e-7


@pytest.mark.slow
def test_large_hybrid_fixture_matches_deepmd():
    folder = shared_fixture("hybrid")
    needs_se_e2_r()
    de, df = compare_fixture(folder)
    assert de <= 1e-9 and df <= 1e-7
