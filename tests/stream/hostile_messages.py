"""Hostile messages for the stream tests, each distinct, each of which must end as exactly
one dead letter: the shared generator's certain rejects (``tests/hostile.py``: truncations,
byte flips, corrupted headers and codecs, bombs, FITS and record oddities) interleaved with
the cases only a stream has: a Confluent wire-format message whose schema id nobody knows,
and a two-record container whose records both fail (one dead letter for the message)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from itertools import chain, zip_longest
from pathlib import Path

import fastavro

from hostile import certain_rejects, packets_of

BROKER_MESSAGE_LIMIT = 900_000  # below the broker's default max.message.bytes (1 MB)


def _stream_cases(alert: Path) -> Iterator[bytes]:
    with alert.open("rb") as fh:
        reader = fastavro.reader(fh)
        schema = reader.writer_schema
        (record,) = reader
    i = 0
    while True:
        i += 1
        yield b"\x00" + (900_000 + i).to_bytes(4, "big") + bytes(64)  # unknown schema id
        stripped = dict(record, cutoutScience=None, candid=10**18 + 2 * i)
        buf = io.BytesIO()
        fastavro.writer(buf, schema, [stripped, dict(stripped, candid=10**18 + 2 * i + 1)])
        yield buf.getvalue()


def hostile_messages(good: list[Path], count: int, seed: int = 8) -> list[bytes]:
    """``count`` distinct hostile messages made from the packets ``good``, every kind of
    the shared generator's in turn (truncation, flip, schema, codec, bomb, fits, record...)."""
    kinds: dict[str, list[bytes]] = {}
    for case in certain_rejects(packets_of(good[:4]), seed=seed, max_bytes=BROKER_MESSAGE_LIMIT):
        kinds.setdefault(re.split(r"[-@]", case.name)[0], []).append(case.data)
    turns = zip_longest(*kinds.values())
    shared = [data for data in chain.from_iterable(turns) if data is not None]
    ours = _stream_cases(good[0])
    out: list[bytes] = []
    for i in range(count):
        out.append(next(ours) if i % 3 == 2 or not shared else shared.pop(0))
    assert len(set(out)) == count
    return out


def hostile_stream(good: list[Path], every: int, folder: Path) -> tuple[list[Path], list[bytes]]:
    """The good packets with a hostile message after every ``every - 1``, as files."""
    hostile = iter(hostile_messages(good, len(good) // (every - 1) + 1))
    files: list[Path] = []
    used = []
    for i, path in enumerate(good):
        if i % (every - 1) == 0:
            used.append(next(hostile))
            files.append(folder / f"hostile-{len(used):04d}.avro")
            files[-1].write_bytes(used[-1])
        files.append(path)
    return files, used
