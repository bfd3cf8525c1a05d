"""At-least-once commits: what the offset tracker allows, marked done only on the broker's
answer.

Asynchronous commits run every ``delivery.commit_interval_ms``; their result arrives in
``on_commit`` (served by the consumer's poll), and only a confirmed position is marked
committed, so a failed commit is simply sent again at the next interval. Synchronous
commits (revoke, shutdown) retry retriable errors a few times; when the group has moved
on (the member was fenced or the generation changed) a commit can no longer succeed and
need not: the outputs are acknowledged, whoever reads the partition next reads them
again (duplicates, never a loss).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from btsbot_stream import metrics
from btsbot_stream.stream.exceptions import FatalKafkaError
from btsbot_stream.stream.offsets import OffsetTracker

log = logging.getLogger(__name__)
SYNC_ATTEMPTS = 3
# Names of KIP-848 errors exist only in recent clients; getattr keeps this importable.
GROUP_MOVED_ON = {
    getattr(KafkaError, name, None)
    for name in (
        "UNKNOWN_MEMBER_ID",
        "ILLEGAL_GENERATION",
        "REBALANCE_IN_PROGRESS",
        "_ASSIGNMENT_LOST",
        "FENCED_MEMBER_EPOCH",
        "STALE_MEMBER_EPOCH",
        "UNRELEASED_INSTANCE_ID",
    )
} - {None}


class Committer:
    def __init__(self, tracker: OffsetTracker) -> None:
        self._tracker = tracker
        self._sent: dict[tuple[str, int], tuple[int, float]] = {}  # position, when asked
        self.consumer: Consumer | None = None

    def on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """The broker's answer to a commit (async or sync)."""
        if error is not None and error.code() == KafkaError._NO_OFFSET:
            return
        done = {}
        for p in partitions:
            tp = (p.topic, p.partition)
            self._sent.pop(tp, None)
            failed = error if error is not None else p.error
            if failed is None:
                done[tp] = p.offset
            else:
                metrics.COMMITS.labels("failed").inc()
                log.warning("commit of %s[%d] failed (sent again): %s", *tp, failed)
        if done:
            metrics.COMMITS.labels("ok").inc(len(done))
            self._tracker.mark_committed(done)

    def commit_async(self) -> None:
        now = time.monotonic()
        positions = {
            tp: o
            for tp, o in self._tracker.committable().items()
            if self._sent.get(tp, (-1, 0.0))[0] != o or now - self._sent[tp][1] > 30
        }
        if positions and self._send(positions, asynchronous=True):
            self._sent.update({tp: (o, now) for tp, o in positions.items()})

    def commit_sync(self, only: Iterable[tuple[str, int]] | None = None) -> None:
        for attempt in range(SYNC_ATTEMPTS):
            positions = self._tracker.committable(only)
            if not positions:
                return
            try:
                self._send(positions, asynchronous=False)
                return
            except KafkaException as exc:
                error = exc.args[0]
                if error.code() in GROUP_MOVED_ON:
                    log.warning(
                        "commit of %s not possible (%s): they will be read again", positions, error
                    )
                    return
                if not error.retriable() or attempt == SYNC_ATTEMPTS - 1:
                    raise
                log.warning("commit failed (%s): trying again", error)
                time.sleep(0.5 * (attempt + 1))

    def _send(self, positions: dict[tuple[str, int], int], asynchronous: bool) -> bool:
        """Ask the broker; False when the request could not even be sent (async)."""
        assert self.consumer is not None
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
        try:
            result = self.consumer.commit(offsets=offsets, asynchronous=asynchronous)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() == KafkaError._NO_OFFSET:
                return False
            if error.fatal():
                raise FatalKafkaError(f"commit: {error}") from exc
            if asynchronous:  # not sent: sent again at the next interval
                log.warning("commit of %s failed: %s", positions, error)
                return False
            raise
        if not asynchronous and result:
            self.on_commit(None, list(result))
        return True
