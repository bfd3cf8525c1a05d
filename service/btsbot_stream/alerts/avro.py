"""Decode ZTF alert packets: Avro container files and Confluent wire-format messages.

Each distinct writer schema is parsed once and cached, together with a *projected*
reader schema that keeps only what scoring needs (``candidate`` features, ``jd`` and
``magpsf`` of the history, the stamp bytes), so fastavro skips materialising the rest.
The raw binary datum of every record is kept: enrichment appends to it instead of
re-encoding the alert (see ``stream.enrich``).

The container parser is our own (a few dozen lines of the Avro spec) because it must be
strict where ``fastavro.reader`` is lenient: a file one byte short must be reported as
truncated, not decoded into a plausible but damaged alert.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cramjam
import fastavro

from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.alerts.features import CANDIDATE_FIELDS, HISTORY_FIELDS
from btsbot_stream.alerts.registry import SchemaRegistry
from btsbot_stream.alerts.stamps import STAMP_ORDER

CONTAINER_MAGIC = b"Obj\x01"
WIRE_MAGIC = 0
SYNC_SIZE = 16


@dataclass(frozen=True)
class Projection:
    """The fields a reader keeps: top-level field names, and field names per record type
    (by short name); record types not named keep every field."""

    top_level: frozenset[str]
    records: dict[str, frozenset[str]] = field(default_factory=dict)


SCORING = Projection(
    frozenset({"schemavsn", "objectId", "candid", "candidate", "prv_candidates", *STAMP_ORDER}),
    {
        "candidate": frozenset(CANDIDATE_FIELDS),
        "prv_candidate": frozenset(HISTORY_FIELDS),
        "cutout": frozenset({"stampData"}),
    },
)


@dataclass(eq=False)
class AlertSchema:
    """A writer schema with its projection; one instance per distinct schema."""

    text: str  # the writer schema JSON as it came (embedded again in enriched output)
    writer: Any
    reader: Any
    extras: dict[str, Any] = field(default_factory=dict)  # caches of later stages

    @classmethod
    def from_text(cls, text: str, projection: Projection = SCORING) -> AlertSchema:
        try:
            schema = json.loads(text)
            # Parsed with fastavro's marker, so schemaless_reader does not parse them
            # again on every message (that halves the decode time).
            writer = fastavro.parse_schema(schema)
            reader = fastavro.parse_schema(_project(schema, projection))
        except (ValueError, TypeError, KeyError, fastavro.schema.SchemaParseException) as exc:
            raise InvalidAlert("avro_malformed", f"embedded schema does not parse: {exc}") from exc
        return cls(text=text, writer=writer, reader=reader)


@dataclass(slots=True)
class DecodedAlert:
    """One alert record: projected fields, raw datum bytes and its schema."""

    record: dict[str, Any]
    datum: bytes
    schema: AlertSchema


def _short_name(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _project(node: Any, projection: Projection, top: bool = True) -> Any:
    """Copy a schema keeping only the fields ``projection`` names (names and types
    unchanged)."""
    if isinstance(node, list):
        return [_project(branch, projection, top=False) for branch in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if kind == "array":
        return {**node, "items": _project(node["items"], projection, top=False)}
    if kind == "map":
        return {**node, "values": _project(node["values"], projection, top=False)}
    if kind != "record":
        return node
    keep = projection.top_level if top else projection.records.get(_short_name(node["name"]))
    fields = [
        {**f, "type": _project(f["type"], projection, top=False)}
        for f in node["fields"]
        if keep is None or f["name"] in keep
    ]
    return {**node, "fields": fields}


def _read_long(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Avro zig-zag varint at ``pos``; returns (value, next position)."""
    shift = result = 0
    while True:
        try:
            byte = buf[pos]
        except IndexError:
            raise InvalidAlert("avro_truncated", "file ends inside a length field") from None
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise InvalidAlert("avro_malformed", "varint longer than 64 bits")


def _take(buf: bytes, pos: int, size: int, what: str) -> tuple[bytes, int]:
    end = pos + size
    if size < 0:
        raise InvalidAlert("avro_malformed", f"{what} has negative length {size}")
    if end > len(buf):
        raise InvalidAlert(
            "avro_truncated", f"{what} needs {size} bytes, only {len(buf) - pos} remain"
        )
    return buf[pos:end], end


def _read_metadata(buf: bytes, pos: int) -> tuple[dict[str, bytes], int]:
    meta: dict[str, bytes] = {}
    while True:
        count, pos = _read_long(buf, pos)
        if count == 0:
            return meta, pos
        if count < 0:  # block with byte size: skip the size, read |count| entries
            count = -count
            _, pos = _read_long(buf, pos)
        for _ in range(count):
            klen, pos = _read_long(buf, pos)
            key, pos = _take(buf, pos, klen, "header key")
            vlen, pos = _read_long(buf, pos)
            meta[key.decode("utf-8", "replace")], pos = _take(buf, pos, vlen, "header value")


def _inflate_deflate(block: bytes) -> bytes:
    return zlib.decompress(block, -15)


def _inflate_snappy(block: bytes) -> bytes:
    data = bytes(cramjam.snappy.decompress_raw(block[:-4]))
    (crc,) = struct.unpack(">I", block[-4:])
    if zlib.crc32(data) & 0xFFFFFFFF != crc:
        raise ValueError("snappy block CRC mismatch")
    return data


_CODECS: dict[str, Callable[[bytes], bytes] | None] = {
    "null": None,
    "deflate": _inflate_deflate,
    "snappy": _inflate_snappy,
}


class AlertDecoder:
    """Turns message bytes into :class:`DecodedAlert` records, caching every schema."""

    def __init__(
        self, registry: SchemaRegistry | None = None, projection: Projection = SCORING
    ) -> None:
        self._registry = registry
        self._projection = projection
        self._by_text: dict[bytes, AlertSchema] = {}
        self._by_id: dict[int, AlertSchema] = {}

    @property
    def schemas_seen(self) -> int:
        return len(self._by_text) + len(self._by_id)

    def decode(self, data: bytes) -> list[DecodedAlert]:
        """All records of one message; raises :class:`InvalidAlert` with the reason."""
        if data[:4] == CONTAINER_MAGIC:
            return list(self._decode_container(data))
        if len(data) > 5 and data[0] == WIRE_MAGIC:
            return [self._decode_wire(data)]
        if not data:
            raise InvalidAlert("avro_truncated", "empty message")
        raise InvalidAlert(
            "avro_malformed",
            f"starts with {data[:4]!r}: neither an Avro container file (Obj\\x01) "
            "nor a Confluent wire-format message (magic byte 0)",
        )

    def _schema_for_text(self, text: bytes) -> AlertSchema:
        schema = self._by_text.get(text)
        if schema is None:
            schema = AlertSchema.from_text(text.decode("utf-8"), self._projection)
            self._by_text[text] = schema
        return schema

    def _decode_wire(self, data: bytes) -> DecodedAlert:
        schema_id = int.from_bytes(data[1:5], "big")
        schema = self._by_id.get(schema_id)
        if schema is None:
            if self._registry is None:
                raise InvalidAlert(
                    "schema_unknown",
                    f"wire-format message with schema id {schema_id}, but no schema "
                    "registry or schema directory is configured",
                )
            text = self._registry.get(schema_id)
            if text is None:
                raise InvalidAlert(
                    "schema_unknown", f"schema id {schema_id} not found in {self._registry}"
                )
            schema = self._by_id[schema_id] = AlertSchema.from_text(text, self._projection)
        datum = data[5:]
        return self._read_records(datum, 1, schema)[0]

    def _decode_container(self, data: bytes) -> Iterator[DecodedAlert]:
        meta, pos = _read_metadata(data, len(CONTAINER_MAGIC))
        sync, pos = _take(data, pos, SYNC_SIZE, "header sync marker")
        if "avro.schema" not in meta:
            raise InvalidAlert("avro_malformed", "container header has no avro.schema")
        schema = self._schema_for_text(meta["avro.schema"])
        codec_name = meta.get("avro.codec", b"null").decode()
        if codec_name not in _CODECS:
            raise InvalidAlert("avro_malformed", f"unsupported Avro codec {codec_name!r}")
        inflate = _CODECS[codec_name]
        while pos < len(data):
            count, pos = _read_long(data, pos)
            size, pos = _read_long(data, pos)
            block, pos = _take(data, pos, size, "data block")
            marker = data[pos : pos + SYNC_SIZE]
            if len(marker) < SYNC_SIZE:
                raise InvalidAlert(
                    "avro_truncated",
                    f"file ends {SYNC_SIZE - len(marker)} byte(s) short of the block's "
                    "sync marker (lost bytes, e.g. a line-ending conversion)",
                )
            if marker != sync:
                raise InvalidAlert(
                    "avro_malformed",
                    "sync marker after a block does not match the header: the block size "
                    "is wrong or bytes were inserted/removed",
                )
            pos += SYNC_SIZE
            if inflate is not None:
                try:
                    block = inflate(block)
                except Exception as exc:
                    raise InvalidAlert(
                        "avro_malformed", f"{codec_name} block does not decompress: {exc}"
                    ) from exc
            yield from self._read_records(block, count, schema)

    @staticmethod
    def _read_records(block: bytes, count: int, schema: AlertSchema) -> list[DecodedAlert]:
        stream = io.BytesIO(block)
        out = []
        start = 0
        for _ in range(count):
            try:
                record = fastavro.schemaless_reader(stream, schema.writer, schema.reader)
            except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError...
                raise InvalidAlert(
                    "avro_malformed", f"datum does not decode with its schema: {exc!r}"
                ) from exc
            end = stream.tell()
            out.append(DecodedAlert(record, block[start:end], schema))  # type: ignore[arg-type]
            start = end
        if start != len(block):
            raise InvalidAlert(
                "avro_malformed",
                f"{len(block) - start} bytes left over after {count} record(s): damaged datum",
            )
        return out
