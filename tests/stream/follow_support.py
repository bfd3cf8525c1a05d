"""Helpers of the follow-up tools' tests against the real broker."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import Producer
from kafka_helpers import create_topic

from btsbot_stream.stream.publish import OutputMessage


def publish(
    bootstrap: str, topic: str, messages: Iterable[OutputMessage], partitions: int | None = 2
) -> int:
    """Produce ``messages`` (key, value, headers, as the service does) into ``topic``,
    creating it with ``partitions`` first unless None."""
    if partitions is not None:
        create_topic(bootstrap, topic, partitions)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    count = 0
    for msg in messages:
        producer.produce(topic, msg.value, msg.key, headers=msg.headers)
        count += 1
    assert producer.flush(30) == 0
    return count


def publish_events(
    bootstrap: str, topic: str, events: Iterable[Mapping[str, Any]], create: bool = True
) -> None:
    """Candidate events as JSON (key objectId), the decision stage's format."""
    if create:
        create_topic(bootstrap, topic, 1)
    producer = Producer({"bootstrap.servers": bootstrap})
    for event in events:
        producer.produce(topic, json.dumps(event).encode(), str(event["objectId"]).encode())
    assert producer.flush(30) == 0
