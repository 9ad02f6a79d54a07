"""LAMMPS MD speed of compressed se_e2_a water: ``pair_style dpcompress`` vs DeePMD-kit's ``pair_style deepmd``.

    python benchmarks/bench_lammps.py [--engines deepmd dpcompress] [--sizes 1536 12288]
        [--ranks 1 2] [--strong] [--rounds 3] [--out benchmarks/results/lammps.json]

Both engines run the same LAMMPS input on the same data file (the water fixture frame,
written by ``lammps_water.py``, replicated 2×2×2 = 1536 or 4×4×4 = 12288 atoms; ``--strong``
adds 8×8×8 = 98304 atoms)::

    units metal / atom_style atomic / boundary p p p / read_data water_N.data
    <pair_style line of the engine> / pair_coeff * * O H
    neighbor 2.0 bin / neigh_modify every 1 delay 0 check yes
    timestep 0.0005 / velocity all create 330.0 SEED loop geom / fix 1 all nve
    thermo_style custom step temp pe ke etotal press / thermo 10
    run WARMUP / run STEPS

Engines (``--engines``):

``deepmd``
    DeePMD-kit 3.2.0's own plugin (``libdeepmd_lmpplugin.so``, registered through its wheel's
    ``lammps.plugins`` entry point) in its own virtual environment (``--deepmd-venv``, default
    ``$DP_LMP_VENV`` or ``../dp_lmp_venv`` next to the repository; made with
    ``pip install "deepmd-kit[torch,lmp]==3.2.0" nvidia-cuda-runtime-cu12``), that venv's ``lmp``
    (LAMMPS 22 Jul 2025 update 2, pinned by DeePMD-kit) and its MPICH ``mpirun``;
    ``pair_style deepmd MODEL`` with the compressed model (``--deepmd-model``, default
    ``$DP_LMP_MODEL`` or ``../dp_lmp_models/compressed.pth``: ``dp convert-backend frozen.dp
    frozen.pth`` then ``dp --pt compress -i frozen.pth -o compressed.pth``). ``CUDA_VISIBLE_DEVICES``
    is emptied (CPU anchor) unless ``--deepmd-gpu``.
``dpcompress``
    ``pair_style dpcompress MODEL.dpc`` in this interpreter's environment: its ``lmp`` and
    ``mpirun`` (``--dpc-lmp``, ``--dpc-mpirun``), the plugin found through
    ``LAMMPS_PLUGIN_PATH=$(python -m dpcompress.lammps path)``. The model is ``--dpc-model`` or,
    by default, ``--frozen`` compressed with ``python -m dpcompress compress`` (defaults: step
    0.01, extrapolate 5, check frequency -1, as DeePMD-kit's). Skipped with a message when the
    plugin cannot be found.

The command line of each engine is a template (``--deepmd-cmd``, ``--dpc-cmd``) with the fields
``{mpirun} {np} {rss} {lmp} {input} {log} {screen}``; ``{rss}`` expands to a per-rank
``/usr/bin/time -a -o FILE -f "RSS_KB %M"`` wrapper (nothing when /usr/bin/time is missing).
The pair style lines are templates too (``--deepmd-pair``, ``--dpc-pair``, field ``{model}``).
``--env ENGINE:KEY=VALUE`` adds environment variables to one engine.

How it measures:

* Every run is a fresh ``mpirun -np P`` job, ``OMP_NUM_THREADS`` = ``MKL_NUM_THREADS`` =
  ``OPENBLAS_NUM_THREADS`` = ``DP_INTRA_OP_PARALLELISM_THREADS`` = ``--threads`` (1) and
  ``DP_INTER_OP_PARALLELISM_THREADS`` = 1. ``LAMMPS_PLUGIN_PATH``, ``PYTHONPATH``, ``LD_PRELOAD``
  and ``VIRTUAL_ENV`` of the caller are not passed on.
* Speed: LAMMPS's own ``Loop time of X on P procs for N steps`` of the second ``run`` (the
  first, ``WARMUP`` steps, absorbs TorchScript's profiling executor and first-touch costs);
  steps/s = N / X. Defaults (``--steps``, ``--warmup``, ``ATOMS=N`` lists): 1536 atoms 5 + 20
  steps, 12288 atoms 2 + 5, 98304 atoms 1 + 3.
* Memory: peak resident set size of every rank (``/usr/bin/time`` around each rank); the JSON
  keeps the per-rank list, the tables show the largest rank and the sum.
* Energies: potential energy and pressure at step 0 (before any step, same for every rank
  count). The JSON and the table give ``|ΔE0| / N`` between the engines per case: the two
  compressed models tabulate the same nets independently, so they agree to round-off inside the
  tables, not bit for bit.
* Order: in each round (``--rounds``) the cases run in turn and, per case, the engines back to
  back, the engine that goes first alternating between rounds. Before every run the driver waits
  (at most ``--quiet-wait`` s) for the machine to be quiet, and it records the CPU that other
  processes used during the run (machine busy jiffies minus the job's own CPU time).
* Report: medians over rounds of steps/s, s/step and µs/(atom·step); ``dpc/deepmd`` is the
  ratio of the engines' steps/s (> 1: dpcompress faster), the median of the per-round ratios;
  for rank counts > 1 also each engine's speedup over 1 rank.

Output: ``<out>.json`` (every run: command, environment additions, loop time, RSS per rank,
thermo at step 0, foreign load, versions), ``<out>.md`` (the tables) and ``<out>_logs/`` (inputs,
data files, LAMMPS logs and screens). ``benchmarks/results/`` is git-ignored.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import sysconfig
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

import lammps_water  # benchmarks/ is on sys.path when this file runs as a script
import machine_load

PARENT = os.path.dirname(REPO)
DEFAULT_DEEPMD_VENV = os.environ.get("DP_LMP_VENV", os.path.join(PARENT, "dp_lmp_venv"))
DEFAULT_DEEPMD_MODEL = os.environ.get("DP_LMP_MODEL", os.path.join(PARENT, "dp_lmp_models", "compressed.pth"))
DEFAULT_FROZEN = os.path.join(PARENT, "shared", "fixtures", "deepmd", "se_e2_a", "frozen.dp")
DEFAULT_CMD = "{mpirun} -np {np} {rss} {lmp} -in {input} -log {log} -screen {screen} -nocite"
DEFAULT_STEPS = {1536: 20, 12288: 5, 98304: 3}
DEFAULT_WARMUP = {1536: 5, 12288: 2, 98304: 1}
ENGINES = ("deepmd", "dpcompress")
TIME = "/usr/bin/time"

INPUT = """\
# {engine}: {natoms} atoms, written by benchmarks/bench_lammps.py
units           metal
atom_style      atomic
boundary        p p p
read_data       {data}
{pair}
neighbor        2.0 bin
neigh_modify    every 1 delay 0 check yes
timestep        0.0005
velocity        all create 330.0 {seed} loop geom
fix             1 all nve
thermo_style    custom step temp pe ke etotal press
thermo_modify   format float %.12f
thermo          10
run             {warmup}
run             {steps}
"""

LOOP_RE = re.compile(r"Loop time of (\S+) on (\d+) procs for (\d+) steps with (\d+) atoms")


def atoms_per_rep(frames):
    """Atoms of the unreplicated frame in ``frames``."""
    return lammps_water.load_frame(frames)[0].shape[0]


def rep_for(natoms, n0):
    """Cubic replication ``(n, n, n)`` giving ``natoms`` from a frame of ``n0`` atoms."""
    n = round((natoms / n0) ** (1 / 3))
    if n < 1 or n**3 * n0 != natoms:
        raise SystemExit(f"{natoms} atoms is not a cubic replication of the {n0}-atom frame")
    return (n, n, n)


def parse_sizes_map(text, default):
    """``"1536=20,12288=5"`` → dict, on top of ``default``."""
    out = dict(default)
    for item in filter(None, (text or "").split(",")):
        k, _, v = item.partition("=")
        out[int(k)] = int(v)
    return out


def parse_log(text):
    """What a LAMMPS log says: version, plugins, loop times, the thermo rows of each run, errors.

    Parameters
    ----------
    text : str
        Log (or screen) text.

    Returns
    -------
    dict
        ``version`` (str or None), ``plugins`` (list of str), ``loops`` (list of dicts with
        ``seconds``, ``procs``, ``steps``, ``atoms``), ``thermo`` (list per run of lists of rows,
        each a dict column → float), ``errors`` (list of str).
    """
    lines = text.splitlines()
    out = dict(version=None, plugins=[], loops=[], thermo=[], errors=[])
    header = None
    for line in lines:
        s = line.strip()
        if out["version"] is None and s.startswith("LAMMPS ("):
            out["version"] = s[len("LAMMPS ("):].rstrip(")")
        if s.startswith("Loaded ") and "plugin" in s:
            out["plugins"].append(s)
        if s.startswith("ERROR") or "Unrecognized pair style" in s or "MPI_Abort" in s:
            out["errors"].append(s)
        m = LOOP_RE.search(s)
        if m:
            out["loops"].append(dict(seconds=float(m.group(1)), procs=int(m.group(2)), steps=int(m.group(3)), atoms=int(m.group(4))))
            header = None
            continue
        if s.startswith("Step ") or s == "Step":
            header = s.split()
            out["thermo"].append([])
            continue
        if header is not None:
            parts = s.split()
            if len(parts) == len(header):
                try:
                    out["thermo"][-1].append(dict(zip(header, map(float, parts))))
                except ValueError:
                    header = None
            else:
                header = None
    return out


def _absolute(path):
    """Absolute form of a path (jobs run in the log folder); bare command names stay as they are."""
    return os.path.abspath(path) if path and os.sep in path else path


class Engine:
    """How to run one engine: command template, pair lines, environment; or why it cannot run.

    Parameters
    ----------
    name : str
        ``"deepmd"`` or ``"dpcompress"``.
    cmd : str
        Command template (fields ``{mpirun} {np} {rss} {lmp} {input} {log} {screen}``).
    pair : str
        Pair style and coefficient lines (``\\n``-separated), field ``{model}``.
    model : str
        Model file.
    lmp, mpirun : str
        Executables.
    env : dict
        Environment additions (applied over the cleaned environment).
    """

    def __init__(self, name, cmd, pair, model, lmp, mpirun, env):
        self.name, self.cmd, self.pair, self.model = name, cmd, pair, _absolute(model)
        self.lmp, self.mpirun, self.env = _absolute(lmp), _absolute(mpirun), dict(env)
        self.skip = None  # reason, when the engine cannot run
        self.info = {}

    def check(self):
        """Set :attr:`skip` when an executable or the model is missing; returns self."""
        for what, path in (("lmp", self.lmp), ("mpirun", self.mpirun), ("model", self.model)):
            if not path or not os.path.exists(path):
                self.skip = self.skip or f"{what} not found: {path}"
        return self

    def pair_lines(self):
        """The pair style lines of the input."""
        return self.pair.format(model=self.model).replace("\\n", "\n")

    def command(self, np_, input_, log, screen, rss_file):
        """The argument list of one run."""
        rss = [TIME, "-a", "-o", rss_file, "-f", "RSS_KB %M"] if os.path.exists(TIME) else []
        out = []
        for tok in shlex.split(self.cmd):
            if tok == "{rss}":
                out += rss
            else:
                out.append(tok.format(mpirun=self.mpirun, np=np_, lmp=self.lmp, input=input_, log=log, screen=screen, rss=""))
        return out


def clean_env(threads):
    """The caller's environment without plugin paths, preloads and venv markers, threads pinned."""
    env = {k: v for k, v in os.environ.items() if k not in ("LAMMPS_PLUGIN_PATH", "PYTHONPATH", "LD_PRELOAD", "VIRTUAL_ENV", "PYTHONHOME")}
    t = str(threads)
    env.update(OMP_NUM_THREADS=t, MKL_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t,
               DP_INTRA_OP_PARALLELISM_THREADS=t, DP_INTER_OP_PARALLELISM_THREADS="1")
    return env


def capture(cmd, env=None, timeout=300, cwd=None):
    """(returncode, stdout + stderr) of a short command; (None, message) when it cannot start."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False, cwd=cwd)
        return p.returncode, (p.stdout + p.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)


def make_deepmd(args, logdir):
    """The ``deepmd`` engine from the arguments.

    Its probes run in ``logdir``: a Python started in the repository would see dpcompress's
    ``lammps.plugins`` entry point (the egg-info folder of an editable install) and try to build the plugin.
    """
    venv = args.deepmd_venv
    e = Engine("deepmd", args.deepmd_cmd, args.deepmd_pair, args.deepmd_model,
               args.deepmd_lmp or os.path.join(venv, "bin", "lmp"),
               args.deepmd_mpirun or os.path.join(venv, "bin", "mpirun"),
               {} if args.deepmd_gpu else {"CUDA_VISIBLE_DEVICES": ""})
    e.check()
    py = os.path.join(venv, "bin", "python")
    if e.skip is None and os.path.exists(py):
        try:  # versions from stdout only (imports may print compiler noise on stderr)
            probe = ("import torch, deepmd, importlib.metadata as m; "
                     "print('VERSIONS', torch.__version__, deepmd.__version__, m.version('lammps'), m.version('mpich'))")
            pr = subprocess.run([py, "-c", probe], capture_output=True, text=True, timeout=300, check=False, cwd=logdir, env=clean_env(1))
            line = next((ln for ln in pr.stdout.splitlines() if ln.startswith("VERSIONS ")), None)
            if line:
                e.info.update(zip(("torch", "deepmd_kit", "lammps_wheel", "mpich_wheel"), line.split()[1:]))
            else:
                e.info["version_probe_error"] = (pr.stdout + pr.stderr)[-500:]
        except (OSError, subprocess.TimeoutExpired) as exc:
            e.info["version_probe_error"] = str(exc)
    return e


def make_dpcompress(args, logdir):
    """The ``dpcompress`` engine from the arguments (compressing ``--frozen`` when no ``--dpc-model``)."""
    scripts = sysconfig.get_path("scripts") if args.dpc_python == sys.executable else os.path.dirname(args.dpc_python)
    e = Engine("dpcompress", args.dpc_cmd, args.dpc_pair, args.dpc_model,
               args.dpc_lmp or os.path.join(scripts, "lmp"), args.dpc_mpirun or os.path.join(scripts, "mpirun"), {})
    plugin_dir = args.dpc_plugin_path
    if plugin_dir is None:  # (the module may build the plugin on first use: messages on stderr)
        try:
            p = subprocess.run([args.dpc_python, "-m", "dpcompress.lammps", "path"], capture_output=True, text=True,
                               env=clean_env(1), timeout=1800, check=False, cwd=logdir)
            lines = [ln.strip() for ln in p.stdout.splitlines() if ln.strip()]
            if p.returncode == 0 and lines and os.path.isdir(lines[-1]):
                plugin_dir = lines[-1]
            else:
                e.skip = f"`{args.dpc_python} -m dpcompress.lammps path` failed ({p.returncode}): {(p.stdout + p.stderr).strip()[-300:]}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            e.skip = f"`{args.dpc_python} -m dpcompress.lammps path` failed: {exc}"
        if e.skip:
            return e
    e.env["LAMMPS_PLUGIN_PATH"] = plugin_dir
    e.info["plugin_path"] = plugin_dir
    rc, txt = capture([args.dpc_python, "-c", "import dpcompress; print(getattr(dpcompress, '__version__', '?'))"], env=clean_env(1), cwd=logdir)
    e.info["dpcompress"] = txt.splitlines()[-1] if rc == 0 and txt else None
    rc, txt = capture(["git", "-C", REPO, "rev-parse", "HEAD"])
    e.info["git_head"] = txt if rc == 0 else None
    rc, txt = capture(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"])
    e.info["git_dirty"] = bool(txt) if rc == 0 else None
    if e.model is None:
        e.model = os.path.join(logdir, "water_se_e2_a.dpc")
        if not os.path.exists(e.model):
            print(f"compressing {args.frozen} -> {e.model}", flush=True)
            rc, txt = capture([args.dpc_python, "-m", "dpcompress", "compress", "-i", os.path.abspath(args.frozen), "-o", e.model],
                              env=clean_env(os.cpu_count() or 1), timeout=1800, cwd=logdir)
            if rc != 0:
                e.skip = f"dpcompress compress failed: {txt[-300:]}"
                return e
    e.check()
    return e


def run_one(engine, case, args, logdir, tag):
    """One LAMMPS job of ``engine`` on ``case``; returns the record of it.

    Parameters
    ----------
    engine : Engine
    case : dict
        ``natoms``, ``ranks``, ``data``, ``warmup``, ``steps``.
    args : argparse.Namespace
    logdir : str
    tag : str
        Unique part of the file names of this run.

    Returns
    -------
    dict
        Command, environment additions, return code, loop times, steps/s, RSS per rank,
        step-0 thermo, foreign load, errors.
    """
    stem = os.path.join(logdir, f"{engine.name}_{case['natoms']}_np{case['ranks']}_{tag}")
    input_, log, screen, rss_file = stem + ".in", stem + ".log", stem + ".screen", stem + ".rss"
    with open(input_, "w") as fh:
        fh.write(INPUT.format(engine=engine.name, natoms=case["natoms"], data=case["data"], pair=engine.pair_lines(),
                              seed=args.seed, warmup=case["warmup"], steps=case["steps"]))
    for path in (rss_file,):
        if os.path.exists(path):
            os.remove(path)
    cmd = engine.command(case["ranks"], input_, log, screen, rss_file)
    env = clean_env(args.threads)
    env.update(engine.env)
    env.update(args.extra_env.get(engine.name, {}))
    rec = dict(engine=engine.name, natoms=case["natoms"], ranks=case["ranks"], threads=args.threads, warmup=case["warmup"],
               steps=case["steps"], cmd=shlex.join(cmd), env_added={k: env[k] for k in sorted(set(engine.env) | set(args.extra_env.get(engine.name, {})))},
               log=os.path.relpath(log, REPO), started=datetime.datetime.now().isoformat(timespec="seconds"))
    waited, load_before = machine_load.wait_quiet(args.quiet_threshold, args.quiet_wait)
    rec.update(quiet_wait_s=round(waited, 2), load_before=load_before)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, t0 = machine_load.busy_ticks(), time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True, cwd=logdir)
    try:
        out, _ = p.communicate(timeout=args.timeout)
        rec["returncode"] = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # the job's own process group (mpirun and its ranks)
        out, _ = p.communicate()
        rec["returncode"] = "timeout"
    wall = time.perf_counter() - t0
    busy1, ru1 = machine_load.busy_ticks(), resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    rec["wall_s"] = round(wall, 3)
    rec["cpu_s"] = round(own, 3)
    if busy0 is not None and busy1 is not None:
        rec["foreign_load_cores"] = round(max((busy1 - busy0) / machine_load.HZ - own, 0.0) / wall, 3)
    text = ""
    for path in (log, screen):
        if os.path.exists(path):
            with open(path, errors="replace") as fh:
                text = fh.read()
            if "Loop time" in text or path == screen:
                break
    parsed = parse_log(text + "\n" + (out or ""))
    rec["lammps_version"] = parsed["version"]
    rec["plugins"] = parsed["plugins"]
    rec["errors"] = parsed["errors"][:10]
    rec["loops"] = parsed["loops"]
    if parsed["thermo"] and parsed["thermo"][0]:
        row0 = parsed["thermo"][0][0]
        rec["step0"] = {k: row0[k] for k in ("Step", "PotEng", "Press") if k in row0}
    if os.path.exists(rss_file):
        with open(rss_file) as fh:
            rec["rss_kb"] = [int(x) for x in re.findall(r"RSS_KB (\d+)", fh.read())]
    if len(parsed["loops"]) >= 2 and rec["returncode"] == 0:
        lp = parsed["loops"][-1]
        rec["loop_s"] = lp["seconds"]
        rec["steps_per_s"] = lp["steps"] / lp["seconds"] if lp["seconds"] > 0 else None
        rec["s_per_step"] = lp["seconds"] / lp["steps"]
        rec["us_per_atom_step"] = 1e6 * lp["seconds"] / lp["steps"] / lp["atoms"]
        rec["warmup_s_per_step"] = parsed["loops"][0]["seconds"] / max(parsed["loops"][0]["steps"], 1)
    else:
        rec["failed"] = (parsed["errors"] or [ln for ln in (out or "").splitlines() if ln.strip()][-5:] or ["no loop time"])[:5]
    return rec


def summarize(records, engines):
    """Per case and engine: medians over rounds, ratios, energies; returns a list of dicts."""
    cases = sorted({(r["natoms"], r["ranks"]) for r in records})
    ok = [r for r in records if r.get("steps_per_s")]
    out = []
    for natoms, ranks in cases:
        row = dict(natoms=natoms, ranks=ranks)
        for name in engines:
            rs = [r for r in ok if r["engine"] == name and r["natoms"] == natoms and r["ranks"] == ranks]
            fails = [r for r in records if r["engine"] == name and r["natoms"] == natoms and r["ranks"] == ranks and not r.get("steps_per_s")]
            d = dict(n=len(rs), failed=len(fails))
            if fails and not rs:
                d["error"] = fails[-1].get("failed")
            if rs:
                sps = [r["steps_per_s"] for r in rs]
                d.update(steps_per_s=statistics.median(sps), steps_per_s_all=sps,
                         s_per_step=statistics.median(r["s_per_step"] for r in rs),
                         us_per_atom_step=statistics.median(r["us_per_atom_step"] for r in rs),
                         foreign_load_max=max((r.get("foreign_load_cores") or 0.0) for r in rs))
                rss = [r["rss_kb"] for r in rs if r.get("rss_kb")]
                if rss:
                    d.update(rss_max_rank_mib=max(max(x) for x in rss) / 1024, rss_sum_mib=max(sum(x) for x in rss) / 1024)
                e0 = [r["step0"]["PotEng"] for r in rs if "step0" in r and "PotEng" in r["step0"]]
                if e0:
                    d.update(pe0=e0[0], pe0_spread=max(e0) - min(e0))
                p0 = [r["step0"]["Press"] for r in rs if "step0" in r and "Press" in r["step0"]]
                if p0:
                    d["press0"] = p0[0]
            row[name] = d
        a, b = row.get("dpcompress", {}), row.get("deepmd", {})
        if a.get("steps_per_s") and b.get("steps_per_s"):
            per_round = []
            for ra in ok:
                if ra["engine"] != "dpcompress" or (ra["natoms"], ra["ranks"]) != (natoms, ranks):
                    continue
                rb = [r for r in ok if r["engine"] == "deepmd" and (r["natoms"], r["ranks"]) == (natoms, ranks) and r["round"] == ra["round"]]
                if rb:
                    per_round.append(ra["steps_per_s"] / rb[0]["steps_per_s"])
            row["ratio_dpc_over_deepmd"] = statistics.median(per_round) if per_round else a["steps_per_s"] / b["steps_per_s"]
            row["ratio_per_round"] = per_round
        if "pe0" in a and "pe0" in b:
            row["dE0_per_atom"] = abs(a["pe0"] - b["pe0"]) / natoms
            row["dE0"] = a["pe0"] - b["pe0"]
            if "press0" in a and "press0" in b:
                row["dP0_bar"] = a["press0"] - b["press0"]
        out.append(row)
    for row in out:  # speedup over 1 rank, per engine
        if row["ranks"] > 1:
            base = next((r for r in out if r["natoms"] == row["natoms"] and r["ranks"] == 1), None)
            for name in engines:
                if base and row.get(name, {}).get("steps_per_s") and base.get(name, {}).get("steps_per_s"):
                    row[name]["speedup_vs_1rank"] = row[name]["steps_per_s"] / base[name]["steps_per_s"]
    return out


def fmt(v, spec):
    """``format(v, spec)``, or "—" for None."""
    return "—" if v is None else format(v, spec)


def markdown(summary, engines, meta):
    """The result tables as markdown text."""
    lines = [f"# LAMMPS water MD speed ({meta['date']}, {meta['machine']})", ""]
    for name in engines:
        info = meta["engines"].get(name, {})
        lines.append(f"* `{name}`: " + ("; ".join(f"{k} {v}" for k, v in info.items()) or "—"))
    legend = ("steps/s = LAMMPS `Loop time` of the timed run; median over rounds (n); RSS = peak per rank (largest) / sum of ranks, MiB; "
              "ratio = dpcompress / deepmd steps/s (> 1: dpcompress faster), median of per-round ratios; ×1 rank = speedup over 1 rank.")
    lines += ["", legend, ""]
    hdr = ["atoms", "ranks"]
    for name in engines:
        hdr += [f"{name} steps/s", f"{name} s/step", f"{name} µs/atom·step", f"{name} RSS MiB", f"{name} ×1 rank"]
    hdr += ["ratio dpc/deepmd", "|ΔE0|/atom eV"]
    lines += ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for row in summary:
        cells = [str(row["natoms"]), str(row["ranks"])]
        for name in engines:
            d = row.get(name, {})
            if d.get("steps_per_s"):
                rss = f"{d['rss_max_rank_mib']:.0f} / {d['rss_sum_mib']:.0f}" if "rss_max_rank_mib" in d else "—"
                cells += [f"{d['steps_per_s']:.4g} (n={d['n']})", f"{d['s_per_step']:.4g}", f"{d['us_per_atom_step']:.4g}", rss,
                          fmt(d.get("speedup_vs_1rank"), ".2f")]
            else:
                err = "; ".join(d.get("error") or []) if d.get("error") else ("skipped" if not d.get("n") else "—")
                cells += [f"failed: {err[:80]}" if d.get("failed") else "—", "—", "—", "—", "—"]
        cells += [fmt(row.get("ratio_dpc_over_deepmd"), ".3g"), fmt(row.get("dE0_per_atom"), ".2e")]
        lines.append("| " + " | ".join(cells) + " |")
    skipped = [f"* `{k}` skipped: {v}" for k, v in meta.get("skipped", {}).items()]
    if skipped:
        lines += [""] + skipped
    return "\n".join(lines) + "\n"


def parse_env(items):
    """``["deepmd:KEY=VALUE", ...]`` → {engine: {KEY: VALUE}}."""
    out = {}
    for item in items or []:
        eng, _, kv = item.partition(":")
        k, _, v = kv.partition("=")
        if eng not in ENGINES or not k:
            raise SystemExit(f"--env wants ENGINE:KEY=VALUE with ENGINE in {ENGINES}, got {item!r}")
        out.setdefault(eng, {})[k] = v
    return out


def build_parser():
    """The argument parser."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    p.add_argument("--sizes", nargs="+", type=int, default=[1536, 12288], help="atoms (cubic replications of the frame) [1536 12288]")
    p.add_argument("--ranks", nargs="+", type=int, default=[1, 2], help="MPI ranks [1 2]")
    p.add_argument("--strong", action="store_true", help="also 98304 atoms (8x8x8) at every rank count (strong scaling)")
    p.add_argument("--threads", type=int, default=1, help="OpenMP/torch threads per rank [1]")
    p.add_argument("--rounds", type=int, default=3, help="rounds over all cases [3]")
    p.add_argument("--steps", default="", help="timed steps per size, e.g. 1536=20,12288=5 [{}]".format(",".join(f"{k}={v}" for k, v in DEFAULT_STEPS.items())))
    p.add_argument("--warmup", default="", help="warm-up steps per size [{}]".format(",".join(f"{k}={v}" for k, v in DEFAULT_WARMUP.items())))
    p.add_argument("--seed", type=int, default=4928459, help="velocity seed [4928459]")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per LAMMPS job [3600]")
    p.add_argument("--quiet-threshold", type=float, default=0.3, help="wait before a run until other load < this many cores [0.3]")
    p.add_argument("--quiet-wait", type=float, default=10, help="... at most this many seconds [10]")
    p.add_argument("--frames", default=lammps_water.DEFAULT_FRAMES, help="test_frames.npz (frame 0 is replicated) [%(default)s]")
    p.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results", "lammps.json"), help="JSON to write; also <out>.md, <out>_logs/ [%(default)s]")
    g = p.add_argument_group("deepmd engine")
    g.add_argument("--deepmd-venv", default=DEFAULT_DEEPMD_VENV, help="venv of deepmd-kit[torch,lmp]==3.2.0 ($DP_LMP_VENV) [%(default)s]")
    g.add_argument("--deepmd-model", default=DEFAULT_DEEPMD_MODEL, help="compressed .pth ($DP_LMP_MODEL) [%(default)s]")
    g.add_argument("--deepmd-lmp", default=None, help="lmp executable [<venv>/bin/lmp]")
    g.add_argument("--deepmd-mpirun", default=None, help="mpirun [<venv>/bin/mpirun: the mpich wheel's Hydra]")
    g.add_argument("--deepmd-cmd", default=DEFAULT_CMD, help="command template [%(default)s]")
    g.add_argument("--deepmd-pair", default="pair_style deepmd {model}\\npair_coeff * * O H", help="pair lines [%(default)s]")
    g.add_argument("--deepmd-gpu", action="store_true", help="leave CUDA_VISIBLE_DEVICES alone (default: empty it)")
    g = p.add_argument_group("dpcompress engine")
    g.add_argument("--dpc-python", default=sys.executable, help="python with dpcompress [this one]")
    g.add_argument("--dpc-model", default=None, help=".dpc model [--frozen compressed into <out>_logs/]")
    g.add_argument("--frozen", default=DEFAULT_FROZEN, help="DeePMD-kit model to compress when no --dpc-model [%(default)s]")
    g.add_argument("--dpc-plugin-path", default=None, help="LAMMPS_PLUGIN_PATH [$(python -m dpcompress.lammps path)]")
    g.add_argument("--dpc-lmp", default=None, help="lmp executable [next to --dpc-python]")
    g.add_argument("--dpc-mpirun", default=None, help="mpirun [next to --dpc-python]")
    g.add_argument("--dpc-cmd", default=DEFAULT_CMD, help="command template [%(default)s]")
    g.add_argument("--dpc-pair", default="pair_style dpcompress {model}\\npair_coeff * * O H", help="pair lines [%(default)s]")
    p.add_argument("--env", action="append", default=[], metavar="ENGINE:KEY=VALUE", help="extra environment for one engine (repeatable)")
    return p


def main(argv=None):
    """Run the benchmark; returns the exit status."""
    args = build_parser().parse_args(argv)
    args.extra_env = parse_env(args.env)
    if os.sep in args.dpc_python:
        args.dpc_python = os.path.abspath(args.dpc_python)
    out = os.path.abspath(args.out)
    stem = out.removesuffix(".json")
    logdir = stem + "_logs"
    os.makedirs(logdir, exist_ok=True)
    steps, warmup = parse_sizes_map(args.steps, DEFAULT_STEPS), parse_sizes_map(args.warmup, DEFAULT_WARMUP)
    sizes = list(args.sizes) + ([98304] if args.strong and 98304 not in args.sizes else [])

    engines, skipped = [], {}
    for name in args.engines:
        e = make_deepmd(args, logdir) if name == "deepmd" else make_dpcompress(args, logdir)
        if e.skip:
            print(f"skipping engine {name}: {e.skip}", flush=True)
            skipped[name] = e.skip
        else:
            engines.append(e)
    if not engines:
        print("no engine can run", file=sys.stderr)
        return 1

    n0 = atoms_per_rep(args.frames)
    cases = []
    for natoms in sizes:
        data = os.path.join(logdir, f"water_{natoms}.data")
        info = lammps_water.write_water(data, rep_for(natoms, n0), args.frames)
        for ranks in args.ranks:
            cases.append(dict(natoms=info["natoms"], ranks=ranks, data=data, steps=steps.get(natoms, 3), warmup=warmup.get(natoms, 1)))

    meta = dict(date=datetime.datetime.now().isoformat(timespec="seconds"), machine=f"{platform.node()} {platform.machine()}, {os.cpu_count()} cpus",
                argv=sys.argv, frames=os.path.abspath(args.frames), seed=args.seed, threads=args.threads,
                engines={e.name: dict(e.info, model=os.path.abspath(e.model), lmp=e.lmp, mpirun=e.mpirun) for e in engines}, skipped=skipped)
    records = []

    def save():
        names = [e.name for e in engines]
        summary = summarize(records, names)
        for e in engines:  # versions as LAMMPS reported them
            v = next((r["lammps_version"] for r in records if r["engine"] == e.name and r.get("lammps_version")), None)
            if v:
                meta["engines"][e.name]["lammps"] = v
        with open(out, "w") as fh:
            json.dump(dict(meta=meta, summary=summary, runs=records), fh, indent=1)
        with open(stem + ".md", "w") as fh:
            fh.write(markdown(summary, names, meta))
        return summary

    broken = set()
    for rnd in range(args.rounds):
        for case in cases:
            order = engines if rnd % 2 == 0 else engines[::-1]
            for e in order:
                if (e.name, case["natoms"], case["ranks"]) in broken:
                    continue
                rec = run_one(e, case, args, logdir, f"r{rnd}")
                rec["round"] = rnd
                records.append(rec)
                if rec.get("steps_per_s"):
                    rss = max(rec.get("rss_kb") or [0]) / 1024
                    print(f"round {rnd} {e.name:10s} {case['natoms']:6d} atoms {case['ranks']} ranks: {rec['steps_per_s']:.4g} steps/s "
                          f"({rec['s_per_step']:.4g} s/step), RSS {rss:.0f} MiB/rank, E0 {rec.get('step0', {}).get('PotEng')}, "
                          f"foreign load {rec.get('foreign_load_cores')}", flush=True)
                else:
                    print(f"round {rnd} {e.name:10s} {case['natoms']:6d} atoms {case['ranks']} ranks: FAILED ({rec['returncode']}): {rec['failed']}", flush=True)
                    broken.add((e.name, case["natoms"], case["ranks"]))  # do not repeat a failure
                save()
    save()
    with open(stem + ".md") as fh:
        print(fh.read())
    print(f"wrote {out}, {stem}.md, {logdir}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
