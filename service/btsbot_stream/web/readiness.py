"""When the scanning page is ready: its window read up to where the topics ended when it
started, and a broker reachable.

The page serves from its first second, but a list drawn from a half-read window shows
the wrong "best" alerts, so ``/readyz`` (the metrics port, :mod:`btsbot_stream.stream.health`)
answers 503 ``starting`` until the feed has read every partition of its first assignment
up to the end offset that partition had then (the work is bounded: the window's hours,
and no more than ``window_alerts`` messages, see :mod:`btsbot_stream.web.feed`). Once
caught up it stays so: new alerts arriving faster than they are read later are lag
(``btsbot_web_feed_lag``), not unreadiness. ``brokers_unreachable`` is the other cause.
"""

from __future__ import annotations

import threading

from btsbot_stream.stream.health import Health


class FeedHealth(Health):
    """Alive while the feed's thread runs (before it starts too): a feed that died on an
    unexpected error leaves a window that never changes, which only a restart cures."""

    def __init__(self) -> None:
        super().__init__()
        self.set("starting", "the window feed has not started")
        self.feed_thread: threading.Thread | None = None
        self.feed_error: str | None = None

    @property
    def alive(self) -> bool:
        return self.feed_thread is None or self.feed_thread.is_alive()

    @property
    def why_not_alive(self) -> str:
        return f"the window feed stopped: {self.feed_error or 'no error recorded'}"


class CatchUp:
    """Partitions still short of the end offset they had when first assigned.

    ``expect`` is called for the partitions of the first assignment that includes the
    scored topic; each is done when a message at or past its last offset is read, when
    the consumer reports the partition's end (``_PARTITION_EOF``: this also covers a
    partition that ends in transaction markers, which are never delivered), or when its
    start is already the end.
    """

    def __init__(self) -> None:
        self.armed = False
        self._next: dict[tuple[str, int], int] = {}  # next offset to read
        self._end: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def expect(self, topic: str, partition: int, start: int, end: int) -> None:
        if self.armed:
            return
        with self._lock:
            if start < end:
                self._next[(topic, partition)] = start
                self._end[(topic, partition)] = end

    def arm(self) -> None:
        """No partition is added after this: the first assignment is complete."""
        self.armed = True

    def read(self, topic: str, partition: int, offset: int) -> None:
        key = (topic, partition)
        if key not in self._end:
            return
        with self._lock:
            if offset + 1 >= self._end.get(key, 0):
                self._done(key)
            elif key in self._next:
                self._next[key] = offset + 1

    def at_end(self, topic: str, partition: int) -> None:
        with self._lock:
            self._done((topic, partition))

    def _done(self, key: tuple[str, int]) -> None:
        self._next.pop(key, None)
        self._end.pop(key, None)

    @property
    def done(self) -> bool:
        return self.armed and not self._end

    def remaining(self) -> tuple[int, int]:
        """(messages still to read, partitions still short), by the offsets read."""
        with self._lock:
            return sum(self._end[k] - self._next[k] for k in self._end), len(self._end)
