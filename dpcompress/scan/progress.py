"""Whole-job progress of the scan, shown by rank 0: a tqdm bar on a terminal, else log lines."""

import logging
import os
import sys
import time

log = logging.getLogger("dpcompress.scan")

#: Seconds between the progress messages of ranks > 0 to rank 0: rare enough to cost nothing.
PROGRESS_SEND_PERIOD = 0.5
#: Seconds between rank 0's polls for those messages.
PROGRESS_POLL_PERIOD = 0.1
#: MPI tag of the progress messages (any tag no other message of the scan uses).
TAG_PROGRESS = 7301


class Progress:
    """Frames done over all ranks, shown on rank 0.

    Ranks > 0 send their frame count to rank 0 (non-blocking, at most every
    :data:`PROGRESS_SEND_PERIOD` s, and once more when done); rank 0 polls between its own
    frames and, once finished, until every rank has reported done.  Everyone then meets in a
    non-blocking barrier polled with short sleeps, so that ranks that finish early do not spin
    on a core the others need.

    Parameters
    ----------
    comm : communicator
        ``MPI.COMM_WORLD`` or a :class:`~.mpi_comm.SerialComm`.
    total : int
        Frames of the whole job.
    interval : float
        Seconds between log lines (when not on a terminal, or without tqdm).
    show : bool
        Show anything at all (rank 0 only).
    """

    def __init__(self, comm, total, interval, show):
        self.comm, self.total, self.interval = comm, int(total), float(interval)
        self.rank, self.size = comm.rank, comm.size
        self.done = 0  # this rank
        self.others = {}  # rank 0: rank -> frames done
        self.finished = set()
        self.reqs = []
        self.t0 = self.t_send = self.t_poll = self.t_log = time.perf_counter()
        self.bar = None
        self.show = show and self.rank == 0
        if self.show and sys.stderr.isatty() and os.environ.get("TQDM_DISABLE") not in ("1", "true", "True"):
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=self.total, unit="frame", mininterval=1.0, dynamic_ncols=True, desc="scan")
            except ImportError:
                self.bar = None
        self.shown = 0

    def global_done(self):
        return self.done + sum(self.others.values())

    def advance(self, n=1):
        """Count ``n`` more frames of this rank."""
        self.done += n
        now = time.perf_counter()
        if self.rank:
            if now - self.t_send >= PROGRESS_SEND_PERIOD:
                self.reqs.append(self.comm.isend(self.done, dest=0, tag=TAG_PROGRESS))
                self.t_send = now
            return
        if self.size > 1 and now - self.t_poll >= PROGRESS_POLL_PERIOD:
            self._poll()
            self.t_poll = now
        self._display(now)

    def _poll(self):
        from mpi4py import MPI

        status = MPI.Status()
        while self.comm.iprobe(source=MPI.ANY_SOURCE, tag=TAG_PROGRESS, status=status):
            src = status.Get_source()
            msg = self.comm.recv(source=src, tag=TAG_PROGRESS)
            if isinstance(msg, tuple):  # ("done", frames)
                self.finished.add(src)
                msg = msg[1]
            self.others[src] = msg

    def _display(self, now, final=False):
        if not self.show:
            return
        done = self.global_done()
        if self.bar is not None:
            if done > self.shown:
                self.bar.update(done - self.shown)
                self.shown = done
            return
        if final or now - self.t_log >= self.interval:
            self.t_log = now
            elapsed = now - self.t0
            rate = done / elapsed if elapsed > 0 else 0.0
            eta = (self.total - done) / rate if rate > 0 else float("inf")
            pct = 100.0 * done / self.total if self.total else 100.0
            log.info("%d/%d frames (%.1f %%), %.1f frames/s, %s", done, self.total, pct, rate,
                     "done" if final else f"ETA {eta:.0f} s")

    def finish(self):
        """Wait for every rank to finish (without spinning); rank 0 shows the final count."""
        if self.size > 1:
            from mpi4py import MPI

            if self.rank:
                self.reqs.append(self.comm.isend(("done", self.done), dest=0, tag=TAG_PROGRESS))
                MPI.Request.waitall(self.reqs)
            else:
                while len(self.finished) < self.size - 1:
                    self._poll()
                    self._display(time.perf_counter())
                    time.sleep(0.005)
            barrier = self.comm.Ibarrier()
            while not barrier.Test():
                time.sleep(0.002)
        if self.bar is not None:
            self._display(time.perf_counter())
            self.bar.close()
        elif self.show and self.total:
            self._display(time.perf_counter(), final=True)
