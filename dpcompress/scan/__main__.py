"""``python -m dpcompress.scan`` (and ``mpiexec -n N python -m mpi4py -m dpcompress.scan``)."""

import sys

from .command import main

if __name__ == "__main__":
    sys.exit(main())
