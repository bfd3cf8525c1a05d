"""The consume -> score -> publish -> commit loop.

Delivery guarantees (see DESIGN.md):

- at-least-once (default): an input offset is committed only after every message
  derived from it (scored alert, compact record or dead letter) is acknowledged by the
  broker; a delivery failure stops the run before the next commit, so a restart
  re-reads those inputs. Duplicates are possible after a crash, losses are not.
- exactly-once: each batch is one transaction holding its outputs and its input
  offsets; readers with ``isolation.level=read_committed`` see each output once.

A bad alert is a dead letter, never a stalled partition. SIGTERM/SIGINT finish the
batch in hand, flush, commit and exit 0.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, suppress
from functools import partial
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from btsbot_stream import metrics
from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.config import ServiceSettings
from btsbot_stream.scoring import PreparedMessage, Scorer, prepare_message
from btsbot_stream.stream.clients import consumer_config, producer_config
from btsbot_stream.stream.dead_letters import SourcePosition
from btsbot_stream.stream.exceptions import DeliveryError, FatalKafkaError
from btsbot_stream.stream.health import Health
from btsbot_stream.stream.offsets import OffsetTracker
from btsbot_stream.stream.publish import OutputMessage, Publisher

log = logging.getLogger(__name__)
FLUSH_TIMEOUT_S = 60.0
# The group generation changed under us (e.g. the broker was away longer than the
# session timeout): a commit can no longer succeed, and needs not for correctness.
_GROUP_MOVED_ON = {
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError._ASSIGNMENT_LOST,
}
TXN_ATTEMPTS = 5


class ScoringService:
    def __init__(
        self, settings: ServiceSettings, scorer: Scorer, decoder: AlertDecoder, health: Health
    ) -> None:
        self.settings = settings
        self.scorer = scorer
        self.decoder = decoder
        self.health = health
        self.publisher = Publisher(settings.kafka, [m.card for m in scorer.models])
        self.tracker = OffsetTracker()
        self.transactional = settings.delivery.mode == "exactly-once"
        self._stopping = False
        self._failed = False  # a failed run commits nothing, not even on close()
        self._delivery_error: KafkaError | None = None
        self._paused: list[TopicPartition] = []
        # A consumed batch whose preparation runs while the previous one is scored.
        self._pending: tuple[list[Message], Future[list[PreparedMessage]]] | None = None
        self._last_input = time.monotonic()
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish its batch and exit (safe from a signal handler)."""
        self._stopping = True

    def run(self, exit_when_idle: float | None = None) -> None:
        with ExitStack() as stack:
            self._producer = Producer(producer_config(self.settings))
            if self.transactional:
                self._producer.init_transactions(30)
            consumer = Consumer(consumer_config(self.settings), stats_cb=self._on_stats, logger=log)
            stack.callback(consumer.close)  # runs last: leaves the group after the commit
            self._consumer = consumer
            kafka = self.settings.kafka
            topics = list(kafka.input_topics)
            if kafka.input_pattern:
                pattern = kafka.input_pattern
                topics.append(pattern if pattern.startswith("^") else "^" + pattern)
            consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
            log.info("consuming %s, publishing to %s", topics, kafka.output_topic)
            self.health.ready = True
            try:
                self._loop(consumer, exit_when_idle)
                self._drain()
            except BaseException:
                self._failed = True
                self.health.ready = False
                raise
            log.info("stopped cleanly")

    def _loop(self, consumer: Consumer, exit_when_idle: float | None) -> None:
        engine = self.settings.engine
        self._last_input = time.monotonic()
        last_commit = time.monotonic()
        commit_every = self.settings.delivery.commit_interval_ms / 1000
        with ThreadPoolExecutor(1, thread_name_prefix="prepare") as preparer:
            while not self._stopping:
                self.health.beat()
                messages = consumer.consume(engine.batch_size, engine.max_wait_ms / 1000)
                self._service_producer()
                batch = [m for m in messages if self._usable(m)]
                # Decode/stamps/features of this batch run in a thread while the previous
                # batch is scored here: ONNX Runtime releases the GIL, so both cores work.
                incoming = (batch, preparer.submit(self._prepare, batch)) if batch else None
                if self._pending is not None:
                    self._publish(*self._pending)
                self._pending = incoming
                if batch:
                    self._last_input = time.monotonic()
                elif self._idle_for(exit_when_idle):
                    log.info("idle for %.1f s: exiting", exit_when_idle)
                    break
                if not self.transactional and time.monotonic() - last_commit >= commit_every:
                    self._commit(asynchronous=True)
                    last_commit = time.monotonic()
                self._backpressure(consumer)
                metrics.IN_FLIGHT.set(self.tracker.in_flight())
            if self._pending is not None:
                self._publish(*self._pending)
                self._pending = None

    def _idle_for(self, seconds: float | None) -> bool:
        return (
            seconds is not None
            and self.tracker.in_flight() == 0
            and time.monotonic() - self._last_input >= seconds
        )

    def _drain(self) -> None:
        """Flush outputs, commit what they acknowledge (at-least-once)."""
        if not self.transactional:
            self._flush()
            self._commit(asynchronous=False)

    # -- per batch ---------------------------------------------------------------------

    @staticmethod
    def _usable(message: Message) -> bool:
        error = message.error()
        if error is None:
            return True
        if error.fatal():
            raise FatalKafkaError(f"consumer: {error}")
        log.warning("consumer error (librdkafka retries): %s", error)
        return False

    def _prepare(self, batch: list[Message]) -> list[PreparedMessage]:
        metrics.ALERTS_CONSUMED.inc(len(batch))
        return [prepare_message(self.decoder, m.value() or b"") for m in batch]

    def _publish(self, batch: list[Message], prepared: Future[list[PreparedMessage]]) -> None:
        """Score a prepared batch and produce its outputs (in a transaction, for EOS)."""
        results = self.scorer.score(prepared.result())
        if self.transactional:
            self._publish_transaction(batch, results)
            return
        for message, outcomes in zip(batch, results, strict=True):
            source = _position(message)
            outputs = self.publisher.outputs(message.value() or b"", source, outcomes)
            tp = (source.topic, source.partition)
            self.tracker.consumed(tp, source.offset, len(outputs))
            for output in outputs:
                self._produce(output, partial(self._on_delivery, tp, source))

    def _produce(self, output: OutputMessage, callback: Any) -> None:
        assert self._producer is not None
        while True:
            try:
                self._producer.produce(
                    output.topic,
                    output.value,
                    output.key,
                    headers=output.headers,
                    on_delivery=callback,
                )
                break
            except BufferError:  # local queue full: let deliveries drain, then retry
                self._producer.poll(0.1)
        if output.reason is not None:
            metrics.DEAD_LETTERS.labels(output.reason).inc()

    def _on_delivery(
        self,
        tp: tuple[str, int] | None,
        source: SourcePosition,
        error: KafkaError | None,
        msg: Message,
    ) -> None:
        """Delivery report; ``tp`` is None in exactly-once mode (the transaction commits)."""
        if error is not None:
            if self._delivery_error is None:
                self._delivery_error = error
            log.error("delivery to %s failed: %s", msg.topic(), error)
            return
        if tp is not None:
            self.tracker.acked(tp, source.offset)
        if msg.topic() == self.settings.kafka.output_topic:
            metrics.ALERTS_PUBLISHED.inc()
            if source.timestamp_ms is not None:
                latency = time.time() - source.timestamp_ms / 1000
                metrics.ALERT_LATENCY_SECONDS.observe(max(latency, 0.0))

    def _service_producer(self) -> None:
        assert self._producer is not None
        self._producer.poll(0)
        self._raise_delivery_error()

    def _raise_delivery_error(self) -> None:
        if self._delivery_error is not None:
            error, self._delivery_error = self._delivery_error, None
            if error.fatal():
                raise FatalKafkaError(f"producer: {error}")
            raise DeliveryError(f"an output was not delivered: {error}; not committing")

    def _flush(self) -> None:
        assert self._producer is not None
        remaining = self._producer.flush(FLUSH_TIMEOUT_S)
        self._raise_delivery_error()
        if remaining:
            raise DeliveryError(f"{remaining} outputs unacknowledged after {FLUSH_TIMEOUT_S} s")

    def _commit(self, asynchronous: bool, only: Sequence[tuple[str, int]] | None = None) -> None:
        assert self._consumer is not None
        positions = self.tracker.committable()
        if only is not None:
            positions = {tp: o for tp, o in positions.items() if tp in only}
        if not positions:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
        try:
            if asynchronous:
                self._consumer.commit(offsets=offsets, asynchronous=True)
            else:
                self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() == KafkaError._NO_OFFSET:
                return
            if error.fatal():
                raise FatalKafkaError(f"commit: {error}") from exc
            if asynchronous or error.code() in _GROUP_MOVED_ON:
                # The outputs are acknowledged; only the commit is lost, so whoever reads
                # these partitions next re-reads them: duplicates, never a loss.
                log.warning("commit of %s failed: %s", positions, error)
                return
            raise
        self.tracker.mark_committed(positions)

    # -- exactly-once ------------------------------------------------------------------

    def _publish_transaction(self, batch: list[Message], results: list[Any]) -> None:
        assert self._producer is not None and self._consumer is not None
        producer, consumer = self._producer, self._consumer
        for _ in range(TXN_ATTEMPTS):
            producer.begin_transaction()
            for message, outcomes in zip(batch, results, strict=True):
                source = _position(message)
                for output in self.publisher.outputs(message.value() or b"", source, outcomes):
                    self._produce(output, partial(self._on_delivery, None, source))
            positions: dict[tuple[str, int], int] = {}
            for source in map(_position, batch):
                tp = (source.topic, source.partition)
                positions[tp] = max(positions.get(tp, 0), source.offset + 1)
            offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
            try:
                producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata())
                self._commit_transaction(producer)
                self._delivery_error = None  # errors of a committed transaction are moot
                return
            except KafkaException as exc:
                error = exc.args[0]
                if not error.txn_requires_abort():
                    raise FatalKafkaError(f"transaction: {error}") from exc
                log.warning("transaction aborted (%s): producing the batch again", error)
                producer.abort_transaction(30)
                self._delivery_error = None
        raise FatalKafkaError(f"batch not committed after {TXN_ATTEMPTS} transactions")

    @staticmethod
    def _commit_transaction(producer: Producer) -> None:
        deadline = time.monotonic() + FLUSH_TIMEOUT_S
        while True:
            try:
                producer.commit_transaction(30)
                return
            except KafkaException as exc:
                error = exc.args[0]
                if error.retriable() and time.monotonic() < deadline:
                    continue
                raise

    # -- rebalance, backpressure, stats ------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.health.assigned = len(partitions)
        self._last_input = time.monotonic()  # idle time counts from having work to wait for
        log.info("assigned %s", [f"{p.topic}[{p.partition}]" for p in partitions])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("revoked %s", [f"{p.topic}[{p.partition}]" for p in partitions])
        tps = [(p.topic, p.partition) for p in partitions]
        # The batch consumed but not yet published is dropped: its offsets were never
        # registered, so whoever owns those partitions next reads them again.
        self._pending = None
        if not self.transactional and not self._failed:
            # Everything consumed was produced already (the loop finishes a batch before
            # consuming again): wait for the acks, then commit before another member
            # takes these partitions over.
            self._flush()
            self._commit(asynchronous=False, only=tps)
        self.tracker.forget(tps)
        self._paused = [p for p in self._paused if (p.topic, p.partition) not in tps]
        for topic, partition in tps:
            with suppress(KeyError):  # no stats arrived for it yet
                metrics.CONSUMER_LAG.remove(topic, str(partition))
        self.health.assigned = 0

    def _backpressure(self, consumer: Consumer) -> None:
        limit = self.settings.delivery.max_in_flight
        in_flight = self.tracker.in_flight()
        if not self._paused and in_flight >= limit:
            self._paused = consumer.assignment()
            consumer.pause(self._paused)
            log.warning("%d alerts in flight: pausing %d partitions", in_flight, len(self._paused))
        elif self._paused and in_flight <= limit // 2:
            consumer.resume(self._paused)
            self._paused = []
        metrics.PAUSED_PARTITIONS.set(len(self._paused))

    @staticmethod
    def _on_stats(stats_json: str) -> None:
        stats = json.loads(stats_json)
        for topic, info in stats.get("topics", {}).items():
            for partition, p in info.get("partitions", {}).items():
                if partition != "-1" and p.get("consumer_lag", -1) >= 0:
                    metrics.CONSUMER_LAG.labels(topic, partition).set(p["consumer_lag"])


def _position(message: Message) -> SourcePosition:
    kind, timestamp = message.timestamp()
    return SourcePosition(
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        timestamp if kind != 0 else None,  # 0: TIMESTAMP_NOT_AVAILABLE
    )
