"""What the pool's thread schedules: jobs (a batch's messages to prepare), their tasks,
and the slots they are prepared into."""

from __future__ import annotations

import math
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

from btsbot_stream import metrics
from btsbot_stream.workers.protocol import MessageOut, RegistryDown

MIN_TASK = 4  # messages per task at least (each task costs a round trip)
TASKS_PER_WORKER = 2  # a batch's tasks per worker (an early finisher takes another)
MIN_TASKS = 4  # tasks per batch at least (smaller tasks need smaller input buffers)

Outcomes = dict[int, MessageOut | RegistryDown]


@dataclass(eq=False)
class Job:
    """Messages of one batch to prepare: all of them, or those to redo."""

    values: list[bytes]
    indices: list[int]
    slot: int | None = None  # None until a slot is free (a redo comes with its batch's)
    future: Future[Outcomes] = field(default_factory=Future)
    outcomes: Outcomes = field(default_factory=dict)
    strikes: dict[int, int] = field(default_factory=dict)  # worker deaths per message
    tasks_left: int = 0
    owns_slot: bool = False


@dataclass(eq=False)
class Run:
    """A task in the parent's hands: consecutive messages of a job."""

    job: Job
    indices: list[int]


def task_count(processes: int) -> int:
    """Tasks a full batch is split into."""
    return max(MIN_TASKS, TASKS_PER_WORKER * processes)


def split(job: Job, processes: int) -> list[Run]:
    """The job's messages as tasks of consecutive messages, about equal in size."""
    pieces = max(1, min(task_count(processes), len(job.indices) // MIN_TASK))
    size = max(1, math.ceil(len(job.indices) / pieces))
    runs: list[Run] = []
    current: list[int] = []
    for index in job.indices:
        if current and (index != current[-1] + 1 or len(current) >= size):
            runs.append(Run(job, current))
            current = []
        current.append(index)
    if current:
        runs.append(Run(job, current))
    return runs


class SlotBook:
    """Which slots are free. A slot is busy while a job prepares into it or its batch is
    held (not released by whoever took it); thread-safe."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._lock = threading.Lock()
        self._free = list(range(count))
        self._held: set[int] = set()
        self._active = [0] * count

    def take(self, job: Job) -> bool:
        """Give the job its slot (a new one, or the one it comes with); False: none free."""
        with self._lock:
            if job.slot is None:
                if not self._free:
                    return False
                job.slot, job.owns_slot = self._free.pop(0), True
                self._held.add(job.slot)
            self._active[job.slot] += 1
            self._gauge()
            return True

    def job_done(self, job: Job, failed: bool) -> None:
        if job.slot is None:
            return
        with self._lock:
            self._active[job.slot] -= 1
            if failed and job.owns_slot:  # its batch never reaches anyone to release it
                self._held.discard(job.slot)
            self._maybe_free(job.slot)

    def release(self, slot: int) -> None:
        with self._lock:
            self._held.discard(slot)
            self._maybe_free(slot)

    def _maybe_free(self, slot: int) -> None:
        if slot not in self._held and self._active[slot] == 0 and slot not in self._free:
            self._free.append(slot)
            self._gauge()

    def _gauge(self) -> None:
        metrics.PREPARATION_SLOTS_IN_USE.set(self._count - len(self._free))
