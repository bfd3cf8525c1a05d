"""The ``watch`` loop: subscribe, filter, de-duplicate, save, then let the offset go.

Per message: the score headers decide first (most alerts stop there, undecoded); the
repeat check uses the ``ztf.candid`` header; only then is the value decoded for the
magnitude, band, position and policy filters. An offset is *stored* once its message is
fully handled (dropped, or saved and shown) and librdkafka's auto-commit commits only
stored offsets, so nothing is committed before it is saved: after a crash the unsaved
messages are read again, and the candids already in the save folder are skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.follow import kafka
from btsbot_stream.follow.alert_view import PAGE, ROW, AlertReader
from btsbot_stream.follow.dedup import RecentKeys
from btsbot_stream.follow.events import decode_event
from btsbot_stream.follow.filters import Filters
from btsbot_stream.follow.items import FollowItem, ItemKind, header_view, with_alert, with_event

if TYPE_CHECKING:  # the saver (and its image libraries) loads only with --save
    from btsbot_stream.follow.save import Saver

log = logging.getLogger(__name__)
_TRANSIENT = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._PARTITION_EOF}


@dataclass
class Counts:
    read: int = 0
    passed: int = 0
    filtered: int = 0
    repeats: int = 0
    undecodable: int = 0


@dataclass(frozen=True)
class WatchPlan:
    bootstrap: str
    properties: Mapping[str, str]
    group_id: str
    topics: Mapping[str, ItemKind]  # topic -> what it carries
    start: str = "latest"  # where a group with no committed offset starts
    since: datetime | None = None  # overrides committed offsets on the first assignment
    commit_interval_ms: int = 1000


class Watcher:
    def __init__(
        self,
        plan: WatchPlan,
        filters: Filters,
        memory: RecentKeys,
        on_item: Callable[[FollowItem], None],
        saver: Saver | None = None,
    ) -> None:
        self.plan = plan
        self.filters = filters
        self.memory = memory
        self.on_item = on_item
        self.saver = saver
        self.counts = Counts()
        self.last_problem: str | None = None  # a transient broker problem, for display
        self._reader = AlertReader(PAGE if saver else ROW)
        self._positioned: set[tuple[str, int]] = set()
        self._last_input = time.monotonic()
        self.consumer = Consumer(
            kafka.consumer_settings(
                plan.bootstrap,
                plan.properties,
                **{
                    "group.id": plan.group_id,
                    "auto.offset.reset": plan.start,
                    "enable.auto.commit": True,
                    "enable.auto.offset.store": False,  # only what was handled commits
                    "auto.commit.interval.ms": plan.commit_interval_ms,
                    "isolation.level": "read_committed",
                    "error_cb": self._on_error,
                },
            )
        )

    def _on_error(self, error: KafkaError) -> None:
        self.last_problem = f"{error.name()}: {error.str()}"
        if error.fatal() or error.code() in (
            KafkaError._AUTHENTICATION,
            KafkaError.SASL_AUTHENTICATION_FAILED,
        ):
            log.error("Kafka: %s", self.last_problem)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        fresh = [tp for tp in partitions if (tp.topic, tp.partition) not in self._positioned]
        if self.plan.since is not None and fresh:
            placed = {
                (tp.topic, tp.partition): tp
                for tp in kafka.offsets_at(consumer, fresh, self.plan.since)
            }
            partitions = [placed.get((tp.topic, tp.partition), tp) for tp in partitions]
            consumer.assign(partitions)
        self._positioned.update((tp.topic, tp.partition) for tp in partitions)
        self._last_input = time.monotonic()  # idle time counts from the assignment

    def start(self) -> None:
        """Check every topic (clear errors) and subscribe."""
        kafka.check_topics(self.consumer, self.plan.topics, self.plan.bootstrap)
        self.consumer.subscribe(list(self.plan.topics), on_assign=self._on_assign)

    def run(self, stop: Callable[[], bool], exit_when_idle: float | None = None) -> None:
        """Poll until ``stop()`` or, once partitions are assigned, ``exit_when_idle``
        seconds without a message."""
        while not stop():
            msg = self.consumer.poll(0.5)
            if msg is None:
                idle = time.monotonic() - self._last_input if self._positioned else 0.0
                if exit_when_idle is not None and idle > exit_when_idle:
                    return
                continue
            error = msg.error()
            if error is not None:
                if error.code() in _TRANSIENT:
                    self.last_problem = error.str()
                    continue
                what = f"topic {msg.topic()!r} / group {self.plan.group_id!r}"
                kafka.fail(error, what, self.plan.bootstrap)
            self._last_input = time.monotonic()
            self.handle(msg)

    def close(self) -> None:
        """Leave the group, committing what was stored."""
        self.consumer.close()
        if self.saver is not None:
            self.saver.close()

    def handle(self, msg: Message) -> None:
        self.counts.read += 1
        topic = msg.topic() or ""
        kind = self.plan.topics[topic]
        item = header_view(
            kind,
            topic,
            msg.partition() or 0,
            msg.offset() or 0,
            msg.timestamp()[1],
            msg.key(),
            msg.headers(),
        )
        if self.filters.on_headers(item) is False:
            self.counts.filtered += 1
        elif item.candid is not None and item.key in self.memory:
            self.counts.repeats += 1
        else:
            self._decode_and_keep(item, msg.value() or b"")
        self.consumer.store_offsets(msg)

    def _decode_and_keep(self, item: FollowItem, value: bytes) -> None:
        record: dict[str, Any] | None = None
        try:
            if item.kind == "alert":
                record = self._reader.read(value)
                item = with_alert(item, record)
            else:
                item = with_event(item, decode_event(value))
        except InvalidAlert as exc:
            self.counts.undecodable += 1
            log.warning("skipping %s[%d]@%d: %s", item.topic, item.partition, item.offset, exc)
            return
        if not self.filters.accepts(item):
            self.counts.filtered += 1
            return
        key = item.key
        if key in self.memory:
            self.counts.repeats += 1
            return
        if self.saver is not None:
            self.saver.save(item, value, record)  # an OSError stops the run, uncommitted
        self.memory.add(key)
        self.counts.passed += 1
        self.on_item(item)
