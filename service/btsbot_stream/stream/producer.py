"""Producing outputs: the local queue, delivery reports, and outputs the broker refuses.

Every output carries an ``ack``, called once when it, or what replaced it, is
acknowledged. An output refused as too large (``MSG_SIZE_TOO_LARGE``: the topic's limit
changed since start, or was not known) is replaced, in at-least-once mode, by the
message's dead letter or a reference record with the same ``ack``, so the input's
offset is committed once that is acknowledged; an innocent neighbour refused with it
is sent again. Any other delivery failure is raised at the next ``service()`` or
``flush()``: nothing derived from an unacknowledged output is ever committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial

from confluent_kafka import KafkaError, Message, Producer

from btsbot_stream import metrics
from btsbot_stream.stream.exceptions import DeliveryError, FatalKafkaError
from btsbot_stream.stream.publish import OutputMessage, Publisher

log = logging.getLogger(__name__)
Ack = Callable[[], None]
RESEND_ATTEMPTS = 2  # an output within its limit refused with an oversized neighbour


class OutputProducer:
    def __init__(self, producer: Producer, publisher: Publisher, transactional: bool) -> None:
        self.producer = producer
        self._publisher = publisher
        self._transactional = transactional
        self._error: KafkaError | None = None
        self._refused: list[tuple[OutputMessage, Ack | None, int]] = []

    def produce(self, output: OutputMessage, ack: Ack | None, attempt: int = 0) -> None:
        callback = partial(self._delivered, output, ack, attempt)
        while True:
            try:
                self.producer.produce(
                    output.topic,
                    output.value,
                    output.key,
                    headers=output.headers,
                    on_delivery=callback,
                )
                break
            except BufferError:  # local queue full: let deliveries drain, then retry
                self.producer.poll(0.1)

    def service(self) -> None:
        """Serve delivery reports; raise what failed."""
        self.producer.poll(0)
        self._replace_refused()
        self._raise()

    def flush(self, timeout: float) -> None:
        """Wait until every output (and replacement) is acknowledged, or raise."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = self.producer.flush(max(0.0, deadline - time.monotonic()))
            self._replace_refused()
            self._raise()
            if not remaining and not len(self.producer):
                return
            if time.monotonic() >= deadline:
                raise DeliveryError(f"{remaining} outputs unacknowledged after {timeout} s")

    def take_refused(self) -> list[OutputMessage]:
        """Exactly-once: the outputs refused as too large in the transaction now ending."""
        refused = [output for output, _, _ in self._refused]
        self._refused.clear()
        return refused

    def purge_queued(self) -> None:
        """Drop outputs not yet sent (every partition was lost: whoever owns them now
        produces them again; sending ours too would only duplicate them)."""
        self.producer.purge(in_queue=True, in_flight=False, blocking=False)
        self.producer.poll(0)

    def forget_errors(self) -> None:
        """Exactly-once: the transaction was aborted; its failures are moot."""
        self._error = None
        self._refused.clear()

    def _delivered(
        self,
        output: OutputMessage,
        ack: Ack | None,
        attempt: int,
        error: KafkaError | None,
        msg: Message,
    ) -> None:
        if error is None:
            if ack is not None:
                ack()
            if output.reason is not None:
                metrics.DEAD_LETTERS.labels(output.reason).inc()
            elif output.kind == "scored":
                metrics.ALERTS_PUBLISHED.inc()
                stamp = output.origin.source.timestamp_ms
                if stamp is not None:
                    metrics.ALERT_LATENCY_SECONDS.observe(max(time.time() - stamp / 1000, 0.0))
            return
        if error.code() == KafkaError._PURGE_QUEUE:
            return  # purge_queued(): its partition is no longer ours
        if error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
            self._refused.append((output, ack, attempt))
            return
        if self._error is None:
            self._error = error
        log.error("delivery to %s failed: %s", output.topic, error)

    def _replace_refused(self) -> None:
        if self._transactional or not self._refused:
            return  # exactly-once: the transaction aborts and is made again without them
        refused, self._refused = self._refused, []
        limits = self._publisher.limits
        for output, ack, attempt in refused:
            limit = limits.limit(output.topic)
            if output.size <= limit and attempt < RESEND_ATTEMPTS:
                self.produce(output, ack, attempt + 1)
                continue
            detail = (
                f"{output.topic} refused {output.size} bytes (max.message.bytes; ours: {limit})"
            )
            if output.kind == "reference":
                raise DeliveryError(f"even the reference record was refused: {detail}")
            replacement = self._publisher.replacement(output, detail)
            log.warning(
                "%s[%d]@%d: %s; sending a %s instead",
                output.origin.source.topic,
                output.origin.source.partition,
                output.origin.source.offset,
                detail,
                replacement.kind,
            )
            self.produce(replacement, ack)

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            if error.fatal():
                raise FatalKafkaError(f"producer: {error}")
            raise DeliveryError(f"an output was not delivered: {error}; not committing")
