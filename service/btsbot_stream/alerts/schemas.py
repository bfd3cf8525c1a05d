"""Writer schemas: checked against the limits, parsed once, projected to what scoring reads.

Each distinct schema text becomes one :class:`AlertSchema`: the writer schema parsed with
fastavro's marker (so ``schemaless_reader`` does not parse it again on every message),
a *projected* reader schema that keeps only what a stage needs (for scoring,
:data:`SCORING`: ``candidate`` features, ``jd`` and ``magpsf`` of the history, the stamp
bytes) so fastavro skips materialising the rest, and the
:class:`~btsbot_stream.alerts.bounds.Layout` that bounds its data.
Whatever is wrong with a schema text is an :class:`InvalidAlert` for the message that
carried it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import fastavro

from btsbot_stream.alerts.bounds import Layout
from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.alerts.features import CANDIDATE_FIELDS, HISTORY_FIELDS
from btsbot_stream.alerts.stamps import STAMP_ORDER
from btsbot_stream.config import LimitSettings


@dataclass(frozen=True)
class Projection:
    """The fields a reader keeps: top-level field names, and field names per record type
    (by short name); record types not named keep every field.

    ``leading``: read the record only up to the last top-level field named (in the
    writer's order) and leave the rest unread. A projection alone still makes fastavro
    walk every later field to skip it (the history, the stamps); a reader of a few leading
    fields of one alert per message stops instead. The unread tail is not checked, and a
    block yields its first record only.
    """

    top_level: frozenset[str]
    records: dict[str, frozenset[str]] = field(default_factory=dict)
    leading: bool = False


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
    layout: Layout
    partial: bool = False  # the writer is cut after the projection's leading fields
    extras: dict[str, Any] = field(default_factory=dict)  # caches of later stages

    @classmethod
    def from_text(
        cls,
        text: bytes | str,
        limits: LimitSettings | None = None,
        projection: Projection = SCORING,
    ) -> AlertSchema:
        """Check and parse one schema text; raises :class:`InvalidAlert` with the reason."""
        limits = limits or LimitSettings()
        raw = text.encode() if isinstance(text, str) else text
        if len(raw) > limits.max_schema_bytes:
            raise InvalidAlert(
                "schema_too_large",
                f"writer schema of {len(raw)} bytes exceeds limits.max_schema_bytes = "
                f"{limits.max_schema_bytes}",
            )
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidAlert("avro_malformed", f"schema text is not UTF-8: {exc}") from None
        schema = _load_json(decoded, limits.max_nesting_depth)
        if not (isinstance(schema, dict) and schema.get("type") in ("record", "error")):
            shown = json.dumps(schema)[:60]
            raise InvalidAlert("avro_malformed", f"top-level schema {shown} is not a record")
        partial = projection.leading and _cut(schema, projection.top_level)
        if partial:
            schema = partial
        try:
            # Parsed with fastavro's marker, so schemaless_reader does not parse them
            # again on every message (that halves the decode time).
            writer = fastavro.parse_schema(schema)
            reader = fastavro.parse_schema(_project(schema, projection))
        except Exception as exc:  # fastavro raises many types for a bad schema
            raise InvalidAlert(
                "avro_malformed", f"embedded schema does not parse: {type(exc).__name__}: {exc}"
            ) from exc
        layout = Layout.of(writer, limits.max_nesting_depth)
        return cls(decoded, writer, reader, layout, partial=bool(partial))


def _load_json(text: str, max_depth: int) -> Any:
    """JSON, refused when nested deeper than ``max_depth`` (before any parser recurses)."""
    try:
        schema = json.loads(text)
    except RecursionError:
        raise InvalidAlert("avro_too_deep", "schema JSON nests too deep to parse") from None
    except ValueError as exc:
        raise InvalidAlert("avro_malformed", f"schema text is not JSON: {exc}") from None
    pending = [(schema, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > max_depth:
            raise InvalidAlert(
                "avro_too_deep",
                f"schema JSON nests deeper than limits.max_nesting_depth = {max_depth}",
            )
        if isinstance(node, dict):
            pending.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            pending.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return schema


def _cut(schema: dict[str, Any], names: frozenset[str]) -> dict[str, Any] | None:
    """The top-level record up to its last field in ``names`` (the Avro binary of a
    record is its fields in order, so these are read and the rest left), or None when
    nothing is left out."""
    fields = schema.get("fields")
    if not isinstance(fields, list):
        return None
    last = max(
        (i for i, f in enumerate(fields) if isinstance(f, dict) and f.get("name") in names),
        default=len(fields) - 1,
    )
    return {**schema, "fields": fields[: last + 1]} if last + 1 < len(fields) else None


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
