"""Dead letters: one per input message that could not be published whole, holding the
original message bytes unchanged, with headers saying why.

Headers: ``error.reason`` (a fixed code: ``alerts.exceptions.Reason`` or
``output_too_large``), ``error.message`` (the specific detail), ``error.records`` (how
many records the message held, when it could be decoded), ``error.failed_records``
(``index:reason`` of each record that failed, comma-separated), ``source.topic``,
``source.partition``, ``source.offset``, ``source.timestamp``, ``error.time`` (ms since
the epoch). When even the original does not fit the dead-letter topic, the value is a
small JSON *reference* instead and ``error.value`` says ``reference``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from btsbot_stream.alerts.exceptions import Reason

HEADER_LIMIT = 4096  # keep a runaway exception text from bloating every header
# Failures the stream adds to the alert-level reasons.
DeadLetterReason = Reason | Literal["output_too_large"]
Headers = list[tuple[str, str | bytes | None]]


@dataclass(frozen=True, slots=True)
class SourcePosition:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    """Why one record (``index``) of a message, or the whole message (None), failed."""

    reason: str
    detail: str
    index: int | None = None


def dead_letter_headers(
    failures: Sequence[Failure], source: SourcePosition, now_ms: int, records: int | None
) -> Headers:
    """Headers of the one dead letter of a message; ``failures`` is not empty."""
    first = failures[0]
    detail = first.detail
    if len(failures) > 1:
        detail += f" (and {len(failures) - 1} more failed record(s))"
    headers: Headers = [
        ("error.reason", first.reason.encode()),
        ("error.message", detail[:HEADER_LIMIT].encode("utf-8", "replace")),
        ("source.topic", source.topic.encode()),
        ("source.partition", str(source.partition).encode()),
        ("source.offset", str(source.offset).encode()),
        ("error.time", str(now_ms).encode()),
    ]
    if source.timestamp_ms is not None:
        headers.append(("source.timestamp", str(source.timestamp_ms).encode()))
    if records is not None:
        headers.append(("error.records", str(records).encode()))
        failed = ",".join(f"{f.index}:{f.reason}" for f in failures if f.index is not None)
        if failed:
            headers.append(("error.failed_records", failed[:HEADER_LIMIT].encode()))
    return headers


def reference_record(
    source: SourcePosition,
    object_id: str | None,
    candid: int | None,
    sizes: dict[str, int],
    detail: str,
) -> bytes:
    """The small JSON that stands for a message too large for every topic we write."""
    return json.dumps(
        {
            "reason": "output_too_large",
            "detail": detail,
            "source": {
                "topic": source.topic,
                "partition": source.partition,
                "offset": source.offset,
            },
            "objectId": object_id,
            "candid": candid,
            "sizes": sizes,
        }
    ).encode()
