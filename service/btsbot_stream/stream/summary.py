"""Read back what the service published: counts, dead letters by reason, best scores.

Uses only Kafka headers (score, candid, reason), so it never decodes an alert."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from confluent_kafka import Consumer, TopicPartition

from btsbot_stream.stream.clients import KafkaConfig
from btsbot_stream.stream.enrich import CANDID_HEADER, HEADER_PREFIX


@dataclass
class Summary:
    scored: int = 0
    distinct_candids: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    best: list[tuple[float, str, int, str]] = field(
        default_factory=list
    )  # score, obj, candid, model


def _drain(config: KafkaConfig, topic: str, timeout: float) -> list[tuple[bytes | None, dict]]:
    consumer = Consumer(
        {
            **config,
            "group.id": f"btsbot-summary-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            return []
        ends = {}
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        out = []
        deadline = time.monotonic() + timeout
        positions = dict.fromkeys(ends, 0)
        while any(positions[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                for tp in consumer.position([TopicPartition(topic, p) for p in ends]):
                    positions[tp.partition] = max(positions[tp.partition], tp.offset)
                continue
            positions[msg.partition() or 0] = (msg.offset() or 0) + 1
            out.append((msg.key(), dict(msg.headers() or [])))
        return out
    finally:
        consumer.close()


def summarise(
    config: KafkaConfig, output_topic: str, dead_letter_topic: str, top: int, timeout: float = 30
) -> Summary:
    summary = Summary()
    candids = set()
    ranked = []
    for key, headers in _drain(config, output_topic, timeout):
        summary.scored += 1
        candid = int(headers.get(CANDID_HEADER, b"-1"))
        candids.add(candid)
        for name, value in headers.items():
            if name.startswith(HEADER_PREFIX):
                obj = key.decode() if key else "?"
                ranked.append((float(value), obj, candid, name[len(HEADER_PREFIX) :]))
    summary.distinct_candids = len(candids)
    summary.best = sorted(ranked, reverse=True)[:top]
    for _, headers in _drain(config, dead_letter_topic, timeout):
        summary.dead_letters[headers.get("error.reason", b"?").decode()] += 1
    return summary
