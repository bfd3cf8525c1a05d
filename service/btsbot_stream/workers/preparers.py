"""The one interface ``score``, ``bench`` and the stream prepare batches through: in a
thread of this process (``processes = 0``) or in a :class:`WorkerPool`.

Either way a batch is submitted as raw message bytes and comes back as a
:class:`PreparedBatch`: one :class:`PreparedMessage` per message, in order, except those
that met a schema registry that was away (``registry_down``), which the caller may
``redo`` once it has waited (the stream pauses and retries; ``score`` stops).
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

from btsbot_stream.alerts.exceptions import RegistryUnavailable
from btsbot_stream.config import EngineSettings, PreparationSettings
from btsbot_stream.scoring import prepare_message
from btsbot_stream.workers.batch import Pending, PreparedBatch
from btsbot_stream.workers.cores import resolve_processes
from btsbot_stream.workers.decoding import Decoding
from btsbot_stream.workers.pool import WorkerPool
from btsbot_stream.workers.worker import PrepareFn

log = logging.getLogger(__name__)
T = TypeVar("T")


class Preparer(Protocol):
    def submit(self, values: list[bytes]) -> Pending: ...

    def redo(self, batch: PreparedBatch) -> Pending: ...

    def close(self) -> None: ...


class _FuturePending:
    def __init__(self, future: Future[PreparedBatch]) -> None:
        self._future = future

    def result(self, timeout: float | None = None) -> PreparedBatch:
        return self._future.result(timeout)


class InlinePreparer:
    """Preparation in one thread of this process, beside inference (ONNX Runtime
    releases the GIL): the way for one or two cores."""

    processes = 0

    def __init__(self, decoding: Decoding, prepare: PrepareFn = prepare_message) -> None:
        self._decoder, self._breaker = decoding.decoder()
        self._prepare = prepare
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="prepare")

    def submit(self, values: list[bytes]) -> Pending:
        batch = PreparedBatch(list(values))
        return _FuturePending(self._executor.submit(self._run, batch, range(len(values))))

    def redo(self, batch: PreparedBatch) -> Pending:
        return _FuturePending(self._executor.submit(self._run, batch, sorted(batch.registry_down)))

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _run(self, batch: PreparedBatch, indices: Iterable[int]) -> PreparedBatch:
        if self._breaker is not None:
            self._breaker.reset()
        for index in indices:
            try:
                batch.prepared[index] = self._prepare(self._decoder, batch.values[index])
            except RegistryUnavailable as exc:
                batch.registry_down[index] = exc
                continue
            batch.registry_down.pop(index, None)
        return batch


def make_preparer(
    preparation: PreparationSettings,
    engine: EngineSettings,
    decoding: Decoding,
    prepare: PrepareFn = prepare_message,
) -> InlinePreparer | WorkerPool:
    """The preparer the settings ask for (starts the workers: fails fast)."""
    processes = resolve_processes(preparation, engine)
    if processes == 0:
        log.info("preparation: in a thread of this process")
        return InlinePreparer(decoding, prepare)
    return WorkerPool(decoding, processes, preparation.slots, engine.batch_size, prepare)


def prepare_ahead(
    preparer: Preparer,
    chunks: Iterable[T],
    values: Callable[[T], list[bytes]],
    ahead: int = 2,
) -> Iterator[tuple[T, PreparedBatch]]:
    """Each chunk with its prepared batch, in order, ``ahead`` chunks submitted before
    the one handed out is done with. The caller releases each batch once used; a
    message that met an absent schema registry raises :class:`RegistryUnavailable`."""
    window: deque[tuple[T, Pending]] = deque()
    source = iter(chunks)
    try:
        while True:
            while len(window) <= ahead:
                try:
                    chunk = next(source)
                except StopIteration:
                    break
                window.append((chunk, preparer.submit(values(chunk))))
            if not window:
                return
            chunk, pending = window.popleft()
            batch = pending.result()
            if batch.registry_down:
                batch.release()
                raise next(iter(batch.registry_down.values()))
            yield chunk, batch
    finally:  # stopped early: hand back the slots of what was submitted
        for _, pending in window:
            with contextlib.suppress(Exception):
                pending.result().release()
