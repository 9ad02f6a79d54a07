"""Model variants generated and evaluated by DeePMD-kit 3.2.0 itself (tests/data/deepmd_variants).

Each folder holds a model built by DeePMD-kit's own classes with one feature
switched on (type_one_side, exclusions, an activation, resnet_dt,
env_protection, a non-periodic cluster) and DeePMD-kit's float64 outputs.
The exact evaluator must match them to the foundation tolerances; the
compressed model (step 0.01, quintic) must match them too — including
``resnet_dt``, which DeePMD-kit's own compression tabulates wrongly.
"""

import os

import numpy as np
import pytest

from conftest import DATA
from dpcompress import Potential
from dpcompress import TableAccuracyWarning, compress
from dpcompress import load_model
from dpcompress.models import load_tree

VARIANTS = os.path.join(DATA, "deepmd_variants")
NAMES = sorted(
    d for d in os.listdir(VARIANTS) if os.path.isfile(os.path.join(VARIANTS, d, "ref.npz"))
) if os.path.isdir(VARIANTS) else []
TOL = dict(energy_per_atom=1e-10, force=1e-9, virial=1e-8, atom_energy=1e-10, atom_virial=1e-8)


def errors(pot, folder):
    frames = np.load(os.path.join(folder, "frames.npz"))
    ref = np.load(os.path.join(folder, "ref.npz"))
    coords = frames["coord"].astype(np.float64)
    cells = None if bool(frames["nopbc"]) else frames["box"].astype(np.float64).reshape(len(coords), 9)
    types = frames["atype"].astype(np.int64)
    e, f, v, ae, av = pot.eval(coords, cells, types, atomic=True)
    n = len(types)
    return dict(
        energy_per_atom=np.max(np.abs(e[:, 0] - ref["energy"])) / n,
        force=np.max(np.abs(f - ref["force"].reshape(f.shape))),
        virial=np.max(np.abs(v - ref["virial"].reshape(v.shape))),
        atom_energy=np.max(np.abs(ae[..., 0] - ref["atom_energy"].reshape(ae.shape[:2]))),
        atom_virial=np.max(np.abs(av - ref["atom_virial"].reshape(av.shape))),
    )


def assert_within(err, scale=1.0):
    for key, tol in TOL.items():
        assert err[key] <= tol * scale, f"{key}: {err[key]:.3e} > {tol * scale:.0e} ({err})"


@pytest.mark.parametrize("name", NAMES)
def test_exact_evaluator_matches_deepmd(name):
    folder = os.path.join(VARIANTS, name)
    assert_within(errors(Potential(os.path.join(folder, "model.dp")), folder))


@pytest.mark.parametrize("name", NAMES)
def test_compressed_matches_deepmd_uncompressed(name):
    folder = os.path.join(VARIANTS, name)
    model = load_model(os.path.join(folder, "model.dp"))
    if name in ("act_relu", "act_relu6"):
        # A smooth interval cannot follow a kink: compression must say so, and stay close.
        with pytest.warns(TableAccuracyWarning, match="kinks"):
            cm = compress(model)
        err = errors(Potential(cm), folder)
        assert err["force"] < 1e-2 and err["energy_per_atom"] < 1e-6, err
        return
    assert_within(errors(Potential(compress(model)), folder))


def test_features_are_really_exercised():
    """Guard against a fixture silently losing its feature."""
    m = {name: load_model(os.path.join(VARIANTS, name, "model.dp")) for name in NAMES}
    assert m["tos_true"].descriptor.type_one_side
    assert m["tos_true_exclude"].descriptor.exclude_types == {(0, 1), (1, 0)}
    assert m["tos_false_exclude"].descriptor.exclude_types == {(1, 1)}
    assert m["pair_atom_exclude"].pair_exclude_types == {(0, 0)} and m["pair_atom_exclude"].atom_exclude_types == {1}
    assert any(l.idt is not None for l in m["resnet_dt"].descriptor.embedding_net(0, 0).layers)
    assert m["env_protection"].descriptor.env_protection == 0.1
    for act in ("gelu", "relu", "relu6", "softplus", "sigmoid", "silu"):
        assert m[f"act_{act}"].descriptor.embedding_net(0, 0).layers[0].activation == act
        assert m[f"act_{act}"].fitting.network(0).layers[0].activation == act


def test_yaml_reads_like_dp():
    """DeePMD-kit's .yaml of the tiny model gives the same tree and the same energies as its .dp."""
    ymodel = os.path.join(VARIANTS, "yaml", "model.yaml")
    folder = os.path.join(VARIANTS, "nopbc_cluster")
    assert_within(errors(Potential(ymodel), folder))
    a, b = load_tree(ymodel)["model"], load_tree(os.path.join(folder, "model.dp"))["model"]
    np.testing.assert_array_equal(a["descriptor"]["@variables"]["davg"], b["descriptor"]["@variables"]["davg"])
    assert a["descriptor"]["sel"] == b["descriptor"]["sel"]
