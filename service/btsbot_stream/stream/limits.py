"""The size each topic we write accepts (its ``max.message.bytes``), checked before
producing.

A broker rejects a whole record batch that exceeds the topic's limit, and librdkafka
does not split batches: one oversized output would fail its innocent neighbours too,
and in exactly-once mode abort the transaction again on every retry. So an output is
measured before it is produced (uncompressed: never smaller than what the broker sees)
and the producer's ``batch.size`` is kept below the smallest limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from btsbot_stream.stream.dead_letters import Headers

BROKER_DEFAULT = 1048588  # Kafka's message.max.bytes default, when nothing else is known
RECORD_OVERHEAD = 512  # record-batch header (61 bytes) and per-record varints, generously


def record_size(key: bytes | None, value: bytes, headers: Headers) -> int:
    """An upper bound of one record's share of a record batch, in bytes."""
    size = len(value) + len(key or b"") + RECORD_OVERHEAD
    for name, header in headers:
        size += len(name) + (len(header) if header is not None else 0) + 10
    return size


@dataclass
class TopicLimits:
    """topic -> the largest record batch it accepts."""

    limits: dict[str, int] = field(default_factory=dict)
    default: int = BROKER_DEFAULT

    def limit(self, topic: str) -> int:
        return self.limits.get(topic, self.default)

    def fits(self, topic: str, size: int) -> bool:
        return size <= self.limit(topic)

    def batch_size(self, wanted: int = 1_000_000) -> int:
        """The producer's ``batch.size``: below every limit, so only an oversized record
        is ever refused, alone in its batch."""
        smallest = min([self.default, *self.limits.values()])
        return max(1024, min(wanted, smallest - RECORD_OVERHEAD))
