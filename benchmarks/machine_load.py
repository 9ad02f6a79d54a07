"""How busy the machine is: CPU jiffies from /proc, shared by the benchmark drivers.

Jiffy resolution (1/HZ s, usually 10 ms): meaningful over calls of ~0.1 s or
longer, indicative below.  On systems without /proc the readings are None and
the drivers simply do not wait.
"""

import os
import time

HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def busy_ticks(pid=None):
    """Busy jiffies of the machine (pid None: user+nice+system+irq+softirq+steal) or of one process
    (utime + stime of all its threads); None when /proc cannot be read."""
    try:
        if pid is None:
            with open("/proc/stat") as fh:
                v = [int(x) for x in fh.readline().split()[1:]]
            return v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
        with open(f"/proc/{pid}/stat") as fh:
            f = fh.read().rpartition(")")[2].split()
        return int(f[11]) + int(f[12])
    except (OSError, ValueError, IndexError):
        return None


def wait_quiet(threshold, max_wait, window=0.25):
    """Sleep in ``window`` slices until the machine's busy CPU drops below ``threshold`` cores, at most
    ``max_wait`` s.  Returns (seconds waited, last load in cores or None)."""
    t_start = time.perf_counter()
    while True:
        b0, t0 = busy_ticks(), time.perf_counter()
        time.sleep(window)
        b1, t1 = busy_ticks(), time.perf_counter()
        load = None if None in (b0, b1) else (b1 - b0) / HZ / (t1 - t0)
        waited = t1 - t_start
        if load is None or load < threshold or waited >= max_wait:
            return waited, load
