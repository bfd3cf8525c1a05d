"""The CPU stage of the stream: decode, stamps and features of consumed batches, in
preparation worker processes (or a thread of this process, ``preparation.processes =
0``) while the main thread scores the batch before.

A schema registry that is away is a fault of the process, not of the alerts: the
messages that met it (in a worker or here) are prepared again with backoff, as long as
it takes, while ``registry_down`` tells the main loop to pause consumption and
``/readyz`` to say why. No alert becomes a dead letter because the registry was away.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from confluent_kafka import Message

from btsbot_stream import metrics
from btsbot_stream.alerts.exceptions import RegistryUnavailable
from btsbot_stream.config import RegistrySettings
from btsbot_stream.scoring import PreparedMessage
from btsbot_stream.stream.exceptions import StreamError
from btsbot_stream.stream.health import Health
from btsbot_stream.workers import Pending, Preparer

log = logging.getLogger(__name__)
FIRST_BACKOFF_S = 0.5
LOG_EVERY_S = 30.0


class PreparationStopped(StreamError):
    """The service stops while a batch waits for the registry: the batch is dropped
    (not committed), the next owner of its partitions reads it again."""


class Preparation:
    def __init__(self, preparer: Preparer, registry: RegistrySettings, health: Health) -> None:
        self._preparer = preparer
        self._registry = registry
        self._health = health
        # Hands each batch over once prepared, after the registry retries it needs; the
        # preparer already works on the batches submitted after it.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="prepare")
        self._stop = threading.Event()
        self.registry_down = threading.Event()
        self._down_since = self._logged = 0.0

    def submit(self, messages: Sequence[Message]) -> Future[Sequence[PreparedMessage]]:
        values = [m.value() or b"" for m in messages]
        metrics.ALERTS_CONSUMED.inc(len(values))
        return self._executor.submit(self._complete, self._preparer.submit(values))

    def stop_waiting(self) -> None:
        """A batch waiting for the registry gives up (PreparationStopped) at once."""
        self._stop.set()

    def close(self) -> None:
        """Stop waiting for the registry; finish the batch in hand, drop the queued ones,
        stop the workers."""
        self._stop.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._preparer.close()

    def _complete(self, pending: Pending) -> Sequence[PreparedMessage]:
        batch = pending.result()
        delay = FIRST_BACKOFF_S
        while batch.registry_down:
            self._registry_away(next(iter(batch.registry_down.values())))
            if self._stop.wait(delay):
                batch.release()
                raise PreparationStopped("stopped while the schema registry was away")
            delay = min(delay * 2, self._registry.retry_backoff_max_s)
            try:
                batch = self._preparer.redo(batch).result()
            except BaseException:
                batch.release()
                raise
        if self.registry_down.is_set():
            self.registry_down.clear()
            metrics.REGISTRY_UNAVAILABLE.set(0)
            self._health.clear("registry_unavailable")
            waited = time.monotonic() - self._down_since
            log.info("schema registry answers again after %.0f s: consumption resumes", waited)
        return batch

    def _registry_away(self, exc: RegistryUnavailable) -> None:
        now = time.monotonic()
        if not self.registry_down.is_set():
            self._down_since, self._logged = now, 0.0
            self.registry_down.set()
            metrics.REGISTRY_UNAVAILABLE.set(1)
            self._health.set("registry_unavailable", str(exc))
        if now - self._logged >= LOG_EVERY_S:
            waited = now - self._down_since
            log.warning("%s; consumption paused, retrying (for %.0f s)", exc, waited)
            self._logged = now
        metrics.REGISTRY_RETRIES.inc()
