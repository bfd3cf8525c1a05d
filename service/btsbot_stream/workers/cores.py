"""How many cores this process may use, and how many preparation workers that makes."""

from __future__ import annotations

import math
import os
from pathlib import Path

from btsbot_stream.config import EngineSettings, PreparationSettings

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "quota period" or "max period"


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup CPU quota
    (a container limited to 4 CPUs on a 64-core host has 4)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def resolve_processes(preparation: PreparationSettings, engine: EngineSettings) -> int:
    """The worker count ``preparation.processes`` means (0: preparation in a thread).

    ``auto``: one core alone gets no workers (a thread does as well, for less memory);
    a GPU leaves one core to the thread that feeds it; on a CPU, the cores ONNX Runtime
    does not take (``engine.threads`` below the cores), or else every core: workers and
    inference then share them, ONNX Runtime's idle threads not spinning, which measured
    as fast as or faster than any split on two cores (docs/benchmarks.md).
    """
    if preparation.processes != "auto":
        return preparation.processes
    cores = available_cores()
    if cores == 1:
        return 0
    if engine.device in ("cuda", "tensorrt"):
        return cores - 1
    if 0 < engine.threads < cores:
        return cores - engine.threads
    return cores
