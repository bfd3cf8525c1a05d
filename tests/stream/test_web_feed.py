"""The scanning page's background consumer against the real broker: it fills the window
from the scored topic, picks up the candidates topic when it appears later without
reading the scored topic again, and keeps within its count bound."""

from __future__ import annotations

import time

import pytest
from follow_support import publish, publish_events
from kafka_helpers import unique
from local_kafka import LocalKafka
from tests.probes import until

from btsbot_stream.web import feed as feed_module
from btsbot_stream.web.feed import WindowFeed
from btsbot_stream.web.window import Window
from scored_alerts import candid_of, demo_scored

pytestmark = pytest.mark.kafka


def test_feed_fills_the_window_and_adds_a_late_topic_without_rewinding(
    kafka: LocalKafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_module, "RETRY_TOPICS_S", 1.0)
    scored, candidates = unique("scored"), unique("candidates")
    publish(kafka.bootstrap, scored, demo_scored())
    window = Window(hours=48, max_alerts=1000)
    feed = WindowFeed(window, kafka.bootstrap, {}, scored, candidates)
    feed.check()
    feed.start()
    try:
        until(lambda: len(window) == len(demo_scored()), 60, "scored alerts not read")
        assert feed.status.waiting_for == [candidates]
        publish_events(
            kafka.bootstrap, candidates, [{"objectId": "ZTF20aajcdad", "policy": "bts_p2"}]
        )
        until(lambda: window.event_count == 1, 60, "candidate event not read")
        time.sleep(2.5)  # two more topic checks: none may re-assign the scored topic
        assert feed.status.read == len(demo_scored()) + 1 and window.repeats == 0
        assert {r.candid for r in window.alerts()} == {candid_of(m) for m in demo_scored()}
    finally:
        feed.stop()


def test_feed_starts_no_further_back_than_the_count(kafka: LocalKafka) -> None:
    scored = unique("scored")
    publish(kafka.bootstrap, scored, demo_scored(), partitions=1)
    window = Window(hours=48, max_alerts=10)
    feed = WindowFeed(window, kafka.bootstrap, {}, scored, None)
    feed.start()
    try:
        until(lambda: len(window) == 10, 60, "window not filled")
        time.sleep(1.0)
        assert feed.status.read == 10  # started 10 messages before the end
        assert [r.candid for r in window.alerts()] == [candid_of(m) for m in demo_scored()[-10:]]
    finally:
        feed.stop()
