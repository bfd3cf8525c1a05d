"""The background consumer that fills the window.

It assigns itself every partition of the scored topic (and of the candidate-event topic)
instead of joining a group, so each web replica sees everything and never commits:
it starts at the first message published within the window's hours (offsets for
times), no further back than ``max_alerts`` messages per partition, and follows the
stream from there. A missing candidates topic (no decision stage yet) is looked for
again every minute; problems are kept for the status line, never raised into requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import astuple, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.follow import kafka
from btsbot_stream.follow.alert_view import ROW, AlertReader
from btsbot_stream.follow.events import decode_event
from btsbot_stream.follow.exceptions import FollowError, UnknownTopic
from btsbot_stream.follow.items import Headers, header_scores
from btsbot_stream.web.window import AlertRow, EventRow, ModelInfo, Window

log = logging.getLogger(__name__)
RETRY_TOPICS_S = 60.0
EVICT_EVERY_S = 5.0


@dataclass
class FeedStatus:
    read: int = 0
    undecodable: int = 0
    assigned: list[str] = field(default_factory=list)
    waiting_for: list[str] = field(default_factory=list)  # topics not there (yet)
    problem: str | None = None
    lag: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Position:
    """Where a message sits in Kafka, and when it was published."""

    topic: str
    partition: int
    offset: int
    published_ms: int

    @classmethod
    def of(cls, msg: Message) -> Position:
        return cls(msg.topic() or "", msg.partition() or 0, msg.offset() or 0, msg.timestamp()[1])


def alert_row(
    where: Position, key: bytes | None, headers: Headers | None, record: Mapping[str, Any]
) -> tuple[AlertRow, dict[str, ModelInfo]]:
    """A window row from a decoded scored alert (scores: the record's, else headers)."""
    candidate = record.get("candidate") or {}
    scores, header_candid = header_scores(headers)
    models = {}
    for entry in (record.get("btsbot") or {}).get("scores") or ():
        scores[entry["model"]] = float(entry["score"])
        models[entry["model"]] = ModelInfo(entry.get("version", ""), entry.get("sha256", ""))
    candid = record.get("candid", candidate.get("candid", header_candid))

    def num(name: str) -> float | None:
        value = candidate.get(name)
        return None if value is None else float(value)

    row = AlertRow(
        object_id=str(record.get("objectId") or (key or b"?").decode("utf-8", "replace")),
        candid=int(candid) if candid is not None else -where.offset,
        jd=num("jd"),
        fid=int(candidate["fid"]) if candidate.get("fid") is not None else None,
        magpsf=num("magpsf"),
        sigmapsf=num("sigmapsf"),
        ra=num("ra"),
        dec=num("dec"),
        drb=num("drb") if candidate.get("drb") is not None else num("rb"),
        scores=scores,
        topic=where.topic,
        partition=where.partition,
        offset=where.offset,
        published_ms=where.published_ms,
    )
    return row, models


class WindowFeed:
    def __init__(
        self,
        window: Window,
        bootstrap: str,
        properties: Mapping[str, str],
        scored_topic: str,
        candidates_topic: str | None,
    ) -> None:
        self.window = window
        self.bootstrap = bootstrap
        self.scored_topic = scored_topic
        self.candidates_topic = candidates_topic
        self.status = FeedStatus()
        self._reader = AlertReader(ROW)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._assigned: list[TopicPartition] = []
        self.consumer = kafka.assigned_consumer(
            bootstrap,
            properties,
            "btsbot-web",
            **{"isolation.level": "read_committed", "error_cb": self._on_error},
        )

    def _on_error(self, error: KafkaError) -> None:
        self.status.problem = f"{error.name()}: {error.str()}"

    def check(self) -> None:
        """Fail fast (clear error) when the scored topic cannot be read."""
        kafka.check_topics(self.consumer, [self.scored_topic], self.bootstrap)

    def _assign_new(self) -> None:
        """Assign the partitions of topics not yet assigned, from the window's start."""
        wanted = [self.scored_topic] + ([self.candidates_topic] if self.candidates_topic else [])
        have = {tp.topic for tp in self._assigned}
        since = datetime.now(UTC) - timedelta(hours=self.window.hours)
        waiting = []
        for topic in wanted:
            if topic in have:
                continue
            try:
                partitions = kafka.check_topics(self.consumer, [topic], self.bootstrap)[topic]
            except UnknownTopic:
                waiting.append(topic)
                continue
            tps = [TopicPartition(topic, p) for p in range(partitions)]
            placed = kafka.offsets_at(self.consumer, tps, since)
            for tp in placed:  # no further back than the window's count
                low, high = self.consumer.get_watermark_offsets(tp, timeout=10)
                floor = max(low, high - self.window.max_alerts)
                tp.offset = high if tp.offset < 0 else max(tp.offset, floor)
            # Adds these partitions; those already assigned keep their positions.
            self.consumer.incremental_assign(placed)
            self._assigned += placed
            self.status.assigned.append(topic)
        self.status.waiting_for = waiting

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="window-feed", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        checked = evicted = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now - checked > RETRY_TOPICS_S or (checked == 0.0):
                    checked = now
                    self._safely(self._assign_new)
                if now - evicted > EVICT_EVERY_S:
                    evicted = now
                    self.window.evict()
                    self.status.lag = {
                        f"{t}[{p}]": n
                        for (t, p), n in kafka.lag_by_partition(self.consumer).items()
                    }
                if not self._assigned:
                    self._stop.wait(1.0)
                    continue
                for msg in self.consumer.consume(500, timeout=0.5):
                    self._take(msg)
        finally:
            self.consumer.close()

    def _safely(self, step: Any) -> None:
        try:
            step()
        except (FollowError, KafkaException) as exc:
            self.status.problem = str(exc)
            log.warning("window feed: %s", exc)

    def _take(self, msg: Message) -> None:
        error = msg.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                self.status.problem = error.str()
            return
        self.status.read += 1
        where = Position.of(msg)
        try:
            if where.topic == self.scored_topic:
                record = self._reader.read(msg.value() or b"")
                row, models = alert_row(where, msg.key(), msg.headers(), record)
                self.window.note_models(models)
                self.window.add_alert(row)
            else:
                event = decode_event(msg.value() or b"")
                self.window.add_event(
                    EventRow(event, where.topic, where.partition, where.offset, where.published_ms)
                )
        except InvalidAlert as exc:
            self.status.undecodable += 1
            log.warning("window feed: %s[%s]@%s: %s", *astuple(where)[:3], exc)
