r"""Training-set scan: neighbor distances, neighbor counts and table input ranges, over MPI ranks.

Command line (``dpcompress scan`` is the same)::

    python -m dpcompress.scan DIR [DIR ...] [-m MODEL] [--rcut R[,R...]] [--rcut-smth RS]
                              [--type-map T [T ...]] [--format FMT] [--percentile P] [-o scan.json]
    mpiexec -n 8 python -m dpcompress.scan DIR ...          # or srun, mpirun

``DIR`` is searched recursively for ``deepmd/npy`` systems (folders holding
``type.raw``) and ``deepmd/hdf5`` files (``*.h5``, ``*.hdf5``); a system folder
or a data file may be named directly (``*.h5``, ``*.xyz``/``*.extxyz``, ``OUTCAR*``,
``vasprun*.xml``, or any dpdata format with ``--format``: :mod:`dpcompress.data.formats`).
Without mpi4py, or with ``--no-mpi``, it runs as one plain process.

With no ``--rcut`` and no model (``python -m dpcompress.scan train/``) it scans the cutoffs
4, 5, 6, 7 and 8 Å, to choose ``rcut`` and ``sel`` before training.  Rank 0 prints a summary
(:mod:`.summary`: ``min_nbor_dist`` with every digit, per type pair; the neighbor counts' maximum
and ``--percentile`` per type and cutoff; with a model the s ranges, the table inputs and what
the scan would change in the tables) and writes the JSON file.

What it computes, over every frame (all ``set.*`` folders), for the cutoff
``rcut`` (the largest ``--rcut``, else the model's, else 8 Å):

``min_nbor_dist``
    The smallest distance between two atoms or an atom and a periodic image
    (``null`` if no pair lies within ``rcut``); ``min_nbor_dist_by_type`` per
    type pair.  What DeePMD-kit stores in a model and what
    ``dpcompress compress --scan`` uses for the table range.
``max_nbor_size``
    Per neighbor type, the largest number of neighbors of that type within
    ``rcut`` (distance :math:`d^2 < r_c^2`) of any atom: DeePMD-kit's
    ``neighbor_stat``, a suggestion for ``sel``.  ``max_nbor_size_mixed`` is
    the largest total (for mixed-type descriptors); ``mean_nbor_size`` the
    mean over all atoms; the ``*_by_center`` matrices are ``[center][neighbor]``.
``s_min``, ``s_max``
    Per (center type, neighbor type), the range of :math:`s = \mathrm{sw}(r)/r`
    over the pairs within ``rcut`` (needs ``rcut_smth``).  :math:`s` falls
    with :math:`r`, so ``s_max`` is :math:`s` at the closest pair and ``s_min``
    at the farthest one inside ``rcut``.
``model.parts[k].x_min``, ``x_max``
    With ``-m MODEL``: per descriptor part (one, or several for a hybrid), at
    the part's own ``rcut``/``rcut_smth``, the range of the normalised table
    input :math:`x = (\mathrm{sw}(r)/(r+p) - \bar R_{c,n})/\sigma_{c,n}` (slot
    of neighbor type ``n`` of center type ``c``; :math:`p` = ``env_protection``),
    for se_e2_a / se_e2_r parts; also the part's ``max_nbor_size`` against its
    ``sel``.
``cutoffs[q]``
    Per cutoff scanned (ascending): ``max_nbor_size``, ``percentile_nbor_size`` (the
    ``percentile`` level, nearest rank, from integer histograms merged over ranks: exact),
    ``mean_nbor_size``, per neighbor type over all atoms; the same for the totals
    (``*_mixed``) and per center type (``*_by_center``).
``model.tables``
    With ``-m MODEL``: each embedding table's integer input range ``[L, U]`` from the model's
    stored ``min_nbor_dist`` and from the scan's (:mod:`.table_changes`), and whether any
    differs, i.e. whether ``compress --scan`` would change the tables.
``nframes``, ``natoms``, ``nsystems``, ``natoms_per_type``
    Frames scanned; atoms summed over those frames (atom environments); systems;
    atoms per type summed over frames.

Every statistic is a minimum, a maximum or an integer sum (means are divided
once, at the end; percentiles are read from summed integer histograms), so the JSON
file and the printed summary are bit-identical whatever the number of ranks.  Frames are spread over the ranks in contiguous runs balanced by
frames x atoms (:mod:`dpcompress.parallel.partition`); each rank reads only its
frames, through the package's one training-data reader
(:class:`dpcompress.data.FrameReader`: ``mmap`` / HDF5 slices).  Rank 0 finds
the systems, reports progress (a tqdm bar when stderr is a terminal and tqdm is
installed, else a log line every ``--log-interval`` seconds) and writes the
JSON atomically (temporary file + ``os.replace``).

Errors: a missing or corrupt file is reported with its name.  Found while
listing the data (on rank 0, before any frame is scanned) every rank exits with
status 2; found on one rank while scanning, that rank prints it and calls
``MPI_Abort``, which ends the whole job at once (never a hang).

Modules: :mod:`.accumulator` (the per-frame statistics, merged exactly across
ranks), :mod:`.pairs` (the pairs of a frame and their squared lengths),
:mod:`.result` (the JSON document), :mod:`.model_info` (what the scan needs of a
model), :mod:`.table_changes` (the table ranges a scan implies), :mod:`.summary` (the
printed summary), :mod:`.driver` (the run over the ranks, writing the file),
:mod:`.mpi_comm` (the communicator), :mod:`.progress`, :mod:`.command` (the
command line).  Reading a scan file: :mod:`dpcompress.data.scan_file`.
"""

from ..data import discover_systems, resolve_type_map
from ..data.scan_file import FORMAT, FORMAT_VERSION, load_scan, scan_min_nbor_dist
from .accumulator import Accumulator, percentile_of_histogram, scan_frame
from .command import build_parser, main
from .driver import DEFAULT_CUTOFFS, CollectiveError, iter_frames, run_scan, setup_scan, write_json
from .mpi_comm import SerialComm, get_comm, launcher_size
from .result import build_result
from .summary import format_summary
from .table_changes import table_changes

__all__ = [
    "main", "build_parser", "run_scan", "setup_scan", "iter_frames", "write_json", "CollectiveError",
    "discover_systems", "resolve_type_map",
    "Accumulator", "scan_frame", "build_result", "percentile_of_histogram", "format_summary", "table_changes",
    "DEFAULT_CUTOFFS",
    "SerialComm", "get_comm", "launcher_size",
    "load_scan", "scan_min_nbor_dist", "FORMAT", "FORMAT_VERSION",
]
