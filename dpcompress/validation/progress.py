"""A progress bar for ``dpcompress test`` on rank 0: tqdm on a terminal when installed, else a line
on stderr every :data:`LINE_PERIOD` seconds once the run has lasted that long."""

import os
import sys
import time

#: Seconds between the plain progress lines (no tqdm, or not a terminal).
LINE_PERIOD = 10.0


class FrameProgress:
    """Frames done out of ``total``; silent when ``show`` is False (ranks > 0, ``--no-progress``)."""

    def __init__(self, total, show, desc="test"):
        self.total, self.done, self.desc = int(total), 0, desc
        self.show = bool(show)
        self.bar = None
        self.t0 = self.t_line = time.perf_counter()
        if self.show and sys.stderr.isatty() and os.environ.get("TQDM_DISABLE") not in ("1", "true", "True"):
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=self.total, unit="frame", mininterval=1.0, dynamic_ncols=True, desc=desc,
                                file=sys.stderr)

    def advance(self, n):
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if self.show and now - self.t_line >= LINE_PERIOD:
            self.t_line = now
            print(f"{self.desc}: {self.done}/{self.total} frames, {now - self.t0:.0f} s", file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
