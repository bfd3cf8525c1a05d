"""Decode ZTF alert packets: Avro container files and Confluent wire-format messages.

The container's framing is read with fastavro and the Avro specification's own schemas
(the header record, then per block: record count, bytes, sync marker), one
``schemaless_reader`` call each. ``fastavro.block_reader`` would do the same, but it
parses the embedded writer schema again for every message (it doubles decode time, see
docs/benchmarks.md), inflates a block without any ceiling and raises on a header that is
not UTF-8; here each check is made before anything is allocated:

- the message against ``limits.max_message_bytes``;
- the schema text against ``max_schema_bytes`` and ``max_nesting_depth`` (each distinct
  text parsed once, kept in an LRU cache of ``schema_cache_size``, failures too);
- each block's record count against ``max_records`` before reading a record, its inflated
  size against ``max_block_bytes`` (all blocks together) while inflating;
- each record against ``max_array_items`` and the nesting limit before fastavro builds it
  (:mod:`btsbot_stream.alerts.bounds`).

It stays strict where ``fastavro.reader`` is lenient: a file one byte short is
``avro_truncated``, a wrong sync marker or bytes left over after the records
``avro_malformed``, a header without records ``avro_empty``. The raw binary datum of every
record is kept: enrichment appends to it instead of re-encoding the alert.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import fastavro
from fastavro.read import HEADER_SCHEMA

from btsbot_stream.alerts import inflate
from btsbot_stream.alerts.exceptions import InvalidAlert, Reject
from btsbot_stream.alerts.registry import SchemaRegistry
from btsbot_stream.alerts.schemas import SCORING, AlertSchema, Projection
from btsbot_stream.config import LimitSettings

__all__ = [
    "CONTAINER_MAGIC",
    "SCORING",
    "AlertDecoder",
    "AlertSchema",
    "DecodedAlert",
    "Projection",
]

CONTAINER_MAGIC = b"Obj\x01"
WIRE_MAGIC = 0
_HEADER = fastavro.parse_schema(HEADER_SCHEMA)
_BLOCK = fastavro.parse_schema(
    {
        "type": "record",
        "name": "btsbot_stream.ContainerBlock",  # the Avro spec's block framing
        "fields": [
            {"name": "count", "type": "long"},
            {"name": "data", "type": "bytes"},
            {"name": "sync", "type": {"type": "fixed", "name": "Sync", "size": 16}},
        ],
    }
)
K = TypeVar("K")
V = TypeVar("V")


@dataclass(slots=True)
class DecodedAlert:
    """One alert record: projected fields, raw datum bytes (of the leading fields only,
    under a ``leading`` projection) and its schema."""

    record: dict[str, Any]
    datum: bytes
    schema: AlertSchema


class _Lru(Generic[K, V]):
    """A dict that forgets its least recently used entry beyond ``size`` entries."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class AlertDecoder:
    """Turns message bytes into :class:`DecodedAlert` records, caching every schema."""

    def __init__(
        self,
        registry: SchemaRegistry | None = None,
        limits: LimitSettings | None = None,
        projection: Projection = SCORING,
    ) -> None:
        self._registry = registry
        self.limits = limits or LimitSettings()
        self._projection = projection
        # A schema text or id maps to its parsed form, or to why it was refused (so a
        # flood of one bad schema costs one parse).
        self._by_text: _Lru[bytes, AlertSchema | Reject] = _Lru(self.limits.schema_cache_size)
        self._by_id: _Lru[int, AlertSchema | Reject] = _Lru(self.limits.schema_cache_size)

    @property
    def schemas_seen(self) -> int:
        """Schemas held in the caches now (bounded by ``limits.schema_cache_size``)."""
        return len(self._by_text) + len(self._by_id)

    def decode(self, data: bytes) -> list[DecodedAlert]:
        """All records of one message; raises :class:`InvalidAlert` with the reason."""
        limit = self.limits.max_message_bytes
        if len(data) > limit:
            raise InvalidAlert(
                "message_too_large",
                f"message of {len(data)} bytes exceeds limits.max_message_bytes = {limit}",
            )
        if data[:4] == CONTAINER_MAGIC:
            return self._decode_container(data)
        if len(data) > 5 and data[0] == WIRE_MAGIC:
            return [self._decode_wire(data)]
        if not data:
            raise InvalidAlert("avro_truncated", "empty message")
        raise InvalidAlert(
            "avro_malformed",
            f"starts with {data[:4]!r}: neither an Avro container file (Obj\\x01) "
            "nor a Confluent wire-format message (magic byte 0)",
        )

    def _parsed(
        self, cache: _Lru[Any, AlertSchema | Reject], key: Any, load: Callable[[], str | bytes]
    ) -> AlertSchema:
        """The schema cached under ``key``; on a miss ``load()`` gives its text, whose
        parse (or refusal) is cached. ``load``'s own failures are not."""
        found = cache.get(key)
        if found is None:
            text = load()
            try:
                found = AlertSchema.from_text(text, self.limits, self._projection)
            except InvalidAlert as exc:
                found = Reject.from_error(exc)
            cache.put(key, found)
        if isinstance(found, Reject):
            raise InvalidAlert(found.reason, found.detail)
        return found

    def schema_of(self, data: bytes) -> AlertSchema:
        """The writer schema of a message (from the caches when seen before), without
        reading its records: how a process that did not decode the message itself (the
        parent of preparation workers) finds it. Raises :class:`InvalidAlert` as
        :meth:`decode` would."""
        if data[:4] == CONTAINER_MAGIC:
            return self._container_schema(data, io.BytesIO(data))[0]
        if len(data) > 5 and data[0] == WIRE_MAGIC:
            return self._wire_schema(data)
        raise InvalidAlert("avro_malformed", "neither an Avro container file nor a wire message")

    def _wire_schema(self, data: bytes) -> AlertSchema:
        schema_id = int.from_bytes(data[1:5], "big")
        registry = self._registry
        if registry is None:
            raise InvalidAlert(
                "schema_unknown",
                f"wire-format message with schema id {schema_id}, but no schema "
                "registry or schema directory is configured",
            )

        def fetch() -> str:  # unknown ids are not cached: the registry may learn them
            text = registry.get(schema_id)
            if text is None:
                raise InvalidAlert(
                    "schema_unknown", f"schema id {schema_id} not found in {registry}"
                )
            return text

        return self._parsed(self._by_id, schema_id, fetch)

    def _decode_wire(self, data: bytes) -> DecodedAlert:
        return self._read_records(data[5:], 1, self._wire_schema(data))[0]

    def _container_schema(
        self, data: bytes, stream: io.BytesIO
    ) -> tuple[AlertSchema, dict[str, Any]]:
        header = _read_framing(stream, _HEADER, "the container header")
        meta: dict[str, bytes] = header["meta"]
        text = meta.get("avro.schema")
        if text is None:
            raise InvalidAlert("avro_malformed", "container header has no avro.schema")
        return self._parsed(self._by_text, text, lambda: text), header

    def _decode_container(self, data: bytes) -> list[DecodedAlert]:
        stream = io.BytesIO(data)
        schema, header = self._container_schema(data, stream)
        meta: dict[str, bytes] = header["meta"]
        codec = meta.get("avro.codec", b"null")
        if codec not in (b"null", b"deflate", b"snappy"):
            raise InvalidAlert("avro_malformed", f"unsupported Avro codec {codec[:40]!r}")
        limits = self.limits
        budget = limits.max_block_bytes
        alerts: list[DecodedAlert] = []
        blocks = 0
        while stream.tell() < len(data):
            blocks += 1
            block = _read_framing(stream, _BLOCK, f"block {blocks}")
            if block["sync"] != header["sync"]:
                raise InvalidAlert(
                    "avro_malformed",
                    f"sync marker after block {blocks} does not match the header: the block "
                    "size is wrong or bytes were inserted/removed",
                )
            count = block["count"]
            if count < 0:
                raise InvalidAlert("avro_malformed", f"block {blocks} claims {count} records")
            if len(alerts) + count > limits.max_records:
                raise InvalidAlert(
                    "avro_too_many_records",
                    f"block {blocks} claims {count} records; limits.max_records = "
                    f"{limits.max_records} per message",
                )
            body = _inflate(block["data"], codec, budget, blocks)
            budget -= len(body)
            alerts.extend(self._read_records(body, count, schema))
        if not alerts:
            raise InvalidAlert("avro_empty", f"container holds no record ({blocks} blocks)")
        return alerts

    def _read_records(self, block: bytes, count: int, schema: AlertSchema) -> list[DecodedAlert]:
        if schema.partial:  # the first record's leading fields; its tail is left unread
            count = min(count, 1)
        stream = io.BytesIO(block)
        limits = self.limits
        walk = schema.layout.needs_walk(len(block), limits.max_array_items)
        out = []
        start = 0
        for _ in range(count):
            end = schema.layout.check(block, start, limits.max_array_items) if walk else None
            try:
                record = fastavro.schemaless_reader(stream, schema.writer, schema.reader)
            except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError...
                raise InvalidAlert(
                    "avro_malformed", f"datum does not decode with its schema: {exc!r}"
                ) from exc
            position = stream.tell()
            if end is not None and position != end:
                raise RuntimeError(f"datum walk ended at {end}, fastavro at {position}")
            out.append(DecodedAlert(record, block[start:position], schema))  # type: ignore[arg-type]
            start = position
        if start != len(block) and not schema.partial:
            raise InvalidAlert(
                "avro_malformed",
                f"{len(block) - start} bytes left over after {count} record(s): damaged datum",
            )
        return out


def _read_framing(stream: io.BytesIO, framing: Any, what: str) -> dict[str, Any]:
    """One framing record of the container (header or block), with the failure named."""
    try:
        return fastavro.schemaless_reader(stream, framing, None)  # type: ignore[return-value]
    except EOFError as exc:
        raise InvalidAlert(
            "avro_truncated",
            f"file ends inside {what} ({exc}): lost bytes, e.g. a cut download or a "
            "line-ending conversion",
        ) from exc
    except Exception as exc:
        raise InvalidAlert("avro_malformed", f"{what} does not decode: {exc!r}") from exc


def _inflate(data: bytes, codec: bytes, budget: int, block: int) -> bytes:
    """A block's records, decompressed within the remaining ``max_block_bytes`` budget."""
    try:
        if codec == b"deflate":
            body = inflate.inflate(data, inflate.RAW_DEFLATE, budget)
        elif codec == b"snappy":
            body = inflate.unsnappy_avro(data, budget)
        else:
            body = data if len(data) <= budget else None
    except inflate.Damaged as exc:
        raise InvalidAlert(
            "avro_malformed", f"{codec.decode()} block {block} does not decompress: {exc}"
        ) from exc
    if body is None:
        raise InvalidAlert(
            "avro_block_too_large",
            f"block {block} inflates past what remains of limits.max_block_bytes ({budget} bytes)",
        )
    return body
