"""Helpers of the pool tests (no code under test here).

:func:`difference` says what differs between two preparations of one message. The
other functions are what preparation workers run instead of ``prepare_message``
(module-level: a worker imports them by name), each doing what the real one does except
on one marker message, where the worker dies as it can in production:

- ``WAIT:<path>``: writes the worker's pid to ``<path>`` and waits to be killed (the
  test sends SIGKILL from outside); once ``<path>`` exists, prepares it as usual.
- ``SEGFAULT``: reads address 0 (a segfault, as a C extension can on a hostile input),
  every time.
"""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path

from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.exceptions import Reject
from btsbot_stream.alerts.prepare import identity
from btsbot_stream.scoring import PreparedMessage, prepare_message

WAIT = b"WAIT:"
SEGFAULT = b"SEGFAULT"


def wait_to_be_killed(decoder: AlertDecoder, data: bytes) -> PreparedMessage:
    if data.startswith(WAIT):
        flag = Path(data[len(WAIT) :].decode())
        if not flag.exists():
            flag.write_text(str(os.getpid()))
            time.sleep(120)  # the test kills this worker long before
    return prepare_message(decoder, data)


def segfault(decoder: AlertDecoder, data: bytes) -> PreparedMessage:
    if data == SEGFAULT:
        ctypes.string_at(0)
    return prepare_message(decoder, data)


def difference(inline: PreparedMessage, pooled: PreparedMessage) -> str | None:
    """What differs between two preparations of one message (None: nothing)."""
    if inline.failure != pooled.failure:
        return f"failure {inline.failure} != {pooled.failure}"
    if len(inline.records) != len(pooled.records):
        return f"{len(inline.records)} records != {len(pooled.records)}"
    for (alert, prepared), (other, theirs) in zip(inline.records, pooled.records, strict=True):
        if identity(alert) != identity(other):
            return f"identity {identity(alert)} != {identity(other)}"
        if alert.datum != other.datum or alert.schema.text != other.schema.text:
            return "datum or schema differ"
        # repr: NaN fields (hostile records) compare equal to themselves
        if repr(alert.record.get("candidate")) != repr(other.record.get("candidate")):
            return "candidate record differs"
        if isinstance(prepared, Reject) or isinstance(theirs, Reject):
            if prepared != theirs:
                return f"{prepared} != {theirs}"
            continue
        pairs = ((prepared.triplet, theirs.triplet), (prepared.metadata, theirs.metadata))
        for mine, pool_array in pairs:
            if mine.dtype != pool_array.dtype or mine.shape != pool_array.shape:
                return f"{pool_array.dtype}{pool_array.shape} != {mine.dtype}{mine.shape}"
            if mine.tobytes() != pool_array.tobytes():
                return "arrays differ"
    return None


def differences(
    decoder: AlertDecoder, values: list[bytes], pooled: list[PreparedMessage]
) -> list[str]:
    """Each message prepared here against its pooled preparation."""
    problems = []
    for index, (value, theirs) in enumerate(zip(values, pooled, strict=True)):
        problem = difference(prepare_message(decoder, value), theirs)
        if problem:
            problems.append(f"message {index}: {problem}")
    return problems
