"""A few hostile messages made from a real alert, each distinct, each of which must end as
exactly one dead letter. A stand-in until the shared generator (``tests/hostile.py``,
issue #8's alert-level half) lands: point ``hostile_stream`` at it then."""

from __future__ import annotations

import io
import random
from pathlib import Path

import fastavro


def hostile_messages(alert: Path, count: int, seed: int = 8) -> list[bytes]:
    """``count`` distinct hostile messages built from the packet at ``alert``."""
    good = alert.read_bytes()
    with alert.open("rb") as fh:
        reader = fastavro.reader(fh)
        schema = reader.writer_schema
        (record,) = reader
    rng = random.Random(seed)
    out: list[bytes] = [b""]  # an empty message (once: it cannot be told apart)
    for i in range(count - 1):
        kind = i % 5
        if kind == 0:  # cut short at a random point
            out.append(good[: rng.randrange(8, len(good) - 20)])
        elif kind == 1:  # not Avro at all
            out.append(b"\x89PNG\r\n" + rng.randbytes(200))
        elif kind == 2:  # a container header with no record in it
            buf = io.BytesIO()
            fastavro.writer(buf, schema, [])
            out.append(buf.getvalue())
        elif kind == 3:  # Confluent wire format, schema id nobody knows
            out.append(b"\x00" + (900_000 + i).to_bytes(4, "big") + rng.randbytes(64))
        else:  # two records, both with their stamps stripped: one dead letter, 2 records
            stripped = dict(record, cutoutScience=None, candid=10**18 + i)
            buf = io.BytesIO()
            fastavro.writer(buf, schema, [stripped, dict(stripped, candid=10**18 + i + 1)])
            out.append(buf.getvalue())
    assert len(set(out)) == count
    return out


def hostile_stream(good: list[Path], every: int, folder: Path) -> tuple[list[Path], list[bytes]]:
    """The good packets with a hostile message after every ``every - 1``, as files."""
    hostile = hostile_messages(good[0], len(good) // (every - 1) + 1)
    files: list[Path] = []
    bad = iter(hostile)
    used = []
    for i, path in enumerate(good):
        if i % (every - 1) == 0:
            message = next(bad)
            used.append(message)
            files.append(folder / f"hostile-{len(used):04d}.avro")
            files[-1].write_bytes(message)
        files.append(path)
    return files, used
