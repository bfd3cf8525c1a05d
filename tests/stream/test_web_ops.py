"""The scanning page's readiness and metrics against the real broker: 503 while the
window is read (with how much is left), 200 once read to the end offsets seen at start
and still 200 when newer alerts wait; 503 while the broker is away and 200 when it is
back; /metrics equal to what was published; a start reads no more than the window's
count over all partitions together."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message, Producer
from fastapi.testclient import TestClient
from follow_support import publish, publish_events
from kafka_helpers import create_topic, free_port, read_topic, unique
from local_kafka import LocalKafka
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from tests.probes import http_get, until

from btsbot_stream.stream.health import HealthServer
from btsbot_stream.stream.publish import OutputMessage
from btsbot_stream.web import feed as feed_module
from btsbot_stream.web.app import create_app
from btsbot_stream.web.feed import WindowFeed
from btsbot_stream.web.objects import ObjectPages
from btsbot_stream.web.views import WebState
from btsbot_stream.web.window import ModelInfo, Window
from scored_alerts import MODEL, demo_scored, record_of, variant

pytestmark = pytest.mark.kafka
EVENTS = [
    {"objectId": "ZTF20aajcdad", "policy": "bts_p2", "magpsf": 17.51},
    {"objectId": "ZTF18abvkwla", "policy": "prod_p1", "magpsf": 18.2},
]


def _samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the /metrics page, by name and labels."""
    code, text = http_get(f"{base}/metrics")
    assert code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _produce(bootstrap: str, topic: str, messages: Iterable[OutputMessage], first_ms: int) -> None:
    """Into partitions 0, 1, 0, 1... with Kafka timestamps first_ms, +1 s, +2 s..."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i, msg in enumerate(messages):
        producer.produce(
            topic,
            msg.value,
            msg.key,
            headers=msg.headers,
            partition=i % 2,
            timestamp=first_ms + 1000 * i,
        )
    assert producer.flush(30) == 0


class HeldConsumer:
    """The feed's consumer, handing out no more than ``allow`` messages: a feed slower
    than the stream. Everything else (the feed's loop, lag, readiness) runs on; librdkafka
    keeps fetching in the background, so the end offsets it knows move on."""

    def __init__(self, consumer: Any) -> None:
        self._consumer = consumer
        self._lock = threading.Lock()  # a hold waits for the consume call in progress
        self.allow = 0
        self.taken = 0

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        with self._lock:
            room = self.allow - self.taken
            if room > 0:
                messages = self._consumer.consume(min(num_messages, room), timeout=timeout)
                self.taken += sum(1 for m in messages if m.error() is None)
                return list(messages)
        time.sleep(max(timeout, 0.1))
        return []

    def hold_after(self, messages: int) -> None:
        with self._lock:
            self.allow = self.taken + messages

    def let_go(self) -> None:
        with self._lock:
            self.allow = 10**9

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


@pytest.fixture()
def page(
    kafka: LocalKafka, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[WindowFeed, HeldConsumer, TestClient, str, dict[str, str]]]:
    """The demo's 29 scored alerts (2 partitions, timestamps an hour ago, 1 s apart) and 2
    candidate events; a page over them, its feed held after 5 messages."""
    monkeypatch.setattr(feed_module, "EVICT_EVERY_S", 0.5)  # the lag gauge, sooner
    scored, candidates = unique("scored"), unique("candidates")
    create_topic(kafka.bootstrap, scored, 2)
    first_ms = int(time.time() * 1000) - 3_600_000
    _produce(kafka.bootstrap, scored, demo_scored(), first_ms)
    publish_events(kafka.bootstrap, candidates, EVENTS)
    window = Window(hours=48, max_alerts=1000)
    feed = WindowFeed(window, kafka.bootstrap, {}, scored, candidates)
    held = HeldConsumer(feed.consumer)
    monkeypatch.setattr(feed, "consumer", held)
    held.hold_after(5)
    app = create_app(WebState(window, ObjectPages(window, None), feed))
    names = {"scored": scored, "first_ms": str(first_ms)}
    with HealthServer(feed.health, "127.0.0.1", 0) as server, TestClient(app) as client:
        yield feed, held, client, f"http://127.0.0.1:{server.port}", names


def test_ready_once_caught_up_and_the_metrics_count_the_window(
    page: tuple[WindowFeed, HeldConsumer, TestClient, str, dict[str, str]], kafka: LocalKafka
) -> None:
    _, held, client, base, names = page
    read_before = {
        f: _value("btsbot_web_feed_messages_total", feed=f) for f in ("scored", "candidates")
    }
    bytes_before = {
        f: _value("btsbot_web_feed_bytes_total", feed=f) for f in ("scored", "candidates")
    }
    # 29 alerts in 2 partitions and 2 events in 1 when they were assigned, 5 read since
    until(lambda: held.taken == 5, 60, "the feed did not start reading")
    until(lambda: "26 messages" in http_get(f"{base}/readyz")[1], 30, "no progress shown")
    code, body = http_get(f"{base}/readyz")
    assert code == 503, body
    assert "not ready: starting: reading the window: 26 messages in " in body
    assert _samples(base)[("btsbot_not_ready", (("cause", "starting"),))] == 1
    assert client.get("/healthz").status_code == 200  # alive, only not ready
    held.let_go()
    until(lambda: http_get(f"{base}/readyz")[0] == 200, 60, "not ready after reading everything")
    assert "ready=True assigned_partitions=3" in http_get(f"{base}/readyz")[1]
    assert client.get("/api/status").json()["feed"]["caught_up"] is True

    # /metrics against what was published (read here, not from the window)
    until(lambda: _samples(base)[("btsbot_web_feed_lag", (("feed", "scored"),))] == 0, 30, "lag")
    samples = _samples(base)
    objects = {record_of(m)["objectId"] for m in demo_scored()}
    assert samples[("btsbot_web_window_alerts", ())] == len(demo_scored()) == 29
    assert samples[("btsbot_web_window_candidates", ())] == len(EVENTS)
    assert samples[("btsbot_web_window_objects", ())] == len(objects)
    assert samples[("btsbot_not_ready", (("cause", "starting"),))] == 0
    read = {
        f: samples[("btsbot_web_feed_messages_total", (("feed", f),))] - read_before[f]
        for f in read_before
    }
    assert read == {"scored": 29, "candidates": 2}
    sizes = {
        "scored": sum(len(m.value) for m in demo_scored()),
        "candidates": sum(len(json.dumps(e).encode()) for e in EVENTS),
    }
    assert {
        f: samples[("btsbot_web_feed_bytes_total", (("feed", f),))] - bytes_before[f]
        for f in bytes_before
    } == sizes
    newest_ms = int(names["first_ms"]) + 1000 * 28
    assert samples[("btsbot_web_newest_alert_published_seconds", ())] == newest_ms / 1000

    # caught up once: newer alerts waiting behind a held feed are lag, not unreadiness
    held.hold_after(0)
    more = [variant(demo_scored()[i], 10**17 + i) for i in range(4)]
    publish(kafka.bootstrap, names["scored"], more, partitions=None)
    until(
        lambda: _samples(base)[("btsbot_web_feed_lag", (("feed", "scored"),))] == 4,
        30,
        "the lag of the held feed",
    )
    for _ in range(10):  # the feed's loop runs on meanwhile, every 0.5 s
        assert http_get(f"{base}/readyz")[0] == 200
        time.sleep(0.2)
    held.let_go()
    until(lambda: _samples(base)[("btsbot_web_window_alerts", ())] == 33, 30, "newer alerts")


def test_a_start_reads_no_more_than_the_window_over_all_partitions(kafka: LocalKafka) -> None:
    """29 alerts in 2 partitions (15 and 14), a window of 10: about 10 messages read in
    all (5 and 4: each share rounded down), each partition's newest ones."""
    scored = unique("scored")
    publish(kafka.bootstrap, scored, demo_scored(), partitions=2)
    by_partition: dict[int, list[int]] = {}
    for record in read_topic(kafka.bootstrap, scored):
        by_partition.setdefault(record.partition, []).append(record.offset)
    assert sorted(len(v) for v in by_partition.values()) == [14, 15]
    window = Window(hours=48, max_alerts=10)
    feed = WindowFeed(window, kafka.bootstrap, {}, scored, None)
    feed.start()
    try:
        until(lambda: feed.catch_up.done, 60, "not caught up")
    finally:
        feed.stop()
    rows = window.alerts()
    assert 10 - 2 < feed.status.read == len(rows) <= 10  # not 10 per partition: 20
    taken = Counter(r.partition for r in rows)
    assert set(taken) == {0, 1}  # both partitions contribute
    for partition, offsets in by_partition.items():
        newest = sorted(offsets)[-taken[partition] :]
        assert sorted(r.offset for r in rows if r.partition == partition) == newest


def test_list_rows_take_the_scores_from_the_headers(
    kafka: LocalKafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feed decodes an alert's leading fields only when its headers carry every
    model's score; the whole row (scores and model versions from the record) once per
    new model, and for a message without score headers."""
    scored = unique("scored")
    bare = [replace(m, headers=[]) for m in demo_scored()[:3]]  # another producer's
    publish(kafka.bootstrap, scored, [*demo_scored(), *bare], partitions=1)
    window = Window(hours=48, max_alerts=1000)
    feed = WindowFeed(window, kafka.bootstrap, {}, scored, None)
    whole_reads = []
    read_whole = feed._reader.read
    monkeypatch.setattr(feed._reader, "read", lambda v: whole_reads.append(v) or read_whole(v))
    feed.start()
    try:
        until(lambda: feed.catch_up.done, 60, "not caught up")
    finally:
        feed.stop()
    assert len(whole_reads) == 1 + len(bare)  # the first alert (a new model), the bare ones
    (entry,) = record_of(demo_scored()[0])["btsbot"]["scores"]
    assert window.models == {MODEL: ModelInfo(entry["version"], entry["sha256"])}
    rows = {r.candid: r for r in window.alerts()}
    for msg in demo_scored():  # the bare repeats add nothing (same candids)
        record = record_of(msg)
        want = {e["model"]: e["score"] for e in record["btsbot"]["scores"]}
        assert rows[record["candid"]].scores == want
        assert rows[record["candid"]].magpsf == record["candidate"]["magpsf"]


def test_not_ready_while_the_broker_is_away(tmp_path: Path) -> None:
    """A broker of its own, stopped and started again under a ready page."""
    broker = LocalKafka(port=free_port(), data_dir=tmp_path / "kafka").start(timeout=180)
    try:
        scored = unique("scored")
        publish(broker.bootstrap, scored, demo_scored()[:6], partitions=1)
        window = Window(hours=48, max_alerts=100)
        feed = WindowFeed(window, broker.bootstrap, {}, scored, None)
        with HealthServer(feed.health, "127.0.0.1", 0) as server:
            base = f"http://127.0.0.1:{server.port}"
            feed.start()
            try:
                until(lambda: http_get(f"{base}/readyz")[0] == 200, 60, "never ready")
                errors = _value("btsbot_web_feed_errors_total", kind="unreachable")
                broker.stop()
                until(
                    lambda: "brokers_unreachable" in http_get(f"{base}/readyz")[1],
                    60,
                    "still ready without a broker",
                )
                code, body = http_get(f"{base}/readyz")
                assert code == 503
                assert "not ready: brokers_unreachable: no broker connection up" in body
                assert "starting" not in body  # the window was read: only the broker is away
                assert _value("btsbot_web_feed_errors_total", kind="unreachable") > errors
                broker.start(timeout=180)
                until(lambda: http_get(f"{base}/readyz")[0] == 200, 120, "not ready again")
                assert len(window) == 6
            finally:
                feed.stop()
    finally:
        broker.stop()
