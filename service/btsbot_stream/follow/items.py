"""What the follow-up tools know of one message: a scored alert or a candidate event.

Built in two steps so filters can decide early: :func:`header_view` from the Kafka key
and headers alone (objectId, candid, scores: no decoding), then :func:`with_alert` or
:func:`with_event` once the value is decoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from btsbot_stream.follow.events import CandidateEvent
from btsbot_stream.render.lightcurve import BANDS
from btsbot_stream.stream.enrich import CANDID_HEADER, HEADER_PREFIX

JD_UNIX_EPOCH = 2440587.5
ItemKind = Literal["alert", "candidate"]
# As confluent-kafka hands them over: a list of (name, value) pairs (or a dict).
Headers = Sequence[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None]


def jd_to_datetime(jd: float) -> datetime:
    """UTC datetime of a Julian date (ZTF's ``jd`` is JD in UTC)."""
    return datetime.fromtimestamp((jd - JD_UNIX_EPOCH) * 86400.0, tz=UTC)


def datetime_to_jd(when: datetime) -> float:
    return when.timestamp() / 86400.0 + JD_UNIX_EPOCH


@dataclass(slots=True)
class FollowItem:
    kind: ItemKind
    topic: str
    partition: int
    offset: int
    timestamp_ms: int  # the message's Kafka timestamp (when it was published)
    object_id: str | None = None
    candid: int | None = None
    scores: dict[str, float] = field(default_factory=dict)
    jd: float | None = None
    fid: int | None = None
    magpsf: float | None = None
    sigmapsf: float | None = None
    ra: float | None = None
    dec: float | None = None
    drb: float | None = None
    policy: str | None = None
    decoded: bool = False

    @property
    def band(self) -> str | None:
        return None if self.fid is None else BANDS.get(self.fid, str(self.fid))

    @property
    def key(self) -> tuple[Any, ...]:
        """What makes an item a repeat: the candid of an alert; (object, policy, candid)
        of an event."""
        if self.kind == "candidate":
            return ("candidate", self.object_id, self.policy, self.candid)
        if self.candid is not None:
            return ("alert", self.candid)
        return ("alert", self.object_id, self.jd)

    def as_json(self) -> dict[str, Any]:
        """One JSON line of ``watch`` output."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "objectId": self.object_id,
            "candid": self.candid,
            "jd": self.jd,
            "time": jd_to_datetime(self.jd).isoformat() if self.jd is not None else None,
            "band": self.band,
            "magpsf": self.magpsf,
            "sigmapsf": self.sigmapsf,
            "ra": self.ra,
            "dec": self.dec,
            "drb": self.drb,
            "scores": self.scores,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
        }
        if self.kind == "candidate":
            out["policy"] = self.policy
        return out


def header_scores(headers: Headers | None) -> tuple[dict[str, float], int | None]:
    """Scores (``btsbot.score.<model>``) and candid (``ztf.candid``) from Kafka headers;
    a header that does not parse is ignored (the decoded alert has the truth)."""
    scores: dict[str, float] = {}
    candid = None
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    for name, raw in pairs:
        text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else (raw or "")
        try:
            if name.startswith(HEADER_PREFIX):
                scores[name[len(HEADER_PREFIX) :]] = float(text)
            elif name == CANDID_HEADER:
                candid = int(text)
        except ValueError:
            continue
    return scores, candid


def header_view(
    kind: ItemKind,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
    key: bytes | None,
    headers: Headers | None,
) -> FollowItem:
    scores, candid = header_scores(headers) if kind == "alert" else ({}, None)
    return FollowItem(
        kind,
        topic,
        partition,
        offset,
        timestamp_ms,
        object_id=key.decode("utf-8", "replace") if key else None,
        candid=candid,
        scores=scores,
    )


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def with_alert(item: FollowItem, record: Mapping[str, Any]) -> FollowItem:
    """The item completed from its decoded scored alert (the record wins over headers)."""
    candidate = record.get("candidate") or {}
    scores = dict(item.scores)
    for entry in (record.get("btsbot") or {}).get("scores") or ():
        scores[entry["model"]] = float(entry["score"])
    candid = record.get("candid", candidate.get("candid"))
    fid = candidate.get("fid")
    return replace(
        item,
        object_id=record.get("objectId") or item.object_id,
        candid=int(candid) if candid is not None else item.candid,
        scores=scores,
        jd=_num(candidate.get("jd")),
        fid=int(fid) if fid is not None else None,
        magpsf=_num(candidate.get("magpsf")),
        sigmapsf=_num(candidate.get("sigmapsf")),
        ra=_num(candidate.get("ra")),
        dec=_num(candidate.get("dec")),
        drb=_num(candidate.get("drb", candidate.get("rb"))),
        decoded=True,
    )


def with_event(item: FollowItem, event: CandidateEvent) -> FollowItem:
    return replace(
        item,
        object_id=event.object_id,
        candid=event.candid,
        scores=event.latest_scores,
        jd=event.jd,
        magpsf=event.magpsf,
        fid=event.fid,
        ra=event.ra,
        dec=event.dec,
        policy=event.policy,
        decoded=True,
    )
