"""Command line: ``dpcompress <command> ...``.

Commands
--------
compress -i MODEL -o OUT [-s STEP] [-e EXTRAPOLATE] [-f FREQUENCY] [-t SCRIPT] [--min-nbor-dist D] [--scan SCAN.json] [--order {5,3}] [--max-bytes SIZE] [--tolerance TOL [--tolerance-frames DATA ...]]
    Tabulate the embedding nets (flags as in DeePMD-kit's ``dp compress``) and
    write a self-contained ``.dpc`` file.  OUT is written atomically and must not
    be MODEL itself; tables above ``--max-bytes`` (default 2G) are refused first.
    ``--tolerance`` (eV/Å on forces, instead of ``-s``) picks each table's strides
    (``dpcompress.tolerance``; docs/accuracy.md).
scan DIR [DIR ...] [-m MODEL] [--rcut R] [--rcut-smth RS] [--type-map T ...] [-o scan.json]
    Scan training data (also under ``mpiexec``): ``python -m dpcompress.scan``.
info FILE [--plot IMAGE]
    What a model file holds (descriptor, sizes, types, min_nbor_dist; for a
    ``.dpc`` file also the tables and their provenance).  Also for NEP models:
    a GPUMD ``nep.txt`` or a NEP ``.dpc`` (cutoffs, descriptor sizes, network,
    ZBL, and for the ``.dpc`` the tables, their errors and provenance).
eval MODEL DATA
    Evaluate a model on every frame of training-data systems (deepmd/npy
    directories or deepmd/hdf5 files); print energy and max |force| per frame
    and, when the data carry labels, the errors against them.
test -m MODEL -s SYSTEM [SYSTEM ...] [-n N] [-d DETAIL] [--against ORIGINAL] [--plot FILE.png] [--json FILE]
    Energy, force and virial MAE/RMSE against the labels, as DeePMD-kit's dp test
    (docs/test.md); also under mpiexec.
pwmlff {compress,togpumd,toneplmps} ...
    PWMLFF's own command lines (``dpcompress.cli_pwmlff``, docs/pwmlff.md):
    ``pwmlff compress dp_model.ckpt -d 0.01 -o 3 -s cmp_dp_model`` runs as
    ``compress -s 0.01 --order 3 -e 10``; ``togpumd`` folds a NEP checkpoint's
    per-element biases for one composition; ``toneplmps`` writes nep_to_lmps.txt.
"""

import argparse
import sys
import time

import numpy as np

from ._version import __version__
from .cli_errors import (check_input_file, check_output_file, error_text, exit_status, model_prefix, one_line_warnings,
                         output_name)
from .cli_help import command_help
from .cli_log import add_log_options, command_log, log
from .compression import compress, compress_nep
from .core.errors import DPCompressError, InputError
from .core.memory_limit import ENV_VAR, parse_bytes
from .data import read_systems
from .data.formats import FORMAT_HELP
from .descriptors import iter_tables, parts
from .modelfile import is_dpc_file, load_model, read_dpc, save_model
from . import cli_pwmlff
from .modelfile.pwmlff_nep import is_pwmlff_nep_checkpoint
from .nep import NEPModel, is_nep_text_file
from .models.dp_zbl import DPZBLModel
from .potential import Potential
from .validation.command import add_parser as add_test_parser
from .tolerance.command import check_tolerance_args, compress_for_cli, info_lines


def _plain(v):
    return list(v) if isinstance(v, tuple) else v


def _pairs_text(model, a):
    """One value if all element pairs share it, else 'A-B v' per pair (centre-neighbour)."""
    if np.all(a == a.flat[0]):
        return f"{a.flat[0]:g}"
    el = model.elements
    return "  ".join(f"{el[i]}-{el[j]} {a[i, j]:g}" for i in range(len(el)) for j in range(len(el)))


def _info_nep(path, m):
    """``dpcompress info`` for a NEP model: a GPUMD nep.txt or a NEP .dpc from ``dpcompress compress``."""
    dpc = is_dpc_file(path)
    kind = ("dpcompress NEP table file (.dpc)" if dpc else "PWMLFF NEP checkpoint (nep_model.ckpt)"
            if is_pwmlff_nep_checkpoint(path) else "GPUMD NEP text model (nep.txt)")
    token = f"nep{m.version}" + ("_zbl" if m.zbl is not None else "")
    print(f"file:            {path}")
    print(f"format:          {kind}; model token {token}" + ("; PWMLFF per-element output biases" if m.pwmlff_biases else ""))
    print(f"type_map:        {list(m.elements)}  (Z = {[int(z) for z in m.atomic_numbers]})")
    print(f"cutoffs:         radial {_pairs_text(m, m.rc_radial)} Å  angular {_pairs_text(m, m.rc_angular)} Å"
          f"  (cutoff line: {m.cutoff_form}; neighbour caps MN_R/MN_A {m.neighbor_caps[0]}/{m.neighbor_caps[1]})")
    bodies = [k for k, v in m.flags.items() if v]
    print(f"descriptor:      n_max {m.n_max_radial}/{m.n_max_angular} (radial/angular)  basis_size "
          f"{m.basis_radial}/{m.basis_angular}  l_max {m.l_max}  extra blocks {bodies or 'none'}  dim {m.dim}")
    per = "one network per element" if m.version >= 4 else "one shared network"
    print(f"network:         {m.dim} -> {m.n_neuron} (tanh) -> 1, {per}; output bias {m.b1:g}"
          + (f", per element {[float(b) for b in m.b1_type]}" if np.any(m.b1_type != 0) else ""))
    z = m.zbl
    if z is None:
        print("zbl:             none")
    elif z["kind"] == "flexible":
        print("zbl:             flexible (per-pair parameters)  inner " + _pairs_text(m, z["inner"]) + " Å  outer "
              + _pairs_text(m, z["outer"]) + " Å")
    else:
        print(f"zbl:             {z['kind']}  inner {_pairs_text(m, z['inner'])} Å  outer {_pairs_text(m, z['outer'])} Å")
    tb = m.tables
    if tb is None:
        print("compressed:      no (tabulate with: dpcompress compress -i FILE -o nep.dpc)")
        return 0
    p = read_dpc(path).header
    print(f"compressed:      quintic Hermite tables of g_n(r) (ZBL analytic), step <= {tb.step:g} Å"
          f"  by dpcompress {p.get('dpcompress_version')}  (format {p.get('format')})")
    print(f"source:          {p.get('source')}")
    for part, name, nch in ((0, "radial", m.n_max_radial + 1), (1, "angular", m.n_max_angular + 1)):
        M = tb.M[part]
        print(f"table {name + ':':<10}{M.size} pair(s), {int(M.min())}" + (f"-{int(M.max())}" if M.max() != M.min() else "")
              + f" intervals x 6 x {nch} channels ({int(M.sum()) * 6 * nch * 8 / 2**20:.2f} MiB); max |g_tab - g| "
              f"{tb.error_g[part].max():.2e}, max |g'_tab - g'| {tb.error_gp[part].max():.2e} 1/Å")
    return 0


def _cmd_info(args):
    m = load_model(check_input_file(args.file, "model file"))
    if isinstance(m, NEPModel):  # GPUMD nep.txt / NEP .dpc
        return _info_nep(args.file, m)
    zbl = None
    if isinstance(m, DPZBLModel):  # DP + ZBL (docs/dp-zbl.md): the DP part's lines, then the table's
        zbl, m = m, m.dp
    d = m.descriptor
    print(f"file:            {args.file}")
    print(f"type_map:        {list(m.type_map)}")
    for k, part in enumerate(parts(d)):
        label = f"descriptor {k}:" if getattr(d, "parts", None) else "descriptor:"
        print(f"{label:<17}{getattr(part, 'display_name', part.type_name)}  rcut={part.rcut} Å  rcut_smth={part.rcut_smth} Å  sel={list(part.sel)}")
        details = [f"{a}={_plain(getattr(part, a))}" for a in ("neuron", "axis_neuron", "type_one_side", "activation") if hasattr(part, a)]
        print(f"                 {'  '.join(details)}  exclude_types={sorted(part.exclude_types)}")
        for line in part.info_lines() if hasattr(part, "info_lines") else ():  # dpa2: its blocks
            print(f"                 {line}")
        if getattr(part, "attention", None) is not None:  # DPA-1's attention layers
            print(f"                 {part.attention.summary()}")
    widths = [m.fitting.networks[0].in_dim] + [l.n_out for l in m.fitting.networks[0].layers]
    kind = getattr(m.fitting, "kind", "ener")  # dipole / polar: dpcompress.DeepDipole, DeepPolar
    print(f"fitting:         {kind}, {len(m.fitting.networks)} net(s), widths {widths}")
    nf, na = getattr(m.fitting, "numb_fparam", 0), getattr(m.fitting, "numb_aparam", 0)
    if nf or na:  # what pair_style dpcompress / Potential.eval must be given (docs/lammps.md)
        default = m.fitting.default_fparam
        print(f"parameters:      numb_fparam {nf} (default_fparam "
              f"{'none' if default is None else [float(x) for x in default]})  numb_aparam {na}")
    print(f"exclusions:      pair {sorted(m.pair_exclude_types)}  atom {sorted(m.atom_exclude_types)}")
    print(f"min_nbor_dist:   {m.min_nbor_dist if m.min_nbor_dist is not None else 'not stored'}")
    if m.is_compressed:
        p = m.compression or {}
        step = "per table (--tolerance)" if p.get("table_budget") is not None else f"{p.get('stride0')}/{p.get('stride1')}"
        print(f"compressed:      order {p.get('order')}  step {step}  extrapolate {p.get('extrapolate')}"
              f"  check_frequency {p.get('check_frequency')}  by dpcompress {p.get('dpcompress_version')}")
        print(f"source:          {p.get('source')}  sha256 {p.get('source_sha256')}")
        print(f"                 min_nbor_dist from {p.get('min_nbor_dist_source')}")
        for k, tab in enumerate(iter_tables(d)):
            print(f"table {k}:         " + (f"[{tab.xmin:g}, {tab.lower:g}) step {tab.stride1:g}, " if tab.n_below else "") + f"[{tab.lower:g}, {tab.upper:g}) step {tab.stride0:g}, [{tab.upper:g}, {tab.xmax:g}] step {tab.stride1:g}; "
                  f"{tab.nspline} x {tab.order + 1} x {tab.n_channels} ({tab.coef.nbytes / 2**20:.2f} MiB); max |table - net| {tab.max_error:.2e}")
        for line in info_lines(p):
            print(line)
        if args.plot:
            from .tolerance.plot import plot_search

            plot_search(p, args.plot, inputs=(args.file,))
            print(f"plot:            {args.plot}")
    else:
        print("compressed:      no")
    if zbl is not None:
        t = zbl.table
        print(f"pair table:      {t.ntypes} types, r = {t.rmin:g} + k * {t.hh:g} Å (k <= {t.nspline}), rcut {t.rcut:g} Å, "
              f"sel {t.sel}; ZBL switch sw_rmin {zbl.sw_rmin:g} sw_rmax {zbl.sw_rmax:g} smin_alpha {zbl.smin_alpha:g}")
    return 0


#: Options of ``compress`` for DP models only, as (attribute, flag): refused for a NEP model, not ignored.
DP_ONLY = (("extrapolate", "-e/--extrapolate"), ("frequency", "-f/--frequency"), ("training_script", "-t/--training-script"),
           ("min_nbor_dist", "--min-nbor-dist"), ("scan", "--scan"), ("order", "--order"), ("threads", "--threads"))
#: Their DP defaults (None in the parser, so that an explicit value is seen even when it equals the default).
DP_DEFAULTS = {"extrapolate": 5, "frequency": -1, "order": 5}


def _cmd_compress(args):
    with command_log(args):
        return _compress(args)


def _compress(args):
    args.input, args.output = model_prefix(args.input), output_name(args.output)
    # before any work: a bad -o is found in a second, not after the tables, and never replaces -i
    check_input_file(args.input, "-i")
    check_output_file(args.output, inputs=(args.input,), what="-o")
    nep_input = is_nep_text_file(args.input) or is_pwmlff_nep_checkpoint(args.input)
    check_tolerance_args(args, nep_input)
    if args.step is None:  # default 0.01 (also the start of --tolerance's stride search)
        args.step = 0.01
    if nep_input:  # GPUMD nep.txt or PWMLFF nep_model.ckpt: tables of the radial functions
        given = [flag for name, flag in DP_ONLY if getattr(args, name) is not None]
        if given:
            raise InputError(f"{', '.join(given)}: for DeePMD-kit models only; a NEP model ({args.input}) takes -s and "
                             "--max-bytes (its tables cover [0, rc] and need no training data)")
        t0 = time.perf_counter()
        m = compress_nep(args.input, step=args.step, max_bytes=args.max_bytes)
        save_model(m, args.output)
        tb = m.tables
        log.info(f"compressed NEP {args.input} -> {args.output} in {time.perf_counter() - t0:.3f} s: quintic tables of g_n, "
              f"step <= {tb.step} Å, {tb.coef.size} coefficients; max |g_tab - g| {tb.error_g.max():.2e}, "
              f"max |g'_tab - g'| {tb.error_gp.max():.2e} 1/Å (ZBL analytic)")
        return 0
    for name, value in DP_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    check_input_file(args.training_script, "-t")
    check_input_file(args.scan, "--scan")
    t0 = time.perf_counter()
    cm = (compress_for_cli if args.tolerance is not None else compress)(
        args if args.tolerance is not None else args.input,
        step=args.step,
        extrapolate=args.extrapolate,
        check_frequency=args.frequency,
        training_script=args.training_script,
        min_nbor_dist=args.min_nbor_dist,
        order=args.order,
        scan=args.scan,
        n_threads=args.threads,
        max_bytes=args.max_bytes,
    )
    t1 = time.perf_counter()
    save_model(cm, args.output)
    p = cm.compression
    log.info(f"compressed {args.input} -> {args.output} in {t1 - t0:.3f} s (tables), order {p['order']}, "
          f"step {'per table' if p.get('table_budget') is not None else str(p['stride0']) + '/' + str(p['stride1'])}, "
          f"extrapolate {p['extrapolate']}; max |table - net| {p['max_table_error']:.2e}; "
          f"min_nbor_dist {p['min_nbor_dist']:.6g} Å from {p['min_nbor_dist_source']}")
    for line in info_lines(p):
        log.info(line)
    return 0


def _cmd_eval(args):
    check_input_file(args.model, "model file")
    for path in args.data:
        check_input_file(path, "data", folder_ok=True)
    pot = Potential(args.model, n_threads=args.threads)
    for system in read_systems(args.data, fmt=args.format):
        types = system.atom_types
        if system.type_map is not None:
            names = [system.type_map[t] for t in np.ravel(types)]
            types = np.asarray(names).reshape(np.shape(types))
        e, f, _ = pot.eval(system.coords, system.cells, types, mixed_type=np.ndim(types) == 2)
        print(f"# {system.name}: {system.nframes} frames, {system.natoms} atoms")
        for k in range(system.nframes):
            line = f"frame {k:4d}  energy {e[k, 0]:.10f} eV  max|F| {np.abs(f[k]).max():.6f} eV/Å"
            if system.energy is not None:
                line += f"  |ΔE|/atom vs label {abs(e[k, 0] - system.energy[k]) / system.natoms:.3e} eV"
            print(line)
    return 0


def _size(text):
    """argparse type of --max-bytes: a bad size is a usage error (exit 2) naming the option."""
    try:
        return parse_bytes(text, "--max-bytes")
    except DPCompressError:  # argparse names the option itself
        raise argparse.ArgumentTypeError(f"expected a size in bytes such as 512M or 2G, found {text!r}") from None


def _threads(text):
    """argparse type of --threads: a positive integer (-1: all cores)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 and value != -1:
        raise argparse.ArgumentTypeError(f"expected a positive integer (or -1: all cores), found {text!r}")
    return value


def build_parser():
    p = argparse.ArgumentParser(prog="dpcompress", **command_help("top"))
    p.add_argument("--version", action="version", version=f"dpcompress {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    pi = sub.add_parser("info", help="describe a model file", **command_help("info"))
    pi.add_argument("file", help="a .dp/.yaml, .dpc or nep.txt model file")
    pi.add_argument("--plot", default=None, metavar="IMAGE",
                    help="draw table error vs stride of a model compressed with --tolerance (needs matplotlib)")
    pi.set_defaults(func=_cmd_info)
    pc = sub.add_parser("compress", help="tabulate a model into a .dpc file", **command_help("compress"))
    pc.add_argument("-i", "--input", default="frozen_model",
                    help="DeePMD-kit .dp or .yaml model, a PWMLFF dp_model.ckpt, or a GPUMD nep.txt; a name without suffix as dp reads it "
                         "(PREFIX.dp, then PREFIX.yaml) [frozen_model]")
    pc.add_argument("-o", "--output", default="frozen_model_compressed",
                    help="compressed model to write (never the input; .dpc added to a name without suffix) "
                         "[frozen_model_compressed]")
    pc.add_argument("-s", "--step", type=float, default=None, help="fine table stride (coarse: 10x) [0.01]")
    pc.add_argument("-e", "--extrapolate", type=float, default=None, help="table end = EXTRAPOLATE x fine upper bound [5]")
    pc.add_argument("-f", "--frequency", type=int, default=None, help="overflow check every N evaluations (-1: off) [-1]")
    pc.add_argument("-t", "--training-script", default=None,
                    help="DeePMD-kit input script (JSON, or YAML by suffix) naming the training data (for min_nbor_dist)")
    pc.add_argument("-c", "--checkpoint-folder", default="model-compression",
                    help="accepted for dp compress's scripts: dpcompress writes no checkpoint (nothing is created)")
    add_log_options(pc)
    pc.add_argument("--min-nbor-dist", type=float, default=None, help="minimum pair distance of the training set, Å")
    pc.add_argument("--scan", default=None, help="JSON of 'dpcompress scan': its min_nbor_dist sets the table range (wins over the model's)")
    pc.add_argument("--order", type=int, choices=(5, 3), default=None, help="quintic (5) or cubic (3) Hermite [5]")
    pc.add_argument("--threads", type=_threads, default=None, help="threads (default: all cores)")
    pc.add_argument("--max-bytes", type=_size, default=None, metavar="SIZE",
                    help=f"most memory the tables may take, e.g. 4G (default: ${ENV_VAR} or 2G); "
                         "estimated before they are built")
    pc.add_argument("--tolerance", type=float, default=None, metavar="TOL",
                    help="max force error vs the exact model, eV/Å, on the calibration frames: strides per table "
                         "(instead of -s; docs/accuracy.md)")
    pc.add_argument("--tolerance-frames", nargs="+", default=None, metavar="DATA",
                    help="calibration frames for --tolerance (deepmd/npy or hdf5; default: -t's training data)")
    pc.set_defaults(func=_cmd_compress)
    sub.add_parser("scan", add_help=False, help="scan training data: min_nbor_dist, sel, table ranges (python -m dpcompress.scan -h)")
    sub.add_parser("pwmlff", add_help=False, help="PWMLFF's command lines: compress, togpumd, toneplmps (docs/pwmlff.md)")
    pe = sub.add_parser("eval", help="evaluate a model on training-data frames", **command_help("eval"))
    pe.add_argument("model", help="a .dpc, .dp/.yaml or nep.txt model file")
    pe.add_argument("data", nargs="+", help="deepmd/npy system directories (searched recursively), deepmd/hdf5, extxyz, "
                    "OUTCAR or vasprun.xml files (docs/data-formats.md)")
    pe.add_argument("--threads", type=_threads, default=None, help="threads (default: all cores)")
    pe.add_argument("--format", default=None, help=FORMAT_HELP)
    pe.set_defaults(func=_cmd_eval)
    add_test_parser(sub)  # dpcompress test: docs/test.md
    return p


def _pwmlff(argv):
    """``dpcompress pwmlff compress|togpumd|toneplmps``: compress runs as ``dpcompress compress``."""
    args = cli_pwmlff.build_parser().parse_args(argv)
    try:
        with one_line_warnings():
            if args.pwmlff_command == "compress":
                return main(cli_pwmlff.compress_argv(args))
            out = getattr(cli_pwmlff, args.pwmlff_command)(args)
        print(f"wrote {out}")
        return 0
    except (DPCompressError, OSError) as exc:
        print(f"dpcompress pwmlff {args.pwmlff_command}: error: {error_text(exc)}", file=sys.stderr)
        return exit_status(exc)


def main(argv=None):
    """Entry point of the ``dpcompress`` command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["scan"]:  # its own parser (and MPI handling): dpcompress.scan.main
        from .scan import main as scan_main

        return scan_main(argv[1:], prog="dpcompress scan")
    if argv[:1] == ["pwmlff"]:  # PWMLFF's command lines (dpcompress.cli_pwmlff)
        return _pwmlff(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        with one_line_warnings():
            return args.func(args)
    except (DPCompressError, OSError) as exc:  # the user's (2) or the machine's (1: a full disk): one line
        print(f"dpcompress {args.command}: error: {error_text(exc)}", file=sys.stderr)
        return exit_status(exc)


if __name__ == "__main__":
    sys.exit(main())
