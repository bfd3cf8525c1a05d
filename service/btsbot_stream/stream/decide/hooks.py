"""The few Quix Streams internals the stage reads, in one place (quixstreams is pinned
to 3.28.x in pyproject.toml; the stream tests exercise every one of these).

- a periodic task in the application's poll loop (Quix's own joins use it): the health
  beat and the store gauges, on the processing thread, with or without traffic;
- the state manager's ``do_recovery``, timed for the restore metric (it runs whenever
  assigned partitions need their stores rebuilt from the changelog);
- the RocksDB handle of each assigned store partition, for its size properties;
- the consumer's assignment, logged when it changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from quixstreams import Application

log = logging.getLogger(__name__)


def add_periodic_task(app: Application, task: Callable[[], None]) -> None:
    app._dataframe_registry.register_periodic_task(task)


def time_recovery(
    app: Application, on_start: Callable[[], None], on_done: Callable[[float], None]
) -> None:
    manager = app._state_manager
    recover = manager.do_recovery

    def timed() -> None:
        on_start()
        started = time.monotonic()
        try:
            recover()
        finally:
            on_done(time.monotonic() - started)

    manager.do_recovery = timed  # type: ignore[method-assign]


def assigned(app: Application, topic: str) -> list[int]:
    """The partitions of ``topic`` this instance holds now."""
    return sorted(tp.partition for tp in app._consumer.assignment() if tp.topic == topic)


def store_databases(app: Application) -> Iterator[Any]:
    """The open RocksDB handle (``rocksdict.Rdict``) of every assigned store partition."""
    for stores in app._state_manager.stores.values():
        for store in stores.values():
            for partition in list(store.partitions.values()):
                db = getattr(partition, "_db", None)
                if db is not None:
                    yield db


def store_size(app: Application) -> tuple[int, int]:
    """(estimated keys, bytes on disk and in memtables) over the assigned partitions."""
    keys = size = 0
    for db in store_databases(app):
        try:
            keys += db.property_int_value("rocksdb.estimate-num-keys") or 0
            size += db.property_int_value("rocksdb.total-sst-files-size") or 0
            size += db.property_int_value("rocksdb.cur-size-all-mem-tables") or 0
        except Exception as exc:  # a partition closing under a rebalance: skip it this time
            log.debug("store properties unavailable: %r", exc)
    return keys, size
