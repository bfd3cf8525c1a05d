"""The consume -> prepare -> score -> publish -> commit loop.

Delivery guarantees (see docs/design.md):

- at-least-once (default): an input offset is committed only after every message
  derived from it (scored alert, compact record or dead letter) is acknowledged by the
  broker; a delivery failure stops the run before the next commit, so a restart
  re-reads those inputs. Duplicates are possible after a crash, losses are not.
- exactly-once: each batch is one transaction holding its outputs and its input
  offsets; readers with ``isolation.level=read_committed`` see each output once.

Each consumed batch is prepared (decode, stamps, features) by the preparation workers
(or a thread) while the batch before it is scored here, and published in consumption
order; once scored, its shared memory goes back to the workers. A bad alert is a
dead letter, never a stalled partition; a schema registry that is away pauses
consumption until it answers. SIGTERM/SIGINT finish the batches in hand, flush, commit
and exit 0.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import wait
from contextlib import ExitStack
from functools import partial

from confluent_kafka import Consumer, Message

from btsbot_stream import metrics
from btsbot_stream.config import ServiceSettings
from btsbot_stream.scoring import PreparedMessage, Scorer
from btsbot_stream.stream.clients import make_consumer, make_producer
from btsbot_stream.stream.commits import Committer
from btsbot_stream.stream.exceptions import FatalKafkaError
from btsbot_stream.stream.flow import FlowControl
from btsbot_stream.stream.health import Health
from btsbot_stream.stream.limits import TopicLimits
from btsbot_stream.stream.offsets import OffsetTracker
from btsbot_stream.stream.pipeline import Batch, Consumed, Pipeline, position
from btsbot_stream.stream.preparation import Preparation, PreparationStopped
from btsbot_stream.stream.producer import OutputProducer
from btsbot_stream.stream.publish import Publisher
from btsbot_stream.stream.rebalance import FLUSH_TIMEOUT_S, Rebalance
from btsbot_stream.stream.transactions import TransactionalPublisher
from btsbot_stream.stream.watch import ClientWatch, Connectivity, kafka_log

log = logging.getLogger(__name__)
STOP_WAIT_S = 30.0  # at stop, how long a batch in preparation may still take
# Batches consumed ahead of the one being scored: one preparing while one is scored
# keeps both cores busy; more would only hold alerts in memory.
PIPELINE_DEPTH = 2


class ScoringService:
    def __init__(
        self,
        settings: ServiceSettings,
        scorer: Scorer,
        preparation: Preparation,
        health: Health,
        limits: TopicLimits,
        stop: threading.Event,
    ) -> None:
        self.settings = settings
        self.scorer = scorer
        self.preparation = preparation
        self.health = health
        self.limits = limits
        self.publisher = Publisher(settings.kafka, [m.card for m in scorer.models], limits)
        self.tracker = OffsetTracker()
        self.pipeline = Pipeline()
        self.transactional = settings.delivery.mode == "exactly-once"
        self.committer = None if self.transactional else Committer(self.tracker)
        self.connectivity = Connectivity(health)
        self.rebalance = Rebalance(
            self.tracker, self.pipeline, health, self.connectivity, self.committer
        )
        self._stop = stop
        self._last_input = time.monotonic()

    def run(self, exit_when_idle: float | None = None) -> None:
        settings = self.settings
        with ExitStack() as stack:
            producer_watch = ClientWatch("producer", self.connectivity)
            producer = make_producer(settings, producer_watch, self.limits.batch_size())
            out = OutputProducer(producer, self.publisher, self.transactional)
            if self.transactional:
                producer.init_transactions(30)
            consumer_watch = ClientWatch("consumer", self.connectivity)
            callbacks = {"on_commit": self.committer.on_commit} if self.committer else {}
            consumer = make_consumer(settings, consumer_watch, **callbacks)
            stack.callback(consumer.close)  # runs last: leaves the group after the commit
            if self.committer is not None:
                self.committer.consumer = consumer
            self.rebalance.out = out
            flow = self.rebalance.flow = FlowControl(consumer, settings.delivery.max_in_flight)
            kafka = settings.kafka
            topics = list(kafka.input_topics)
            if kafka.input_pattern:
                pattern = kafka.input_pattern
                topics.append(pattern if pattern.startswith("^") else "^" + pattern)
            consumer.subscribe(
                topics,
                on_assign=self.rebalance.on_assign,
                on_revoke=self.rebalance.on_revoke,
                on_lost=self.rebalance.on_lost,
            )
            log.info("consuming %s, publishing to %s", topics, kafka.output_topic)
            self.connectivity.rebalanced(joined=False)
            self.health.clear("starting")
            self.health.looping = True
            loop = _Loop(self, consumer, out, flow, (producer_watch, consumer_watch))
            try:
                loop.run(exit_when_idle)
                loop.finish()
            except BaseException:
                self.rebalance.failed = True
                raise
            finally:
                self.preparation.close()
            log.info("stopped cleanly")


class _Loop:
    """One run of the loop, with the clients it uses."""

    def __init__(
        self,
        service: ScoringService,
        consumer: Consumer,
        out: OutputProducer,
        flow: FlowControl,
        watches: tuple[ClientWatch, ...],
    ) -> None:
        self.s = service
        self.consumer = consumer
        self.out = out
        self.flow = flow
        self.watches = watches
        self.transactions = (
            TransactionalPublisher(out, consumer, service.publisher, service.tracker)
            if service.transactional
            else None
        )

    def run(self, exit_when_idle: float | None) -> None:
        s = self.s
        engine, delivery = s.settings.engine, s.settings.delivery
        last_commit = time.monotonic()
        s._last_input = time.monotonic()
        while not s._stop.is_set():
            s.health.beat()
            self.out.service()
            self._check_fatal()
            oldest = s.pipeline.oldest()
            if (
                oldest is not None
                and len(s.pipeline) >= PIPELINE_DEPTH
                and not s.preparation.registry_down.is_set()
            ):
                wait([oldest.prepared], timeout=engine.max_wait_ms / 1000)
                batch = []
            else:
                messages = self.consumer.consume(engine.batch_size, engine.max_wait_ms / 1000)
                batch = [m for m in messages if self._usable(m)]
            if batch:
                self._enqueue(batch)
            if batch or s.health.has("not_joined"):  # idle counts from joining the group
                s._last_input = time.monotonic()
            while (ready := s.pipeline.ready()) is not None:
                self._publish(ready)
            if not batch and self._idle_for(exit_when_idle):
                log.info("idle for %.1f s: exiting", exit_when_idle)
                break
            if s.committer is not None and time.monotonic() - last_commit >= (
                delivery.commit_interval_ms / 1000
            ):
                s.committer.commit_async()
                last_commit = time.monotonic()
            self.flow.update(s.tracker.in_flight(), s.preparation.registry_down.is_set())
            metrics.IN_FLIGHT.set(s.tracker.in_flight())

    def finish(self) -> None:
        """Publish the batches in hand (those that can be prepared), flush, commit."""
        s = self.s
        if s._stop.is_set():  # asked to stop (SIGTERM): take no new traffic
            s.health.set("stopping", "finishing the batches in hand")
        s.preparation.stop_waiting()  # a registry outage must not hold the exit
        for batch in s.pipeline.clear():
            wait([batch.prepared], timeout=STOP_WAIT_S)
            if not batch.prepared.done() or batch.prepared.exception() is not None:
                log.warning("dropping a batch still waiting at stop (not committed)")
                continue
            self._publish(batch)
        if s.committer is not None:
            self.out.flush(FLUSH_TIMEOUT_S)
            s.committer.commit_sync()

    def _enqueue(self, messages: list[Message]) -> None:
        items = []
        for message in messages:
            source = position(message)
            epoch = self.s.tracker.consumed((source.topic, source.partition), source.offset)
            items.append(Consumed(message, source, epoch))
        self.s.pipeline.append(Batch(items, self.s.preparation.submit(messages)))

    def _publish(self, batch: Batch) -> None:
        """Score a prepared batch and produce its outputs (in a transaction, for EOS)."""
        try:
            live = batch.live()
        except PreparationStopped:
            return
        try:
            if live:
                self._score_and_produce(live)
        finally:
            batch.release()

    def _score_and_produce(self, live: list[tuple[Consumed, PreparedMessage]]) -> None:
        results = self.s.scorer.score([prepared for _, prepared in live])
        items = [(item, outcomes) for (item, _), outcomes in zip(live, results, strict=True)]
        if self.transactions is not None:
            self.transactions.publish(items)
            return
        tracker = self.s.tracker
        for item, outcomes in items:
            source = item.source
            outputs = self.s.publisher.outputs(item.message.value() or b"", source, outcomes)
            tracker.produced(item.tp, source.offset, item.epoch, len(outputs))
            ack = partial(tracker.acked, item.tp, source.offset, item.epoch)
            for output in outputs:
                self.out.produce(output, ack)

    def _idle_for(self, seconds: float | None) -> bool:
        return (
            seconds is not None
            and self.s.tracker.in_flight() == 0
            and not len(self.s.pipeline)
            and time.monotonic() - self.s._last_input >= seconds
        )

    def _check_fatal(self) -> None:
        for watch in self.watches:
            if watch.fatal is not None:
                raise FatalKafkaError(f"{watch.client}: {watch.fatal}")

    @staticmethod
    def _usable(message: Message) -> bool:
        error = message.error()
        if error is None:
            return True
        if error.fatal():
            raise FatalKafkaError(f"consumer: {error}")
        kafka_log.warning("consumer: %s", error)
        return False
