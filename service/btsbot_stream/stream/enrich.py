"""Scored alert -> output message, without re-encoding the alert.

An Avro record's binary form is its fields in order, so a schema that appends one
field to the top-level record turns ``original datum + encoded new field`` into a
valid datum. The output is one Avro container file per message with that schema
embedded (as ZTF publishes), so existing ZTF consumers read it unchanged and newer
ones find the scores in the nullable ``btsbot`` field.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import fastavro

from btsbot_stream import __version__
from btsbot_stream.alerts.avro import CONTAINER_MAGIC, AlertSchema
from btsbot_stream.engine.cards import ModelCard

FIELD = "btsbot"
HEADER_PREFIX = "btsbot.score."
CANDID_HEADER = "ztf.candid"
SCORES_RECORD: dict[str, Any] = {
    "type": "record",
    "name": "btsbot_scores",
    "namespace": "btsbot_stream",
    "doc": "Bright Transient Survey scores attached by btsbot-stream",
    "fields": [
        {
            "name": "scores",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "model_score",
                    "fields": [
                        {"name": "model", "type": "string"},
                        {"name": "score", "type": "double", "doc": "probability in [0, 1]"},
                        {"name": "version", "type": "string"},
                        {"name": "sha256", "type": "string", "doc": "of the ONNX file"},
                    ],
                },
            },
        },
        {"name": "scored_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "service_version", "type": "string"},
    ],
}
_FIELD_SCHEMA = fastavro.parse_schema(["null", SCORES_RECORD])


@dataclass(frozen=True)
class _OutputSchema:
    header: bytes  # the complete container header, sync marker included
    sync: bytes


def _zigzag(value: int) -> bytes:
    out = bytearray()
    n = (value << 1) ^ (value >> 63)
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _avro_bytes(data: bytes) -> bytes:
    return _zigzag(len(data)) + data


def _output_schema(schema: AlertSchema) -> _OutputSchema:
    """The enriched schema's container header, built once per input schema."""
    cached = schema.extras.get("enrich")
    if cached is None:
        writer = json.loads(schema.text)
        if any(f["name"] == FIELD for f in writer["fields"]):
            raise ValueError(f"input schema already has a {FIELD!r} field (alert scored twice?)")
        writer["fields"].append({"name": FIELD, "type": ["null", SCORES_RECORD], "default": None})
        text = json.dumps(writer, separators=(",", ":")).encode()
        sync = os.urandom(16)
        meta = _zigzag(2) + _avro_bytes(b"avro.schema") + _avro_bytes(text)
        meta += _avro_bytes(b"avro.codec") + _avro_bytes(b"null") + _zigzag(0)
        cached = schema.extras["enrich"] = _OutputSchema(CONTAINER_MAGIC + meta + sync, sync)
    return cached


def scores_field(cards: Sequence[ModelCard], scores: dict[str, float], now_ms: int) -> bytes:
    """The binary encoding of the appended ``btsbot`` field (union branch 1)."""
    value = {
        "scores": [
            {"model": c.name, "score": scores[c.name], "version": c.version, "sha256": c.sha256}
            for c in cards
        ],
        "scored_at": now_ms,
        "service_version": __version__,
    }
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, _FIELD_SCHEMA, value)
    return buf.getvalue()


def enriched_message(schema: AlertSchema, datum: bytes, field: bytes) -> bytes:
    """One Avro container file holding the original datum with the field appended."""
    out = _output_schema(schema)
    body = datum + field
    return out.header + _zigzag(1) + _zigzag(len(body)) + body + out.sync


def score_headers(
    candid: int | None, scores: dict[str, float]
) -> list[tuple[str, str | bytes | None]]:
    """Kafka headers so consumers can filter (score) and de-duplicate (candid, since
    at-least-once delivery can repeat an alert after a crash) without decoding the Avro."""
    headers: list[tuple[str, str | bytes | None]] = [
        (HEADER_PREFIX + name, repr(float(p)).encode()) for name, p in scores.items()
    ]
    if candid is not None:
        headers.append((CANDID_HEADER, str(candid).encode()))
    return headers


def now_ms() -> int:
    return int(time.time() * 1000)
