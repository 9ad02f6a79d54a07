"""The ``--tolerance`` parts of ``dpcompress compress`` and ``dpcompress info`` (wired in ``cli.py``)."""

from ..core.errors import InputError
from ..data import read_systems
from ..data.min_distance import systems_from_training_script
from . import compress_to_tolerance

__all__ = ["check_tolerance_args", "compress_for_cli", "info_lines"]


def check_tolerance_args(args, is_nep):
    """Refuse what does not combine with ``--tolerance`` (a usage error, exit 2)."""
    if getattr(args, "tolerance_frames", None) and args.tolerance is None:
        raise InputError("--tolerance-frames is only used with --tolerance")
    if args.tolerance is None:
        return
    if args.step is not None:
        raise InputError("--tolerance chooses each table's strides: do not combine it with -s/--step")
    if is_nep:
        raise InputError("--tolerance applies to DeePMD-kit models; a NEP model's tables take -s (step, Å)")
    if not args.tolerance_frames and not args.training_script:
        raise InputError("--tolerance needs calibration frames: --tolerance-frames DATA... or -t input.json "
                         "(its training data)")


def compress_for_cli(args, **options):
    """``compress_to_tolerance`` with the frames of ``--tolerance-frames`` or of ``-t``'s training data."""
    if args.tolerance_frames:
        systems = read_systems(args.tolerance_frames)
    else:
        systems = systems_from_training_script(args.training_script)
    return compress_to_tolerance(args.input, args.tolerance, systems, **options)


def info_lines(compression):
    """Lines of ``dpcompress info`` about a tolerance (empty when the model has none)."""
    p = compression or {}
    if p.get("table_budget") is None:
        return []
    lines = []
    cal = p.get("calibration") or {}
    if p.get("tolerance") is not None:
        lines.append(f"tolerance:       {p['tolerance']:.3g} eV/Å on forces; max |ΔF| {cal.get('max_force_error', float('nan')):.2e} "
                     f"eV/Å on {cal.get('frames')} calibration frame(s), {cal.get('max_contact_force_error', float('nan')):.2e} "
                     f"on {cal.get('contact_frames')} close-contact frame(s); sensitivity {cal.get('sensitivity') or float('nan'):.3g}"
                     + (f"; target {cal['margin']:g} × TOL" if cal.get("margin") else ""))
    fine, coarse = p["table_budget"]
    lines.append(f"table budget:    {fine:.3g} (fine), {coarse:.3g} (coarse, weighted): sampled max |table - net| of value "
                 "and derivative; strides chosen per table")
    for k, (bf, bc) in enumerate(p.get("table_bounds") or []):
        lines.append(f"  table {k}:       achieved bound {bf:.2e} (fine), {bc:.2e} (coarse)")
    return lines
