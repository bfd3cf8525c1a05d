"""Preparation (decode + stamps + features) in worker processes, prepared batches handed
over in shared memory.

The parent sends each worker the raw bytes of some messages of a batch; the worker writes
each prepared alert's triplet and metadata into the batch's shared-memory slot (row =
the message's index) and sends back only small values (see :mod:`.protocol`). Here the
parent turns those into :class:`PreparedMessage` records whose arrays are views of the
slot, so the scorer hands the slot's rows to ONNX Runtime without a copy; it resolves
each message's writer schema by registry id or schema-text digest in its own cache
(parsing the header of the message itself on a miss), so no parsed schema crosses a
process boundary. Workers start from a fork server (nothing of this process's threads
or ONNX Runtime sessions is inherited).
"""

from __future__ import annotations

import logging
import math
import multiprocessing
from collections import OrderedDict
from functools import partial

from btsbot_stream import logs
from btsbot_stream.alerts.avro import AlertSchema, DecodedAlert
from btsbot_stream.alerts.exceptions import InvalidAlert, RegistryUnavailable, Reject
from btsbot_stream.alerts.prepare import Prepared, Rows
from btsbot_stream.scoring import PreparedMessage, internal_error, prepare_message
from btsbot_stream.workers.batch import PreparedBatch
from btsbot_stream.workers.decoding import Decoding
from btsbot_stream.workers.dispatch import Dispatcher
from btsbot_stream.workers.jobs import Job, Outcomes, task_count
from btsbot_stream.workers.protocol import MessageOut, RegistryDown, text_digest
from btsbot_stream.workers.slots import SlotArena
from btsbot_stream.workers.worker import PrepareFn, WorkerSpec

log = logging.getLogger(__name__)
START_TIMEOUT_S = 120.0  # a loaded machine starting the fork server and every worker
# Input buffer room per message of a task (real ZTF alerts: 60-90 kB; larger ones are
# pickled instead).
INPUT_BYTES_PER_MESSAGE = 128 * 1024


class WorkerPool:
    """``processes`` preparation workers and ``slots`` shared-memory batches of ``rows``.

    ``submit`` never blocks: a batch waits for a free slot (backpressure comes from the
    caller holding at most a few batches). ``prepare`` is what a worker runs per message
    (a module-level function; tests wrap :func:`prepare_message`).
    """

    def __init__(
        self,
        decoding: Decoding,
        processes: int,
        slots: int,
        rows: int,
        prepare: PrepareFn = prepare_message,
    ) -> None:
        if processes < 1:
            raise ValueError("a worker pool needs at least one process")
        self.processes = processes
        self.rows = rows
        self._closed = False
        self._decoder, self._breaker = decoding.decoder()  # resolves schemas here
        self._schemas: OrderedDict[int | bytes, AlertSchema] = OrderedDict()
        self._schema_cache_size = decoding.limits.schema_cache_size
        task_rows = math.ceil(rows / task_count(processes))
        self._arena = SlotArena(slots, rows, processes, task_rows * INPUT_BYTES_PER_MESSAGE)
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["btsbot_stream.workers.worker"])
        level, fmt = _log_setup()
        spec = WorkerSpec(
            decoding, prepare, self._arena.names, rows, self._arena.input_names, level, fmt
        )
        inputs = [self._arena.input_buffer(i) for i in range(processes)]
        self._dispatcher = Dispatcher(ctx, spec, processes, len(self._arena), inputs)
        try:
            self._dispatcher.start(START_TIMEOUT_S)
        except BaseException:
            self._arena.close()
            raise
        log.info(
            "preparation: %d worker processes, %d shared-memory slots of %d alerts",
            processes,
            slots,
            rows,
        )

    def submit(self, values: list[bytes]) -> PoolPending:
        if len(values) > self.rows:
            raise ValueError(f"a batch of {len(values)} messages; slots hold {self.rows}")
        batch = PreparedBatch(list(values))
        job = Job(batch.values, list(range(len(values))))
        self._dispatcher.add(job)
        return PoolPending(self, job, batch)

    def redo(self, batch: PreparedBatch) -> PoolPending:
        """The batch's messages that waited for the registry, prepared again in place."""
        if batch.slot is None:
            raise ValueError("redo of a batch that was never prepared")
        job = Job(batch.values, sorted(batch.registry_down), slot=batch.slot)
        self._dispatcher.add(job)
        return PoolPending(self, job, batch)

    def pids(self) -> list[int]:
        """The workers' process ids now (for tests and diagnostics)."""
        return self._dispatcher.pids()

    def close(self) -> None:
        """Stop the workers (a batch in hand is not waited for) and free the shared
        memory; batches not handed out fail with :class:`WorkerPoolError`. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._dispatcher.close()
        self._arena.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- in the caller's thread ------------------------------------------------------------

    def _assemble(self, batch: PreparedBatch, outcomes: Outcomes, slot: int) -> None:
        rows = self._arena.rows[slot]
        if self._breaker is not None:
            self._breaker.reset()
        for index, out in outcomes.items():
            if isinstance(out, RegistryDown):
                batch.registry_down[index] = RegistryUnavailable(out.detail)
                continue
            value = batch.values[index]
            try:
                batch.prepared[index] = self._message(out, value, rows)
            except RegistryUnavailable as exc:
                batch.registry_down[index] = exc
                continue
            except Exception as exc:  # a bug here must not take the other messages down
                batch.prepared[index] = PreparedMessage([], internal_error(exc, "hand-over"))
            batch.registry_down.pop(index, None)

    def _message(self, out: MessageOut, value: bytes, rows: Rows) -> PreparedMessage:
        if out.schema is None:
            return PreparedMessage([], out.failure)
        try:
            schema = self._schema(out.schema, value)
        except InvalidAlert as exc:
            return PreparedMessage([], Reject.from_error(exc))
        records: list[tuple[DecodedAlert, Prepared | Reject]] = []
        for record in out.records:
            datum = record.datum
            if isinstance(datum, tuple):
                datum = value[datum[0] : datum[1]]
            placed = record.prepared
            prepared: Prepared | Reject
            if isinstance(placed, int):
                prepared = Prepared(rows.triplets[placed], rows.metadata[placed], rows, placed)
            elif isinstance(placed, tuple):
                prepared = Prepared(*placed)
            else:
                prepared = placed
            records.append((DecodedAlert(record.record, datum, schema), prepared))
        return PreparedMessage(records)

    def _schema(self, key: int | bytes, value: bytes) -> AlertSchema:
        """The writer schema named by ``key``: this process's own parse of it."""
        schema = self._schemas.get(key)
        if schema is not None:
            self._schemas.move_to_end(key)
            return schema
        schema = self._decoder.schema_of(value)
        if isinstance(key, bytes) and text_digest(schema) != key:
            raise RuntimeError("the worker's schema digest differs from the message's schema")
        self._schemas[key] = schema
        while len(self._schemas) > self._schema_cache_size:
            self._schemas.popitem(last=False)
        return schema

    def _released(self, slot: int) -> None:
        self._dispatcher.release(slot)


class PoolPending:
    """A batch in the workers' hands; :meth:`result` assembles it in the caller's thread."""

    def __init__(self, pool: WorkerPool, job: Job, batch: PreparedBatch) -> None:
        self._pool = pool
        self._job = job
        self._batch = batch
        self._assembled = False

    def result(self, timeout: float | None = None) -> PreparedBatch:
        if not self._assembled:
            outcomes = self._job.future.result(timeout)
            batch, slot = self._batch, self._job.slot
            assert slot is not None
            if batch.slot is None:
                batch.slot = slot
                batch.on_release = partial(self._pool._released, slot)
            self._pool._assemble(batch, outcomes, slot)
            self._assembled = True
        return self._batch


def _log_setup() -> tuple[str, logs.LogFormat]:
    """This process's log level and format, for the workers to log alike."""
    root = logging.getLogger()
    json_lines = any(isinstance(h.formatter, logs.JsonFormatter) for h in root.handlers)
    return logging.getLevelName(root.level), "json" if json_lines else "text"
