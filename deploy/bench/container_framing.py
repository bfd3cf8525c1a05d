"""How to read an Avro container's framing, measured (issue #8's decision).

Times, on the same packets in memory, the decoder as built (``AlertDecoder.decode``:
the header and block framing read by ``fastavro.schemaless_reader`` with the Avro
spec's framing schemas, each writer schema parsed once and cached, the records read
with the projected reader schema) against the same record loop fed by
``fastavro.block_reader`` (which parses the embedded writer schema again for every
message), and ``block_reader``'s header alone. Each figure is the least CPU time
(``time.process_time``: steadier than wall time on a shared machine) of ``--repeat``
passes, per packet. Prints one JSON object.

Usage: python deploy/bench/container_framing.py ../shared/data/ztf/alerts [--repeat 7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import fastavro

from btsbot_stream.alerts.avro import AlertDecoder, AlertSchema
from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.alerts.sources import expand, read_items


def _cpu_us(blobs: list[bytes], fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times) / len(blobs) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    decoder = AlertDecoder()
    blobs = []
    for item in read_items(expand(args.paths)):
        try:
            decoder.decode(item.data)
            blobs.append(item.data)
        except InvalidAlert:
            continue  # the damaged ones: both ways refuse them

    def ours() -> None:
        for data in blobs:
            decoder.decode(data)

    schemas: dict[str, AlertSchema] = {}  # cached as the decoder caches them

    def via_block_reader() -> None:
        for data in blobs:
            blocks = fastavro.block_reader(io.BytesIO(data))
            text = blocks.metadata["avro.schema"]
            schema = schemas.get(text) or schemas.setdefault(text, AlertSchema.from_text(text))
            for block in blocks:
                decoder._read_records(block.bytes_.getvalue(), block.num_records, schema)

    def block_reader_header() -> None:
        for data in blobs:
            fastavro.block_reader(io.BytesIO(data))

    result = {
        "packets": len(blobs),
        "repeat": args.repeat,
        "cpu_us_per_packet": {
            "AlertDecoder.decode": _cpu_us(blobs, ours, args.repeat),
            "fastavro.block_reader + the same record loop": _cpu_us(
                blobs, via_block_reader, args.repeat
            ),
            "fastavro.block_reader header only": _cpu_us(blobs, block_reader_header, args.repeat),
        },
        "fastavro": fastavro.__version__,
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
