"""The pool's own thread: batches to slots, slots to tasks, tasks to idle workers,
replies back to their batches; a worker that dies is replaced and its task redone.

A dead worker's progress entry says which message it was preparing. That message is
tried again alone; the messages before and after it in the task are redone as they
were. A message in hand at :data:`DEATHS_PER_MESSAGE` deaths becomes that message's
``internal_error`` outcome, so an input that crashes its worker (a segfault in a C
extension) ends as one dead letter instead of a crash loop. Deaths that blame no message
and workers that die before they start are counted; too many in a row means the pool
cannot work (:class:`WorkerPoolError`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from multiprocessing.connection import wait
from multiprocessing.context import ForkServerContext
from typing import Any

from btsbot_stream import metrics
from btsbot_stream.alerts.exceptions import Reject
from btsbot_stream.workers.exceptions import WorkerPoolError
from btsbot_stream.workers.handles import WorkerHandle, place, spawn, stop_all
from btsbot_stream.workers.jobs import Job, Run, SlotBook, split
from btsbot_stream.workers.protocol import MessageOut, Ready, Task, TaskDone, TaskFailed
from btsbot_stream.workers.worker import WorkerSpec

log = logging.getLogger(__name__)
DEATHS_PER_MESSAGE = 2  # a message in hand at this many worker deaths is dead-lettered
MAX_START_FAILURES = 3  # workers dying before they are ready, in a row
MAX_UNBLAMED_DEATHS = 5  # deaths with no message in hand, with no task done in between


class Dispatcher:
    def __init__(
        self,
        ctx: ForkServerContext,
        spec: WorkerSpec,
        processes: int,
        slots: int,
        inputs: list[memoryview],
    ) -> None:
        self._ctx = ctx
        self._spec = spec
        self._processes = processes
        self._inputs = inputs  # each worker's input buffer
        self._progress: Any = ctx.RawArray("q", [-1] * (2 * processes))
        self._slots = SlotBook(slots)
        self._lock = threading.Lock()
        self._waiting: deque[Job] = deque()  # guarded by _lock
        self._closing = False
        self.broken: BaseException | None = None
        # the dispatcher thread's own
        self._jobs: set[Job] = set()  # admitted, not finished
        self._queue: deque[Run] = deque()
        self._workers: list[WorkerHandle] = []
        self._seq = 0
        self._start_failures = 0
        self._unblamed = 0
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)
        self._thread = threading.Thread(target=self._loop, name="prepare-pool", daemon=True)

    # -- any thread --------------------------------------------------------------------

    def start(self, timeout: float) -> None:
        """Start every worker and wait until each is ready (fail fast at start)."""
        self._workers = [self._spawn(i) for i in range(self._processes)]
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            started = worker.conn.poll(max(deadline - time.monotonic(), 0))
            try:
                if started:
                    self._receive(worker)
            except (EOFError, OSError):
                started = False
            if not started:
                stop_all(self._workers)
                raise WorkerPoolError(
                    f"preparation worker {worker.index} did not start within {timeout:.0f} s "
                    f"({worker.exit()}); see the log above"
                )
        metrics.PREPARATION_WORKERS.set(self._processes)
        self._thread.start()

    def add(self, job: Job) -> None:
        with self._lock:
            if self.broken is not None or self._closing:
                job.future.set_exception(self._closed_error())
                return
            self._waiting.append(job)
        self._wake()

    def release(self, slot: int) -> None:
        self._slots.release(slot)
        self._wake()

    def close(self) -> None:
        with self._lock:
            self._closing = True
        self._wake()
        if self._thread.is_alive():
            self._thread.join()
        stop_all(self._workers)
        self._fail_all(self._closed_error())
        os.close(self._wake_r)
        os.close(self._wake_w)
        metrics.PREPARATION_WORKERS.set(0)

    def pids(self) -> list[int]:
        return [w.process.pid or 0 for w in self._workers if not w.dead]

    # -- the dispatcher thread -----------------------------------------------------------

    def _loop(self) -> None:
        try:
            while not self._closing:
                self._admit()
                self._dispatch()
                self._poll(0.5)
        except BaseException as exc:
            log.exception("the preparation pool failed")
            with self._lock:
                self.broken = exc
            self._fail_all(exc)

    def _admit(self) -> None:
        """Jobs that have (or get) a slot become tasks, in order."""
        with self._lock:
            admitted = [job for job in self._waiting if self._slots.take(job)]
            for job in admitted:
                self._waiting.remove(job)
        for job in admitted:
            self._jobs.add(job)
            runs = split(job, self._processes)
            job.tasks_left = len(runs)
            self._queue.extend(runs)
            if not runs:
                self._finish(job)

    def _dispatch(self) -> None:
        for worker in self._workers:
            if not self._queue:
                return
            if worker.dead or not worker.ready or worker.run is not None:
                continue
            run = self._queue.popleft()
            if run.job.future.done():  # failed meanwhile: nothing to do for it
                self._run_done(run)
                continue
            self._seq += 1
            first, job = run.indices[0], run.job
            assert job.slot is not None
            values = place(self._inputs[worker.index], job.values[first : run.indices[-1] + 1])
            worker.run, worker.seq = run, self._seq
            try:
                worker.conn.send(Task(self._seq, job.slot, first, values))
            except OSError:  # died meanwhile
                self._died(worker)

    def _poll(self, timeout: float) -> None:
        owners: dict[Any, WorkerHandle] = {}
        for worker in self._workers:
            owners[worker.conn] = worker
            owners[worker.process.sentinel] = worker
        for ready in wait([self._wake_r, *owners], timeout):
            if ready == self._wake_r:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 4096)
                continue
            worker = owners[ready]
            if worker.dead:
                continue
            if ready is worker.conn:
                try:
                    self._receive(worker)
                    continue
                except (EOFError, OSError):
                    pass
            self._died(worker)

    def _receive(self, worker: WorkerHandle) -> None:
        reply = worker.conn.recv()
        if isinstance(reply, Ready):
            worker.ready = True
            self._start_failures = 0
            return
        run = worker.run
        if run is None or reply.seq != worker.seq:
            return  # a reply to a task already given up
        worker.run = None
        job = run.job
        if isinstance(reply, TaskFailed):
            if not job.future.done():
                job.future.set_exception(
                    WorkerPoolError(f"a preparation worker failed: {reply.error}")
                )
        elif not job.future.done():
            assert isinstance(reply, TaskDone)
            self._unblamed = 0
            job.outcomes.update(zip(run.indices, reply.outcomes, strict=True))
        self._run_done(run)

    def _run_done(self, run: Run) -> None:
        run.job.tasks_left -= 1
        if run.job.tasks_left == 0:
            self._finish(run.job)

    def _died(self, worker: WorkerHandle) -> None:
        worker.dead = True
        try:  # replies it sent before dying still count
            while worker.conn.poll():
                self._receive(worker)
        except (EOFError, OSError):
            pass
        worker.bury()
        how = worker.exit()
        metrics.PREPARATION_WORKER_DEATHS.inc()
        run, worker.run = worker.run, None
        if not worker.ready:
            self._start_failures += 1
            log.error("preparation worker %d died before it was ready (%s)", worker.index, how)
            if self._start_failures >= MAX_START_FAILURES:
                raise WorkerPoolError(
                    f"preparation workers died before they were ready {self._start_failures} "
                    f"times in a row (last: {how}); see the log above"
                )
        blamed = False
        if run is not None and run.job.future.done():
            self._run_done(run)
        elif run is not None:
            seq, position = worker.progress(self._progress)
            blamed = seq == worker.seq and 0 <= position < len(run.indices)
            if blamed:
                self._blame(run, position, how, worker)
            else:
                self._queue.appendleft(run)
        if not blamed and worker.ready:
            self._unblamed += 1
            log.error("preparation worker %d died (%s), no message in hand", worker.index, how)
            if self._unblamed >= MAX_UNBLAMED_DEATHS:
                raise WorkerPoolError(
                    f"preparation workers died {self._unblamed} times in a row with no "
                    f"message in hand (last: {how}): something kills them (memory limit?)"
                )
        self._workers[worker.index] = self._spawn(worker.index)

    def _blame(self, run: Run, position: int, how: str, worker: WorkerHandle) -> None:
        """The message in hand tried again alone (or given up), the others redone."""
        job = run.job
        suspect = run.indices[position]
        strikes = job.strikes[suspect] = job.strikes.get(suspect, 0) + 1
        retry = strikes < DEATHS_PER_MESSAGE
        log.error(
            "preparation worker %d (pid %s) died (%s) while preparing message %d of a batch "
            "of %d; %s",
            worker.index,
            worker.process.pid,
            how,
            suspect,
            len(job.values),
            "the message is tried again alone, the others redone"
            if retry
            else "it becomes an internal_error outcome",
        )
        rest = [part for part in (run.indices[:position], run.indices[position + 1 :]) if part]
        if retry:
            self._queue.appendleft(Run(job, [suspect]))
        else:
            detail = (
                f"preparation: the worker process died ({how}) {strikes} times while "
                "preparing this message"
            )
            job.outcomes[suspect] = MessageOut(None, [], Reject("internal_error", detail))
        self._queue.extend(Run(job, part) for part in rest)
        job.tasks_left += len(rest) + int(retry) - 1
        if job.tasks_left == 0:
            self._finish(job)

    def _spawn(self, index: int) -> WorkerHandle:
        return spawn(self._ctx, self._spec, self._progress, index)

    def _finish(self, job: Job) -> None:
        """Every task of the job is back (none runs in its slot any more)."""
        self._jobs.discard(job)
        failed = job.future.done() and job.future.exception() is not None
        if not job.future.done():
            job.future.set_result(job.outcomes)
        self._slots.job_done(job, failed)

    def _fail_all(self, error: BaseException) -> None:
        with self._lock:
            waiting = list(self._waiting)
            self._waiting.clear()
        for job in [*waiting, *self._jobs]:
            if not job.future.done():
                job.future.set_exception(error)
        self._jobs.clear()

    def _closed_error(self) -> WorkerPoolError:
        if self.broken is not None:
            return WorkerPoolError(f"the preparation pool failed: {self.broken}")
        return WorkerPoolError("the preparation pool is closed")

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")
