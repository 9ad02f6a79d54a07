"""Data formats besides ``deepmd/npy`` and ``deepmd/hdf5``: extxyz, VASP OUTCAR and vasprun.xml, and
every format dpdata reads.

``fmt`` names (``--format`` of ``eval``, ``test`` and ``scan``):

``deepmd/npy``, ``deepmd/hdf5``
    Read by :mod:`.catalog` (headers) and :mod:`.frames` (frame ranges): no extra package.
``extxyz``
    dpdata when installed (``pip install 'dpcompress[data]'``), else ASE
    (``ase.io.read(..., format="extxyz")``), else the package's own reader (:mod:`.extxyz`).
``vasp/outcar``, ``vasp/xml``
    dpdata when installed, else ASE (``vasp-out``, ``vasp-xml``); with neither, an error
    naming the extras.
``pwmat/movement``, ``pwmat/atom.config``
    PWmat's ``MOVEMENT`` (``OUT.MLMD``) and ``atom.config``: always the package's own reader
    (:mod:`.pwmat`), which keeps the file's atom order and every frame (dpdata sorts the atoms
    and drops frames by a guessed SCF limit).
any other name
    Passed to dpdata as its ``fmt`` (``lammps/dump``, ``cp2k/output``, ``qe/cp/traj``, ...).

Without ``fmt`` the format is told from the name: a folder is searched for ``deepmd/npy``
systems and ``deepmd/hdf5`` files; a file ``*.h5``/``*.hdf5``/``*.hdf`` is ``deepmd/hdf5``,
``*.xyz``/``*.extxyz`` is ``extxyz``, ``OUTCAR*`` is ``vasp/outcar``, ``vasprun*.xml`` is
``vasp/xml``, ``MOVEMENT*``/``OUT.MLMD`` is ``pwmat/movement``, ``atom.config*``/``final.config`` is
``pwmat/atom.config``; any other file is tried as ``deepmd/hdf5``.

Energies of VASP files are the free energy ``TOTEN`` (the energy the forces are the gradient
of; dpdata's label and ASE's ``free_energy``).  Every reader gives the same arrays for the same
file (to the parsers' float rounding): the type map is the elements in order of first
appearance among the atoms (:func:`~.memory.first_appearance_types`), and frames with a
different atom list form a separate system.
"""

import fnmatch
import os

import numpy as np

from ..core.errors import DataFormatError, InputError
from .memory import memory_system

NPY, HDF5 = "deepmd/npy", "deepmd/hdf5"
EXTXYZ, OUTCAR, VASPRUN = "extxyz", "vasp/outcar", "vasp/xml"
MOVEMENT, ATOM_CONFIG = "pwmat/movement", "pwmat/atom.config"
#: Formats the package's own readers always read (:mod:`.pwmat`: file atom order, every frame).
NATIVE_ONLY = (MOVEMENT, ATOM_CONFIG)

#: Spellings accepted for ``--format``.
ALIASES = {
    "npy": NPY, "deepmd": NPY, "hdf5": HDF5, "h5": HDF5, "deepmd/h5": HDF5,
    "xyz": EXTXYZ, "quip/gap/xyz": EXTXYZ, "outcar": OUTCAR, "vasprun": VASPRUN, "xml": VASPRUN,
    "pwmat/movement": MOVEMENT, "pwmat/atom.config": ATOM_CONFIG,
    "movement": MOVEMENT, "pwmat": MOVEMENT, "mlmd": MOVEMENT, "pwmat/mlmd": MOVEMENT,
    "atom.config": ATOM_CONFIG, "pwmat/config": ATOM_CONFIG, "final.config": ATOM_CONFIG, "pwmat/final.config": ATOM_CONFIG,
}

#: File-name patterns (lower case, fnmatch) by format: where the name alone tells the format.
NAME_PATTERNS = (
    (("*.h5", "*.hdf5", "*.hdf"), HDF5),
    (("*.xyz", "*.extxyz"), EXTXYZ),
    (("outcar*",), OUTCAR),
    (("vasprun*.xml",), VASPRUN),
    (("movement*", "*.movement", "out.mlmd*"), MOVEMENT),
    (("atom.config*", "final.config*", "*.atom.config"), ATOM_CONFIG),
)

#: dpdata's names where they differ from ours ("quip/gap/xyz" is the extxyz reader in every dpdata version).
DPDATA_FORMATS = {EXTXYZ: "quip/gap/xyz"}

#: ASE's format names for those ASE reads (used without dpdata).
ASE_FORMATS = {EXTXYZ: "extxyz", OUTCAR: "vasp-out", VASPRUN: "vasp-xml"}

#: The ``--format`` help of the commands that read data.
FORMAT_HELP = ("data format: deepmd/npy, deepmd/hdf5, extxyz, vasp/outcar, vasp/xml, pwmat/movement, pwmat/atom.config, "
               "or any dpdata format (default: from the names: folders deepmd, *.h5 hdf5, *.xyz extxyz, OUTCAR*, "
               "vasprun*.xml, MOVEMENT*, atom.config*)")

MISSING_READER = "pip install 'dpcompress[data]' (dpdata)"


def normalize_format(fmt):
    """The canonical name of ``fmt`` (None stays None: detect from the name)."""
    if fmt is None:
        return None
    fmt = str(fmt).strip()
    if not fmt:
        raise InputError("--format: empty format name")
    return ALIASES.get(fmt.lower(), fmt)


def format_from_name(path):
    """The format the file name ``path`` implies, or None (a folder, or a name that says nothing)."""
    name = os.path.basename(os.fspath(path)).lower()
    for patterns, fmt in NAME_PATTERNS:
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            return fmt
    return None


def is_deepmd(fmt):
    return fmt in (None, NPY, HDF5)


def _dpdata():
    try:
        import dpdata
    except ImportError:
        return None
    return dpdata


def _ase_io():
    try:
        import ase.io
    except ImportError:
        return None
    return ase.io


def frames_to_systems(path, kind, frames, labels):
    """Group parsed frames into systems (frames with the same atom list, in order) as SystemInfo.

    Parameters
    ----------
    path : str
    kind : str
        The format, recorded in :attr:`SystemInfo.kind`.
    frames : list of dict
        ``symbols``, ``coords``, ``cell`` (or None), ``energy``, ``force``, ``virial`` (or None),
        as :func:`.extxyz.read_extxyz` returns.
    labels : bool
        Keep the labels that every frame of a system has.
    """
    groups = {}
    for k, f in enumerate(frames):
        groups.setdefault((tuple(f["symbols"]), f["cell"] is not None), []).append(k)
    out = []
    for g, ((symbols, periodic), members) in enumerate(groups.items()):
        name = path if len(groups) == 1 else f"{path}[system {g}: frames {members[0]}..{members[-1]}, {len(symbols)} atoms]"
        sel = [frames[k] for k in members]
        lab = {}
        if labels:
            for key in ("energy", "force", "virial"):
                if all(f[key] is not None for f in sel):
                    lab[key] = np.array([f[key] for f in sel], dtype=np.float64)
        cells = np.array([f["cell"] for f in sel], dtype=np.float64) if periodic else None
        coords = np.array([f["coords"] for f in sel], dtype=np.float64)
        out.append(memory_system(name, kind, path, symbols, coords, cells, lab))
    return out


def _dpdata_systems(dpdata, path, fmt):
    """dpdata's systems in ``path``: as a multi-system source (extxyz; a folder of systems) if that
    gives any, else as one system; labeled if it can be, else coordinates only."""
    first = None
    for labeled in (True, False):
        try:
            try:
                multi = dpdata.MultiSystems.from_file(path, fmt=fmt, labeled=labeled)
                systems = [s for s in multi.systems.values() if s.get_nframes()]
            except NotImplementedError:  # a format with no multi-system reading
                systems = []
            if systems:
                return systems
            one = (dpdata.LabeledSystem if labeled else dpdata.System)(path, fmt=fmt)
            return [one] if one.get_nframes() else []
        except Exception as exc:  # dpdata raises anything from its parsers; keep the labeled attempt's reason
            first = first or exc
    raise DataFormatError(f"{path}: dpdata cannot read it as {fmt!r} ({type(first).__name__}: {first})")


def _read_dpdata(dpdata, path, fmt):
    """Frames of ``path`` through dpdata (every system of a multi-system format)."""
    systems = _dpdata_systems(dpdata, path, fmt)
    frames = []
    for s in systems:
        d = s.data
        names = list(d["atom_names"])
        symbols = tuple(names[t] for t in np.asarray(d["atom_types"]))
        nopbc = bool(d.get("nopbc", False))
        for k in range(len(d["coords"])):
            f = dict(symbols=symbols, coords=np.asarray(d["coords"][k]), cell=None if nopbc else np.asarray(d["cells"][k]),
                     energy=None, force=None, virial=None)
            for key, dkey in (("energy", "energies"), ("force", "forces"), ("virial", "virials")):
                if dkey in d and d[dkey] is not None:
                    f[key] = np.asarray(d[dkey][k])
            frames.append(f)
    return frames


def _read_ase(aseio, path, fmt):
    """Frames of ``path`` through ASE (extxyz, OUTCAR, vasprun.xml)."""
    try:
        images = aseio.read(path, index=":", format=ASE_FORMATS[fmt])
    except Exception as exc:
        raise DataFormatError(f"{path}: ASE cannot read it as {ASE_FORMATS[fmt]!r} ({type(exc).__name__}: {exc})") from None
    frames = []
    for k, atoms in enumerate(images):
        pbc = np.asarray(atoms.pbc, dtype=bool)
        if pbc.any() and not pbc.all():
            raise DataFormatError(f"{path}: frame {k} is partially periodic (pbc={pbc.tolist()}): only 3-D periodic or non-periodic frames are read")
        cell = np.array(atoms.cell.array, dtype=np.float64) if pbc.all() else None
        results = dict(getattr(atoms.calc, "results", None) or {})
        energy = None
        # VASP: TOTEN (free energy, consistent with the forces), as dpdata; extxyz: the energy key
        order = ("free_energy", "energy") if fmt in (OUTCAR, VASPRUN) else ("energy", "free_energy")
        for key in order:
            if results.get(key) is not None:
                energy = float(results[key])
                break
        if energy is None:
            energy = next((float(atoms.info[key]) for key in ("Energy", "REF_energy") if key in atoms.info), None)
        force = results.get("forces")
        if force is None:
            force = next((atoms.arrays[c] for c in ("force", "REF_forces") if c in atoms.arrays), None)
        virial = None
        if "virial" in atoms.info:
            virial = np.asarray(atoms.info["virial"], dtype=np.float64)
            # ASE reads 9 numbers column by column (extxyz's Fortran order); dpdata and the native
            # reader row by row: follow dpdata (identical for a symmetric virial)
            virial = virial.T if virial.shape == (3, 3) else virial.reshape(3, 3)
        elif results.get("stress") is not None and cell is not None:
            s = np.asarray(results["stress"], dtype=np.float64)
            if s.size == 6:  # Voigt xx yy zz yz xz xy
                s = np.array([[s[0], s[5], s[4]], [s[5], s[1], s[3]], [s[4], s[3], s[2]]])
            virial = -abs(np.linalg.det(cell)) * s.reshape(3, 3)
        frames.append(dict(symbols=tuple(atoms.get_chemical_symbols()), coords=atoms.get_positions(), cell=cell,
                           energy=energy, force=None if force is None else np.asarray(force, dtype=np.float64),
                           virial=virial))
    return frames


def reader_for(fmt):
    """Which reader takes ``fmt`` here: ``"dpdata"``, ``"ase"`` or ``"native"``; InputError when none is installed."""
    if fmt in NATIVE_ONLY:
        return "native"
    if _dpdata() is not None:
        return "dpdata"
    if fmt in ASE_FORMATS and _ase_io() is not None:
        return "ase"
    if fmt == EXTXYZ:
        return "native"
    extra = f"{MISSING_READER} or 'dpcompress[ase]' (ASE)" if fmt in ASE_FORMATS else MISSING_READER
    raise InputError(f"reading format {fmt!r} needs dpdata: {extra}")


def open_foreign_systems(path, fmt, labels=False):
    """Parse a file of format ``fmt`` (not deepmd) into systems held in memory.

    Parameters
    ----------
    path : str or os.PathLike
    fmt : str
        Canonical name (:func:`normalize_format`).
    labels : bool
        Keep energies, forces and virials.

    Returns
    -------
    list of SystemInfo

    Raises
    ------
    InputError
        No installed package reads ``fmt`` (the message names the extra to install).
    DataFormatError
        The file cannot be parsed, or holds no frame (the message names it).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataFormatError(f"{path}: no such file or directory")
    how = reader_for(fmt)
    if how == "dpdata":
        frames = _read_dpdata(_dpdata(), path, DPDATA_FORMATS.get(fmt, fmt))
    elif how == "ase":
        frames = _read_ase(_ase_io(), path, fmt)
    elif fmt in NATIVE_ONLY:
        from .pwmat import read_pwmat

        frames = read_pwmat(path)
    else:
        from .extxyz import read_extxyz

        frames = read_extxyz(path)
    if not frames:
        raise DataFormatError(f"{path}: no frames read as {fmt!r}")
    return frames_to_systems(path, fmt, frames, labels)
