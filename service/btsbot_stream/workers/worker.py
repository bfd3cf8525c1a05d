"""A preparation worker process: decode, stamps and features of the tasks it is sent,
written straight into the parent's shared-memory slots.

It keeps its own decoder (and so its own schema caches and registry client), ignores
SIGINT and SIGTERM (the parent decides when it stops: ``None`` as a task, or its end of
the pipe closing), and before each message writes the task and the message's position
to a shared progress array, so that if it dies (SIGKILL, a segfault in a C extension)
the parent knows which message it was preparing.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

from btsbot_stream import logs
from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.exceptions import RegistryUnavailable
from btsbot_stream.alerts.prepare import Prepared, Rows
from btsbot_stream.errors import BtsbotError
from btsbot_stream.scoring import PreparedMessage
from btsbot_stream.workers.decoding import Decoding, RegistryBreaker
from btsbot_stream.workers.protocol import (
    KEPT_FIELDS,
    MessageOut,
    Ready,
    RecordOut,
    RegistryDown,
    Task,
    TaskDone,
    TaskFailed,
    datum_ref,
    schema_key,
)
from btsbot_stream.workers.slots import attach

PrepareFn = Callable[[AlertDecoder, bytes], PreparedMessage]


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs, sent once when it starts."""

    decoding: Decoding
    prepare: PrepareFn  # scoring.prepare_message (tests give a module-level wrapper)
    slot_names: tuple[str, ...]
    rows: int
    input_names: tuple[str, ...]  # one input buffer per worker index
    log_level: str = "INFO"
    log_format: logs.LogFormat = "text"


class _Progress:
    """Two int64 per worker in a shared array: the task's seq, the message's position."""

    def __init__(self, array: Any, index: int) -> None:
        self._array = array
        self._base = 2 * index

    def start(self, seq: int) -> None:
        self._array[self._base + 1] = -1  # first: a death now blames no message
        self._array[self._base] = seq

    def at(self, position: int) -> None:
        self._array[self._base + 1] = position


def serve(conn: Connection, spec: WorkerSpec, progress_array: Any, index: int) -> None:
    """The worker's main loop (the target of its process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logs.configure(spec.log_level, spec.log_format)
    attached = [attach(name, spec.rows) for name in spec.slot_names]
    inputs = SharedMemory(name=spec.input_names[index])
    input_buffer = inputs.buf
    assert input_buffer is not None
    blocks: list[SharedMemory] = [shm for shm, _ in attached] + [inputs]
    slots = [rows for _, rows in attached]
    decoder, breaker = spec.decoding.decoder()
    progress = _Progress(progress_array, index)
    conn.send(Ready(os.getpid()))
    try:
        while True:
            try:
                task = conn.recv()
            except (EOFError, OSError):  # the parent is gone
                return
            if task is None:
                return
            try:
                values = [
                    bytes(input_buffer[v[0] : v[1]]) if isinstance(v, tuple) else v
                    for v in task.values
                ]
                outcomes = run_task(task, values, spec.prepare, decoder, breaker, slots, progress)
                reply: TaskDone | TaskFailed = TaskDone(task.seq, outcomes)
            except BtsbotError as exc:  # process-level, e.g. a broken registry client
                reply = TaskFailed(task.seq, f"{type(exc).__name__}: {exc}")
            try:
                conn.send(reply)
            except OSError:  # the parent is gone
                return
    finally:
        del slots, attached
        for shm in blocks:
            with contextlib.suppress(BufferError):  # a view still alive: exiting unmaps it
                shm.close()


def run_task(
    task: Task,
    values: list[bytes],
    prepare: PrepareFn,
    decoder: AlertDecoder,
    breaker: RegistryBreaker | None,
    slots: Sequence[Rows],
    progress: _Progress,
) -> list[MessageOut | RegistryDown]:
    rows = slots[task.slot]
    if breaker is not None:
        breaker.reset()
    progress.start(task.seq)
    out: list[MessageOut | RegistryDown] = []
    for position, value in enumerate(values):
        progress.at(position)
        try:
            message = prepare(decoder, value)
        except RegistryUnavailable as exc:  # the parent's retry logic decides
            out.append(RegistryDown(str(exc)))
            continue
        out.append(encode(message, value, task.first + position, rows))
    progress.at(-1)
    return out


def encode(message: PreparedMessage, value: bytes, row: int, rows: Rows) -> MessageOut:
    """A prepared message as it travels back: its first alert written to ``row``."""
    if message.failure is not None or not message.records:
        return MessageOut(None, [], message.failure)
    records = []
    free = True
    for alert, prepared in message.records:
        placed: int | tuple[Any, Any] | Any
        if isinstance(prepared, Prepared):
            if free:
                rows.triplets[row] = prepared.triplet
                rows.metadata[row] = prepared.metadata
                placed, free = row, False
            else:
                placed = (prepared.triplet, prepared.metadata)
        else:
            placed = prepared  # a Reject
        kept = {k: alert.record[k] for k in KEPT_FIELDS if k in alert.record}
        records.append(RecordOut(kept, datum_ref(value, alert.datum), placed))
    return MessageOut(schema_key(value, message.records[0][0].schema), records, None)
