"""Embedding tables: C builder vs numpy twin, exactness vs the net, an independent
Hermite oracle (scipy BPoly), grid rules, extrapolation, bounds, DeePMD-kit's tables."""

import json
import os
import zlib
from dataclasses import replace

import numpy as np
import pytest
from scipy.interpolate import BPoly

from dpcompress._ext import table_build as kernel
from dpcompress.descriptors.se_e2_a import table_bounds
from dpcompress.tables import center_type_ranges
from dpcompress.tables import (
    MAX_TABLE_ELEMENTS,
    EmbeddingTable,
    build_embedding_table,
    estimate_table_error,
    grid_counts,
    pack_network,
)
from dpcompress.core.errors import InputError
from dpcompress import load_model
from dpcompress.core.activations import ACTIVATIONS, activate
from dpcompress.core.networks import Layer, Network
from dpcompress.core.networks import embedding_with_derivatives
from dpcompress.reference.table_build import build_table
from dpcompress.core.table_math import table_eval

from conftest import TINY, shared_fixture

ALL_ACTIVATIONS = ["tanh", "gelu", "relu", "relu6", "softplus", "sigmoid", "silu", "linear"]
SMOOTH = ["tanh", "gelu", "softplus", "sigmoid", "silu", "linear"]


def make_net(rng, activation, widths=(1, 2, 4, 4, 5), idt=False, bias=True):
    """Random net whose widths exercise every residual kind: 1->2 and 2->4 double, 4->4 identity, 4->5 none."""
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        w = rng.normal(scale=1.0 / np.sqrt(n_in), size=(n_in, n_out))
        b = rng.normal(scale=0.5, size=n_out) if bias else None
        d = rng.uniform(0.05, 1.5, size=n_out) if idt else None
        layers.append(Layer(w, b, d, activation, True))
    return Network(tuple(layers))


def scaled_diff(a, b, widths):
    """max_l,k,m |a - b|_{lkm} * w_l^k: the change each coefficient makes at the interval's end."""
    k = np.arange(a.shape[1])[None, :, None]
    return np.max(np.abs(a - b) * np.asarray(widths)[:, None, None] ** k)


def random_points(rng, lo, hi, n=2000):
    return rng.uniform(lo, hi, n)


@pytest.fixture(scope="module")
def tiny():
    return load_model(os.path.join(TINY, "frozen.dp"))


# ---------------------------------------------------------------- activations


def test_activation_codes_cover_python_activations():
    assert set(kernel.ACTIVATION_CODES) == set(ACTIVATIONS)
    assert len(set(kernel.ACTIVATION_CODES.values())) == len(ACTIVATIONS)
    # DeePMD-kit functype numbers
    assert kernel.ACTIVATION_CODES["tanh"] == 1 and kernel.ACTIVATION_CODES["silu"] == 7


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_c_activation_matches_numpy(name):
    # A 1 -> 1 linear-weight layer exposes phi, phi', phi'' of the C header directly.
    net = Network((Layer(np.ones((1, 1)), None, None, name, False),))
    z = np.concatenate([np.linspace(-8, 8, 1601), [-800.0, -40.0, -1e-300, 0.0, 1e-300, 40.0, 800.0, 5.999, 6.0, 6.001]])
    c = kernel.embedding_derivatives(pack_network(net), z)[:, :, 0]
    ref = np.stack(activate(name, z), axis=1)
    # atol: gelu's 1 - tanh(u)^2 cancels near |u| ~ 5 and libm's tanh may differ from numpy's by an ulp
    np.testing.assert_allclose(c, ref, rtol=1e-14, atol=1e-13)


# ---------------------------------------------------------------- C vs numpy twin


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@pytest.mark.parametrize("idt", [False, True])
@pytest.mark.parametrize("order", [5, 3])
def test_c_builder_matches_numpy_twin(name, idt, order):
    rng = np.random.default_rng(zlib.crc32(f"{name}-{idt}-{order}".encode()))
    net = make_net(rng, name, idt=idt)
    tab = build_embedding_table(net, -2, 3, 0.01, 0.1, 2.0, order=order, n_threads=1)
    ref = build_table(net, tab.lower, tab.stride0, tab.stride1, tab.n_fine, tab.n_coarse, order=order)
    assert tab.coef.shape == ref.shape == (tab.nspline, order + 1, 5)
    scale = max(1.0, np.max(np.abs(ref[:, 0])))
    assert scaled_diff(tab.coef, ref, tab.widths()) <= 1e-12 * scale


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_node_data_equal_the_net(name):
    rng = np.random.default_rng(7)
    net = make_net(rng, name, idt=True)
    n_fine, n_coarse = grid_counts(-2, 3, 0.01, 0.1, 2.0)
    tab0 = EmbeddingTable(-2.0, 0.01, 0.1, n_fine, n_coarse, np.zeros((0, 6, 5)))
    x = tab0.nodes()
    coef, nodes = kernel.build_table(pack_network(net), x, n_fine, n_coarse, 0.01, 0.1, 5, 1, return_nodes=True)
    g, dg, d2g = embedding_with_derivatives(net, x)
    for q, ref in enumerate((g, dg, d2g)):
        np.testing.assert_allclose(nodes[:, q], ref, rtol=1e-13, atol=1e-13 * max(1.0, np.abs(ref).max()))
    # The polynomials interpolate the node data at both ends of every interval.
    tab = replace(tab0, coef=coef)
    w = tab.widths()
    c = coef
    np.testing.assert_array_equal(c[:, 0], nodes[:-1, 0])
    np.testing.assert_array_equal(c[:, 1], nodes[:-1, 1])
    np.testing.assert_array_equal(c[:, 2], 0.5 * nodes[:-1, 2])
    tt = w[:, None]
    end_v = sum(c[:, k] * tt**k for k in range(6))
    end_d = sum(k * c[:, k] * tt ** (k - 1) for k in range(1, 6))
    end_s = sum(k * (k - 1) * c[:, k] * tt ** (k - 2) for k in range(2, 6))
    for got, ref in ((end_v, nodes[1:, 0]), (end_d, nodes[1:, 1]), (end_s, nodes[1:, 2])):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10 * max(1.0, np.abs(ref).max()))


def test_residual_kinds_and_idt_are_used():
    """Dropping idt or a skip changes the table: the builder really applies them (DeePMD-kit ignores idt)."""
    rng = np.random.default_rng(3)
    net = make_net(rng, "tanh", idt=True)
    ref = build_embedding_table(net, -1, 1, 0.01, 0.1, 1.0, n_threads=1).coef
    no_idt = Network(tuple(replace(layer, idt=None) for layer in net.layers))
    no_res = Network(tuple(replace(layer, resnet=False) for layer in net.layers))
    assert [layer.residual for layer in net.layers] == ["double", "double", "identity", None]
    for other in (no_idt, no_res):
        assert np.max(np.abs(build_embedding_table(other, -1, 1, 0.01, 0.1, 1.0, n_threads=1).coef[:, 0] - ref[:, 0])) > 1e-3


def test_threads_bit_identical(tiny):
    rng = np.random.default_rng(11)
    nets = [tiny.descriptor.embeddings[0][1], make_net(rng, "gelu", widths=(1, 8, 16, 32), idt=True)]
    for net in nets:
        tabs = [build_embedding_table(net, -1, 14, 0.01, 0.1, 5, n_threads=n) for n in (1, 2, 3)]
        for t in tabs[1:]:
            assert np.array_equal(t.coef.view(np.uint64), tabs[0].coef.view(np.uint64))


# ---------------------------------------------------------------- accuracy vs the net and an independent oracle


@pytest.mark.parametrize("name", SMOOTH)
def test_table_matches_net_smooth(name):
    rng = np.random.default_rng(5)
    net = make_net(rng, name, idt=True)
    tab = build_embedding_table(net, -2, 3, 0.01, 0.1, 2.0, n_threads=1)
    x = random_points(rng, tab.lower, tab.xmax)
    g, dg, _ = embedding_with_derivatives(net, x)
    v, d = table_eval(tab, x)
    scale = max(1.0, np.abs(g).max())
    assert np.max(np.abs(v - g)) <= 1e-9 * scale
    assert np.max(np.abs(d - dg)) <= 1e-8 * max(1.0, np.abs(dg).max())
    assert tab.max_error <= 1e-9 * scale


@pytest.mark.parametrize("name", ["relu", "relu6"])
def test_table_matches_net_piecewise_linear_away_from_kinks(name):
    """A relu net of a scalar is piecewise linear; where no kink falls inside an interval the table is exact."""
    rng = np.random.default_rng(9)
    net = make_net(rng, name)
    tab = build_embedding_table(net, -8, 8, 0.01, 0.1, 1.0, n_threads=1)
    x = tab.nodes()
    g, dg, _ = embedding_with_derivatives(net, x)
    w = tab.widths()[:, None]
    smooth = np.all((dg[:-1] == dg[1:]) & (np.abs(g[1:] - g[:-1] - dg[:-1] * w) <= 1e-12), axis=1)
    assert 0.5 < smooth.mean() < 1.0  # there are kinks, and most intervals are free of them
    l = rng.choice(np.flatnonzero(smooth), 3000)
    pts = x[l] + rng.uniform(0, 1, l.size) * w[l, 0]
    gp, dgp, _ = embedding_with_derivatives(net, pts)
    v, d = table_eval(tab, pts)
    assert np.max(np.abs(v - gp)) <= 1e-12 * max(1.0, np.abs(gp).max())
    assert np.max(np.abs(d - dgp)) <= 1e-12 * max(1.0, np.abs(dgp).max())


def test_table_matches_scipy_bpoly(tiny):
    """scipy's Bernstein-basis Hermite through (y, y', y'') at the nodes is the same quintic."""
    net = tiny.descriptor.embeddings[1][0]
    tab = build_embedding_table(net, -1, 2, 0.01, 0.1, 2.0, n_threads=1)
    x = tab.nodes()
    yi = np.stack(embedding_with_derivatives(net, x), axis=1)  # (n_nodes, 3, M)
    oracle = BPoly.from_derivatives(x, yi)
    rng = np.random.default_rng(1)
    pts = np.concatenate([random_points(rng, tab.lower, tab.xmax, 3000), x[:-1]])
    v, d = table_eval(tab, pts)
    ref_v, ref_d = oracle(pts), oracle.derivative()(pts)
    assert np.max(np.abs(v - ref_v)) <= 1e-12 * max(1.0, np.abs(ref_v).max())
    assert np.max(np.abs(d - ref_d)) <= 1e-10 * max(1.0, np.abs(ref_d).max())


def test_tiny_model_table_accuracy(tiny):
    net = tiny.descriptor.embeddings[0][0]
    rng = np.random.default_rng(2)
    tab = build_embedding_table(net, -1, 14, 0.01, 0.1, 5)
    x = random_points(rng, tab.lower, tab.upper, 5000)
    g, dg, _ = embedding_with_derivatives(net, x)
    v, d = table_eval(tab, x)
    assert np.max(np.abs(v - g)) <= 1e-9
    assert np.max(np.abs(d - dg)) <= 1e-9
    assert tab.max_error <= 1e-12
    value_err, deriv_err = estimate_table_error(tab, net)
    assert value_err == tab.max_error and deriv_err <= 1e-10
    # the estimate does see a wrong table
    assert estimate_table_error(tab, tiny.descriptor.embeddings[1][1])[0] > 1e-3


def test_tiny_model_cubic_fine_stride(tiny):
    net = tiny.descriptor.embeddings[1][1]
    rng = np.random.default_rng(4)
    tab = build_embedding_table(net, -1, 15, 0.001, 0.01, 5, order=3)
    assert tab.order == 3 and tab.n_fine == 16000 and tab.n_coarse == 6000
    x = random_points(rng, tab.lower, tab.upper, 5000)
    g, dg, _ = embedding_with_derivatives(net, x)
    v, d = table_eval(tab, x)
    assert np.max(np.abs(v - g)) <= 1e-8
    assert np.max(np.abs(d - dg)) <= 1e-9
    assert tab.max_error <= 1e-8


def test_error_estimate_sees_derivative_errors(tiny):
    """The derivative error vanishes at midpoints (e' ~ u^2(u-1)^2(2u-1)); the estimate must look elsewhere."""
    net = tiny.descriptor.embeddings[0][0]
    rng = np.random.default_rng(8)
    for order, stride in ((3, 0.05), (5, 0.2)):
        tab = build_embedding_table(net, -1, 14, stride, stride, 1, order=order)
        x = random_points(rng, tab.lower, tab.upper, 20000)
        g, dg, _ = embedding_with_derivatives(net, x)
        v, d = table_eval(tab, x)
        value_err, deriv_err = estimate_table_error(tab, net)
        assert 0.9 * np.max(np.abs(v - g)) <= value_err <= 1.1 * np.max(np.abs(v - g))
        assert 0.9 * np.max(np.abs(d - dg)) <= deriv_err <= 1.1 * np.max(np.abs(d - dg))


# ---------------------------------------------------------------- grid and extrapolation


@pytest.mark.parametrize("stride0", [0.003, 0.007])
def test_grid_from_integer_counts(tiny, stride0):
    """Strides that do not divide the range: exact nodes, no shifted coarse region (DeePMD-kit's arange bug)."""
    net = tiny.descriptor.embeddings[0][0]
    stride1 = 10 * stride0
    tab = build_embedding_table(net, -1, 14, stride0, stride1, 5)
    n_fine = int(np.ceil(15 / stride0 - 1e-9))
    assert tab.n_fine == n_fine and tab.upper >= 14 and tab.upper - 14 < stride0
    assert tab.n_coarse == int(np.ceil((5 * tab.upper - tab.upper) / stride1 - 1e-9))
    x = tab.nodes()
    assert x.size == tab.nspline + 1
    assert np.array_equal(x[: n_fine + 1], -1.0 + np.arange(n_fine + 1) * stride0)
    assert np.array_equal(x[n_fine:], tab.upper + np.arange(tab.n_coarse + 1) * stride1)
    assert x[-1] == tab.xmax and tab.xmax >= 5 * tab.upper - 1e-9
    # the whole table, coarse region included, follows the net
    rng = np.random.default_rng(6)
    pts = random_points(rng, tab.lower, tab.xmax, 4000)
    g, _, _ = embedding_with_derivatives(net, pts)
    assert np.max(np.abs(table_eval(tab, pts)[0] - g)) <= 1e-9
    # continuity across the fine/coarse boundary
    eps = 1e-9
    v, d = table_eval(tab, np.array([tab.upper - eps, tab.upper, tab.upper + eps]))
    assert np.max(np.abs(v[0] - v[2])) <= 1e-8 and np.max(np.abs(d[0] - d[2])) <= 1e-7


def test_grid_counts_deepmd_defaults():
    # integer ranges with DeePMD-kit's default strides give DeePMD-kit's interval counts
    assert grid_counts(-1, 14, 0.01, 0.1, 5) == (1500, 560)
    assert grid_counts(-1, 15, 0.01, 0.1, 5) == (1600, 600)
    assert grid_counts(-2, 8, 0.01, 0.1, 5) == (1000, 320)
    assert grid_counts(-1, 14, 0.01, 0.1, 1) == (1500, 0)
    assert grid_counts(-5, -1, 0.01, 0.1, 5) == (400, 0)  # e*upper <= upper: no coarse region


def test_linear_extrapolation_is_c1(tiny):
    net = tiny.descriptor.embeddings[1][1]
    tab = build_embedding_table(net, -1, 15, 0.01, 0.1, 5)
    for edge in (tab.lower, tab.xmax):
        eps = 1e-10
        v, d = table_eval(tab, np.array([edge - eps, edge, edge + eps]))
        assert np.max(np.abs(v[0] - v[2])) <= 1e-8
        assert np.max(np.abs(d[0] - d[2])) <= 1e-7
    # beyond the ends: a straight line with the end slope
    g, dg, _ = embedding_with_derivatives(net, np.array([tab.lower, tab.xmax]))
    far = np.array([tab.lower - 3.0, tab.xmax + 7.0])
    v, d = table_eval(tab, far)
    np.testing.assert_allclose(v[0], g[0] - 3.0 * dg[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(v[1], g[1] + 7.0 * dg[1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d, dg, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- bounds


def test_bounds_tiny_model_match_deepmd(tiny):
    b = table_bounds(tiny.descriptor, tiny.min_nbor_dist)
    assert b == (((-1, 14), (-1, 14)), ((-1, 15), (-1, 15)))
    meta = json.load(open(os.path.join(TINY, "tables_meta.json")))
    for t in meta["tables"]:
        assert b[t["center_type"]][t["neighbor_type"]] == (t["lower"], t["upper"])


def test_bounds_type_one_side_and_exclusions(tiny):
    d = tiny.descriptor
    nets = (d.embeddings[0][0], d.embeddings[1][1])
    tos = replace(d, type_one_side=True, embeddings=nets)
    assert table_bounds(tos, tiny.min_nbor_dist) == ((-1, 15), (-1, 15))
    # exclusions never narrow a shared table: every center type's range, as DeePMD-kit's tables
    # (its exclusion test never matches) -- tests/test_close_contact.py checks that against dp compress
    ex = replace(tos, exclude_types=frozenset({(1, 1), (0, 0)}))
    assert table_bounds(ex, tiny.min_nbor_dist) == ((-1, 15), (-1, 15))
    ex = replace(tos, exclude_types=frozenset({(0, 0), (1, 0), (0, 1)}))
    assert table_bounds(ex, tiny.min_nbor_dist) == ((-1, 15), (-1, 15))
    # type_one_side False ignores exclusions (the net exists, its center decides)
    ex = replace(d, exclude_types=frozenset({(0, 1), (1, 0)}))
    assert table_bounds(ex, tiny.min_nbor_dist) == (((-1, 14), (-1, 14)), ((-1, 15), (-1, 15)))
    with pytest.raises(InputError):
        table_bounds(d, 0.0)
    with pytest.raises(InputError):
        table_bounds(d, float("nan"))


@pytest.mark.slow
def test_bounds_big_model_raw_ranges_match_deepmd_log():
    """deepmd-anchor.md §2: the raw ranges logged by ``dp compress`` for the big water model."""
    m = load_model(os.path.join(shared_fixture("se_e2_a"), "frozen.dp"))
    d = m.descriptor
    lo, hi = center_type_ranges(d.davg, d.dstd, d.rcut_smth, d.rcut, m.min_nbor_dist)
    np.testing.assert_allclose(lo, [-0.36021028, -0.38865481], atol=1e-8)
    np.testing.assert_allclose(hi, [13.12963659, 14.68130976], atol=1e-8)
    assert table_bounds(d, m.min_nbor_dist) == (((-1, 14), (-1, 14)), ((-1, 15), (-1, 15)))


# ---------------------------------------------------------------- DeePMD-kit's own tables


def test_tables_match_deepmd_kit(tiny):
    """Our coefficients vs ``dp --pt compress`` output, interval by interval (Δ^k-scaled, deepmd-anchor §3)."""
    d = tiny.descriptor
    sampled = np.load(os.path.join(TINY, "tables_sampled.npz"))
    meta = {t["key"]: t for t in json.load(open(os.path.join(TINY, "tables_meta.json")))["tables"]}
    bounds = table_bounds(d, tiny.min_nbor_dist)
    for c in range(d.ntypes):
        for n in range(d.ntypes):
            key = f"filter_{c}_net_{n}"
            rows, info, data = sampled[key + "__rows"], sampled[key + "__info"], sampled[key]
            lower, upper, top, s0, s1 = info[:5]
            assert bounds[c][n] == (lower, upper)
            tab = build_embedding_table(d.embeddings[c][n], lower, upper, s0, s1, top / upper)
            assert (tab.nspline, 6 * tab.n_channels) == tuple(meta[key]["shape"])
            assert tab.upper == upper and tab.xmax == pytest.approx(top, abs=1e-12)
            # DeePMD-kit's interval l: [x_l, x_l + w) from its own int() counts
            nf = int((upper - lower) / s0)
            dp_x = np.where(rows < nf, lower + rows * s0, upper + (rows - nf) * s1)
            dp_w = np.where(rows < nf, s0, s1)
            ours_x, ours_w = tab.nodes()[rows], tab.widths()[rows]
            same = (np.abs(ours_x - dp_x) <= 1e-9) & (ours_w == dp_w)
            assert same.all()
            dp = data.reshape(len(rows), tab.n_channels, 6).transpose(0, 2, 1)
            k = np.arange(6)[None, :, None]
            err = np.abs(tab.coef[rows] - dp) * dp_w[:, None, None] ** k
            assert np.all(err <= 1e-10 * np.maximum(1.0, np.abs(dp[:, :1, :])))


# ---------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(stride0=0.0), "strides"),
        (dict(stride1=-0.1), "strides"),
        (dict(extrapolate=0.5), "extrapolate"),
        (dict(order=4), "order"),
        (dict(order=True), "order"),
        (dict(upper=-1.0), "greater"),
        (dict(lower=float("nan")), "finite"),
        (dict(stride0=1e-300), "values"),
        (dict(stride0=1e-6, stride1=1e-6), "values"),
    ],
)
def test_invalid_arguments(tiny, kwargs, match):
    args = dict(lower=-1.0, upper=14.0, stride0=0.01, stride1=0.1, extrapolate=5.0, order=5)
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        build_embedding_table(tiny.descriptor.embeddings[0][0], **args)


def test_invalid_nets():
    rng = np.random.default_rng(0)
    two_in = Network((Layer(rng.normal(size=(2, 3)), None, None, "tanh", True),))
    with pytest.raises(InputError, match="scalar-input"):
        build_embedding_table(two_in, -1, 1, 0.01, 0.1, 1)
    unknown = Network((Layer(rng.normal(size=(1, 3)), None, None, "silut", True),))
    with pytest.raises(InputError, match="activation"):
        build_embedding_table(unknown, -1, 1, 0.01, 0.1, 1)
    w = rng.normal(size=(1, 3))
    w[0, 1] = np.nan
    nan_net = Network((Layer(w, None, None, "tanh", True),))
    with pytest.raises(FloatingPointError):
        build_embedding_table(nan_net, -1, 1, 0.01, 0.1, 1)
    # the kernel refuses inconsistent packed nets on its own
    packed = pack_network(make_net(rng, "tanh"))
    with pytest.raises(ValueError):
        kernel.build_table(packed._replace(residual=np.array([1, 2, 1, 0], dtype=np.intc)), np.linspace(0, 1, 11), 10, 0, 0.1, 0.1)
    with pytest.raises(ValueError):
        kernel.build_table(packed, np.linspace(0, 1, 11), 9, 0, 0.1, 0.1)
    with pytest.raises(ValueError):
        kernel.build_table(packed._replace(w_offset=packed.w_offset + 5), np.linspace(0, 1, 11), 10, 0, 0.1, 0.1)
    assert MAX_TABLE_ELEMENTS == 2**31
