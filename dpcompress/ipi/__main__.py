"""``python -m dpcompress.ipi``: drive i-PI with a dpcompress model.

::

    python -m dpcompress.ipi --address NAME --unix --model water.dpc --init init.xyz [--threads N]
    python -m dpcompress.ipi --address HOST --port 31415 --model water.dpc --elements O,H,H
    python -m dpcompress.ipi path      # the file for i-pi-py_driver -m custom -P ...

The driver connects (retrying for ``--connect-timeout`` seconds while i-PI starts), answers
i-PI until i-PI sends EXIT or closes the socket, and exits with status 0; a bad argument or
structure exits with status 2 and a message naming the problem.
"""

import argparse
import logging
import os
import sys

from ..core.errors import DPCompressError
from .adapter import IPIAdapter
from .atoms import elements_from
from .client import DEFAULT_SOCKETS_PREFIX, IPIClient, ProtocolError


def pes_driver_path() -> str:
    """Absolute path of ``pes_driver.py``, the class file for ``i-pi-py_driver -m custom -P``."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "pes_driver.py")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dpcompress.ipi",
        description="i-PI socket driver for dpcompress models (energies, forces and virials for i-PI). "
                    "'python -m dpcompress.ipi path' prints the driver file for i-pi-py_driver -m custom -P.",
    )
    p.add_argument("--address", "-a", required=True,
                   help="i-PI's <address>: the socket name (with --unix) or the host name / IP (inet)")
    p.add_argument("--unix", "-u", action="store_true", help="unix-domain socket (i-PI's mode='unix')")
    p.add_argument("--port", "-p", type=int, default=65535, help="TCP port for inet sockets (i-PI's <port>; default 65535)")
    p.add_argument("--sockets-prefix", "-S", default=DEFAULT_SOCKETS_PREFIX,
                   help=f"prefix of unix socket files (i-PI's sockets_prefix; default {DEFAULT_SOCKETS_PREFIX})")
    p.add_argument("--model", "-m", required=True, help="model file: .dpc (compressed), DeePMD-kit .dp, GPUMD nep.txt")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--init", help="file with the atoms in i-PI's order, read for the elements (.xyz, or anything ASE reads)")
    who.add_argument("--elements", help="comma-separated element of every atom, in i-PI's order: O,H,H,...")
    p.add_argument("--threads", "-t", type=int, default=None, help="kernel threads (default: all cores)")
    p.add_argument("--nopbc", action="store_true", help="evaluate clusters: ignore the cell i-PI sends")
    p.add_argument("--connect-timeout", type=float, default=60.0, help="seconds to wait for i-PI's socket (default 60)")
    p.add_argument("--idle-timeout", type=float, default=None,
                   help="seconds to wait for each i-PI message once connected (default: no limit)")
    p.add_argument("--quiet", "-q", action="store_true", help="print errors only")
    return p


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv == ["path"]:
        print(pes_driver_path())
        return 0
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="dpcompress.ipi: %(message)s")
    try:
        adapter = IPIAdapter(args.model, elements_from(init=args.init, elements=args.elements),
                             n_threads=args.threads, periodic=not args.nopbc)
        client = IPIClient(adapter, args.address, unix=args.unix, port=args.port, sockets_prefix=args.sockets_prefix,
                           connect_timeout=args.connect_timeout, idle_timeout=args.idle_timeout)
        client.run()
    except (DPCompressError, TimeoutError) as exc:
        kind = "protocol error" if isinstance(exc, ProtocolError) else "error"
        print(f"python -m dpcompress.ipi: {kind}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
