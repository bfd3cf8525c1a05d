"""Which input offsets may be committed: those whose every output was acknowledged.

Per partition we keep the consumed offsets still waiting for acknowledgements; the
committable position is the lowest such offset (or one past the highest consumed when
none waits). Kafka commits mean "everything before this", so one slow message holds
back the commit of later ones but never lets them be skipped.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]


@dataclass
class _Partition:
    pending: dict[int, int] = field(default_factory=dict)  # offset -> outputs not yet acked
    heap: list[int] = field(default_factory=list)  # pending offsets, lowest first
    next_offset: int | None = None  # one past the highest consumed offset
    committed: int | None = None


class OffsetTracker:
    def __init__(self) -> None:
        self._partitions: dict[TopicPartition, _Partition] = {}

    def consumed(self, tp: TopicPartition, offset: int, outputs: int) -> None:
        """Register a consumed message that produced ``outputs`` messages (0: none)."""
        part = self._partitions.setdefault(tp, _Partition())
        if outputs > 0:
            part.pending[offset] = outputs
            heapq.heappush(part.heap, offset)
        part.next_offset = max(part.next_offset or 0, offset + 1)

    def acked(self, tp: TopicPartition, offset: int) -> None:
        """One output of the message at ``offset`` was acknowledged by the broker."""
        part = self._partitions.get(tp)
        if part is None or offset not in part.pending:
            return  # partition revoked meanwhile: its offsets are no longer ours
        part.pending[offset] -= 1
        if part.pending[offset] == 0:
            del part.pending[offset]

    def in_flight(self) -> int:
        return sum(len(p.pending) for p in self._partitions.values())

    def committable(self) -> dict[TopicPartition, int]:
        """Positions to commit now (only those that moved since the last commit)."""
        out = {}
        for tp, part in self._partitions.items():
            while part.heap and part.heap[0] not in part.pending:
                heapq.heappop(part.heap)
            position = part.heap[0] if part.heap else part.next_offset
            if position is not None and position != part.committed:
                out[tp] = position
        return out

    def mark_committed(self, positions: dict[TopicPartition, int]) -> None:
        for tp, position in positions.items():
            if tp in self._partitions:
                self._partitions[tp].committed = position

    def forget(self, tps: list[TopicPartition]) -> None:
        """Drop revoked partitions (after their last commit)."""
        for tp in tps:
            self._partitions.pop(tp, None)
