"""Which input offsets may be committed: those whose every output was acknowledged.

A message counts from the moment it is consumed, before it is even prepared: until its
outputs are known (``produced``) and all acknowledged (``acked``), it holds the commit of
its partition back. Kafka commits mean "everything before this", so the committable
position is the lowest offset still waiting (or one past the highest consumed when none
waits): one slow message holds back later ones but never lets them be skipped, and a
message dropped from the application's hands (a revoke, a stop mid-batch) can never be
committed past.

Each assignment of a partition is an *epoch*: acknowledgements of outputs produced for
an earlier assignment of the same partition (revoked or lost, then assigned again) must
not settle the same offsets consumed again now.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]
_UNKNOWN = -1  # consumed, outputs not produced yet
_epochs = itertools.count(1)


@dataclass
class _Partition:
    epoch: int = field(default_factory=lambda: next(_epochs))
    pending: dict[int, int] = field(default_factory=dict)  # offset -> outputs not yet acked
    heap: list[int] = field(default_factory=list)  # pending offsets, lowest first
    next_offset: int | None = None  # one past the highest consumed offset
    committed: int | None = None


class OffsetTracker:
    def __init__(self) -> None:
        self._partitions: dict[TopicPartition, _Partition] = {}

    def consumed(self, tp: TopicPartition, offset: int) -> int:
        """Register a message as it is consumed; returns the partition's epoch."""
        part = self._partitions.setdefault(tp, _Partition())
        part.pending[offset] = _UNKNOWN
        heapq.heappush(part.heap, offset)
        part.next_offset = max(part.next_offset or 0, offset + 1)
        return part.epoch

    def produced(self, tp: TopicPartition, offset: int, epoch: int, outputs: int) -> None:
        """The message's ``outputs`` messages were handed to the producer."""
        part = self._partitions.get(tp)
        if part is None or part.epoch != epoch or offset not in part.pending:
            return
        if outputs > 0:
            part.pending[offset] = outputs
        else:
            del part.pending[offset]

    def acked(self, tp: TopicPartition, offset: int, epoch: int) -> None:
        """One output of the message at ``offset`` was acknowledged by the broker."""
        part = self._partitions.get(tp)
        if part is None or part.epoch != epoch or part.pending.get(offset, 0) <= 0:
            return  # revoked/lost meanwhile: its offsets are no longer ours
        part.pending[offset] -= 1
        if part.pending[offset] == 0:
            del part.pending[offset]

    def settled(self, tp: TopicPartition, offset: int, epoch: int) -> None:
        """The message is done in one step (exactly-once: its transaction committed)."""
        part = self._partitions.get(tp)
        if part is not None and part.epoch == epoch:
            part.pending.pop(offset, None)

    def in_flight(self) -> int:
        return sum(len(p.pending) for p in self._partitions.values())

    def committable(
        self, only: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]:
        """Positions to commit now (only those that moved since the last commit)."""
        wanted = set(only) if only is not None else None
        out = {}
        for tp, part in self._partitions.items():
            if wanted is not None and tp not in wanted:
                continue
            while part.heap and part.heap[0] not in part.pending:
                heapq.heappop(part.heap)
            position = part.heap[0] if part.heap else part.next_offset
            if position is not None and position != part.committed:
                out[tp] = position
        return out

    def mark_committed(self, positions: dict[TopicPartition, int]) -> None:
        """The broker confirmed these positions (never moves a mark backwards)."""
        for tp, position in positions.items():
            part = self._partitions.get(tp)
            if part is not None and (part.committed is None or position > part.committed):
                part.committed = position

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Drop revoked or lost partitions (after their last commit, if any)."""
        for tp in tps:
            self._partitions.pop(tp, None)
