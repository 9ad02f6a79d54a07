r"""One step of a compressed se_e2_a model on the GPU: the twin of :mod:`dpcompress.evaluators.runtime`.

Pipeline per frame, every array on the device::

    neighbor list (cell list + warp selection)          dpc_cell_candidates_bin_*, dpc_neighbor_rows
    fused forward kernel ──► T (natoms, 4, M)            dpc_se_a_tab_forward<NCOEF, CPL>
    per type, per chunk of atoms:
        D = Tᵀ T_<                                      dpc_descriptor_from_T
        e, ∂e/∂D   fitting net (cuBLAS through CuPy)     dpcompress.gpu.fitting
        ∂E/∂T = T_< ∂Dᵀ + [T ∂D]_<                       dpc_descriptor_gradient_to_T
    fused backward kernel ──► ∂E/∂r_ij (natoms, nnei, 3) dpc_se_a_tab_backward<NCOEF, G>
    force / per-atom virial gather (no atomics)          dpc_scatter_pair_gradients

Every kernel has the name of its C twin (se_e2_r parts: the ``_radial`` variants of the
fused kernels, the C kernels' one-row mode); docs/gpu.md lists the twins.

Protocol (as the CPU module): :func:`pack` once per model (tables uploaded
once), then :func:`forward`, :func:`backward`, :func:`scatter` per frame;
:class:`GpuEvaluator` strings them together with the fitting net.  Nothing in a
step waits for the device: results stay on it until the caller reads them
(:meth:`GpuResult.to_host`).  float64 throughout.
"""

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..core.errors import UnsupportedModelError
from ..descriptors import parts as descriptor_parts
from ..descriptors import unit_of
from ..descriptors.base import KIND_SE_R
from . import neighbor_list as gnl
from .backend import default_backend
from .fitting import DeviceNetwork

#: atoms per fitting-net chunk: D and dD of a chunk take 2 * CHUNK * M * A * 8 bytes
#: (0.84 GB at M = 100, A = 16); every other intermediate is smaller.
CHUNK = 32768


@dataclass
class DevicePart:
    """One se_e2_a (or se_e2_r: ``n_rows`` 1) descriptor part: its packed tables on the device, uploaded once."""

    descriptor: Any
    sel: tuple
    nnei: int
    nblocks: int
    ntypes: int
    M: int
    A: int
    ncoef: int
    rcut: float
    rcut_smth: float
    protection: float
    sel_offsets: Any
    avg: Any
    std: Any
    block_mode: Any
    table_of: Any
    tab_real: Any
    tab_count: Any
    tab_offset: Any
    coef: Any
    workspace: dict
    n_rows: int = 4  # 4: se_e2_a; 1: radial mode (se_e2_r)
    rescale: float = 1.0  # radial mode: D = rescale * T

    @property
    def dim(self):
        return self.M * self.A if self.n_rows == 4 else self.M

    @property
    def kernel_mode(self):
        """Suffix of the fused kernels' names: the C kernels' one-row mode has kernels of its own."""
        return "" if self.n_rows == 4 else "_radial"


def pack(be, model, desc):
    """Upload the tables of a compressed se_e2_a or se_e2_r descriptor (once per model)."""
    if desc.type_name not in ("se_e2_a", "se_e2_r"):
        raise UnsupportedModelError(
            f"the GPU path evaluates se_e2_a and se_e2_r descriptors, not "
            f"{getattr(desc, 'display_name', desc.type_name)!r} (use device='cpu')"
        )
    if getattr(desc, "mixed_types", False):
        raise UnsupportedModelError("the GPU path needs per-type neighbor blocks (mixed_types is not supported)")
    packed = unit_of(desc).pack(desc, model.pair_exclude_types)
    radial = packed.ints["kind"] == KIND_SE_R
    return upload(be, packed.kernel_view(), desc.sel, desc, rescale=float(desc.RESCALE) if radial else 1.0)


def upload(be, host, sel, descriptor=None, rescale=1.0):
    """A :class:`DevicePart` from the CPU kernels' :class:`~dpcompress._ext.se_a_tab.PackedTables` ``host``."""
    if getattr(host, "gate", None) is not None:
        raise UnsupportedModelError("the GPU path has no gated mode (se_atten_v2, se_atten): use device='cpu'")
    up = be.asarray
    return DevicePart(
        descriptor=descriptor,
        sel=tuple(int(s) for s in sel),
        nnei=int(host.nnei),
        nblocks=int(host.nblocks),
        ntypes=int(host.ntypes),
        M=int(host.n_channels),
        A=int(getattr(host, "axis_neuron", 0)),
        ncoef=int(host.ncoef),
        rcut=float(host.rcut),
        rcut_smth=float(host.rcut_smth),
        protection=float(host.protection),
        sel_offsets=up(host.sel_offsets, np.int64),
        avg=up(host.avg, np.float64),
        std=up(host.std, np.float64),
        block_mode=up(host.block_mode, np.int8),
        table_of=up(host.table_of, np.int64),
        tab_real=up(host.tab_real, np.float64),
        tab_count=up(host.tab_count, np.int64),
        tab_offset=up(host.tab_offset, np.int64),
        coef=up(host.coef, np.float64),
        workspace={},
        n_rows=int(getattr(host, "n_rows", 4)),
        rescale=float(rescale),
    )


def _table_args(part, natoms, types, nl):
    """The DPC_SE_A_TAB_PARAMS arguments of src_c/cuda/se_a_tab.cu."""
    return (
        np.int64(natoms), np.int64(part.nnei), np.int64(part.nblocks), np.int64(part.M),
        np.float64(part.rcut), np.float64(part.rcut_smth), np.float64(part.protection),
        types, nl.vectors, nl.counts, part.sel_offsets, part.avg, part.std, part.block_mode,
        part.table_of, part.tab_real, part.tab_count, part.tab_offset, part.coef,
    )


def _warp_grid(be, n):
    wpb = be.block // 32
    return (n + wpb - 1) // wpb


def channels_per_lane(M):
    """Forward kernel's CPL: channels each lane keeps in registers (tiles of 32 CPL channels)."""
    return max(1, min(4, math.ceil(M / 32)))


def group_size(M):
    """Backward kernel's G: lanes per neighbor (fewer shuffles for small M, more coalescing for large M)."""
    return 8 if M <= 128 else 16 if M <= 512 else 32


def neighbor_list(be, part, coords, cell, types, err):
    return gnl.build(be, coords, cell, types, part.rcut, part.sel, err, part.workspace, part.sel_offsets)


def forward(be, part, types, nl, check=False, cpl=None):
    """T (natoms, 4, M) and, with ``check``, the per-atom out-of-table counts (2, natoms).

    ``cpl`` overrides :func:`channels_per_lane` (tests run every compiled variant)."""
    xp = be.xp
    n = int(types.shape[0])
    T = xp.empty((n, part.n_rows, part.M), dtype=np.float64)
    beyond = xp.zeros((2, n) if check else (2, 1), dtype=np.int64)
    name = f"dpc_se_a_tab_forward{part.kernel_mode}<{part.ncoef},{cpl or channels_per_lane(part.M)}>"
    be.launch("se_a_tab", name, _warp_grid(be, n), (*_table_args(part, n, types, nl), T, np.int32(bool(check)), beyond))
    return T, (beyond if check else None)


def descriptor_from_T(be, part, T, rows, D, col0):
    """D[:, col0 : col0 + M A] = (Tᵀ T_<)[rows] (D is (len(rows), ldd), C-contiguous); radial: rescale T[rows]."""
    if part.n_rows == 1:
        D[:, col0 : col0 + part.M] = be.xp.take(T[:, 0, :], rows, axis=0) * part.rescale
        return
    nrows = int(rows.shape[0])
    total = nrows * part.M * part.A
    be.launch("se_a_tab", "dpc_descriptor_from_T", (total + be.block - 1) // be.block, (
        np.int64(nrows), rows, T, np.int64(part.M), np.int64(part.A), np.int64(D.shape[1]), np.int64(col0), D))


def descriptor_gradient_to_T(be, part, T, rows, dD, col0, dT):
    """dT[rows] = ∂E/∂T from dD[:, col0 : col0 + M A] (chain rule through D = Tᵀ T_<, or D = rescale T)."""
    if part.n_rows == 1:
        dT[rows, 0, :] = dD[:, col0 : col0 + part.M] * part.rescale
        return
    nrows = int(rows.shape[0])
    total = nrows * 4 * part.M
    be.launch("se_a_tab", "dpc_descriptor_gradient_to_T", (total + be.block - 1) // be.block, (
        np.int64(nrows), rows, T, np.int64(part.M), np.int64(part.A), np.int64(dD.shape[1]), np.int64(col0), dD, dT))


def backward(be, part, types, nl, dT, G=None):
    """dE/dr_ij (natoms, nnei, 3) from dT = dE/dT (natoms, 4, M); ``G`` overrides :func:`group_size`."""
    n = int(types.shape[0])
    pair_grad = be.xp.empty((n, part.nnei, 3), dtype=np.float64)
    name = f"dpc_se_a_tab_backward{part.kernel_mode}<{part.ncoef},{G or group_size(part.M)}>"
    be.launch("se_a_tab", name, _warp_grid(be, n), (*_table_args(part, n, types, nl), dT, pair_grad))
    return pair_grad


def scatter(be, part, types, nl, coords, pair_grad, force, atom_virial, accumulate):
    """Forces (natoms, 3) and per-atom virials (natoms, 9) from the pair gradients (gathered per atom)."""
    n = int(types.shape[0])
    be.launch("neighbors", "dpc_scatter_pair_gradients", _warp_grid(be, n), (
        np.int64(n), np.int64(part.nnei), np.int64(part.nblocks), np.int32(0), types, part.sel_offsets,
        nl.index, nl.vectors, nl.counts, nl.overflow, pair_grad, coords, np.float64(part.rcut * part.rcut),
        *nl.grid_args, np.int32(bool(accumulate)), force, atom_virial))


@dataclass
class GpuResult:
    """One frame's results, still on the device."""

    natoms: int
    energy: Any  # 0-d
    force: Any  # (natoms, 3)
    virial: Any  # (9,)
    atom_energy: Any  # (natoms,)
    atom_virial: Any  # (natoms, 9)
    overflow: list  # per part, (natoms, nblocks) int64
    beyond: Optional[Any]  # (2,) int64 with check
    err: Any  # 3 error words

    def to_host(self, be, atomic=True):
        """Read the results back (the only transfer of a step); raise InputError for bad input found on the device.

        Returns the dict of :class:`dpcompress.evaluators.gpu.GpuEvaluator`
        (``atom_virial`` (natoms, 3, 3)); ``overflow`` holds host arrays only
        when some neighbor was dropped (else zeros, without copying).
        """
        gnl.raise_device_errors(be.to_host(self.err), self.natoms)
        out = dict(
            energy=float(be.to_host(self.energy)),
            force=be.to_host(self.force),
            virial=be.to_host(self.virial).reshape(3, 3),
        )
        if atomic:
            out["atom_energy"] = be.to_host(self.atom_energy)
            out["atom_virial"] = be.to_host(self.atom_virial).reshape(self.natoms, 3, 3)
        overflow = []
        for o in self.overflow:
            total = int(be.to_host(o.sum()))
            overflow.append(be.to_host(o) if total else np.zeros(tuple(o.shape), dtype=np.int64))
        out["overflow"] = overflow
        if self.beyond is not None:
            b = be.to_host(self.beyond)
            out["beyond_fine"], out["beyond_table"] = int(b[0]), int(b[1])
        return out


class GpuEvaluator:
    """A compressed se_e2_a / se_e2_r model (or a hybrid of such parts) ready to run on a backend.

    Parameters
    ----------
    model : DPModel
        Compressed (``model.is_compressed``).
    backend : backend or None
        :class:`~dpcompress.gpu.backend.CupyBackend` (default: the current CUDA
        device) or :class:`~dpcompress.gpu.emulator.EmulatorBackend`.
    chunk : int
        Atoms per fitting-net chunk (bounds the memory of D, dD and the activations).
    """

    def __init__(self, model, backend=None, chunk=CHUNK):
        if not model.is_compressed:
            raise UnsupportedModelError(
                'device="gpu" runs compressed models: compress the model first '
                "(dpcompress compress -i model.dp -o model.dpc) and load the .dpc file"
            )
        if backend is None:
            backend = default_backend()
        self.be = backend
        self.model = model
        self.chunk = int(chunk)
        self.parts = [pack(backend, model, d) for d in descriptor_parts(model.descriptor)]
        self.dim = sum(p.dim for p in self.parts)
        nt = model.ntypes
        fit = np.array([t not in model.fitting.exclude_types for t in range(nt)], dtype=np.float64)
        keep = np.array([t not in model.atom_exclude_types for t in range(nt)], dtype=np.float64)
        self.fit_mask, self.keep_mask = fit, keep
        self.bias_atom_e = np.asarray(model.fitting.bias_atom_e, dtype=np.float64)
        self.out_bias = np.asarray(model.out_bias, dtype=np.float64).reshape(-1)
        nets = {}
        self.nets = []
        for t in range(nt):
            net = model.fitting.network(t)
            if id(net) not in nets:
                nets[id(net)] = DeviceNetwork(backend, net)
            self.nets.append(nets[id(net)])
        self._types_key = None

    # per-frame type bookkeeping, cached while the types do not change
    def _type_rows(self, types_host):
        if self._types_key is not None and np.array_equal(self._types_key, types_host):
            return self._types_dev, self._rows
        be = self.be
        self._types_key = types_host.copy()
        self._types_dev = be.asarray(types_host, np.int64)
        self._rows = [(t, be.asarray(np.flatnonzero(types_host == t).astype(np.int64), np.int64))
                      for t in range(self.model.ntypes) if np.any(types_host == t)]
        return self._types_dev, self._rows

    def evaluate(self, coords, cell, types, check=False, timer=None):
        """One frame.  ``coords`` (natoms, 3) host or device array, ``cell`` (3, 3) host array or None,
        ``types`` (natoms,) int64 host array (validated by the caller).  Returns a :class:`GpuResult`.

        ``timer(stage)``, when given, returns a context manager wrapped around each stage
        ("neighbors", "forward", "fitting", "backward", "gather") of each part (benchmarks).
        """
        be, xp = self.be, self.be.xp
        stage = timer if timer is not None else (lambda name: contextlib.nullcontext())
        types_host = np.ascontiguousarray(types, dtype=np.int64)
        n = int(types_host.shape[0])
        coords = be.asarray(coords, np.float64).reshape(n, 3)
        types_dev, rows_by_type = self._type_rows(types_host)
        err = gnl.new_error_words(be)

        nls, Ts, beyond = [], [], None
        for part in self.parts:
            with stage("neighbors"):
                nl = neighbor_list(be, part, coords, cell, types_dev, err)
            with stage("forward"):
                T, b = forward(be, part, types_dev, nl, check)
            nls.append(nl)
            Ts.append(T)
            if check:
                s = b.sum(axis=1)
                beyond = s if beyond is None else beyond + s

        atom_energy = xp.empty(n, dtype=np.float64)
        skipped = any(self.fit_mask[t] * self.keep_mask[t] == 0 for t, _ in rows_by_type)
        alloc = xp.zeros if skipped else xp.empty
        dTs = [alloc((n, p.n_rows, p.M), dtype=np.float64) for p in self.parts]
        with stage("fitting"):
            self._fitting(rows_by_type, Ts, dTs, atom_energy)
        del Ts, T  # the pair gradients below reuse their memory (peak: docs/gpu.md)

        force = xp.empty((n, 3), dtype=np.float64)
        atom_virial = xp.empty((n, 9), dtype=np.float64)
        for k, (part, nl, dT) in enumerate(zip(self.parts, nls, dTs)):
            with stage("backward"):
                pair_grad = backward(be, part, types_dev, nl, dT)
            with stage("gather"):
                scatter(be, part, types_dev, nl, coords, pair_grad, force, atom_virial, accumulate=k > 0)
            del pair_grad
        return GpuResult(
            natoms=n,
            energy=atom_energy.sum(),
            force=force,
            virial=atom_virial.sum(axis=0),
            atom_energy=atom_energy,
            atom_virial=atom_virial,
            overflow=[nl.overflow for nl in nls],
            beyond=beyond,
            err=err,
        )

    def _fitting(self, rows_by_type, Ts, dTs, atom_energy):
        """Per type and chunk: D = Tᵀ T_<, the fitting net, dE/dT; fills atom_energy and dTs."""
        be, xp = self.be, self.be.xp
        for t, rows in rows_by_type:
            fit, keep = self.fit_mask[t], self.keep_mask[t]
            if fit * keep == 0:  # no fitting-net term: e = keep * out_bias, dE/dD = 0
                atom_energy[rows] = keep * self.out_bias[t]
                continue
            net = self.nets[t]
            for start in range(0, int(rows.shape[0]), self.chunk):
                r = rows[start : start + self.chunk]
                D = xp.empty((int(r.shape[0]), self.dim), dtype=np.float64)
                col = 0
                for part, T in zip(self.parts, Ts):
                    descriptor_from_T(be, part, T, r, D, col)
                    col += part.dim
                y, dD = net.forward_backward(D)
                atom_energy[r] = keep * (fit * (y + self.bias_atom_e[t]) + self.out_bias[t])
                dD = xp.ascontiguousarray(dD)
                col = 0
                for part, T, dT in zip(self.parts, Ts, dTs):
                    descriptor_gradient_to_T(be, part, T, r, dD, col, dT)
                    col += part.dim
                del D, dD

    def evaluate_to_host(self, coords, cell, types, check=False, atomic=True):
        """:meth:`evaluate` and read back: the dict of :class:`dpcompress.evaluators.gpu.GpuEvaluator`."""
        return self.evaluate(coords, cell, types, check).to_host(self.be, atomic)

