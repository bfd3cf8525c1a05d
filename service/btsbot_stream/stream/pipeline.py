"""Consumed batches on their way through preparation to publishing, in order.

A batch holds messages of several partitions. When some of them are revoked or lost
while the batch waits, only those partitions' messages are dropped from it (their
offsets were never committed, the next owner reads them again); the others are
published as usual.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from confluent_kafka import Message

from btsbot_stream.scoring import PreparedMessage
from btsbot_stream.stream.dead_letters import SourcePosition
from btsbot_stream.workers import PreparedBatch

TopicPartition = tuple[str, int]


def position(message: Message) -> SourcePosition:
    kind, timestamp = message.timestamp()
    return SourcePosition(
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        timestamp if kind != 0 else None,  # 0: TIMESTAMP_NOT_AVAILABLE
    )


@dataclass(frozen=True, slots=True)
class Consumed:
    """One consumed message, where it came from, and the tracker epoch it counts in."""

    message: Message
    source: SourcePosition
    epoch: int

    @property
    def tp(self) -> TopicPartition:
        return (self.source.topic, self.source.partition)


@dataclass
class Batch:
    items: list[Consumed]
    prepared: Future[Sequence[PreparedMessage]]
    revoked: set[TopicPartition] = field(default_factory=set)

    def live(self) -> list[tuple[Consumed, PreparedMessage]]:
        """The messages still ours, with their preparation (call once it is done)."""
        return [
            (item, prepared)
            for item, prepared in zip(self.items, self.prepared.result(), strict=True)
            if item.tp not in self.revoked
        ]

    def release(self) -> None:
        """Hand the batch's shared memory back, if it holds any (once scored or dropped)."""
        if self.prepared.done() and self.prepared.exception() is None:
            prepared = self.prepared.result()
            if isinstance(prepared, PreparedBatch):
                prepared.release()


class Pipeline:
    def __init__(self) -> None:
        self._batches: deque[Batch] = deque()

    def __len__(self) -> int:
        return len(self._batches)

    def __iter__(self) -> Iterator[Batch]:
        return iter(self._batches)

    def append(self, batch: Batch) -> None:
        self._batches.append(batch)

    def oldest(self) -> Batch | None:
        return self._batches[0] if self._batches else None

    def ready(self) -> Batch | None:
        """The oldest batch, once its preparation is done (publishing keeps the order)."""
        if self._batches and self._batches[0].prepared.done():
            return self._batches.popleft()
        return None

    def revoke(self, tps: Iterable[TopicPartition]) -> int:
        """Drop these partitions' messages from every waiting batch; returns how many."""
        wanted = set(tps)
        dropped = 0
        for batch in self._batches:
            batch.revoked |= wanted
            dropped += sum(1 for item in batch.items if item.tp in wanted)
        return dropped

    def clear(self) -> list[Batch]:
        batches = list(self._batches)
        self._batches.clear()
        return batches
