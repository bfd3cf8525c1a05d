"""The parent's side of each worker process: start it, hand it a task, stop it."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from typing import Any

from btsbot_stream.workers.jobs import Run
from btsbot_stream.workers.worker import WorkerSpec, serve

STOP_JOIN_S = 5.0


@dataclass(eq=False)
class WorkerHandle:
    index: int  # its progress entry and input buffer; a replacement takes the same
    process: BaseProcess
    conn: Connection
    run: Run | None = None  # the task it holds
    seq: int = -1  # that task's number
    ready: bool = False
    dead: bool = False

    def progress(self, array: Any) -> tuple[int, int]:
        """(task number, position of the message in hand) from the shared array."""
        return array[2 * self.index], array[2 * self.index + 1]

    def exit(self) -> str:
        """How it ended, in words (after it was joined)."""
        code = self.process.exitcode
        if code is None:
            return "still running"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def bury(self) -> None:
        """Make sure the process is gone (its pipe may break before it exits)."""
        self.process.join(1.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(STOP_JOIN_S)
        self.conn.close()
        self.dead = True


def spawn(ctx: ForkServerContext, spec: WorkerSpec, progress: Any, index: int) -> WorkerHandle:
    parent, child = ctx.Pipe()
    process = ctx.Process(
        target=serve,
        args=(child, spec, progress, index),
        name=f"btsbot-prepare-{index}",
        daemon=True,
    )
    process.start()
    child.close()
    return WorkerHandle(index, process, parent)


def place(buffer: memoryview, values: Sequence[bytes]) -> list[tuple[int, int] | bytes]:
    """A task's messages copied into an idle worker's input buffer as far as they fit
    (their spans); the others travel pickled (their bytes)."""
    placed: list[tuple[int, int] | bytes] = []
    offset = 0
    for value in values:
        end = offset + len(value)
        if end > len(buffer):
            placed.append(value)
            continue
        buffer[offset:end] = value
        placed.append((offset, end))
        offset = end
    return placed


def stop_all(workers: Sequence[WorkerHandle]) -> None:
    """Ask every worker to stop, then kill those that did not within the grace time."""
    for worker in workers:
        if not worker.dead:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
    deadline = time.monotonic() + STOP_JOIN_S
    for worker in workers:
        worker.process.join(max(deadline - time.monotonic(), 0))
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(STOP_JOIN_S)
        worker.conn.close()
        worker.dead = True
