"""Test helpers: the single-kernel wrappers' packed tables of a compressed model, the gate rows of
se_atten_v2, and a whole CPU step in the dict form the kernel-level tests compare against.

The packed tables are built from the arrays a descriptor unit writes into a ``.dpc`` file
(``unit.pack``), so the kernel tests run on exactly what the runtime reads.
"""

import numpy as np

from dpcompress._ext import se_a_tab, se_t_tab
from dpcompress.descriptors import parts, unit_of
from dpcompress.descriptors.base import KIND_SE_T
from dpcompress.evaluators.runtime import RuntimeEvaluator
from dpcompress.modelfile import model_bytes
from dpcompress.neighbors import build_neighbor_list


def packed_part(model, part=0):
    desc = parts(model.descriptor)[part]
    return unit_of(desc).pack(desc, model.pair_exclude_types)


def packed_tables(model, part=0):
    """:class:`PackedTables` (se_a family) or :class:`PackedSeTTables` (se_e3) of one descriptor part."""
    packed = packed_part(model, part)
    view = packed.kernel_view()
    return (se_t_tab if packed.ints["kind"] == KIND_SE_T else se_a_tab).tables_from_view(view)


def gate_rows(model, types, index, part=0):
    """Row of the gate table per slot of a se_atten_v2 part; -1 on padding and excluded pairs."""
    gate_of = packed_part(model, part).arrays["gate_of"]
    types = np.asarray(types, dtype=np.int64)
    q = gate_of[types[:, None], types[np.maximum(index, 0)]]
    return np.ascontiguousarray(np.where(index < 0, -1, q), dtype=np.int64)


def cpu_step(model, coords, cell, types, n_threads=1):
    """One compressed step on the CPU runtime, as a dict: energy, force, virial (3, 3), atom_energy,
    atom_virial (natoms, 3, 3), overflow (per part, per center and block: from the neighbor lists),
    beyond_fine, beyond_table."""
    r = RuntimeEvaluator(model_bytes(model)).evaluate(coords, cell, np.asarray(types), n_threads)
    overflow = [build_neighbor_list(coords, cell, types, d.rcut, list(d.sel), mixed_types=d.mixed_types).overflow
                for d in parts(model.descriptor)]
    return dict(energy=r.energy, force=r.force, virial=r.virial, atom_energy=r.atom_energy, atom_virial=r.atom_virial,
                overflow=overflow, beyond_fine=r.beyond_fine, beyond_table=r.beyond_table)


# ------------------------------------------------------------------ NEP: the kernel and its numpy twin on one frame


def nep_neighbors(coords, cell, rcut):
    """Every neighbor within ``rcut`` (one mixed block, grown until nothing is dropped)."""
    n = len(coords)
    sel = 64
    while True:
        nl = build_neighbor_list(coords, cell, np.zeros(n, dtype=np.int64), rcut, [sel], mixed_types=True)
        if not nl.overflow.any():
            return nl
        sel = int((nl.counts + nl.overflow).max()) + 8


class NEPKernel:
    """A NEP model through the single NEP kernel (``backend="c"``, ``dpc_nep_compute``) or its numpy
    twin (``"numpy"``, :mod:`dpcompress.reference.nep`), with the descriptors (the production path
    is the runtime, through :class:`dpcompress.Potential`)."""

    def __init__(self, model, backend="c", tabulated=None):
        from dpcompress._ext.nep_kernel import PackedNEP
        from dpcompress.nep.packing import pack_model

        self.model = model
        self.backend = backend
        self.tabulated = model.tables is not None if tabulated is None else bool(tabulated)
        self.packed = PackedNEP(pack_model(model, self.tabulated)) if backend == "c" else None

    def evaluate(self, coords, cell, types, n_threads=1, descriptor=False):
        from dpcompress.nep.tables import table_gfun
        from dpcompress.reference.nep import evaluate_pairs

        coords = np.asarray(coords, dtype=np.float64)
        types = np.asarray(types, dtype=np.int64)
        nl = nep_neighbors(coords, cell, self.model.rcut)
        if self.backend == "numpy":
            cnt = nl.counts[:, 0]
            mask = np.arange(nl.index.shape[1])[None, :] < cnt[:, None]
            pi = np.repeat(np.arange(len(cnt)), cnt)
            gf = table_gfun(self.model, self.model.tables) if self.tabulated else None
            r = evaluate_pairs(self.model, types, pi, nl.index[mask], nl.vectors[mask], len(coords), gfun=gf)
            e, f, w, d = r["atom_energy"], r["force"], r["atom_virial"], r["descriptor"]
        else:
            e, f, w, d = self.packed.compute(types, nl.index, nl.vectors, nl.counts[:, 0], n_threads, descriptor)
        out = {"energy": float(e.sum()), "atom_energy": e, "force": f, "atom_virial": w, "virial": w.sum(0).reshape(3, 3)}
        if descriptor:
            out["descriptor"] = d
        return out
