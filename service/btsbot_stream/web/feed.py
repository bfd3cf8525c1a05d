"""The background consumer that fills the window.

It assigns itself every partition of the scored topic (and of the candidate-event topic)
instead of joining a group, so each web replica sees everything and never commits:
it starts at the first message published within the window's hours (offsets for
times), no further back than ``max_alerts`` messages in all (shared among the
partitions by what each holds within the hours), and follows the stream from there. A
missing candidates topic (no decision stage yet) is looked for again every minute;
problems are kept for the status line and the metrics, never raised into requests.
Readiness (caught up once, a broker reachable): :mod:`btsbot_stream.web.readiness`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import astuple, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from btsbot_stream import metrics
from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.follow import kafka
from btsbot_stream.follow.alert_view import HEAD, ROW, AlertReader
from btsbot_stream.follow.events import decode_event
from btsbot_stream.follow.exceptions import FollowError, UnknownTopic
from btsbot_stream.follow.items import Headers, header_scores
from btsbot_stream.stream.watch import STATS_INTERVAL_MS, Connectivity, any_broker_up
from btsbot_stream.web.observe import error_kind
from btsbot_stream.web.readiness import CatchUp, FeedHealth
from btsbot_stream.web.start import start_offsets
from btsbot_stream.web.window import AlertRow, EventRow, ModelInfo, Window

log = logging.getLogger(__name__)
RETRY_TOPICS_S = 60.0
EVICT_EVERY_S = 5.0
CLIENT = "window feed"  # how /readyz names the feed's Kafka client


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
        health: FeedHealth | None = None,
    ) -> None:
        self.window = window
        self.bootstrap = bootstrap
        self.scored_topic = scored_topic
        self.candidates_topic = candidates_topic
        self.status = FeedStatus()
        self.health = health or FeedHealth()
        self.catch_up = CatchUp()
        self._connectivity = Connectivity(self.health, grouped=False)
        self._reader = AlertReader(ROW)
        self._head = AlertReader(HEAD)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._assigned: list[TopicPartition] = []
        self._newest_ms = 0
        # The next offset to read per partition, from what was taken: librdkafka's own
        # position() runs one past the end after a partition-EOF event.
        self._next: dict[tuple[str, int], int] = {}
        self.consumer = kafka.assigned_consumer(
            bootstrap,
            properties,
            "btsbot-web",
            **{
                "isolation.level": "read_committed",
                # The end of each partition is an event: how catching up ends on a
                # partition whose last offsets are transaction markers.
                "enable.partition.eof": True,
                "statistics.interval.ms": STATS_INTERVAL_MS,
                "stats_cb": self._on_stats,
                "error_cb": self._on_error,
            },
        )

    def _feed(self, topic: str | None) -> str:
        return "scored" if topic == self.scored_topic else "candidates"

    def _on_error(self, error: KafkaError) -> None:
        self.status.problem = f"{error.name()}: {error.str()}"
        kind = error_kind(kafka.classify(error, "the window feed", self.bootstrap))
        metrics.WEB_FEED_ERRORS.labels(kind).inc()
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._connectivity.reachable(CLIENT, False)

    def _on_stats(self, stats_json: str) -> None:
        self._connectivity.reachable(CLIENT, any_broker_up(json.loads(stats_json)))

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
            ends = [self.consumer.get_watermark_offsets(tp, timeout=10) for tp in placed]
            budget = (
                self.window.max_alerts if topic == self.scored_topic else self.window.max_events
            )
            # No further back than the window's count, over all the partitions.
            starts = start_offsets(
                [(tp.offset, low, high) for tp, (low, high) in zip(placed, ends, strict=True)],
                budget,
            )
            for tp, start, (_, high) in zip(placed, starts, ends, strict=True):
                tp.offset = start
                self._next[(topic, tp.partition)] = start
                self.catch_up.expect(topic, tp.partition, start, high)
            # Adds these partitions; those already assigned keep their positions.
            self.consumer.incremental_assign(placed)
            self._assigned += placed
            self.status.assigned.append(topic)
        self.status.waiting_for = waiting
        self.health.assigned = len(self._assigned)
        if self.scored_topic in self.status.assigned:
            self.catch_up.arm()  # the first assignment is complete: later topics add nothing

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="window-feed", daemon=True)
        self.health.feed_thread = self._thread
        self.health.set("starting", "reading the window: no partition assigned yet")
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self.health.set("stopping", "the page is shutting down")
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
                    self._note_progress()
                if now - evicted > EVICT_EVERY_S:
                    evicted = now
                    self.window.evict()
                    self._note_lag()
                # Also serves the error and statistics callbacks (reachability) while
                # nothing is assigned yet.
                for msg in self.consumer.consume(500, timeout=0.5):
                    self._take(msg)
                self._note_progress()
        except Exception as exc:  # a bug, not a broker problem: /healthz says so
            self.health.feed_error = f"{type(exc).__name__}: {exc}"
            log.exception("window feed stopped")
        finally:
            self.consumer.close()

    def _note_progress(self) -> None:
        """Readiness: ``starting`` until the first assignment is read to its end."""
        if not self.health.has("starting"):
            return
        if self.catch_up.done:
            self.health.clear("starting")
            log.info(
                "window feed caught up: %d alerts, %d events",
                len(self.window),
                self.window.event_count,
            )
            return
        if self.catch_up.armed:
            messages, partitions = self.catch_up.remaining()
            detail = (
                f"reading the window: {messages} messages in {partitions} partitions to the "
                "end offsets seen at start"
            )
        elif self.scored_topic in self.status.waiting_for:
            detail = f"the scored topic {self.scored_topic!r} does not exist (yet)"
        else:
            detail = f"no partition of {self.scored_topic!r} assigned yet"
            detail += f" ({self.status.problem})" if self.status.problem else ""
        self.health.set("starting", detail)

    def _note_lag(self) -> None:
        """Messages behind each partition's end (as of the last fetch response)."""
        lag = {}
        for (topic, partition), next_offset in list(self._next.items()):
            tp = TopicPartition(topic, partition)
            _, high = self.consumer.get_watermark_offsets(tp, cached=True) or (-1, -1)
            if high >= 0:
                lag[(topic, partition)] = max(0, high - next_offset)
        self.status.lag = {f"{t}[{p}]": n for (t, p), n in lag.items()}
        for feed in metrics.WEB_FEEDS:
            total = sum(n for (t, _), n in lag.items() if self._feed(t) == feed)
            metrics.WEB_FEED_LAG.labels(feed).set(total)

    def _safely(self, step: Any) -> None:
        try:
            step()
        except (FollowError, KafkaException) as exc:
            error = (
                exc
                if isinstance(exc, FollowError)
                else kafka.classify(exc.args[0], "the window feed", self.bootstrap)
            )
            metrics.WEB_FEED_ERRORS.labels(error_kind(error)).inc()
            self.status.problem = str(exc)
            log.warning("window feed: %s", exc)

    def _read_alert(self, value: bytes, headers: Headers | None) -> dict[str, Any]:
        """What a list row needs. The service's score headers carry every model's score:
        then only the alert's leading fields are decoded (objectId, candid, candidate),
        ~7x faster than reaching the scores past the history and the stamps. The whole
        row is read for a message without score headers, or with a model whose version
        the window has not noted yet (the versions are only in the record)."""
        scores, _ = header_scores(headers)
        if scores and scores.keys() <= self.window.models.keys():
            return self._head.read(value)
        return self._reader.read(value)

    def _take(self, msg: Message) -> None:
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:  # its offset: the end's
                key = (msg.topic() or "", msg.partition() or 0)
                self._next[key] = max(self._next.get(key, 0), msg.offset() or 0)
                self.catch_up.at_end(*key)
            else:
                self._on_error(error)
            return
        self.status.read += 1
        where = Position.of(msg)
        value = msg.value() or b""
        feed = self._feed(where.topic)
        metrics.WEB_FEED_MESSAGES.labels(feed).inc()
        metrics.WEB_FEED_BYTES.labels(feed).inc(len(value))
        self._next[(where.topic, where.partition)] = where.offset + 1
        self.catch_up.read(where.topic, where.partition, where.offset)
        try:
            if feed == "scored":
                record = self._read_alert(value, msg.headers())
                row, models = alert_row(where, msg.key(), msg.headers(), record)
                self.window.note_models(models)
                self.window.add_alert(row)
                if where.published_ms > self._newest_ms:
                    self._newest_ms = where.published_ms
                    metrics.WEB_NEWEST_ALERT.set(where.published_ms / 1000)
            else:
                event = decode_event(value)
                self.window.add_event(
                    EventRow(event, where.topic, where.partition, where.offset, where.published_ms)
                )
        except (InvalidAlert, KeyError, TypeError, ValueError) as exc:
            # A message of an unexpected shape is skipped (and counted), never fatal.
            self.status.undecodable += 1
            metrics.WEB_FEED_ERRORS.labels("undecodable").inc()
            log.warning("window feed: %s[%s]@%s: %s", *astuple(where)[:3], exc)
