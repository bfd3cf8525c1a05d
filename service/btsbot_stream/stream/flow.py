"""Pausing and resuming the input partitions.

Two reasons to stop fetching: too many alerts in flight (consumed, not yet committed:
``delivery.max_in_flight``, resumed at half of it) and a schema registry that is away
(resumed when it answers). Pausing keeps the group membership and the assignment;
partitions assigned while paused are paused too.
"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, TopicPartition

from btsbot_stream import metrics

log = logging.getLogger(__name__)


class FlowControl:
    def __init__(self, consumer: Consumer, max_in_flight: int) -> None:
        self._consumer = consumer
        self._limit = max_in_flight
        self._backpressure = False
        self._paused: set[tuple[str, int]] = set()
        self.reason: str | None = None

    @property
    def paused(self) -> bool:
        return self.reason is not None

    def update(self, in_flight: int, registry_down: bool) -> None:
        if in_flight >= self._limit:
            self._backpressure = True
        elif in_flight <= self._limit // 2:
            self._backpressure = False
        reason = "schema registry away" if registry_down else None
        if reason is None and self._backpressure:
            reason = f"{in_flight} alerts in flight"
        if reason is not None and not self.paused:
            log.warning("%s: pausing the input partitions", reason)
        elif reason is None and self.paused:
            log.info("resuming the input partitions (%s no more)", self.reason)
        self.reason = reason
        self._apply()

    def _apply(self) -> None:
        assigned = {(p.topic, p.partition) for p in self._consumer.assignment()}
        self._paused &= assigned
        if self.paused:
            new = assigned - self._paused
            if new:
                self._consumer.pause([TopicPartition(t, p) for t, p in new])
                self._paused |= new
        elif self._paused:
            self._consumer.resume([TopicPartition(t, p) for t, p in self._paused])
            self._paused.clear()
        metrics.PAUSED_PARTITIONS.set(len(self._paused))

    def forget(self, tps: list[tuple[str, int]]) -> None:
        """Revoked or lost partitions are no longer ours to resume."""
        self._paused -= set(tps)
