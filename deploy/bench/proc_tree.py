"""CPU time and resident memory of a process and its descendants, from Linux /proc (the
service's preparation workers run under a fork server, a child of the service)."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Live descendants of a process, children first."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:  # the children of its main thread
            kids = [
                int(c) for c in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            ]
        except OSError:
            continue
        found += kids
        todo += kids
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0.0


def tree_cpu(root: int) -> float:
    """CPU seconds of a process and its live descendants."""
    return sum(cpu_seconds(pid) for pid in [root, *descendants(root)])


def tree_rss_kib(root: int) -> int | None:
    """Resident memory of a process and its live descendants in KiB (None: all gone);
    pages they share are counted once per process, so this is an upper bound."""
    total = None
    for pid in [root, *descendants(root)]:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total = (total or 0) + int(line.split()[1])
        except OSError:
            pass
    return total
