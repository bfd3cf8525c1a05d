"""The bounded window the pages read: recent scored alerts and candidate events.

Only what the lists need is kept per alert (identity, photometry of the detection,
position, scores, and where the message sits in Kafka: topic, partition, offset). An
object page fetches its alert again by offset for the cutouts and history, so the
window's memory stays small and bounded (see docs/benchmarks.md: bytes per 100k
alerts). Bounds: publication time (``hours``) and count (``max_alerts``), oldest
first. Thread-safe: one writer (the feed), many readers (requests).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from btsbot_stream.follow.events import CandidateEvent


@dataclass(slots=True)
class AlertRow:
    object_id: str
    candid: int
    jd: float | None
    fid: int | None
    magpsf: float | None
    sigmapsf: float | None
    ra: float | None
    dec: float | None
    drb: float | None
    scores: dict[str, float]
    topic: str
    partition: int
    offset: int
    published_ms: int
    best: float | None = None  # the highest score of any model (set on arrival)

    def score(self, model: str | None) -> float | None:
        """The score of ``model``, or the best score when no model is named."""
        return self.best if model is None else self.scores.get(model)


@dataclass(slots=True)
class EventRow:
    event: CandidateEvent
    topic: str
    partition: int
    offset: int
    published_ms: int


@dataclass(frozen=True)
class ModelInfo:
    version: str
    sha256: str


class Window:
    def __init__(self, hours: float, max_alerts: int, max_events: int | None = None) -> None:
        self.hours = hours
        self.max_alerts = max_alerts
        self.max_events = max_events or max_alerts
        self._alerts: OrderedDict[int, AlertRow] = OrderedDict()  # by candid, arrival order
        self._by_object: dict[str, list[int]] = {}
        self._events: OrderedDict[tuple[str, str, int | None], EventRow] = OrderedDict()
        self.models: dict[str, ModelInfo] = {}
        self.repeats = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._alerts)

    @property
    def event_count(self) -> int:
        return len(self._events)

    def add_alert(self, row: AlertRow) -> bool:
        """Keep ``row``; False when its candid is already there (an at-least-once repeat)."""
        row.object_id = sys.intern(row.object_id)
        row.scores = {sys.intern(k): v for k, v in row.scores.items()}
        row.best = max(row.scores.values(), default=None)
        with self._lock:
            if row.candid in self._alerts:
                self.repeats += 1
                return False
            self._alerts[row.candid] = row
            self._by_object.setdefault(row.object_id, []).append(row.candid)
            while len(self._alerts) > self.max_alerts:
                self._drop_oldest_alert()
        return True

    def add_event(self, row: EventRow) -> bool:
        key = (row.event.object_id, row.event.policy, row.event.candid)
        with self._lock:
            if key in self._events:
                self.repeats += 1
                return False
            self._events[key] = row
            while len(self._events) > self.max_events:
                self._events.popitem(last=False)
        return True

    def note_models(self, models: dict[str, ModelInfo]) -> None:
        if models.keys() - self.models.keys() or any(
            self.models.get(k) != v for k, v in models.items()
        ):
            with self._lock:
                self.models = {**self.models, **models}

    def _drop_oldest_alert(self) -> None:
        candid, row = self._alerts.popitem(last=False)
        candids = self._by_object.get(row.object_id)
        if candids is not None:
            candids.remove(candid)
            if not candids:
                del self._by_object[row.object_id]

    def evict(self, now_ms: int | None = None) -> int:
        """Drop what was published more than ``hours`` ago; returns how many."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        cutoff = now_ms - int(self.hours * 3600 * 1000)
        dropped = 0
        with self._lock:
            # Arrival order is publication order per partition; across partitions it is
            # close enough: stop at the first young row.
            while self._alerts and next(iter(self._alerts.values())).published_ms < cutoff:
                self._drop_oldest_alert()
                dropped += 1
            while self._events and next(iter(self._events.values())).published_ms < cutoff:
                self._events.popitem(last=False)
                dropped += 1
        return dropped

    @property
    def object_count(self) -> int:
        return len(self._by_object)

    def published_range(self) -> tuple[int, int] | None:
        """(oldest, newest) publication time in ms, by arrival order (close enough
        across partitions for a status line)."""
        with self._lock:
            if not self._alerts:
                return None
            first = next(iter(self._alerts.values()))
            last = next(reversed(self._alerts.values()))
            return first.published_ms, last.published_ms

    def alerts(self) -> list[AlertRow]:
        """A snapshot of every alert row (arrival order)."""
        with self._lock:
            return list(self._alerts.values())

    def events(self) -> list[EventRow]:
        with self._lock:
            return list(self._events.values())

    def object_alerts(self, object_id: str) -> list[AlertRow]:
        with self._lock:
            return [self._alerts[c] for c in self._by_object.get(object_id, ())]

    def object_events(self, object_id: str) -> list[EventRow]:
        with self._lock:
            return [e for e in self._events.values() if e.event.object_id == object_id]

    def alert(self, candid: int) -> AlertRow | None:
        with self._lock:
            return self._alerts.get(candid)

    def extend(self, rows: Iterable[AlertRow]) -> None:
        for row in rows:
            self.add_alert(row)
