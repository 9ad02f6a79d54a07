"""The ASE route: ASE's i-PI socket client around dpcompress's ASE calculator.

    python ase_client.py water.dpc init.xyz dpcompress-water [--connect-timeout 60]

Starts after (or shortly before) ``i-pi input.xml`` and runs until i-PI stops.  ASE converts
units with its own CODATA 2014 constants, so i-PI's printed energies differ from the model's by
about 1e-7 relative through this route (``python -m dpcompress.ipi`` uses i-PI's constants).
"""

import argparse
import time

from ase.calculators.socketio import SocketClient
from ase.io import read

from dpcompress.calculators.ase_calculator import DPCompressCalculator


def connect(name, timeout):
    """ASE's SocketClient connects once: retry while i-PI creates its socket."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return SocketClient(unixsocket=name)
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no i-PI unix socket named {name!r} after {timeout:g} s: is i-pi running?") from None
            time.sleep(0.2)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("init", help="the structure i-PI starts from: gives the elements, in i-PI's order")
    p.add_argument("address", help="i-PI's <address> of a mode='unix' <ffsocket>")
    p.add_argument("--connect-timeout", type=float, default=60.0)
    args = p.parse_args()

    atoms = read(args.init, format="xyz")
    atoms.pbc = True  # the cell itself arrives with every structure from i-PI
    atoms.calc = DPCompressCalculator(args.model)
    connect(args.address, args.connect_timeout).run(atoms, use_stress=True)


if __name__ == "__main__":
    main()
