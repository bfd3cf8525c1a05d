"""Dead letters: the original message bytes, unchanged, with headers saying why.

Headers: ``error.reason`` (a fixed code, see ``alerts.exceptions.Reason``),
``error.message`` (the specific detail), ``source.topic``, ``source.partition``,
``source.offset``, ``source.timestamp``, ``error.time`` (ms since the epoch), and
``error.record`` when one record of a multi-record container failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from btsbot_stream.alerts.exceptions import Reject

HEADER_LIMIT = 4096  # keep a runaway exception text from bloating every header


@dataclass(frozen=True, slots=True)
class SourcePosition:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None


def dead_letter_headers(
    reject: Reject, source: SourcePosition, now_ms: int, record: int | None = None
) -> list[tuple[str, str | bytes | None]]:
    headers: list[tuple[str, str | bytes | None]] = [
        ("error.reason", reject.reason.encode()),
        ("error.message", reject.detail[:HEADER_LIMIT].encode("utf-8", "replace")),
        ("source.topic", source.topic.encode()),
        ("source.partition", str(source.partition).encode()),
        ("source.offset", str(source.offset).encode()),
        ("error.time", str(now_ms).encode()),
    ]
    if source.timestamp_ms is not None:
        headers.append(("source.timestamp", str(source.timestamp_ms).encode()))
    if record is not None:
        headers.append(("error.record", str(record).encode()))
    return headers
