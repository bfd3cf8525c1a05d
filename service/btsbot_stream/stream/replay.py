"""Replay alert files into a topic: demos, backfills, tests."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from btsbot_stream.alerts.sources import SourceItem
from btsbot_stream.logs import KAFKA_LOGGER
from btsbot_stream.stream.clients import KafkaConfig
from btsbot_stream.stream.exceptions import DeliveryError


def ensure_topic(config: KafkaConfig, topic: str, partitions: int) -> None:
    """Create ``topic`` with ``partitions`` partitions unless it exists."""
    admin = AdminClient({**config, "error_cb": _log_error}, logger=logging.getLogger(KAFKA_LOGGER))
    if topic in admin.list_topics(timeout=30).topics:
        return
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions)])
    try:
        futures[topic].result(30)
    except KafkaException as exc:
        if exc.args[0].code() != 36:  # TOPIC_ALREADY_EXISTS: created meanwhile
            raise


def replay(
    items: Iterable[SourceItem],
    config: KafkaConfig,
    topic: str,
    rate: float | None = None,
    on_sent: Callable[[], None] | None = None,
) -> int:
    """Produce every readable packet's bytes unchanged; returns how many were sent.

    ``rate`` caps messages per second. Unreadable files (e.g. a damaged archive) are
    skipped: they have no bytes to send.
    """
    producer = Producer(
        {"enable.idempotence": True, "linger.ms": 20, **config, "error_cb": _log_error},
        logger=logging.getLogger(KAFKA_LOGGER),
    )
    failures: list[str] = []

    def delivered(error: object, _msg: object) -> None:
        if error is not None:
            failures.append(str(error))

    sent = 0
    start = time.monotonic()
    for item in items:
        if item.failure is not None:
            continue
        while True:
            try:
                producer.produce(topic, item.data, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        sent += 1
        if on_sent is not None:
            on_sent()
        if rate:
            ahead = sent / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    producer.flush(60)
    if failures:
        raise DeliveryError(f"{len(failures)} replayed messages failed: {failures[0]}")
    return sent


def _log_error(error: object) -> None:
    """Client errors (broker away...) through logging, repeats limited (logs.RepeatFilter)."""
    logging.getLogger(KAFKA_LOGGER).error("replay: %s", error)
