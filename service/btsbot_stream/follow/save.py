"""``watch --save DIR``: what passed, on disk, before its offset is committed.

Layout, one folder per object::

    DIR/scores.csv                          one row per saved item and model
    DIR/<objectId>/<candid>.avro            the scored alert, exactly as published
    DIR/<objectId>/<candid>_science.fits.gz the stamp as ZTF published it (gzipped FITS)
    DIR/<objectId>/<candid>_science.png     the same, zscale/asinh, FITS origin bottom left
    DIR/<objectId>/<policy>-<candid>.json   a candidate event (.avro if it came as Avro)

Files are written to a temporary name and renamed, so a crash never leaves a truncated
file under a final name; a CSV row cut short by a crash is removed at the next start.
The candids already in ``scores.csv`` are returned by :meth:`Saver.saved_keys` so a
restarted ``watch`` does not save them twice.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.follow.items import FollowItem, jd_to_datetime
from btsbot_stream.render.cutouts import CUTOUT_KINDS, STAMP_FIELDS, cutout_png

CSV_NAME = "scores.csv"
COLUMNS = (
    "kind", "objectId", "candid", "policy", "model", "score", "jd", "time_utc", "band",
    "magpsf", "sigmapsf", "ra", "dec", "drb", "topic", "partition", "offset", "file",
)  # fmt: skip
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


def safe_name(text: str) -> str:
    """A file-name component from alert text (objectIds come from the stream)."""
    name = _UNSAFE.sub("_", text)[:100].lstrip(".")
    return name or "_"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _repair_csv(path: Path) -> None:
    """Drop a last row that a crash cut short (the file must end with a newline)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return
        fh.truncate(data.rfind(b"\n") + 1)


class Saver:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.csv_path = root / CSV_NAME
        _repair_csv(self.csv_path)
        new = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        self._csv = self.csv_path.open("a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._csv)
        if new:
            self._writer.writerow(COLUMNS)
            self._csv.flush()

    def close(self) -> None:
        self._csv.close()

    def saved_keys(self) -> Iterator[tuple[Any, ...]]:
        """Keys (see :attr:`FollowItem.key`) of every item already in the CSV, oldest first."""
        with self.csv_path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                candid = int(row["candid"]) if row["candid"] else None
                if row["kind"] == "candidate":
                    yield ("candidate", row["objectId"], row["policy"], candid)
                elif candid is not None:
                    yield ("alert", candid)
                else:
                    yield ("alert", row["objectId"], float(row["jd"]) if row["jd"] else None)

    def save(self, item: FollowItem, value: bytes, record: Mapping[str, Any] | None) -> Path:
        """Write the item's files, then its CSV rows (flushed); returns the main file."""
        folder = self.root / safe_name(item.object_id or "unknown")
        folder.mkdir(exist_ok=True)
        stem = safe_name(str(item.candid) if item.candid is not None else f"offset{item.offset}")
        if item.kind == "candidate":
            suffix = ".json" if value.lstrip()[:1] == b"{" else ".avro"
            main = folder / f"{safe_name(item.policy or 'policy')}-{stem}{suffix}"
            _write_atomic(main, value)
        else:
            main = folder / f"{stem}.avro"
            _write_atomic(main, value)
            if record is not None:
                self._save_cutouts(folder, stem, record)
        self._append_rows(item, main)
        return main

    def _save_cutouts(self, folder: Path, stem: str, record: Mapping[str, Any]) -> None:
        for kind in CUTOUT_KINDS:
            stamp = (record.get(STAMP_FIELDS[kind]) or {}).get("stampData")
            if not stamp:
                continue
            _write_atomic(folder / f"{stem}_{kind}.fits.gz", stamp)
            try:
                _write_atomic(folder / f"{stem}_{kind}.png", cutout_png(stamp, kind))
            except InvalidAlert:
                continue  # e.g. a JPEG prototype stamp: the raw stamp is saved, no PNG

    def _append_rows(self, item: FollowItem, main: Path) -> None:
        when = jd_to_datetime(item.jd).isoformat() if item.jd is not None else ""
        common = [
            item.jd, when, item.band, item.magpsf, item.sigmapsf, item.ra, item.dec, item.drb,
            item.topic, item.partition, item.offset, str(main.relative_to(self.root)),
        ]  # fmt: skip
        head = [item.kind, item.object_id, item.candid, item.policy or ""]
        scores: list[tuple[str, float | None]] = [*sorted(item.scores.items())] or [("", None)]
        for model, score in scores:
            self._writer.writerow(["" if v is None else v for v in (*head, model, score, *common)])
        self._csv.flush()  # in the OS before the offset is stored: survives a kill
