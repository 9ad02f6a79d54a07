r"""Collective agreement on errors: under MPI every rank raises the same exception, or none does.

A rank that fails alone must not leave the others waiting in a collective that it never enters.
So every step that ends in a collective is preceded by one *status reduction*: a single
``Allreduce`` (MAX) of five int64 in which each rank states

* whether it failed before its inputs could be compared with the others' (a bad argument, a model
  that would not load) — ``BEFORE``;
* whether it failed while computing its share (coincident atoms in its domain, a C status, an
  allocation) — ``DURING``;
* a 62-bit digest of what it was given (:func:`digest`), as ``d`` and ``-d``, so that one MAX
  yields both the largest and the smallest digest: they differ exactly when two ranks were given
  different data;
* one non-negative count whose maximum the caller wants (the worst sel overflow).

A failing rank puts ``size - rank`` in its slot, so the maximum names the lowest failing rank.
Every rank then reads the same reduced vector and takes the same branch: the lowest failing rank
broadcasts its error (module, class name, message) and every rank raises an exception of that class
with that message, the reporting rank named; a digest mismatch raises
:class:`~dpcompress.core.errors.InputError` naming the ranks that differ from rank 0.  Precedence:
``BEFORE`` errors, then a mismatch (ranks given different frames fail in ways that mean nothing),
then ``DURING`` errors.  Only the error paths communicate more than the five numbers.

What no reduction can detect: a rank that never makes the call (the others wait in the status
reduction; only the MPI runtime can time that out), and a rank that makes a *different* collective
on the same communicator at the same time.

mpi4py is imported by :func:`agree` only, so importing this module never needs MPI.
"""

import sys
import zlib

import numpy as np

from ..core.errors import InputError

__all__ = ["BEFORE", "DURING", "agree", "digest"]

#: a rank failed before its inputs could be compared with the other ranks'
BEFORE = 0
#: a rank failed while computing its share of the work
DURING = 1

# slots of the status vector
_BEFORE, _DURING, _DMAX, _DMIN_NEG, _EXTRA, _N = 0, 1, 2, 3, 4, 5
_MAX = None  # MPI.MAX, once mpi4py is loaded


def digest(*arrays) -> int:
    """A 62-bit digest of arrays: their dtypes, shapes and bytes (``None`` counts as a value).

    CRC-32 (every change confined to 32 consecutive bits is caught: a coordinate moved by a few
    ulps) and 30 bits of Adler-32, chained over the arrays: a few µs for a frame of a few hundred
    atoms, where a cryptographic hash costs several times more.  62 bits so that both ``d`` and
    ``-d`` fit an int64 (one MAX reduction gives the largest and the smallest digest over the
    ranks).  Not cryptographic: it tells apart frames that differ by mistake, not by design.
    """
    crc, adler, layout = 0, 1, []
    for a in arrays:
        if a is None:
            layout.append(None)
            continue
        a = np.ascontiguousarray(a)
        layout += (a.dtype.str, a.shape)
        crc, adler = zlib.crc32(a, crc), zlib.adler32(a, adler)
    text = repr(layout).encode()  # formatted once: per-array formatting would cost more than the bytes
    crc, adler = zlib.crc32(text, crc), zlib.adler32(text, adler)
    return (crc << 30) | (adler & (2**30 - 1))


def agree(comm, *, error=None, stage=BEFORE, inputs_digest=None, what="inputs", compared="their digests", extra=0):
    """One status reduction over ``comm``: raise the same error on every rank, or return.

    Every rank of ``comm`` must call this at the same point of the same sequence of collectives.

    Parameters
    ----------
    comm : mpi4py communicator
    error : BaseException or None
        This rank's failure, if it had one.
    stage : {BEFORE, DURING}
        When ``error`` happened: ``BEFORE`` the ranks' inputs can be compared (its digest is not
        known), or ``DURING`` the work on inputs already agreed on.
    inputs_digest : int or None
        :func:`digest` of this rank's inputs, in ``[0, 2**62)``; ``None`` when there is nothing
        to compare (every rank must then pass ``None``) or when ``error`` happened ``BEFORE``.
    what, compared : str
        Name the inputs in a mismatch message ("frames"), and what their digest covers.
    extra : int
        A non-negative count; the maximum over the ranks is returned.

    Returns
    -------
    int
        The maximum of ``extra`` over the ranks.

    Raises
    ------
    Exception
        The error of the lowest failing rank (``BEFORE`` errors first), rebuilt with the same
        class and message on every rank and naming that rank; :class:`InputError` when the
        ranks' digests differ.
    """
    global _MAX
    if _MAX is None:  # mpi4py is loaded on the first call, not on import
        from mpi4py import MPI

        _MAX = MPI.MAX
    size, rank = comm.size, comm.rank
    v = np.zeros(_N, dtype=np.int64)
    if error is not None:
        v[_BEFORE if stage == BEFORE else _DURING] = size - rank
    if inputs_digest is not None and not (error is not None and stage == BEFORE):
        v[_DMAX], v[_DMIN_NEG] = inputs_digest, -inputs_digest
    v[_EXTRA] = extra
    total = np.empty_like(v)
    comm.Allreduce(v, total, op=_MAX)
    # every rank holds the same ``total`` from here on, so every rank takes the same branch
    if total[_BEFORE]:
        _raise_reported(comm, size - int(total[_BEFORE]), error)
    if total[_DMAX] != -total[_DMIN_NEG]:
        _raise_mismatch(comm, inputs_digest, what, compared, error)
    if total[_DURING]:
        _raise_reported(comm, size - int(total[_DURING]), error)
    return int(total[_EXTRA])


def _describe(error):
    """What travels from the failing rank: strings only, so pickling cannot fail on the root."""
    cls = type(error)
    return cls.__module__, cls.__qualname__, str(error) or cls.__qualname__


def _rebuild(module, qualname, message):
    """An exception of the named class (looked up, never imported) holding ``message``.

    A class that is not loaded on this rank, or whose constructor wants other arguments, becomes a
    ``RuntimeError`` naming it; every rank runs this on the same strings.
    """
    try:
        cls = sys.modules[module]
        for part in qualname.split("."):
            cls = getattr(cls, part)
        if isinstance(cls, type) and issubclass(cls, Exception):
            return cls(message)
    except Exception:  # noqa: BLE001 - any failure to rebuild falls back to the generic class
        pass
    return RuntimeError(f"{qualname}: {message}")


def _raise_reported(comm, root, error):
    payload = _describe(error) if comm.rank == root else None
    module, qualname, message = comm.bcast(payload, root=root)
    exc = _rebuild(module, qualname, f"{message} (reported by rank {root} of {comm.size})")
    # the reporting rank keeps its own traceback as the cause; the others have none to offer
    raise exc from (error if comm.rank == root else None)


def _raise_mismatch(comm, inputs_digest, what, compared, error):
    digests = comm.allgather(inputs_digest)  # the error path only: which ranks differ
    differ = [r for r, d in enumerate(digests) if d != digests[0]]
    ranks = f"rank {differ[0]} differs" if len(differ) == 1 else f"ranks {', '.join(map(str, differ))} differ"
    raise InputError(
        f"the ranks of comm were given different {what}: {ranks} from rank 0 (of {comm.size}; compared: "
        f"{compared}); every rank must pass the same {what}"
    ) from error
