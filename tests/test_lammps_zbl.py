"""``pair_style dpcompress`` with a compressed DP + ZBL model equals ``Potential.eval`` (docs/dp-zbl.md).

The pair table and the ZBL switching run in the C runtime, so LAMMPS shares them: ``run 0`` on the
fixture's 0.3 Å close-contact frame (ZBL weight 1 there, switching on the water neighbors) in an
orthorhombic box, a triclinic one and as a cluster, newton on and off, serial and on 2 ranks, with
the tolerances and the comparison of ``tests/test_lammps.py``.
"""

import os

import numpy as np
import pytest

from lammps_frames import sheared, write_data
from test_lammps import BOXES, DATA, NEWTON, _require_lammps, _run_check, plugin  # noqa: F401  (fixture)
from test_lammps import test_run0_equals_potential as _compare

pytestmark = pytest.mark.lammps
FOLDER = os.path.join(DATA, "deepmd", "dp_zbl_tiny")
FRAME = 2  # H 130 at 0.3 Å from O 0


@pytest.fixture(scope="module")
def comparison(plugin, tmp_path_factory):  # noqa: F811
    import dpcompress
    from dpcompress import Potential

    tmp = str(tmp_path_factory.mktemp("lammps_zbl"))
    model = os.path.join(tmp, "dp_zbl.dpc")
    dpcompress.save_model(dpcompress.compress(os.path.join(FOLDER, "frozen.dp")), model)
    z = np.load(os.path.join(FOLDER, "test_frames.npz"))
    coords, cell = z["coord"][FRAME].astype(float), z["box"][FRAME].astype(float)
    types, elements = z["atype"].astype(np.int64), [str(e) for e in z["type_map"]]
    pot = Potential(model, n_threads=1)
    cases, expected = {}, {}
    for box in BOXES:
        c, h = (coords, cell) if box == "ortho" else sheared(coords, cell) if box == "triclinic" else (coords, None)
        data = os.path.join(tmp, f"zbl_{box}.data")
        write_data(data, c, types, elements, h)
        e, f, v, ae, av = pot.eval(c[None], None if h is None else h.reshape(1, 9), types, atomic=True)
        expected[("dp_zbl_tiny", box)] = dict(energy=float(e[0, 0]), force=f[0], virial=v[0].reshape(3, 3),
                                              atom_energy=ae[0].ravel(), atom_virial=av[0].reshape(-1, 9))
        for newton in NEWTON:
            cases[f"dp_zbl_tiny/{box}/{newton}"] = dict(
                data=data, newton=newton, boundary="f f f" if h is None else "p p p",
                pair=[f"pair_style dpcompress {model}", "pair_coeff * * " + " ".join(elements)])
    return expected, {ranks: _run_check(cases, tmp, None, ranks) for ranks in (1, 2)}


CASES = [(b, w, r) for b in BOXES for w in NEWTON for r in (1, 2)]


@pytest.mark.parametrize("box,newton,ranks", CASES, ids=[f"{b}-newton_{w}-{r}rank" for b, w, r in CASES])
def test_run0_equals_potential(comparison, box, newton, ranks):
    _compare(comparison, "dp_zbl_tiny", box, newton, ranks)
