"""Runs LAMMPS cases for tests/test_lammps.py in a child process (plain, or under ``mpiexec -n N``).

Usage: ``python tests/lammps_check.py MANIFEST.json OUT.json``.  The manifest lists cases (a data
file, the pair lines, newton on/off); for each, LAMMPS runs ``run 0`` (or the case's commands) and
the outputs are gathered by atom ID on rank 0 (and the case's ``global_scalars`` / ``atom_vectors``
computes, which a test may use for its reference): total energy, forces, per-atom energies, the global
virial (from ``compute pressure NULL virial``: W = P V / nktv2p) and the per-atom virials (from
``stress/atom`` and ``centroid/stress/atom`` with the ``virial`` keyword: W = -S / nktv2p).  An error
LAMMPS raises is recorded as the case's ``error``.  The comparisons live in the test module.

LAMMPS runs in a child process so that a crash cannot take pytest with it, and so that MPI is
initialised only here.
"""

import json
import os
import sys

import numpy as np
from mpi4py import MPI  # noqa: F401  (loads MPICH's libmpi before liblammps needs it)


def _gather(comm, n, ids, values):
    full = np.zeros((n,) + values.shape[1:])
    full[ids - 1] = values
    return comm.allreduce(full)


def run_case(lammps_cls, comm, case):
    from lammps import LMP_STYLE_ATOM, LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY, LMP_TYPE_VECTOR

    lmp = lammps_cls(cmdargs=["-log", case.get("log", "none"), "-screen", "none", "-nocite"], comm=comm)
    try:
        lmp.commands_string(
            f"""
            units {case.get('units', 'metal')}
            atom_style atomic
            atom_modify map array
            boundary {case.get('boundary', 'p p p')}
            newton {case['newton']}
            read_data {case['data']}
            """
        )
        lmp.commands_string("\n".join(case["pair"]))
        lmp.commands_string(
            """
            compute dpc_pe all pe/atom
            compute dpc_sa all stress/atom NULL virial
            compute dpc_csa all centroid/stress/atom NULL virial
            compute dpc_p all pressure NULL virial
            thermo_style custom step pe vol c_dpc_p[*]
            """
        )
        lmp.commands_string("\n".join(case.get("run", ["run 0"])))
        n = int(lmp.get_natoms())
        nlocal = lmp.extract_global("nlocal")
        ids = np.array(lmp.numpy.extract_atom("id")[:nlocal], dtype=np.int64)
        nktv2p = lmp.extract_global("nktv2p")
        out = {
            "energy": lmp.get_thermo("pe"),
            "volume": lmp.get_thermo("vol"),
            "pressure": [float(v) for v in lmp.numpy.extract_compute("dpc_p", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR)],
            "nktv2p": nktv2p,
        }
        arrays = {
            "force": np.array(lmp.numpy.extract_atom("f")[:nlocal]),
            "atom_energy": np.array(lmp.numpy.extract_compute("dpc_pe", LMP_STYLE_ATOM, LMP_TYPE_VECTOR)[:nlocal]),
            "stress_atom": np.array(lmp.numpy.extract_compute("dpc_sa", LMP_STYLE_ATOM, LMP_TYPE_ARRAY)[:nlocal]),
            "centroid_stress_atom": np.array(
                lmp.numpy.extract_compute("dpc_csa", LMP_STYLE_ATOM, LMP_TYPE_ARRAY)[:nlocal]
            ),
        }
        for key, value in arrays.items():
            out[key] = _gather(comm, n, ids, value).tolist()
        if "thermo" in case:
            out["thermo"] = case["thermo"]
        # values of the case's own computes, for the reference (a global scalar; a per-atom vector by atom ID)
        for cid in case.get("global_scalars", []):
            out[f"scalar_{cid}"] = lmp.numpy.extract_compute(cid, LMP_STYLE_GLOBAL, 0)
        for cid in case.get("global_vectors", []):
            out[f"vector_{cid}"] = [float(x) for x in lmp.numpy.extract_compute(cid, LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR)]
        for cid in case.get("atom_arrays", []):
            values = np.array(lmp.numpy.extract_compute(cid, LMP_STYLE_ATOM, LMP_TYPE_ARRAY)[:nlocal])
            out[f"atom_{cid}"] = _gather(comm, n, ids, values).tolist()
        if case.get("positions"):
            out["positions"] = _gather(comm, n, ids, np.array(lmp.numpy.extract_atom("x")[:nlocal])).tolist()
        for cid in case.get("atom_vectors", []):
            values = np.array(lmp.numpy.extract_compute(cid, LMP_STYLE_ATOM, LMP_TYPE_VECTOR)[:nlocal])
            out[f"atom_{cid}"] = _gather(comm, n, ids, values).tolist()
        return out
    except Exception as exc:  # noqa: BLE001  (the test asserts on the message)
        return {"error": str(exc)}
    finally:
        lmp.close()


def main(manifest, out_path):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from lammps import lammps

    comm = MPI.COMM_WORLD
    with open(manifest, encoding="utf-8") as fh:
        cases = json.load(fh)
    results = {}
    for name, case in cases.items():
        results[name] = run_case(lammps, comm, case)
    if comm.rank == 0:
        with open(out_path, "w", encoding="utf-8") as fh:
            json.dump(results, fh)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
