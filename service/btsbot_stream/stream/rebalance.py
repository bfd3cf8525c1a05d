"""Partitions assigned, revoked and lost, under every assignor and protocol.

The eager assignors revoke everything at each rebalance; ``cooperative-sticky`` and the
KIP-848 protocol (``group.protocol=consumer``) revoke only the partitions that move. In
every case only the partitions named are touched:

- revoked: their messages still waiting in the pipeline are dropped (never published,
  never committed: the next owner reads them), what was produced is flushed, and, in
  at-least-once mode, what the outputs acknowledged is committed before they go;
- lost (the member was fenced or timed out: someone else may own them already): their
  waiting messages are dropped and nothing is committed;
- the partitions kept go on, their waiting messages included.
"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, TopicPartition

from btsbot_stream import metrics
from btsbot_stream.stream.commits import Committer
from btsbot_stream.stream.flow import FlowControl
from btsbot_stream.stream.health import Health
from btsbot_stream.stream.offsets import OffsetTracker
from btsbot_stream.stream.pipeline import Pipeline
from btsbot_stream.stream.producer import OutputProducer
from btsbot_stream.stream.watch import Connectivity, forget_lag

log = logging.getLogger(__name__)
FLUSH_TIMEOUT_S = 60.0


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{p.topic}[{p.partition}]" for p in partitions]


class Rebalance:
    def __init__(
        self,
        tracker: OffsetTracker,
        pipeline: Pipeline,
        health: Health,
        connectivity: Connectivity,
        committer: Committer | None,  # None: exactly-once (offsets go in transactions)
    ) -> None:
        self._tracker = tracker
        self._pipeline = pipeline
        self._health = health
        self._connectivity = connectivity
        self._committer = committer
        self.out: OutputProducer | None = None
        self.flow: FlowControl | None = None
        self.failed = False  # a failed run commits nothing, not even when closing
        self.assigned: set[tuple[str, int]] = set()

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned |= {(p.topic, p.partition) for p in partitions}
        metrics.REBALANCES.labels("assigned").inc(len(partitions))
        self._connectivity.rebalanced(joined=True)
        self._count()
        log.info("assigned %s (holding %d)", _names(partitions), len(self.assigned))

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        dropped = self._pipeline.revoke(tps)
        metrics.REBALANCES.labels("revoked").inc(len(partitions))
        if self._committer is not None and not self.failed and self.out is not None:
            # Everything produced for them: wait for the acks, commit what they allow
            # before another member takes these partitions over.
            self.out.flush(FLUSH_TIMEOUT_S)
            self._committer.commit_sync(only=tps)
        self._forget(tps)
        log.info(
            "revoked %s (dropped %d waiting messages; holding %d)",
            _names(partitions),
            dropped,
            len(self.assigned),
        )

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        dropped = self._pipeline.revoke(tps)
        log.warning(
            "lost %s (dropping %d waiting messages, committing nothing)",
            _names(partitions),
            dropped,
        )
        metrics.REBALANCES.labels("lost").inc(len(partitions))
        self._forget(tps)
        if not self.assigned:
            self._connectivity.rebalanced(joined=False)
            if self.out is not None and self._committer is not None:
                self.out.purge_queued()

    def _forget(self, tps: list[tuple[str, int]]) -> None:
        self._tracker.forget(tps)
        if self.flow is not None:
            self.flow.forget(tps)
        forget_lag(tps)
        self.assigned -= set(tps)
        self._count()

    def _count(self) -> None:
        self._health.assigned = len(self.assigned)
        metrics.ASSIGNED_PARTITIONS.set(len(self.assigned))
