"""Reading ranges of frames of an opened system: ``.npy`` memory maps and HDF5 slices.

Only the frames asked for are read (an MPI rank of the scan reads its own frames only), in
blocks of at most :data:`CHUNK_FRAMES` frames of one set, converted to float64, and checked
for NaN and infinities (the error names the file and the frame).
"""

from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from ..core.errors import DataFormatError, DPCompressError
from .catalog import frame_width
from .checks import MAX_TYPES, check_finite_frames, frames_in

#: Frames read from disk at a time: bounds the memory of a block whatever the set's size.
CHUNK_FRAMES = 64


@dataclass(frozen=True)
class FrameBlock:
    """Consecutive frames of one set of a system, as read from disk.

    Attributes
    ----------
    first : int
        Index, in the system (all sets), of the block's first frame.
    set_where : str
        The set (folder, or ``file.h5:/group/set.000``).
    first_in_set : int
        Index, in the set, of the block's first frame.
    coords : ndarray of float64, shape (n, natoms, 3)
    cells : ndarray of float64, shape (n, 3, 3), or None when non-periodic
    atom_types : ndarray of int64, shape (natoms,) or (n, natoms)
        Local types: ``type.raw``, or the per-frame ``real_atom_types``.
    labels : dict
        ``energy`` (n,), ``force`` (n, natoms, 3), ``virial`` (n, 3, 3): those asked for; also the
        parameters asked for, ``fparam`` / ``aparam`` (n, width).
    """

    first: int
    set_where: str
    first_in_set: int
    coords: np.ndarray
    cells: Optional[np.ndarray]
    atom_types: np.ndarray
    labels: Dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def nframes(self):
        return self.coords.shape[0]

    def frame_types(self, k):
        """Local atom types of frame ``k`` of the block."""
        return self.atom_types if self.atom_types.ndim == 1 else self.atom_types[k]

    def frame_where(self, k):
        """Frame ``k`` of the block as named in errors: ``<set> frame <index in the set>``."""
        return f"{self.set_where} frame {self.first_in_set + k}"


class FrameReader:
    """Reads frame ranges of systems; keeps HDF5 files open while in use (a context manager).

    Examples
    --------
    >>> with FrameReader() as reader:                              # doctest: +SKIP
    ...     for block in reader.blocks(system, 0, system.nframes):
    ...         ...
    """

    def __init__(self):
        self._h5 = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for fh in self._h5.values():
            try:
                fh.close()
            except Exception:  # a file already closed or damaged: nothing left to release
                pass
        self._h5.clear()

    def read_array(self, ref, width, nframes, a, b):
        """Frames ``a..b-1`` of a per-frame array (``nframes`` frames of ``width`` numbers) as float64.

        Returns
        -------
        ndarray of float64, shape (b - a, width)

        Raises
        ------
        DataFormatError
            Unreadable, resized since it was opened, or a NaN or infinity (names the frame).
        """
        try:
            if ref.data is not None:  # parsed into memory (dpcompress.data.formats); shape checked there
                raw = ref.data[a:b]
            elif ref.key is not None:
                if ref.path not in self._h5:
                    import h5py

                    self._h5[ref.path] = h5py.File(ref.path, "r")
                ds = self._h5[ref.path][ref.key]
                # the file may have changed since it was opened: check again before slicing
                frames_in(ds.shape, ds.dtype, ref.where, width, nframes)
                if ds.ndim >= 1 and ds.shape[0] == nframes and (ds.ndim >= 2 or width == 1):
                    raw = np.asarray(ds[a:b])
                elif ds.ndim == 1:  # frames one after the other
                    raw = np.asarray(ds[a * width : b * width])
                else:  # the right size in another shape: read as DeePMD-kit does, row-major (nframes, width)
                    raw = np.asarray(ds[()]).reshape(nframes, width)[a:b]
            else:
                mm = np.load(ref.path, mmap_mode="r", allow_pickle=False)
                frames_in(mm.shape, mm.dtype, ref.where, width, nframes)
                raw = np.asarray(mm.reshape(nframes, width)[a:b])
                del mm
            out = raw.reshape(b - a, width).astype(np.float64)
        except DPCompressError:
            raise
        except Exception as exc:
            raise DataFormatError(f"{ref.where}: cannot read frames {a}..{b - 1} ({type(exc).__name__}: {exc})") from None
        check_finite_frames(out, ref.where, a)
        return out

    def blocks(self, info, start=0, stop=None, *, labels=(), ntypes=None, chunk=CHUNK_FRAMES, params=None):
        """Frames ``start..stop-1`` of system ``info`` (all sets counted in order), in blocks.

        Parameters
        ----------
        info : SystemInfo
        start, stop : int
            Frame range (``stop`` None: to the end).
        labels : sequence of str
            Labels to read (``energy``, ``force``, ``virial``, ``atom_ener``, ``atom_pref``); each must
            be in ``info.labels()`` or ``info.atom_labels()``.
        ntypes : int, optional
            Per-frame types must lie in ``[0, ntypes)``; default: ``len(info.type_map)``, or
            :data:`~.checks.MAX_TYPES` without one.
        chunk : int
            Most frames per block.
        params : dict, optional
            Parameters to read, ``{"fparam": width, "aparam": width}`` (numbers per frame: the
            model's ``numb_fparam``, ``natoms * numb_aparam``); each must be in ``info.params()``.

        Yields
        ------
        FrameBlock
        """
        stop = info.nframes if stop is None else stop
        if ntypes is None:
            ntypes = MAX_TYPES if info.type_map is None else len(info.type_map)
        n = info.natoms
        offset = 0
        for st in info.sets:
            lo, hi = max(start - offset, 0), min(stop - offset, st.nframes)
            for a in range(lo, hi, chunk):
                b = min(a + chunk, hi)

                def read(key):
                    return self.read_array(st.arrays[key], frame_width(key, n), st.nframes, a, b)

                coords = read("coord").reshape(b - a, n, 3)
                cells = read("box").reshape(b - a, 3, 3) if info.periodic else None
                types = info.types
                if "real_atom_types" in st.arrays:
                    types = self._real_types(read("real_atom_types"), st.arrays["real_atom_types"].where, ntypes)
                values = {}
                for key in labels:
                    shape = {"energy": (b - a,), "force": (b - a, n, 3), "virial": (b - a, 3, 3), "atom_ener": (b - a, n),
                             "atom_pref": (b - a, n)}[key]
                    values[key] = read(key).reshape(shape)
                for key, width in (params or {}).items():
                    values[key] = self.read_array(st.arrays[key], width, st.nframes, a, b)
                yield FrameBlock(offset + a, st.where, a, coords, cells, types, values)
            offset += st.nframes

    @staticmethod
    def _real_types(rt, where, ntypes):
        types = rt.astype(np.int64)
        if np.any(types != rt) or types.min() < 0 or types.max() >= ntypes:
            raise DataFormatError(
                f"{where}: atom types must be integers in [0, {ntypes}) (the type map), found {rt.min():g}..{rt.max():g}"
            )
        return types
