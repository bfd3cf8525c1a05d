"""The alerts benchmarks are made of: the scoreable packets of a folder of real alerts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastavro


def good_alerts(root: Path) -> list[tuple[Any, dict[str, Any]]]:
    """(writer schema, record) of every single-record packet under ``root`` with FITS
    stamps, in file-name order: ``odd/`` (the demo sample's damaged packets) and JPEG
    prototypes left out, as they are dead letters, not alerts to time."""
    out = []
    for path in sorted(root.rglob("*.avro")):
        if "odd" in path.parts:
            continue
        with path.open("rb") as fh:
            reader = fastavro.reader(fh)
            (record,) = reader
        if record["cutoutScience"]["stampData"][:2] != b"\xff\xd8":
            out.append((reader.writer_schema, record))
    return out
