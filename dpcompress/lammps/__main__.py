"""``python -m dpcompress.lammps {build,path,info}``: build and locate the LAMMPS plugin."""

import argparse
import json
import os
import sys

from . import ensure_plugin
from .build import STAMP, PluginBuildError, build, default_dir


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dpcompress.lammps", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="compile pair_style dpcompress against this environment's LAMMPS")
    b.add_argument("--dir", help=f"output folder (default {default_dir()})")
    b.add_argument("--verbose", action="store_true", help="print the compiler commands")
    p = sub.add_parser("path", help="print the plugin's folder (building it first if needed)")
    p.add_argument("--dir", help="the folder to use instead of the default")
    i = sub.add_parser("info", help="print what the plugin was built for (LAMMPS, BLAS, compilers)")
    i.add_argument("--dir", help="the folder to use instead of the default")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            path = build(args.dir, verbose=args.verbose)
            print(f"built {path}", file=sys.stderr)
            print(f"use it: export LAMMPS_PLUGIN_PATH={os.path.dirname(path)}", file=sys.stderr)
        elif args.command == "path":
            print(ensure_plugin(args.dir))
        else:
            folder = ensure_plugin(args.dir)
            with open(os.path.join(folder, STAMP), encoding="utf-8") as fh:
                print(json.dumps(json.load(fh), indent=1))
    except PluginBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
