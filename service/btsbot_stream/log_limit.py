"""Rate-limited logging: a fault that repeats per message must not flood the log."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class LogLimiter:
    """Logs the first occurrence of each key, then at most one line per ``interval_s``
    saying how many were held back since the last line.

    Safe to call from several threads (preparation runs beside inference).
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def error(
        self, key: str, message: str, *args: object, exc_info: BaseException | None = None
    ) -> bool:
        """Log ``message % args`` at ERROR unless ``key`` was logged within the interval;
        returns whether it was logged."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            held = self._held.pop(key, 0)
            self._last[key] = now
        if held:
            message += " (%d more since the last such line)"
            args = (*args, held)
        self._logger.error(message, *args, exc_info=exc_info)
        return True
