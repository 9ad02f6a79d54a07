"""The communicator of the scan: ``MPI.COMM_WORLD``, or a stand-in for one plain process.

mpi4py is imported only here and only when asked for, so the scan runs without it.
"""

import os

from ..core.errors import InputError

#: Environment variables in which MPI launchers give the number of processes they started.
LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


class SerialComm:
    """The few communicator methods the scan uses, for one plain process."""

    rank = 0
    size = 1

    def bcast(self, obj, root=0):
        return obj

    def gather(self, obj, root=0):
        return [obj]

    def Abort(self, errorcode=1):  # noqa: N802 (MPI spelling)
        os._exit(errorcode)


def launcher_size():
    """``(number of processes, variable)`` an MPI launcher reports, or None when not launched by one."""
    for var in LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(var)
        if value:
            try:
                return int(value), var
            except ValueError:
                continue
    return None


def get_comm(use_mpi=True):
    """``MPI.COMM_WORLD`` when mpi4py is installed (and ``use_mpi``), else a :class:`SerialComm`.

    Raises
    ------
    InputError
        Started by an MPI launcher with N > 1 processes, but mpi4py is missing or sees a world
        of another size (a launcher of a different MPI than mpi4py's): without this check each
        process would run the whole scan alone, N times over.
    """
    launched = launcher_size()
    if not use_mpi:
        return SerialComm()
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as exc:  # not installed, or its MPI library cannot be loaded
        if launched and launched[0] > 1:
            raise InputError(
                f"started by an MPI launcher with {launched[0]} processes ({launched[1]}) but mpi4py cannot be used "
                f"({type(exc).__name__}: {exc}): pip install 'dpcompress[mpi]' (or run one plain process)"
            ) from None
        return SerialComm()
    comm = MPI.COMM_WORLD
    if launched and launched[0] != comm.size:
        raise InputError(
            f"the MPI launcher started {launched[0]} processes ({launched[1]}={launched[0]}) but MPI sees a world of "
            f"{comm.size}: the launcher (mpirun/mpiexec/srun) belongs to another MPI than the one mpi4py uses "
            f"({MPI.Get_library_version().splitlines()[0].strip()}); use that MPI's launcher"
        )
    return comm
