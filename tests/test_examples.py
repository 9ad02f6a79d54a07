"""The examples run and print what the README promises, each in a short mode (``--steps 2``)."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import DATA, REPO, mpiexec_or_skip

EXAMPLES = os.path.join(REPO, "examples")


def run_example(*args, timeout=300, launcher=()):
    """Run ``examples/<args>`` with the repository's package first on the path; the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    return subprocess.run([*launcher, sys.executable, os.path.join(EXAMPLES, args[0]), *map(str, args[1:])],
                          capture_output=True, text=True, timeout=timeout, env=env)


def totals(stdout):
    """The (step, total energy) pairs an MD example printed."""
    return [(int(l.split()[1]), float(l.split("total")[1].split()[0])) for l in stdout.splitlines() if l.startswith("step")]


def test_quickstart():
    # the package under test is the one pytest imports (the repository's)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run(
        [sys.executable, os.path.join(REPO, "examples", "quickstart.py")], capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "energy (compressed):   -29941.7232008" in out.stdout
    line = [l for l in out.stdout.splitlines() if l.startswith("energy (DeePMD-kit)")][0]
    assert float(line.split("|difference|")[1].split()[0]) < 1e-9


def test_md_nve_example_conserves_energy():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    water = os.path.join(REPO, "examples", "data", "water")
    out = subprocess.run(
        [sys.executable, os.path.join(REPO, "examples", "md_nve.py"), os.path.join(water, "model.dp"), os.path.join(water, "frame"), "--steps", "20",
         "--no-mpi"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert out.returncode == 0, out.stderr
    totals = [float(l.split("total")[1].split()[0]) for l in out.stdout.splitlines() if l.startswith("step")]
    assert len(totals) == 3 and max(totals) - min(totals) < 1e-3


def pbte_system(tmp_path):
    """The PbTe NEP fixture's 8-atom crystal as a deepmd/npy system (type_map Pb, Te: not the model's order)."""
    z = np.load(os.path.join(DATA, "nep", "PbTe_NEP4_example", "crystal_conv8.npz"))
    names = ["Pb", "Te"]
    types = np.array([names.index(str(s)) for s in z["symbols"]])
    folder = tmp_path / "pbte"
    (folder / "set.000").mkdir(parents=True)
    (folder / "type.raw").write_text("".join(f"{t}\n" for t in types))
    (folder / "type_map.raw").write_text("Pb\nTe\n")
    np.save(folder / "set.000" / "coord.npy", z["positions"].reshape(1, -1))
    np.save(folder / "set.000" / "box.npy", z["cell"].reshape(1, 9))
    return folder, z


def test_md_nve_example_runs_a_nep_model(tmp_path):
    """Masses of any element (ase.data), element names mapped to the model's type order (Te, Pb)."""
    folder, z = pbte_system(tmp_path)
    out = run_example("md_nve.py", os.path.join(DATA, "nep", "PbTe_NEP4_example", "nep.txt"), folder, "--steps", "2")
    assert out.returncode == 0, out.stderr
    steps = totals(out.stdout)
    assert [s for s, _ in steps] == [0, 2]
    # step 0: the potential energy is GPUMD's for this crystal
    potential = float(out.stdout.splitlines()[0].split("potential")[1].split()[0])
    assert abs(potential - float(z["energy"])) < 1e-5


def test_md_nve_example_decomposes_under_mpiexec(tmp_path):
    """Under ``mpiexec -n 2`` mpi4py sees two ranks: one domain-decomposed run, printed once, equal to serial."""
    mpiexec = mpiexec_or_skip()
    water = os.path.join(EXAMPLES, "data", "water")
    dpc = tmp_path / "water.dpc"  # domain decomposition runs compressed models
    subprocess.run([sys.executable, "-m", "dpcompress", "compress", "-i", os.path.join(water, "model.dp"), "-o", dpc],
                   check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=REPO))
    frame = os.path.join(water, "frame")
    serial = run_example("md_nve.py", dpc, frame, "--steps", "2", "--no-mpi")
    par = run_example("md_nve.py", dpc, frame, "--steps", "2", launcher=(mpiexec, "-n", "2"))
    assert serial.returncode == 0, serial.stderr
    assert par.returncode == 0, par.stderr
    assert len(totals(par.stdout)) == 2  # rank 0 prints; two independent serial runs would print four lines
    for (s1, e1), (s2, e2) in zip(totals(par.stdout), totals(serial.stdout)):
        assert s1 == s2 and abs(e1 - e2) < 1e-9


@pytest.mark.parametrize("thermostat", ["langevin", "nve"])
def test_ase_md_example(thermostat):
    pytest.importorskip("ase")
    out = run_example("ase_md.py", "--steps", "2", "--thermostat", thermostat)
    assert out.returncode == 0, out.stderr
    steps = totals(out.stdout)
    assert [s for s, _ in steps] == [0, 2]
    assert all(np.isfinite(e) for _, e in steps)
    if thermostat == "nve":  # 2 steps of 0.5 fs: the total energy holds to well below 1 meV
        assert abs(steps[1][1] - steps[0][1]) < 1e-3


def test_nep_md_example():
    pytest.importorskip("ase")
    out = run_example("nep_md.py", "--steps", "2", "--repeat", "1")
    assert out.returncode == 0, out.stderr
    steps = totals(out.stdout)
    assert [s for s, _ in steps] == [0, 2]
    assert abs(steps[1][1] - steps[0][1]) < 1e-3


@pytest.mark.parametrize("script, variables", [
    (("hpc", "water.slurm"), ("DPCOMPRESS_SRC", "MODEL_DP", "DATA", "WORKDIR")),
    (("lammps", "water.slurm"), ("RUN",)),
])
def test_slurm_script(script, variables):
    """The SLURM examples: valid bash; threads passed to srun explicitly (SLURM >= 22.05 does not
    pass --cpus-per-task on); absolute paths from variables set at the top, none relative to the repository."""
    path = os.path.join(EXAMPLES, *script)
    if shutil.which("bash"):
        assert subprocess.run(["bash", "-n", path]).returncode == 0
    text = open(path).read()
    commands = [l.split(" #")[0] for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    srun = [l for l in commands if l.lstrip().startswith("srun")]
    assert srun and all("--cpus-per-task=" in l for l in srun)
    assert "export OMP_NUM_THREADS=${THREADS}" in text and "THREADS=${SLURM_CPUS_PER_TASK" in text
    assert "SRUN_CPUS_PER_TASK" not in "\n".join(commands)
    # every path a command uses comes from a variable (no data/..., examples/... relative to the repository)
    assert not re.search(r"(^|\s)(data|examples)/", "\n".join(commands))
    for var in variables:
        assert re.search(rf"^{var}=/", text, re.M), var
