"""Logging set-up: human text on a terminal, one JSON object per line for log shippers."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Literal

LogFormat = Literal["text", "json"]
_VARYING = re.compile(r"[0-9]+|\(after [^)]*\)")  # counts, timings: not what makes a line new


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure(level: str = "INFO", fmt: LogFormat = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


KAFKA_LOGGER = "btsbot_stream.kafka"  # librdkafka's own lines and client errors


class RepeatFilter(logging.Filter):
    """Lets the first of identical lines through, then one per ``interval`` with the count.

    "Identical" ignores numbers and librdkafka's "(after 3ms in state CONNECT, 2 identical
    error(s) suppressed)" tails, so its repeats of one failure are one line. A broker that
    is away must not bury the rest of the log.
    """

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}  # -> (shown at, hidden)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.interval <= 0:
            return True
        key = (record.name, record.levelno, _VARYING.sub("#", record.getMessage()))
        now = time.monotonic()
        shown, hidden = self._seen.get(key, (-self.interval, 0))
        if now - shown < self.interval:
            self._seen[key] = (shown, hidden + 1)
            return False
        if hidden:
            record.msg = (
                f"{record.getMessage()} ({hidden} more like it in the last {now - shown:.0f} s)"
            )
            record.args = None
        self._seen[key] = (now, 0)
        if len(self._seen) > 1000:  # bounded: forget the oldest half
            for old in sorted(self._seen, key=lambda k: self._seen[k][0])[:500]:
                del self._seen[old]
        return True


def limit_repeats(interval: float, name: str = KAFKA_LOGGER) -> logging.Logger:
    """The logger ``name`` with a :class:`RepeatFilter` (one, however often called)."""
    logger = logging.getLogger(name)
    logger.filters[:] = [f for f in logger.filters if not isinstance(f, RepeatFilter)]
    logger.addFilter(RepeatFilter(interval))
    return logger
