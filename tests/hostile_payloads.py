"""The hostile generator's payloads (see :mod:`hostile`): the container writer every case
uses, and the resource bombs (odd FITS stamps: :mod:`hostile_fits`; odd records:
:mod:`hostile_records`). Deterministic, built from real alerts.

Nothing here comes from the code under test: a bomb is what it claims (the 2 GiB stamp
is inflated and counted by ``test_bomb_memory``; its gzip trailer's CRC is combined from
the CRC of 1 MiB of zeros, so zlib accepts it), a FITS variant's expected image is what
astropy reads from it (:mod:`hostile_fits`).
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cramjam
import fastavro
from isal import isal_zlib

STAMPS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")
CORRUPT_STAMP = frozenset({"cutout_corrupt", "cutout_too_large"})
MALFORMED = frozenset({"avro_malformed"})
ANY = frozenset[str]()  # with must_reject: any reason
SYNC = b"btsbot-hostile!!"
GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True)
class Hostile:
    """One hostile message and what it may become."""

    name: str
    data: bytes
    must_reject: bool  # no alert can come out of it
    reasons: frozenset[str] = ANY  # with must_reject: the codes allowed (empty: any)
    must_score: bool = False  # odd but valid: it must be scored


# -- writing containers ---------------------------------------------------------------


def _zigzag(value: int) -> bytes:
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _avro_bytes(value: bytes) -> bytes:
    return _zigzag(len(value)) + value


def container(meta: dict[str, bytes], blocks: list[tuple[int, bytes]]) -> bytes:
    """An Avro container file: ``meta`` as the header, then (record count, data) blocks."""
    out = b"Obj\x01" + _zigzag(len(meta))
    for key, value in meta.items():
        out += _avro_bytes(key.encode()) + _avro_bytes(value)
    out += _zigzag(0) + SYNC
    for count, data in blocks:
        out += _zigzag(count) + _avro_bytes(data) + SYNC
    return out


def datum(schema: Any, record: Any) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def snappy(data: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(data)) + zlib.crc32(data).to_bytes(4, "big")


def alert_message(schema: Any, record: Any, codec: str = "null") -> bytes:
    body = datum(schema, record)
    if codec == "deflate":
        body = deflate(body)
    elif codec == "snappy":
        body = snappy(body)
    meta = {"avro.schema": json.dumps(schema).encode(), "avro.codec": codec.encode()}
    return container(meta, [(1, body)])


def parts(data: bytes) -> tuple[Any, dict[str, Any]]:
    """(schema JSON, full record) of a real single-record container."""
    reader = fastavro.reader(io.BytesIO(data))
    record = next(reader)
    return json.loads(reader.metadata["avro.schema"]), record


# -- bombs ----------------------------------------------------------------------------


def zeros_deflate(size: int, gzip: bool) -> bytes:
    """A valid deflate (or gzip) stream of ``size`` zero bytes, built in milliseconds:
    1 MiB compressed once with a full flush (so it is independent of what precedes it),
    repeated; the gzip trailer's CRC is combined, not computed over 2 GiB."""
    chunk = 1 * MiB
    assert size % chunk == 0
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = packer.compress(bytes(chunk)) + packer.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    body = piece * (size // chunk) + final
    if not gzip:
        return body
    crc, done = zlib.crc32(bytes(chunk)), chunk
    while done < size:  # doubling: crc of 2n zeros from the crc of n zeros
        crc, done = isal_zlib.crc32_combine(crc, crc, done), done * 2
    assert done == size, "size must be a power-of-two multiple of 1 MiB"
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + body + crc.to_bytes(4, "little") + (size % (1 << 32)).to_bytes(4, "little")


def _with_stamps(record: dict[str, Any], stamp: bytes, keys: tuple[str, ...]) -> dict[str, Any]:
    record = dict(record)
    for key in keys:
        record[key] = {**record[key], "stampData": stamp}
    return record


def bombs(real: bytes) -> Iterator[Hostile]:
    schema, record = parts(real)
    gz = zeros_deflate(2 * GiB, gzip=True)  # ~2 MB
    yield Hostile(
        "bomb-stamp-2GiB",
        alert_message(schema, _with_stamps(record, gz, STAMPS[:1])),
        True,
        frozenset({"cutout_too_large"}),
    )
    yield Hostile(  # 6 GiB of stamps behind ~10 kB: gzip inside a deflate-coded block
        "bomb-stamps-in-deflate-block",
        alert_message(schema, _with_stamps(record, gz, STAMPS), codec="deflate"),
        True,
        frozenset({"cutout_too_large"}),
    )
    text = json.dumps(schema).encode()
    yield Hostile(
        "bomb-block-deflate-1GiB",
        container(
            {"avro.schema": text, "avro.codec": b"deflate"}, [(1, zeros_deflate(GiB, False))]
        ),
        True,
        frozenset({"avro_block_too_large"}),
    )
    claims_4gib = b"\xff\xff\xff\xff\x0f" + b"\x00" * 16 + b"\x00\x00\x00\x00"
    yield Hostile(
        "bomb-block-snappy-4GiB",
        container({"avro.schema": text, "avro.codec": b"snappy"}, [(1, claims_4gib)]),
        True,
        frozenset({"avro_block_too_large"}),
    )
    empty = json.dumps({"type": "record", "name": "empty", "fields": []}).encode()
    for count in (2**40, 20_000):
        yield Hostile(
            f"bomb-records-{count}",
            container({"avro.schema": empty}, [(count, b"")]),
            True,
            frozenset({"avro_too_many_records"}),
        )
    nulls = {
        "type": "record",
        "name": "n",
        "fields": [{"name": "a", "type": {"type": "array", "items": "null"}}],
    }
    yield Hostile(
        "bomb-array-null-1e8",
        container({"avro.schema": json.dumps(nulls).encode()}, [(1, _zigzag(10**8) + _zigzag(0))]),
        True,
        frozenset({"array_too_long"}),
    )
    nested = {
        "type": "record",
        "name": "nn",
        "fields": [
            {"name": "a", "type": {"type": "array", "items": {"type": "array", "items": "null"}}}
        ],
    }
    inner = _zigzag(5000) + _zigzag(0)
    yield Hostile(
        "bomb-array-nested-25e6",
        container(
            {"avro.schema": json.dumps(nested).encode()},
            [(1, _zigzag(5000) + inner * 5000 + _zigzag(0))],
        ),
        True,
        frozenset({"array_too_long"}),
    )
    yield Hostile(
        "bomb-history-1e6-points",
        _tiny_history(record, 1_000_000),
        True,
        frozenset({"array_too_long"}),
    )
    chain = {
        "type": "record",
        "name": "link",
        "fields": [{"name": "next", "type": ["null", "link"]}],
    }
    linked = {"type": "record", "name": "top", "fields": [{"name": "n", "type": chain}]}
    yield Hostile(  # fastavro recurses in C per level: 100,000 levels overflow its stack
        "bomb-recursive-1e5-deep",
        container({"avro.schema": json.dumps(linked).encode()}, [(1, b"\x02" * 100_000 + b"\x00")]),
        True,
        frozenset({"avro_too_deep"}),
    )
    yield Hostile(
        "bomb-named-chain-200",
        container({"avro.schema": json.dumps(_named_chain(200)).encode()}, [(1, b"")]),
        True,
        frozenset({"avro_too_deep"}),
    )
    # objectId: a field decode keeps (fastavro skips others by seeking, leniently)
    strings = {"type": "record", "name": "s", "fields": [{"name": "objectId", "type": "string"}]}
    yield Hostile(
        "bomb-string-2e60",
        container({"avro.schema": json.dumps(strings).encode()}, [(1, _zigzag(2**60) + b"x")]),
        True,
        MALFORMED,
    )
    meta = {"avro.schema": text, "padding": bytes(5 * MiB)}
    yield Hostile(
        "bomb-message-5MiB",
        container(meta, [(1, datum(schema, record))]),
        True,
        frozenset({"message_too_large"}),
    )


def _tiny_history(record: dict[str, Any], points: int) -> bytes:
    """An alert-like schema whose history points take 2 bytes each (both fields null)."""
    point = {
        "type": "record",
        "name": "prv_candidate",
        "fields": [
            {"name": "jd", "type": ["null", "double"]},
            {"name": "magpsf", "type": ["null", "float"]},
        ],
    }
    schema = {
        "type": "record",
        "name": "alert",
        "fields": [
            {"name": "objectId", "type": "string"},
            {"name": "prv_candidates", "type": {"type": "array", "items": point}},
        ],
    }
    body = _avro_bytes(str(record["objectId"]).encode()) + _zigzag(points)
    body += b"\x00\x00" * points + _zigzag(0)
    return container({"avro.schema": json.dumps(schema).encode()}, [(1, body)])


def _named_chain(length: int) -> dict[str, Any]:
    """A record whose fields define types r0..rN, each holding the previous one: the
    JSON stays shallow, the values nest ``length`` deep."""
    fields: list[dict[str, Any]] = [
        {"name": "f0", "type": {"type": "record", "name": "r0", "fields": []}}
    ]
    for i in range(1, length):
        fields.append(
            {
                "name": f"f{i}",
                "type": {
                    "type": "record",
                    "name": f"r{i}",
                    "fields": [{"name": "x", "type": f"r{i - 1}"}],
                },
            }
        )
    return {"type": "record", "name": "chain", "fields": fields}
