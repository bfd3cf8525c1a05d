"""Read one message again by its offset, for an object page (cutouts, history).

One consumer, assigned to the wanted partition at the wanted offset for each read and
guarded by a lock; the decoded alerts most recently viewed are cached. A message gone
from the topic (retention) is an error the page reports, not a crash.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from btsbot_stream.follow import kafka
from btsbot_stream.follow.exceptions import FollowError

FETCH_TIMEOUT_S = 10.0


class FetchError(FollowError):
    """The message could not be read again (gone, or the broker did not answer)."""


class MessageFetcher:
    def __init__(self, bootstrap: str, properties: Mapping[str, str]) -> None:
        self._lock = threading.Lock()
        self.consumer = kafka.assigned_consumer(
            bootstrap,
            properties,
            "btsbot-web-fetch",
            **{
                # Fetch little ahead: one alert is wanted, not a megabyte of them.
                "max.partition.fetch.bytes": 256 * 1024,
                "fetch.max.bytes": 1024 * 1024,
                "queued.max.messages.kbytes": 1024,
                "fetch.wait.max.ms": 10,
            },
        )

    def close(self) -> None:
        with self._lock:
            self.consumer.close()

    def get(self, topic: str, partition: int, offset: int) -> bytes:
        """The value of the message at ``offset``; :class:`FetchError` if unreadable."""
        with self._lock:
            self.consumer.assign([TopicPartition(topic, partition, offset)])
            try:
                return self._poll_for(topic, partition, offset)
            finally:
                self.consumer.unassign()

    def _poll_for(self, topic: str, partition: int, offset: int) -> bytes:
        deadline = time.monotonic() + FETCH_TIMEOUT_S
        where = f"{topic}[{partition}]@{offset}"
        while time.monotonic() < deadline:
            msg = self.consumer.poll(0.2)
            if msg is None:
                continue
            error: Any = msg.error()
            if error is not None:
                if error.code() == KafkaError.OFFSET_OUT_OF_RANGE:
                    raise FetchError(f"{where} is no longer on the topic (retention)")
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise FetchError(f"{where}: {error.str()}")
            if (msg.topic(), msg.partition()) != (topic, partition):
                continue  # left over from a previous read
            if msg.offset() == offset:
                return msg.value() or b""
            if (msg.offset() or 0) > offset:
                raise FetchError(f"{where} is no longer on the topic")
        raise FetchError(f"{where}: the broker did not return it within {FETCH_TIMEOUT_S:.0f} s")
