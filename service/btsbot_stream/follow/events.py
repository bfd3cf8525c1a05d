"""Candidate events of the decision stage (``decide``), read tolerantly.

The decision stage publishes one event per object and policy when the policy first
passes (key objectId; ``event_version`` 1 is JSON, see docs/follow-up-guide.md). The
fields read here are ``objectId``, ``policy``, ``candid``, ``jd``, ``magpsf``, ``fid``,
the position, the brightest magnitude so far, the score ``history``, the ``models`` and
the service version. Each is looked up under the names drafts of the format used (and
an Avro container is read as well as JSON), everything else is kept in ``extra``: only
``objectId`` and ``policy`` are required, so a later version still reads.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import fastavro

from btsbot_stream.alerts.exceptions import InvalidAlert

_ALIASES: dict[str, tuple[str, ...]] = {
    "objectId": ("objectId", "object_id", "objectid"),
    "policy": ("policy", "policy_name", "decision"),
    "candid": ("candid", "candidate_id"),
    "jd": ("jd", "decided_jd", "at_jd"),
    "magpsf": ("magpsf", "mag", "magnitude"),
    "fid": ("fid", "filter_id"),
    "ra": ("ra",),
    "dec": ("dec",),
    "peak_mag": (
        "peakmag_so_far", "brightest_mag", "brightest_magpsf", "min_magpsf", "peak_mag",
        "peakmag", "brightest",
    ),
    "history": ("score_history", "scores_history", "history", "scores"),
    "models": ("models", "model_versions"),
    "service_version": ("service_version", "version"),
}  # fmt: skip
_KNOWN = {name for names in _ALIASES.values() for name in names} | {"position"}


@dataclass(frozen=True, slots=True)
class ScoreEntry:
    """One scored alert in an event's history (model may be unknown: None)."""

    jd: float | None
    score: float
    model: str | None = None
    candid: int | None = None
    magpsf: float | None = None


@dataclass(frozen=True, slots=True)
class CandidateEvent:
    object_id: str
    policy: str
    candid: int | None = None
    jd: float | None = None
    magpsf: float | None = None
    fid: int | None = None
    ra: float | None = None
    dec: float | None = None
    peak_mag: float | None = None
    history: tuple[ScoreEntry, ...] = ()
    models: Mapping[str, str] = field(default_factory=dict)  # name -> version
    service_version: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def latest_scores(self) -> dict[str, float]:
        """The last score of each model in the history (by jd)."""
        out: dict[str, float] = {}
        for entry in sorted(self.history, key=lambda e: e.jd or 0.0):
            out[entry.model or next(iter(self.models), "score")] = entry.score
        return out


def _get(data: Mapping[str, Any], name: str) -> Any:
    for alias in _ALIASES[name]:
        if data.get(alias) is not None:
            return data[alias]
    return None


def _num(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _position(data: Mapping[str, Any]) -> tuple[float | None, float | None]:
    pos = data.get("position")
    if isinstance(pos, Mapping):
        return _num(pos.get("ra")), _num(pos.get("dec"))
    if isinstance(pos, Sequence) and not isinstance(pos, str) and len(pos) == 2:
        return _num(pos[0]), _num(pos[1])
    return _num(data.get("ra")), _num(data.get("dec"))


def _history(raw: Any) -> tuple[ScoreEntry, ...]:
    entries: list[ScoreEntry] = []
    if isinstance(raw, Mapping):  # {model: [entries]} or {model: score}
        for model, items in raw.items():
            score = _num(items) if isinstance(items, int | float | str) else None
            if score is not None:
                entries.append(ScoreEntry(None, score, str(model)))
            else:
                entries += [e if e.model else _with_model(e, str(model)) for e in _history(items)]
        return tuple(entries)
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        for item in raw:
            if not isinstance(item, Mapping):
                continue
            score = _num(item.get("score"))
            scores = item.get("scores")
            jd, candid, mag = (
                _num(item.get("jd")),
                _int(item.get("candid")),
                _num(item.get("magpsf")),
            )
            if score is not None:
                model = item.get("model")
                entries.append(ScoreEntry(jd, score, str(model) if model else None, candid, mag))
            elif isinstance(scores, Mapping):
                entries += [
                    ScoreEntry(jd, float(v), str(m), candid, mag)
                    for m, v in scores.items()
                    if _num(v) is not None
                ]
    return tuple(entries)


def _with_model(entry: ScoreEntry, model: str) -> ScoreEntry:
    return ScoreEntry(entry.jd, entry.score, model, entry.candid, entry.magpsf)


def _models(raw: Any) -> dict[str, str]:
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    out: dict[str, str] = {}
    for item in raw if isinstance(raw, Sequence) and not isinstance(raw, str) else ():
        if isinstance(item, str):
            out[item] = ""
        elif isinstance(item, Mapping):
            name = item.get("model") or item.get("name")
            if name:
                out[str(name)] = str(item.get("version") or "")
    return out


def event_from_mapping(data: Mapping[str, Any]) -> CandidateEvent:
    object_id, policy = _get(data, "objectId"), _get(data, "policy")
    if not isinstance(object_id, str) or not isinstance(policy, str):
        raise InvalidAlert("missing_field", "candidate event without objectId and policy")
    ra, dec = _position(data)
    version = _get(data, "service_version")
    return CandidateEvent(
        object_id=object_id,
        policy=policy,
        candid=_int(_get(data, "candid")),
        jd=_num(_get(data, "jd")),
        magpsf=_num(_get(data, "magpsf")),
        fid=_int(_get(data, "fid")),
        ra=ra,
        dec=dec,
        peak_mag=_num(_get(data, "peak_mag")),
        history=_history(_get(data, "history")),
        models=_models(_get(data, "models")),
        service_version=str(version) if version is not None else None,
        extra={k: v for k, v in data.items() if k not in _KNOWN},
    )


def decode_event(value: bytes) -> CandidateEvent:
    """A candidate event from its message value (JSON object or Avro container).

    Raises :class:`InvalidAlert` when the value is neither, or lacks objectId/policy.
    """
    text = value.lstrip()[:1]
    if text == b"{":
        try:
            data = json.loads(value)
        except ValueError as exc:
            raise InvalidAlert("avro_malformed", f"candidate event is not JSON: {exc}") from exc
    elif value[:4] == b"Obj\x01":
        try:
            data = next(iter(fastavro.reader(io.BytesIO(value))), None)
        except Exception as exc:  # fastavro raises many types on bad input
            raise InvalidAlert("avro_malformed", f"candidate event Avro: {exc!r}") from exc
    else:
        raise InvalidAlert("avro_malformed", "candidate event is neither JSON nor Avro")
    if not isinstance(data, Mapping):
        raise InvalidAlert("avro_malformed", "candidate event is not an object/record")
    return event_from_mapping(data)
