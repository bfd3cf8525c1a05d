"""Read what people look at from a scored alert, each writer schema parsed once.

A scored message is one Avro container file (see ``docs/output-format.md``). Reading it
with ``fastavro.reader`` parses the embedded schema on every message, which costs more
than the decoding itself; this reader caches each distinct schema with a *projected*
reader schema that keeps only the fields a view needs, so fastavro skips the rest
(forced photometry, most candidate columns, and the stamps when they are not wanted).
"""

from __future__ import annotations

import io
import json
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import fastavro
from fastavro.read import HEADER_SCHEMA

from btsbot_stream.alerts.exceptions import InvalidAlert

_HEADER = fastavro.parse_schema(HEADER_SCHEMA)
_MAGIC = b"Obj\x01"
CANDIDATE_VIEW = frozenset(
    {
        "candid", "jd", "fid", "pid", "programid", "magpsf", "sigmapsf", "diffmaglim",
        "ra", "dec", "isdiffpos", "rb", "drb", "sgscore1", "distpsnr1", "ndethist",
        "ncovhist", "jdstarthist", "ssdistnr", "ssnamenr", "magnr", "distnr",
        "sgmag1", "srmag1",
    }
)  # fmt: skip
HISTORY_VIEW = frozenset(
    {"candid", "jd", "fid", "magpsf", "sigmapsf", "diffmaglim", "isdiffpos", "programid"}
)
STAMPS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")

# Fields kept per record (by the record's short name); a record not named keeps all.
Projection = Mapping[str | None, frozenset[str]]
ROW: Projection = {  # a list row: no history, no stamps
    None: frozenset({"objectId", "candid", "candidate", "btsbot"}),
    "candidate": CANDIDATE_VIEW,
}
PAGE: Projection = {  # an object page: history and stamps too
    None: frozenset({"objectId", "candid", "candidate", "prv_candidates", "btsbot", *STAMPS}),
    "candidate": CANDIDATE_VIEW,
    "prv_candidate": HISTORY_VIEW,
    "cutout": frozenset({"fileName", "stampData"}),
}


def _project(node: Any, projection: Projection, top: bool = True) -> Any:
    if isinstance(node, list):
        return [_project(branch, projection, False) for branch in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if kind == "array":
        return {**node, "items": _project(node["items"], projection, False)}
    if kind == "map":
        return {**node, "values": _project(node["values"], projection, False)}
    if kind != "record":
        return node
    keep = projection.get(None if top else node["name"].rsplit(".", 1)[-1])
    fields = [
        {**f, "type": _project(f["type"], projection, False)}
        for f in node["fields"]
        if keep is None or f["name"] in keep
    ]
    return {**node, "fields": fields}


class AlertReader:
    """Scored-alert message bytes -> the projected record of its first (only) alert.

    Raises :class:`InvalidAlert` (``avro_truncated`` / ``avro_malformed``) for a value
    that is not a readable Avro container: an alert-level failure for the caller to
    report and skip.
    """

    def __init__(self, projection: Projection, max_schemas: int = 32) -> None:
        self._projection = projection
        self._max = max_schemas
        self._schemas: OrderedDict[bytes, tuple[Any, Any]] = OrderedDict()

    def _schemas_for(self, text: bytes) -> tuple[Any, Any]:
        cached = self._schemas.get(text)
        if cached is None:
            try:
                schema = json.loads(text)
                cached = (
                    fastavro.parse_schema(schema),
                    fastavro.parse_schema(_project(schema, self._projection)),
                )
            except (ValueError, TypeError, KeyError) as exc:
                raise InvalidAlert("avro_malformed", f"embedded schema: {exc}") from exc
            self._schemas[text] = cached
            if len(self._schemas) > self._max:
                self._schemas.popitem(last=False)
        return cached

    def read(self, value: bytes) -> dict[str, Any]:
        if value[:4] != _MAGIC:
            raise InvalidAlert("avro_malformed", "not an Avro container file (no Obj\\x01)")
        stream = io.BytesIO(value)
        try:
            header = fastavro.schemaless_reader(stream, _HEADER)
            assert isinstance(header, dict)
            writer, reader = self._schemas_for(header["meta"]["avro.schema"])
            codec = header["meta"].get("avro.codec", b"null")
            count = fastavro.schemaless_reader(stream, "long")
            size = fastavro.schemaless_reader(stream, "long")
            assert isinstance(count, int) and isinstance(size, int)
            block = stream.read(size)
        except (EOFError, KeyError, ValueError, AssertionError) as exc:
            raise InvalidAlert("avro_truncated", f"container header or block: {exc!r}") from exc
        if count < 1 or len(block) != size:
            raise InvalidAlert("avro_truncated", f"block of {size} bytes holds {len(block)}")
        if codec == b"deflate":
            block = zlib.decompress(block, -15)
        elif codec != b"null":
            raise InvalidAlert("avro_malformed", f"unsupported Avro codec {codec!r}")
        try:
            record = fastavro.schemaless_reader(io.BytesIO(block), writer, reader)
        except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError...
            raise InvalidAlert("avro_malformed", f"datum does not decode: {exc!r}") from exc
        assert isinstance(record, dict)
        return record
