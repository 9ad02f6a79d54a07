r"""The model runtime over MPI ranks: spatial domain decomposition of one frame.

Every rank receives the whole frame (the :meth:`Potential.eval` contract), owns the atoms of
its spatial block (:func:`dpcompress.parallel.domain.owners`) and computes them as centers,
the other atoms and the periodic images serving as neighbors: exactly what a halo exchange would
deliver.  A model that passes messages (DPA-2: a center's energy depends on its neighbors' states of
the previous layer, so on atoms up to ``ghost_width`` = rcut(repinit) + nlayers x rcut(repformer)
away) also evaluates, as *senders* (``dpc_frame.nsender``), every other atom that some periodic
image of lies within ``ghost_width - rcut`` of a center: their states reach the centers, their
energies are not counted, and the forces on them are summed onto them like any neighbor's.  The
whole frame is at hand, so every sender's candidate row is complete; the halo (``ghost_width``)
only sets which atoms are senders.  Each center's neighbors, their order and its energy are the
ones the serial runtime computes (ties are broken by the frame's atom index, passed as tags).  Then one ``Allreduce``
sums per-atom energies, forces and per-atom virials, so every rank returns the full result.

Errors are agreed on collectively before the result collective
(:mod:`dpcompress.parallel.agreement`): a rank that fails (a coincident pair in its domain, say)
reports it in a status reduction of five int64, and every rank raises the same error, naming the
frame's (global) atom indices and the rank that saw it; no rank is left waiting.  Per
:meth:`Potential.eval <dpcompress.Potential.eval>` call, :meth:`DecomposedEvaluator.start` first
agrees that every rank's inputs were valid and are the same frames (a digest of coordinates,
cells, types and frame count); per frame, one status reduction precedes the result ``Allreduce``.
"""

import numpy as np

from ..core.errors import InputError
from ..modelfile.container import decode
from ..neighbors import find_candidates
from ..parallel.agreement import BEFORE, DURING, agree, digest
from ..parallel.domain import owners
from .base import Evaluator, Overflow, result_from_atoms
from .runtime import overflow_of


class DecomposedEvaluator(Evaluator):
    """A :class:`~dpcompress.evaluators.runtime.RuntimeEvaluator` spread over the ranks of ``comm``.

    Compressed DP models and NEP models alike: the runtime takes any model's frame as centers plus
    neighbors, so each rank computes its own atoms whatever the model.

    Attributes
    ----------
    pending : bool
        True from the start of an eval call until its first agreement (:meth:`start`): an error
        raised meanwhile may be this rank's alone, and the rank must still join that agreement.
    """

    def __init__(self, runtime, comm):
        self.runtime = runtime
        self.comm = comm
        self.type_map = runtime.type_map
        self.rcut = runtime.rcut
        self.compressed = runtime.compressed
        self.source = runtime.source
        self.pending = False
        model = runtime.runtime
        #: evaluate senders (``dpc_frame.nsender``): the model passes messages (DPA-2)
        self.passes_messages = model.passes_messages
        #: distance from a center within which an atom is a sender, Å (ghost_width - rcut)
        self.sender_width = model.ghost_width - model.rcut if self.passes_messages else 0.0

    def senders(self, coords, cell, mine, n_threads=1):
        r"""The atoms, other than the centers ``mine``, that send messages to them: sorted indices.

        Atom :math:`j` is a sender when some periodic image of it lies within :math:`w` =
        ``ghost_width - rcut`` of a center: with :math:`L` repformer layers of cutoff :math:`r_g`
        and a repinit of cutoff :math:`r_i` (``ghost_width`` = :math:`r_i + L r_g`), a center's
        energy depends on the layer-:math:`(L-k)` state of the atoms :math:`k` repformer hops away,
        all within :math:`L r_g = w` (for :math:`r_i \ge r_g`, ``rcut`` = :math:`r_i`), and each
        such state on that atom's own neighbors within ``rcut``.  Found with the cell list at
        cutoff :math:`w` (its candidates are a superset, a hair beyond :math:`w`: an extra sender
        only costs its evaluation).
        """
        natoms = len(coords)
        if self.sender_width <= 0.0 or len(mine) == 0 or len(mine) == natoms:
            return np.empty(0, dtype=np.int64)
        rest = np.setdiff1d(np.arange(natoms), mine, assume_unique=True)
        order = np.concatenate([mine, rest])
        cand = find_candidates(np.ascontiguousarray(coords[order]), cell, self.sender_width, n_centers=len(mine),
                               n_threads=n_threads)
        near = cand.index.astype(np.int64)
        images = near >= natoms
        near[images] = cand.image_owner[near[images] - natoms]  # an image stands for its atom
        near = np.unique(near)
        return np.sort(order[near[near >= len(mine)]])

    def model_digest(self):
        """:func:`~dpcompress.parallel.agreement.digest` of the model's arrays (names, dtypes, shapes, values).

        The header is left out: it holds the time the bytes were written, which differs between
        ranks that each compressed the same model.
        """
        arrays = decode(self.runtime.runtime.buffer, self.source).arrays
        parts = []
        for name in sorted(arrays):
            parts += [np.frombuffer(name.encode(), dtype=np.uint8), arrays[name]]
        return digest(*parts)

    def start(self, frames=None, error=None):
        """The first agreement of an eval call: every rank's inputs are valid and the same frames.

        Parameters
        ----------
        frames : tuple of arrays, or None
            This rank's validated (coords, cells, types), all frames of the call.
        error : Exception or None
            This rank's failure before it got that far (an invalid argument).

        Raises
        ------
        Exception
            On every rank alike: the error of the lowest failing rank, or :class:`InputError` when
            the ranks were given different frames (or a different number of them).
        """
        self.pending = False  # whatever happens below, this rank has joined the call's agreement
        value = None
        if error is None:
            try:
                value = digest(*frames)
            except Exception as exc:  # noqa: BLE001 - a local failure must still reach the reduction
                error = exc
        agree(self.comm, error=error, stage=BEFORE, inputs_digest=value, what="frames",
              compared="coords, cells, atom_types and the number of frames")

    def share(self, coords, cell, types, rank, size, n_threads=1):
        """This rank's part of the frame, packed for one sum over ranks (no communication).

        Returns
        -------
        buf : ndarray
            [beyond_fine, beyond_table, overflow total, 0, atom energies, forces, atom virials];
            the buffers of all ranks sum to the whole frame's.
        worst : tuple
            (count, part, atom, block) of the worst sel overflow of this rank's centers.
        """
        natoms = len(types)
        buf = np.zeros(4 + 13 * natoms)
        coords = np.asarray(coords, dtype=np.float64)
        mine = np.flatnonzero(owners(coords, cell, size) == rank)
        try:
            # centers, then senders (message passing only), then the other atoms
            send = self.senders(coords, cell, mine, n_threads) if self.passes_messages else np.empty(0, np.int64)
            head = np.concatenate([mine, send])
            order = np.concatenate([head, np.setdiff1d(np.arange(natoms), head)])
            cand = find_candidates(np.ascontiguousarray(coords[order]), cell, self.rcut, n_centers=len(head),
                                   n_threads=n_threads)
        except InputError:
            # its messages name atoms by their place in the reordered frame; the search of the frame
            # in its own order fails the same way and names them as the caller does
            find_candidates(coords, cell, self.rcut, n_centers=0, n_threads=n_threads)
            raise
        t = np.ascontiguousarray(np.asarray(types)[order], dtype=np.int32)
        e, f, w, info = self.runtime.compute(cand, t, n_threads, tag=order.astype(np.int64), nlocal=len(mine),
                                             nsender=len(head) if self.passes_messages else None)
        buf[0], buf[1], buf[2] = info["beyond_fine"], info["beyond_table"], info["overflow"]
        buf[4 + mine] = e
        buf[4 + natoms : 4 + 4 * natoms].reshape(natoms, 3)[order] = f
        buf[4 + 4 * natoms :].reshape(natoms, 9)[order] = w
        o = overflow_of(info)
        worst = (o.worst, o.part, int(order[o.atom]), o.block) if o.worst else (0, -1, -1, -1)
        return buf, worst

    def evaluate(self, coords, cell, types, n_threads=1):
        comm = self.comm
        error, buf, worst = None, None, (0, -1, -1, -1)
        try:
            buf, worst = self.share(coords, cell, types, comm.rank, comm.size, n_threads)
        except Exception as exc:  # noqa: BLE001 - any local failure: the other ranks must hear of it
            error = exc
        # the status reduction comes first: no rank enters the result collective unless all will
        most = agree(comm, error=error, stage=DURING, extra=worst[0])
        worsts = [worst]
        if most:  # a sel overflow somewhere (rare: it warns): which rank's worst center is the worst
            table = np.empty((comm.size, 4), dtype=np.int64)
            comm.Allgather(np.array(worst, dtype=np.int64), table)
            worsts = [tuple(int(v) for v in row) for row in table]
        total = np.empty_like(buf)
        comm.Allreduce(buf, total)
        return combine(total, worsts, len(types))

    def close(self):
        self.runtime.close()


def combine(total, worsts, natoms):
    """The :class:`FrameResult` of the summed buffers of :meth:`DecomposedEvaluator.share`."""
    best = max(worsts, key=lambda w: (w[0], -w[1], -w[2], -w[3]))
    overflow = Overflow(int(total[2]), *(int(v) for v in best)) if best[0] else Overflow(int(total[2]))
    return result_from_atoms(total[4 : 4 + natoms].copy(), total[4 + natoms : 4 + 4 * natoms].reshape(natoms, 3).copy(),
                             total[4 + 4 * natoms :].reshape(natoms, 9), overflow=overflow,
                             beyond_fine=int(total[0]), beyond_table=int(total[1]))
