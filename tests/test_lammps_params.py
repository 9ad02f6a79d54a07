"""``pair_style dpcompress`` with frame and atomic parameters equals ``Potential.eval(fparam=, aparam=)``.

The model ``tests/data/deepmd/se_e2_a_fparam_tiny`` (numb_fparam 1, numb_aparam 1; DeePMD-kit 3.2.0) and its
``default_fparam`` twin, on a water frame, with DeePMD-kit's ``pair_style deepmd`` keywords:

* ``fparam V`` and ``aparam V`` (constants, the same aparam for every atom);
* ``fparam_from_compute ID`` (a global compute, here ``reduce ave`` of the per-atom kinetic energy) and
  ``aparam_from_compute ID`` (a per-atom compute, ``ke/atom``), read every step: the reference takes the
  values LAMMPS's computes give (extracted after the run), so LAMMPS's unit constants cancel;
* no fparam keyword with a model that stores ``default_fparam`` (and ``fparam`` overriding it);
* 5 NVE steps with both computes: the last step's energy, forces and virials equal ``Potential.eval`` of the
  final positions with the computes' last values (read on every step, not once).

Serial and ``mpiexec -n 2``, newton on and off; ``run 0`` energy, forces, per-atom energies and virials
against ``Potential.eval`` to 1e-10 eV/atom, 1e-9 eV/Å, 1e-9 eV.  Then the refusals: a model that needs
parameters without them, parameters for a model that takes none, a wrong count, a missing or mis-shaped
compute, each a LAMMPS error naming it.
"""

import os

import numpy as np
import pytest

from lammps_frames import write_data
from test_lammps import DATA, _frame, _run_check, plugin  # noqa: F401  (plugin: the session fixture)

pytestmark = pytest.mark.lammps

FP = os.path.join(DATA, "deepmd", "se_e2_a_fparam_tiny")
FP_DEFAULT = os.path.join(DATA, "deepmd", "se_e2_a_fparam_default_tiny")
TOL_E_ATOM, TOL_F, TOL_V = 1e-10, 1e-9, 1e-9


@pytest.fixture(scope="module")
def param_models(tmp_path_factory):
    import dpcompress

    folder = tmp_path_factory.mktemp("lammps_param_models")
    paths = {}
    for key, src in (("fp", FP), ("default", FP_DEFAULT), ("plain", os.path.join(DATA, "deepmd", "se_e2_a_tiny"))):
        paths[key] = str(folder / f"{key}.dpc")
        dpcompress.save_model(dpcompress.compress(os.path.join(src, "frozen.dp")), paths[key])
    return paths


def _water_with_velocities(path):
    """se_e2_a_tiny's frame 0 with velocities giving per-atom kinetic energies of 0.2-2 eV (the range of the
    fixture's parameters: its statistics were taken on values near 1)."""
    _, coords, cell, types, elements = _frame("se_e2_a_fparam_tiny")
    rng = np.random.default_rng(11)
    masses = np.array([15.999, 1.008])[types]
    ke = rng.uniform(0.2, 2.0, len(types))
    direction = rng.normal(size=(len(types), 3))
    direction /= np.linalg.norm(direction, axis=1)[:, None]
    mvv2e = 1.0364269e-4  # LAMMPS metal units; the reference reads LAMMPS's own ke/atom anyway
    velocities = direction * np.sqrt(2 * ke / (masses * mvv2e))[:, None]
    write_data(path, coords, types, elements, cell, velocities=velocities)
    return coords, cell, types


COMPUTES = ["compute ke all ke/atom", "compute kebar all reduce ave c_ke"]


def _cases(models, data):
    """name -> (case, how the reference is made: (model key, fparam, aparam) with 'ke'/'kebar' for compute values)."""
    out = {}
    for newton in ("on", "off"):
        common = dict(data=data, newton=newton)
        out[f"const/{newton}"] = (dict(common, pair=[f"pair_style dpcompress {models['fp']} fparam 0.9 aparam 0.4",
                                                     "pair_coeff * * O H"]), ("fp", 0.9, 0.4))
        out[f"compute/{newton}"] = (dict(common, global_scalars=["kebar"], atom_vectors=["ke"], pair=COMPUTES + [
            f"pair_style dpcompress {models['fp']} fparam_from_compute kebar aparam_from_compute ke",
            "pair_coeff * * O H"]), ("fp", "kebar", "ke"))
        out[f"default/{newton}"] = (dict(common, atom_vectors=["ke"], pair=COMPUTES + [
            f"pair_style dpcompress {models['default']} aparam_from_compute ke", "pair_coeff * * O H"]),
            ("default", None, "ke"))
        out[f"override/{newton}"] = (dict(common, pair=[
            f"pair_style dpcompress {models['default']} fparam 1.25 aparam 0.7", "pair_coeff * * O H"]),
            ("default", 1.25, 0.7))
        # 5 NVE steps: the computes are read on every step (the last step's values, extracted after the run,
        # are the ones the model was given: LAMMPS reuses a compute's result within its step)
        out[f"md/{newton}"] = (dict(common, global_scalars=["kebar"], atom_vectors=["ke"], positions=True,
                                    run=["timestep 0.0005", "fix integrate all nve", "run 5"], pair=COMPUTES + [
            f"pair_style dpcompress {models['fp']} fparam_from_compute kebar aparam_from_compute ke",
            "pair_coeff * * O H"]), ("fp", "kebar", "ke"))
    return out


@pytest.fixture(scope="module")
def param_comparison(param_models, plugin, tmp_path_factory):  # noqa: F811
    tmp = str(tmp_path_factory.mktemp("lammps_param_cases"))
    data = os.path.join(tmp, "water_v.data")
    coords, cell, types = _water_with_velocities(data)
    cases = _cases(param_models, data)
    got = {ranks: _run_check({k: c for k, (c, _) in cases.items()}, tmp, None, ranks) for ranks in (1, 2)}
    return coords, cell, types, cases, got


@pytest.mark.parametrize("ranks", [1, 2])
@pytest.mark.parametrize("name", [f"{k}/{w}" for k in ("const", "compute", "default", "override", "md")
                                  for w in ("on", "off")])
def test_run0_with_parameters_equals_potential(param_models, param_comparison, name, ranks):
    from dpcompress import Potential

    coords, cell, types, cases, got = param_comparison
    out = got[ranks][name]
    assert "error" not in out, out.get("error")
    key, fparam, aparam = cases[name][1]
    fparam = out["scalar_kebar"] if fparam == "kebar" else fparam
    aparam = np.array(out["atom_ke"]) if isinstance(aparam, str) else aparam
    if isinstance(aparam, np.ndarray):
        assert np.ptp(aparam) > 1.0  # per-atom values really differ: each atom's own reaches the model
    if "positions" in out:  # after the run: the frame LAMMPS computed last
        coords = np.array(out["positions"])
    pot = Potential(param_models[key], n_threads=1)
    e, f, v, ae, av = pot.eval(coords[None], cell.reshape(1, 9), types, atomic=True, fparam=fparam, aparam=aparam)
    n = len(types)
    assert abs(out["energy"] - e[0, 0]) / n < TOL_E_ATOM
    np.testing.assert_allclose(np.array(out["force"]), f[0], rtol=0, atol=TOL_F)
    np.testing.assert_allclose(np.array(out["atom_energy"]), ae[0].ravel(), rtol=0, atol=TOL_E_ATOM)
    W = np.array(out["pressure"]) * out["volume"] / out["nktv2p"]
    V = v[0].reshape(3, 3)
    np.testing.assert_allclose(W, [V[0, 0], V[1, 1], V[2, 2], V[0, 1], V[0, 2], V[1, 2]], rtol=0,
                               atol=TOL_V + 1e-12 * max(1.0, np.abs(V).max()))
    A = av[0].reshape(-1, 9)
    centroid = -np.array(out["centroid_stress_atom"]) / out["nktv2p"]
    np.testing.assert_allclose(centroid, A[:, [0, 4, 8, 1, 2, 5, 3, 6, 7]], rtol=0, atol=TOL_V)


def test_parameters_change_the_result(param_comparison):
    """The parameters reach the model: constants and compute values give different energies."""
    got = param_comparison[4][1]
    energies = [got[f"{k}/on"]["energy"] for k in ("const", "compute", "default", "override")]
    assert len(set(energies)) == 4
    assert got["md/on"]["scalar_kebar"] != got["compute/on"]["scalar_kebar"]  # the md case's values moved


BAD = {
    "missing": ("{fp}", [], "takes 1 frame parameters (numb_fparam) and stores no default_fparam"),
    "no_aparam": ("{fp} fparam 1.0", [], "takes 1 atomic parameters per atom (numb_aparam)"),
    "not_taken": ("{plain} fparam 1.0", [], "takes no frame parameters (numb_fparam = 0)"),
    "count": ("{fp} fparam 1.0 2.0 aparam 0.4", [], "fparam has 2 values; the model"),
    "twice": ("{fp} fparam 1.0 fparam_from_compute kebar aparam 0.4", [], "fparam_from_compute is given twice"),
    "no_compute": ("{fp} fparam_from_compute nothere aparam 0.4", [], "no compute with ID nothere"),
    "not_peratom": ("{fp} fparam 1.0 aparam_from_compute kebar", COMPUTES, "gives no per-atom vector"),
    "not_global": ("{fp} fparam_from_compute ke aparam 0.4", COMPUTES, "gives no global scalar or vector"),
    "no_values": ("{fp} fparam aparam 0.4", [], "keyword fparam needs one or more values"),
}


def test_bad_parameter_keywords_give_a_lammps_error_naming_them(param_models, plugin, tmp_path):  # noqa: F811
    data = str(tmp_path / "w.data")
    _water_with_velocities(data)
    cases = {key: dict(data=data, newton="on", pair=pre + [f"pair_style dpcompress {args.format(**param_models)}",
                                                           "pair_coeff * * O H"])
             for key, (args, pre, _) in BAD.items()}
    got = _run_check(cases, str(tmp_path), None)
    for key, (_, _, message) in BAD.items():
        assert message in got[key].get("error", ""), (key, got[key])


def _widened(model, nf, na, seed=5):
    """``model`` (the fixture's, numb_fparam = numb_aparam = 1) with nf frame and na atomic parameters: the
    first layer's rows of the descriptor kept, random rows for the parameters, statistics chosen here.  Its
    only use: exercising several columns (a global vector, a per-atom array) through every reader and front end."""
    import dataclasses

    rng = np.random.default_rng(seed)
    fit = model.fitting
    n_old = fit.numb_fparam + fit.numb_aparam
    nets = []
    for net in fit.networks:
        first = net.layers[0]
        dim = first.w.shape[0] - n_old
        w = np.vstack([first.w[:dim], 0.3 * rng.normal(size=(nf + na, first.w.shape[1]))])
        nets.append(dataclasses.replace(net, layers=(dataclasses.replace(first, w=w),) + tuple(net.layers[1:])))
    fit = dataclasses.replace(fit, networks=tuple(nets), numb_fparam=nf, numb_aparam=na,
                              fparam_avg=rng.uniform(-1, 1, nf), fparam_inv_std=rng.uniform(0.005, 0.02, nf),
                              aparam_avg=rng.uniform(-5, 5, na), aparam_inv_std=rng.uniform(0.02, 0.05, na),
                              default_fparam=None)
    return dataclasses.replace(model, fitting=fit)


def test_several_parameters_from_a_vector_and_a_per_atom_array(plugin, tmp_path):  # noqa: F811
    """numb_fparam = 2 from a global compute's vector (its first two values: ``compute temp``'s kinetic-energy
    tensor has six) and numb_aparam = 2 from a per-atom array (``property/atom vx vy``), 1 and 2 ranks, newton
    on/off; also the compressed runtime against the exact (numpy) evaluator of the same widened model."""
    import dpcompress
    from dpcompress import Potential

    model = _widened(dpcompress.load_model(os.path.join(FP, "frozen.dp")), 2, 2)
    path = str(tmp_path / "wide.dpc")
    dpcompress.save_model(dpcompress.compress(model), path)
    data = str(tmp_path / "w.data")
    coords, cell, types = _water_with_velocities(data)
    computes = ["compute T all temp", "compute pa all property/atom vx vy"]
    cases = {f"wide/{newton}": dict(data=data, newton=newton, pair=computes + [
        f"pair_style dpcompress {path} fparam_from_compute T aparam_from_compute pa", "pair_coeff * * O H"])
        for newton in ("on", "off")}
    cases = {k: dict(c, global_vectors=["T"], atom_arrays=["pa"]) for k, c in cases.items()}
    pot, exact = Potential(path, n_threads=1), Potential(model, n_threads=1)
    for ranks in (1, 2):
        got = _run_check(cases, str(tmp_path), None, ranks)
        for newton in ("on", "off"):
            out = got[f"wide/{newton}"]
            assert "error" not in out, out.get("error")
            fparam = np.array(out["vector_T"][:2])  # the values the model was given (LAMMPS reuses them in the step)
            aparam = np.array(out["atom_pa"])
            assert aparam.shape == (len(types), 2) and np.ptp(aparam[:, 1]) > 10
            e, f, v = pot.eval(coords[None], cell.reshape(1, 9), types, fparam=fparam, aparam=aparam)
            assert abs(out["energy"] - e[0, 0]) / len(types) < TOL_E_ATOM
            np.testing.assert_allclose(np.array(out["force"]), f[0], rtol=0, atol=TOL_F)
            W = np.array(out["pressure"]) * out["volume"] / out["nktv2p"]
            V = v[0].reshape(3, 3)
            np.testing.assert_allclose(W, [V[0, 0], V[1, 1], V[2, 2], V[0, 1], V[0, 2], V[1, 2]], rtol=0,
                                       atol=TOL_V + 1e-12 * max(1.0, np.abs(V).max()))
    # the runtime's normalisation (C) against the exact evaluator's (numpy), the same widened model
    ex = exact.eval(coords[None], cell.reshape(1, 9), types, fparam=fparam, aparam=aparam)
    assert abs(ex[0][0, 0] - e[0, 0]) / len(types) < TOL_E_ATOM  # measured: 0 and 7e-15 eV/Å
    np.testing.assert_allclose(ex[1][0], f[0], rtol=0, atol=TOL_F)
