"""Scored messages -> the fields the decisions need, decoding nothing else.

The scored topic's values are Avro container files (the alert plus a ``btsbot`` field,
see ``stream.enrich``). A projected reader schema keeps ``objectId``, the candidate's
position, time, filter and magnitude, and the scores, so fastavro skips the stamps and
the history. A message that cannot be read becomes an :class:`Unreadable` value with a
reason: it is counted and logged, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from quixstreams.models.serializers import Deserializer

from btsbot_stream.alerts.avro import AlertDecoder, Projection
from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.decisions.alerts import ScoredAlert
from btsbot_stream.stream.enrich import FIELD

CANDIDATE_FIELDS = ("candid", "jd", "fid", "magpsf", "ra", "dec")
DECIDE_PROJECTION = Projection(
    frozenset({"objectId", "candid", "candidate", FIELD}),
    {"candidate": frozenset(CANDIDATE_FIELDS)},
)
UnreadableReason = Literal["avro_truncated", "avro_malformed", "missing_field", "not_scored"]
ModelInfo = dict[str, str]  # {"version", "sha256"}


@dataclass(frozen=True, slots=True)
class ScoredMessage:
    """One scored alert of an object, with the provenance of its scores."""

    object_id: str
    alert: ScoredAlert
    models: dict[str, ModelInfo]


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A scored-topic message the stage cannot use, and why."""

    reason: UnreadableReason
    detail: str


def scored_message(record: dict[str, Any]) -> ScoredMessage | Unreadable:
    """The decision fields of one decoded scored record."""
    candidate = record.get("candidate") or {}
    missing = [k for k in CANDIDATE_FIELDS if candidate.get(k) is None]
    if record.get("objectId") is None or missing:
        return Unreadable("missing_field", f"no objectId or candidate fields {missing}")
    scored = record.get(FIELD)
    if not scored or not scored.get("scores"):
        return Unreadable("not_scored", f"the record has no {FIELD!r} scores")
    scores = {s["model"]: float(s["score"]) for s in scored["scores"]}
    models = {
        s["model"]: {"version": s["version"], "sha256": s["sha256"]} for s in scored["scores"]
    }
    alert = ScoredAlert.from_candidate(candidate, scores)
    return ScoredMessage(str(record["objectId"]), alert, models)


class ScoredDeserializer(Deserializer):
    """Quix value deserializer: one item per record of the container (normally one)."""

    def __init__(self) -> None:
        super().__init__()
        self._decoder = AlertDecoder(projection=DECIDE_PROJECTION)

    @property
    def split_values(self) -> bool:
        return True

    def __call__(self, value: bytes, ctx: Any = None) -> list[ScoredMessage | Unreadable]:
        try:
            alerts = self._decoder.decode(value or b"")
        except InvalidAlert as exc:
            reason: UnreadableReason = (
                "avro_truncated" if exc.reason == "avro_truncated" else "avro_malformed"
            )
            return [Unreadable(reason, exc.detail)]
        return [scored_message(a.record) for a in alerts]
