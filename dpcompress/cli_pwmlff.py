"""``dpcompress pwmlff ...``: PWMLFF's own command lines, for its users' scripts (docs/pwmlff.md).

==========================================================  =============================================
``dpcompress pwmlff compress dp_model.ckpt -d 0.01 -o 3``    ``dpcompress compress -i dp_model.ckpt
``-s cmp_dp_model [-w DIR]``                                 -o DIR/cmp_dp_model.dpc -s 0.01 --order 3 -e 10``
``dpcompress pwmlff togpumd -m nep_model.ckpt -t 8 72``      a GPUMD ``nep.txt`` with one output bias,
``-n 32 64 -s gpumd.txt``                                    ``b = Σ_t b_t N_t / Σ_t N_t`` for that composition
``dpcompress pwmlff toneplmps nep_model.ckpt``               ``nep_to_lmps.txt`` next to the checkpoint
==========================================================  =============================================

PWMLFF's compress grid ``-d`` is in the same normalised variable as dpcompress's ``-s``, and its
coarse grid reaches 10 times the largest training value (``-e 10``); its tables are written as a
``.dpc`` (dpcompress's format), not as a checkpoint.  ``togpumd``'s shared bias is exact for the total
energy of that composition only (forces and virials do not depend on it).
"""

import argparse
import os

from .cli_errors import check_input_file, check_output_file
from .core.atomic_file import write_atomic
from .core.elements import SYMBOLS
from .core.errors import InputError
from .modelfile import load_model
from .modelfile.pwmlff_nep import nep_text_from_checkpoint
from .models.torch_zip import read_checkpoint
from .nep import NEPModel
from .nep.convert import to_gpumd

EXAMPLES = """examples (PWMLFF's spelling):
  dpcompress pwmlff compress dp_model.ckpt -d 0.01 -o 3 -s cmp_dp_model   # -> cmp_dp_model.dpc
  dpcompress pwmlff togpumd -m nep_model.ckpt -t 8 72 -n 32 64 -s gpumd.txt
  dpcompress pwmlff toneplmps nep_model.ckpt                               # -> nep_to_lmps.txt
"""


def build_parser():
    """The parser of ``dpcompress pwmlff``."""
    p = argparse.ArgumentParser(prog="dpcompress pwmlff", formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="PWMLFF's command lines (compress, togpumd, toneplmps) run by dpcompress",
                                epilog=EXAMPLES)
    sub = p.add_subparsers(dest="pwmlff_command", required=True, metavar="{compress,togpumd,toneplmps}")
    pc = sub.add_parser("compress", help="tabulate a PWMLFF dp_model.ckpt into a .dpc (PWMLFF compress)")
    pc.add_argument("model", help="PWMLFF DP checkpoint (dp_model.ckpt)")
    pc.add_argument("-d", "--dx", type=float, default=0.01, help="table grid step in normalised s [0.01]")
    pc.add_argument("-o", "--order", type=int, default=3, help="3 (cubic) or 5 (quintic) [3]")
    pc.add_argument("-s", "--savename", default="cmp_dp_model", help="output name; .dpc is added [cmp_dp_model]")
    pc.add_argument("-w", "--work_dir", default=None, help="folder of the output [the current folder]")
    pg = sub.add_parser("togpumd", help="a PWMLFF nep_model.ckpt as a GPUMD nep.txt for one composition")
    pg.add_argument("-m", "--nep-model-path", default="nep_model.ckpt", help="PWMLFF NEP checkpoint [nep_model.ckpt]")
    pg.add_argument("-t", "--atom-types", nargs="+", required=True,
                    help="the simulated system's elements: atomic numbers (8 72) or symbols (O Hf)")
    pg.add_argument("-n", "--atom-type-nums", nargs="+", type=int, required=True,
                    help="number of atoms of each element of -t")
    pg.add_argument("-s", "--save-name", default="nep_to_gpumd.txt", help="output file [nep_to_gpumd.txt]")
    pl = sub.add_parser("toneplmps", help="a PWMLFF nep_model.ckpt as nep_to_lmps.txt (per-element biases)")
    pl.add_argument("model", help="PWMLFF NEP checkpoint (nep_model.ckpt)")
    return p


def compress_argv(args):
    """The ``dpcompress compress`` arguments equivalent to ``PWMLFF compress`` (module docstring)."""
    check_input_file(args.model, "model")
    if args.order not in (3, 5):
        raise InputError(f"-o {args.order}: dpcompress tabulates with order 3 (cubic) or 5 (quintic); PWMLFF's -o 2 "
                         "(linear) has no equivalent")
    name = args.savename[:-len(".ckpt")] if args.savename.endswith(".ckpt") else args.savename
    out = os.path.join(args.work_dir, name) if args.work_dir else name
    return ["compress", "-i", args.model, "-o", out, "-s", repr(args.dx), "--order", str(args.order), "-e", "10"]


def _atomic_numbers(tokens):
    out = []
    for tok in tokens:
        z = int(tok) if tok.isdigit() else (SYMBOLS.index(tok) + 1 if tok in SYMBOLS else None)
        if z is None or not 1 <= z <= len(SYMBOLS):
            raise InputError(f"-t {tok!r}: not an atomic number or element symbol")
        out.append(z)
    return out


def togpumd(args):
    """``PWMLFF togpumd``: write a GPUMD nep.txt with the composition-weighted output bias."""
    path = check_input_file(args.nep_model_path, "-m")
    zs = _atomic_numbers(args.atom_types)
    if len(zs) != len(args.atom_type_nums):
        raise InputError(f"-t names {len(zs)} elements but -n gives {len(args.atom_type_nums)} atom counts")
    if any(n < 0 for n in args.atom_type_nums) or sum(args.atom_type_nums) <= 0:
        raise InputError(f"-n {' '.join(map(str, args.atom_type_nums))}: counts must be >= 0 with at least one atom")
    model = load_model(path)
    if not isinstance(model, NEPModel):
        raise InputError(f"-m {path!r} is not a NEP model (PWMLFF togpumd converts nep_model.ckpt)")
    counts = {}
    for z, n in zip(zs, args.atom_type_nums):
        if SYMBOLS[z - 1] not in model.elements:
            raise InputError(f"-t {SYMBOLS[z - 1]}: not an element of the model {list(model.elements)}")
        counts[SYMBOLS[z - 1]] = counts.get(SYMBOLS[z - 1], 0) + n
    out = check_output_file(args.save_name, inputs=(path,), what="-s")
    to_gpumd(model, out, counts=counts)
    return out


def toneplmps(args):
    """``PWMLFF toneplmps``: write ``nep_to_lmps.txt`` (the text PWMLFF writes) next to the checkpoint."""
    path = check_input_file(args.model, "model")
    out = os.path.join(os.path.dirname(os.path.abspath(path)), "nep_to_lmps.txt")
    write_atomic(check_output_file(out, inputs=(path,)), nep_text_from_checkpoint(read_checkpoint(path), path),
                 inputs=(path,))
    return out
