"""Read back what the service published: counts, dead letters by reason, best scores.

Uses only Kafka headers (score, candid, reason), so it never decodes an alert."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from confluent_kafka import Consumer, Message, TopicPartition

from btsbot_stream.logs import KAFKA_LOGGER
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


def read_to_end(config: KafkaConfig, topic: str, timeout: float = 30) -> list[Message]:
    """Every committed message of ``topic``, up to its high watermarks at call time."""
    consumer = Consumer(
        {
            **config,
            "group.id": f"btsbot-summary-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        },
        logger=logging.getLogger(KAFKA_LOGGER),
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            return []
        starts, ends = {}, {}
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > low:
                starts[p], ends[p] = low, high
        consumer.assign([TopicPartition(topic, p, low) for p, low in starts.items()])
        out = []
        deadline = time.monotonic() + timeout
        positions = dict(starts)
        while any(positions[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                # read_committed skips aborted records and transaction markers: the
                # position, not the last message, says when a partition is done.
                for tp in consumer.position([TopicPartition(topic, p) for p in ends]):
                    positions[tp.partition] = max(positions[tp.partition], tp.offset)
                continue
            positions[msg.partition() or 0] = (msg.offset() or 0) + 1
            out.append(msg)
        return out
    finally:
        consumer.close()


def _headers(msg: Message) -> dict[str, bytes]:
    raw = dict(msg.headers() or {})
    return {k: v if isinstance(v, bytes) else (v or "").encode() for k, v in raw.items()}


def summarise(
    config: KafkaConfig, output_topic: str, dead_letter_topic: str, top: int, timeout: float = 30
) -> Summary:
    summary = Summary()
    candids = set()
    ranked = []
    for msg in read_to_end(config, output_topic, timeout):
        key, headers = msg.key(), _headers(msg)
        summary.scored += 1
        candid = int(headers.get(CANDID_HEADER, b"-1"))
        candids.add(candid)
        for name, value in headers.items():
            if name.startswith(HEADER_PREFIX):
                obj = key.decode() if key else "?"
                ranked.append((float(value), obj, candid, name[len(HEADER_PREFIX) :]))
    summary.distinct_candids = len(candids)
    summary.best = sorted(ranked, reverse=True)[:top]
    for msg in read_to_end(config, dead_letter_topic, timeout):
        headers = _headers(msg)
        summary.dead_letters[headers.get("error.reason", b"?").decode()] += 1
    return summary
