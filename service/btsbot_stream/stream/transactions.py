"""Exactly-once publishing: one transaction per batch, holding its outputs and the input
offsets of exactly the messages it published.

The offsets sent are, per partition, one past the highest message of this transaction:
earlier messages of the partition were published by earlier transactions (batches are
published in order) and revoked partitions' messages are not in the batch any more, so
a transaction never carries an offset past an unpublished message.

Errors are classified as the client documents them: retriable (retry the commit until
the flush deadline), abortable (abort and make the transaction again), fatal (stop; the
consumer rewinds to the committed offsets on restart). An output the broker refuses as
too large aborts the transaction once: the next attempt sends its message's dead letter
instead, so a size limit can never turn into an abort loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from btsbot_stream import metrics
from btsbot_stream.scoring import Outcome
from btsbot_stream.stream.exceptions import FatalKafkaError
from btsbot_stream.stream.offsets import OffsetTracker
from btsbot_stream.stream.pipeline import Consumed
from btsbot_stream.stream.producer import OutputProducer
from btsbot_stream.stream.publish import Publisher

log = logging.getLogger(__name__)
TXN_ATTEMPTS = 5
COMMIT_TIMEOUT_S = 60.0


class TransactionalPublisher:
    def __init__(
        self,
        out: OutputProducer,
        consumer: Consumer,
        publisher: Publisher,
        tracker: OffsetTracker,
    ) -> None:
        self._out = out
        self._consumer = consumer
        self._publisher = publisher
        self._tracker = tracker

    def publish(self, items: Sequence[tuple[Consumed, list[Outcome]]]) -> None:
        if not items:
            return
        producer = self._out.producer
        refused: set[tuple[str, int, int]] = set()  # sources whose output was too large
        for _ in range(TXN_ATTEMPTS):
            producer.begin_transaction()
            positions: dict[tuple[str, int], int] = {}
            for item, outcomes in items:
                source = item.source
                key = (source.topic, source.partition, source.offset)
                raw = item.message.value() or b""
                for output in self._publisher.outputs(raw, source, outcomes, key in refused):
                    self._out.produce(output, None)
                positions[item.tp] = max(positions.get(item.tp, 0), source.offset + 1)
            offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
            try:
                metadata = self._consumer.consumer_group_metadata()
                producer.send_offsets_to_transaction(offsets, metadata)
                _commit(producer)
            except KafkaException as exc:
                error = exc.args[0]
                if not error.txn_requires_abort():
                    raise FatalKafkaError(f"transaction: {error}") from exc
                too_large = self._out.take_refused()
                refused |= {
                    (o.origin.source.topic, o.origin.source.partition, o.origin.source.offset)
                    for o in too_large
                }
                metrics.TRANSACTION_ABORTS.inc()
                log.warning(
                    "transaction aborted (%s): making it again%s",
                    error,
                    f" with {len(too_large)} output(s) as dead letters" if too_large else "",
                )
                producer.abort_transaction(30)
                self._out.forget_errors()
                continue
            self._out.forget_errors()  # failures of a committed transaction are moot
            for item, _ in items:
                self._tracker.settled(item.tp, item.source.offset, item.epoch)
            return
        raise FatalKafkaError(f"batch not committed after {TXN_ATTEMPTS} transactions")


def _commit(producer: Producer) -> None:
    deadline = time.monotonic() + COMMIT_TIMEOUT_S
    while True:
        try:
            producer.commit_transaction(30)
            return
        except KafkaException as exc:
            if exc.args[0].retriable() and time.monotonic() < deadline:
                continue
            raise
