"""Read object states back: from the stage's changelog topic (while it runs) or from a
stopped stage's state folder. Used by ``btsbot-stream object`` and the tests.

Quix Streams' layout, version 3.28: the store of the stage is named ``default``; its
changelog topic is ``changelog__<group>--<scored topic>--default``; a state key is
``json(message key) | json(state key)``; with per-write TTL, a value is an 8-byte
big-endian expiry (ms, event time) followed by the JSON value. A tombstone (null value)
means the object was evicted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rocksdict import AccessType, Options, Rdict

from btsbot_stream.config import ServiceSettings
from btsbot_stream.stream.clients import KafkaConfig
from btsbot_stream.stream.decide.processor import STATE_KEY
from btsbot_stream.stream.summary import read_to_end

STORE_NAME = "default"
_STATE_SUFFIX = b"|" + json.dumps(STATE_KEY).encode()
_STAMP_BYTES = 8


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One object's state as stored, and when the store will evict it."""

    object_id: str
    state: dict[str, Any]  # ObjectState.to_json() layout
    expires_at_ms: int | None  # event time (jd as Unix ms); None: never


def changelog_topic(settings: ServiceSettings) -> str:
    decide = settings.decide
    return f"changelog__{decide.group_id}--{settings.kafka.output_topic}--{STORE_NAME}"


def _object_id(key: bytes) -> str | None:
    if not key.endswith(_STATE_SUFFIX):
        return None
    value = json.loads(key[: -len(_STATE_SUFFIX)])
    return value if isinstance(value, str) else None


def _decode(value: bytes) -> tuple[dict[str, Any], int | None]:
    # Our values are JSON objects; a stamped one starts with its 8-byte expiry (the
    # first byte of any plausible millisecond stamp is 0, never "{").
    if value[:1] == b"{":
        return json.loads(value), None
    expires = int.from_bytes(value[:_STAMP_BYTES], "big")
    return json.loads(value[_STAMP_BYTES:]), expires


def _latest(pairs: Iterable[tuple[bytes, bytes | None]]) -> Iterator[StoredObject]:
    latest: dict[str, bytes | None] = {}
    for key, value in pairs:
        object_id = _object_id(key)
        if object_id is not None:
            latest[object_id] = value
    for object_id, value in sorted(latest.items()):
        if value is not None:
            state, expires = _decode(value)
            yield StoredObject(object_id, state, expires)


def from_changelog(config: KafkaConfig, topic: str, timeout: float = 60) -> list[StoredObject]:
    """Every live object in the changelog (committed records only), latest value each."""
    messages = read_to_end(config, topic, timeout)
    return list(_latest((m.key() or b"", m.value()) for m in messages))


def from_state_dir(settings: ServiceSettings, state_dir: Path | None = None) -> list[StoredObject]:
    """Every object of a stopped stage's local stores (RocksDB opened read-only)."""
    root = (state_dir or settings.decide.state_dir) / settings.decide.group_id / STORE_NAME
    folder = root / settings.kafka.output_topic
    if not folder.is_dir():
        raise FileNotFoundError(f"no state store at {folder}")
    objects: list[StoredObject] = []
    for partition in sorted(p for p in folder.iterdir() if p.is_dir()):
        families = [c for c in Rdict.list_cf(str(partition)) if c != "default"]
        db = Rdict(
            str(partition),
            options=Options(raw_mode=True),
            access_type=AccessType.read_only(),
            column_families={c: Options(raw_mode=True) for c in families},
        )
        try:
            objects += _latest(db.items())  # type: ignore[arg-type]
        finally:
            db.close()
    return sorted(objects, key=lambda o: o.object_id)
