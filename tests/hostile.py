"""Hostile and damaged alert messages, made from real alerts at test time.

Deterministic for a seed, nothing stored: every case is a complete message (an Avro
container, as ZTF publishes) built from a real packet of the demo sample or the shared
corpus. Any test may use it (``tests/`` is on the path; no code under test is called)::

    from hostile import certain_rejects, hostile_messages, packets_of
    for case in hostile_messages(packets_of(files), per_packet=12, seed=8):
        outcome = ...                             # what the code under test made of it
        if case.must_reject:
            assert outcome.reason in case.reasons or not case.reasons
    # a stream test: messages certain to be dead letters, each under the broker's limit
    poison = certain_rejects(packets_of(files), max_bytes=1_000_000)

Each :class:`Hostile` says what it may become: ``must_reject`` when no alert can come
out of it (then ``reasons``, if not empty, holds every reason code it may get),
``must_score`` when it is odd but valid, else either (a flipped byte inside a number is
a different alert, not a damaged one). Each is one message holding one alert at most, so
it has exactly one outcome. Kinds (the ``name`` starts with one):

- ``cut@N``: truncated at every block boundary and at random points;
- ``flip-<region>@N``: one byte changed in the header magic, metadata, schema text, sync
  markers, block framing, the datum, a stamp's deflate data;
- ``codec-*``, ``schema-*``, ``empty``: header corruption (non-UTF-8 codec or schema,
  a schema that is ``"null"`` or ``"int"``, nested 100,000 deep, over 1 MiB);
- ``bomb-*``: resource bombs (:mod:`hostile_payloads`);
- ``fits-*``: stamps that are valid but odd (``must_score``: several only astropy reads),
  and stamps that are broken (:mod:`hostile_fits`);
- ``record-*``: history and metadata oddities, null, NaN, inf, wrong types
  (:mod:`hostile_records`).
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import fastavro
from fastavro.read import HEADER_SCHEMA

import hostile_fits
import hostile_payloads as payloads
import hostile_records
from hostile_payloads import ANY, MALFORMED, Hostile

__all__ = ["Hostile", "certain_rejects", "hostile_messages", "packets_of"]
MAGIC = b"Obj\x01"
TRUNCATED = frozenset({"avro_truncated"})


@dataclass(frozen=True)
class Layout:
    """Where the parts of a real single-block container file lie."""

    header_end: int  # just past the header's sync marker
    schema: tuple[int, int]  # the schema text
    sync: tuple[int, int]  # the header's sync marker
    count: tuple[int, int]  # block 1: its record count varint
    size: tuple[int, int]  # block 1: its byte size varint
    block: tuple[int, int]  # block 1: its data
    block_sync: tuple[int, int]  # the sync marker after block 1
    stamps: list[tuple[int, int]]  # each stamp's deflate data (inside block 1)


def _varint_end(data: bytes, pos: int) -> int:
    while data[pos] & 0x80:
        pos += 1
    return pos + 1


def _zigzag_at(data: bytes, pos: int) -> int:
    value = shift = 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return (value >> 1) ^ -(value & 1)
        shift += 7


def _deflate_span(gzip: bytes) -> tuple[int, int]:
    """Where a gzip member's deflate data lies: after the header's optional fields, and
    short of its last byte (whose spare bits nothing reads: a flip there changes nothing)."""
    flags, pos = gzip[3], 10
    if flags & 4:  # FEXTRA
        pos += 2 + int.from_bytes(gzip[10:12], "little")
    for flag in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flags & flag:
            pos = gzip.index(b"\0", pos) + 1
    if flags & 2:  # FHCRC
        pos += 2
    return pos, len(gzip) - 9


def layout_of(data: bytes) -> Layout:
    """The layout of a real container file (null codec, one block)."""
    stream = io.BytesIO(data)
    header = fastavro.schemaless_reader(stream, fastavro.parse_schema(HEADER_SCHEMA), None)
    header_end = stream.tell()
    text = header["meta"]["avro.schema"]
    schema_at = data.index(text)
    count_end = _varint_end(data, header_end)
    size_end = _varint_end(data, count_end)
    block_end = size_end + _zigzag_at(data, count_end)
    record = next(fastavro.reader(io.BytesIO(data)))
    stamps = []
    for key in payloads.STAMPS:
        stamp = (record.get(key) or {}).get("stampData") or b""
        if stamp[:2] == b"\x1f\x8b" and len(stamp) > 30:
            at = data.index(stamp, size_end)
            start, end = _deflate_span(stamp)
            stamps.append((at + start, at + end))
    return Layout(
        header_end,
        (schema_at, schema_at + len(text)),
        (header_end - 16, header_end),
        (header_end, count_end),
        (count_end, size_end),
        (size_end, block_end),
        (block_end, block_end + 16),
        stamps,
    )


def _flip(data: bytes, pos: int, rng: random.Random) -> bytes:
    return data[:pos] + bytes([data[pos] ^ rng.randrange(1, 256)]) + data[pos + 1 :]


def _cut_reasons(pos: int, layout: Layout) -> frozenset[str]:
    if pos < len(MAGIC):
        return frozenset({"avro_truncated", "avro_malformed"})
    if pos == layout.header_end:
        return frozenset({"avro_empty"})
    return TRUNCATED


def container_cases(data: bytes, tag: str, rng: random.Random, per_packet: int) -> list[Hostile]:
    """Truncations and byte flips of one real container file."""
    layout = layout_of(data)
    cases = []
    boundaries = sorted({layout.header_end, *layout.count, *layout.size, *layout.block})
    for pos in [*boundaries[:-1], layout.block_sync[0], *rng.sample(range(len(data)), 3)]:
        if pos < len(data):
            cases.append(Hostile(f"cut@{pos}:{tag}", data[:pos], True, _cut_reasons(pos, layout)))
    regions: list[tuple[str, tuple[int, int], bool, frozenset[str]]] = [
        ("magic", (0, 4), True, frozenset({"avro_malformed", "schema_unknown"})),
        ("meta", (4, layout.schema[0]), False, ANY),
        ("schema", layout.schema, False, ANY),
        ("sync", layout.sync, True, MALFORMED),
        ("block-sync", layout.block_sync, True, MALFORMED),
        ("count", layout.count, True, ANY),
        ("size", layout.size, True, ANY),
        ("datum", layout.block, False, ANY),
    ]
    for index, (start, end) in enumerate(layout.stamps):
        regions.append((f"stamp{index}", (start, end), True, payloads.CORRUPT_STAMP))
    for _ in range(per_packet):
        region, (start, end), certain, reasons = rng.choice(regions)
        pos = rng.randrange(start, end)
        cases.append(Hostile(f"flip-{region}@{pos}:{tag}", _flip(data, pos, rng), certain, reasons))
    # Not UTF-8 at all (0xFF never occurs in UTF-8): the first poison pill.
    pos = rng.randrange(*layout.schema)
    not_utf8 = data[:pos] + b"\xff" + data[pos + 1 :]
    cases.append(Hostile(f"flip-schema-utf8@{pos}:{tag}", not_utf8, True, MALFORMED))
    return cases


def header_cases(data: bytes) -> list[Hostile]:
    """A real record under corrupted container headers (codec, schema, no block)."""
    reader = fastavro.reader(io.BytesIO(data))
    record = next(reader)
    text = reader.metadata["avro.schema"].encode()
    body = payloads.datum(json.loads(text), record)

    def container(meta: dict[str, bytes], blocks: bytes | None = body) -> bytes:
        return payloads.container(meta, [] if blocks is None else [(1, blocks)])

    deep = b'{"type": ' * 100_000 + b'"int"' + b"}" * 100_000
    return [
        Hostile("empty", container({"avro.schema": text}, None), True, frozenset({"avro_empty"})),
        Hostile(
            "codec-not-utf8",
            container({"avro.schema": text, "avro.codec": b"\xff\xfe"}),
            True,
            MALFORMED,
        ),
        Hostile(
            "codec-wrong",
            container({"avro.schema": text, "avro.codec": b"deflate"}),
            True,
            MALFORMED,
        ),
        Hostile(
            "codec-unknown",
            container({"avro.schema": text, "avro.codec": b"zstd9"}),
            True,
            MALFORMED,
        ),
        Hostile("schema-missing", container({"avro.codec": b"null"}), True, MALFORMED),
        # a datum that fits the schema: decoding "succeeds", the record is no record
        Hostile("schema-null", container({"avro.schema": b'"null"'}, b""), True, MALFORMED),
        Hostile("schema-int", container({"avro.schema": b'"int"'}, b"\x02"), True, MALFORMED),
        Hostile("schema-not-json", container({"avro.schema": text[:-7]}), True, MALFORMED),
        Hostile(
            "schema-nested", container({"avro.schema": deep}), True, frozenset({"avro_too_deep"})
        ),
        Hostile(
            "schema-huge",
            container({"avro.schema": text[:-1] + b" " * (1 << 20) + b"}"}),
            True,
            frozenset({"schema_too_large"}),
        ),
        Hostile(
            "meta-count-huge",
            MAGIC + b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f" + b"\x00" * 64,
            True,
            ANY,
        ),
    ]


def packets_of(files: Iterable[Path]) -> list[tuple[str, bytes]]:
    """(name, bytes) of the real single-block packets among ``files`` whose stamps are
    FITS (JPEG prototypes, stripped and damaged packets are left out)."""
    packets = []
    for path in files:
        data = path.read_bytes()
        try:
            record = next(fastavro.reader(io.BytesIO(data)))
            layout_of(data)
        except Exception:
            continue
        if all(
            ((record.get(k) or {}).get("stampData") or b"")[:2] == b"\x1f\x8b"
            for k in payloads.STAMPS
        ):
            packets.append((path.name, data))
    return packets


def hostile_messages(
    packets: Sequence[tuple[str, bytes]], per_packet: int = 12, seed: int = 8
) -> Iterator[Hostile]:
    """Every kind of case: per real packet, truncations and ``per_packet`` byte flips;
    from the first packets, header corruption, bombs, FITS and record oddities."""
    for index, (name, data) in enumerate(packets):
        rng = random.Random(f"{seed}:{index}:{name}")
        yield from container_cases(data, name, rng, per_packet)
    first = packets[0][1]
    yield from header_cases(first)
    yield from payloads.bombs(first)
    for name, data in packets[:2]:
        yield from hostile_fits.fits_cases(data, name)
        yield from hostile_records.record_cases(data, name)


def certain_rejects(
    packets: Sequence[tuple[str, bytes]],
    seed: int = 8,
    include_bombs: bool = True,
    max_bytes: int | None = None,
) -> list[Hostile]:
    """Only the cases that must become a dead letter (stream tests: one hostile message
    every N, each exactly one dead letter). ``max_bytes`` leaves out larger messages (a
    broker refuses what exceeds its ``max.message.bytes``, 1 MB by default)."""
    cases = [c for c in hostile_messages(packets, per_packet=4, seed=seed) if c.must_reject]
    return [
        c
        for c in cases
        if (include_bombs or not c.name.startswith("bomb-"))
        and (max_bytes is None or len(c.data) <= max_bytes)
    ]
