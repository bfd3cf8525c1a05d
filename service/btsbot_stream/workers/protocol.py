"""What travels between the parent and a preparation worker (pickled, over a pipe).

To a worker: a :class:`Task` (some consecutive messages of a batch, where their raw bytes
lie in the worker's shared-memory input buffer, and the slot their prepared alerts go
to; a message that does not fit travels as bytes). Back: :class:`Ready` once, then one
:class:`TaskDone` per task with a :class:`MessageOut` (or :class:`RegistryDown`) per
message. Only small values travel back: identities, the candidate record, where the
datum lies in the message (its bytes only when decompression made them), the slot row
written, and a key naming the writer schema (the registry id, or a digest of the
container's schema text) that the parent resolves in its own cache. Message ``i`` of a
batch owns row ``i`` of its slot for its first prepared alert; further alerts of the
same message (multi-record containers: not seen in ZTF) travel as arrays.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import numpy as np

from btsbot_stream.alerts.avro import CONTAINER_MAGIC, AlertSchema
from btsbot_stream.alerts.exceptions import Reject

KEPT_FIELDS = ("objectId", "candid", "candidate")  # what stages after preparation read
SYNC_BYTES = 16  # an Avro container ends with the sync marker after its last block


class Task(NamedTuple):
    seq: int  # unique per task sent (matches a dead worker's progress to its task)
    slot: int
    first: int  # index in the batch (= slot row) of values[0]
    values: list[tuple[int, int] | bytes]  # (start, stop) in the worker's input buffer, or bytes


class Ready(NamedTuple):
    pid: int


class RecordOut(NamedTuple):
    record: dict[str, Any]  # the KEPT_FIELDS of the decoded record
    datum: tuple[int, int] | bytes  # (start, stop) in the message, or the bytes
    prepared: int | tuple[np.ndarray, np.ndarray] | Reject  # slot row, arrays, or why not


class MessageOut(NamedTuple):
    schema: int | bytes | None  # registry id, sha256 of the schema text, None: no record
    records: list[RecordOut]
    failure: Reject | None


class RegistryDown(NamedTuple):
    detail: str


class TaskDone(NamedTuple):
    seq: int
    outcomes: list[MessageOut | RegistryDown]


class TaskFailed(NamedTuple):
    """A process-level error inside the worker (not the message's fault)."""

    seq: int
    error: str


def schema_key(data: bytes, schema: AlertSchema) -> int | bytes:
    """The registry id of a wire-format message, or the digest of a container's schema
    text (computed once per schema and process)."""
    if data[:4] != CONTAINER_MAGIC:
        return int.from_bytes(data[1:5], "big")
    digest = schema.extras.get("digest")
    if digest is None:
        digest = schema.extras["digest"] = text_digest(schema)
    return digest


def text_digest(schema: AlertSchema) -> bytes:
    return hashlib.sha256(schema.text.encode()).digest()


def datum_ref(data: bytes, datum: bytes) -> tuple[int, int] | bytes:
    """Where ``datum`` lies in ``data`` (a wire message's tail, or the only record of an
    uncompressed container, just before its sync marker), or the bytes themselves."""
    stop = len(data) if data[:4] != CONTAINER_MAGIC else len(data) - SYNC_BYTES
    if data.endswith(datum, 0, stop):  # a memcmp, no copy
        return (stop - len(datum), stop)
    return datum
