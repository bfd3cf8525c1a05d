"""An object's light curve: the alert's own history plus every scored alert seen.

Points come from three places: the alert's ``prv_candidates`` (up to 30 days of earlier
detections, and non-detections that only carry a limiting magnitude), the alert's own
``candidate``, and the scored alerts of the same object kept by the caller (which may
reach further back, or later, than one packet's history). A detection met twice (same
candid) is kept once. Scores are a separate series, one per scored alert and model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

BANDS = {1: "g", 2: "r", 3: "i"}
PointKind = Literal["detection", "upper_limit"]


@dataclass(frozen=True, slots=True)
class LightCurvePoint:
    """One epoch. Magnitudes are AB, PSF-fit on the difference image (ZTF ``magpsf``);
    an upper limit has only ``diffmaglim`` (5-sigma)."""

    jd: float
    fid: int
    kind: PointKind
    magpsf: float | None = None
    sigmapsf: float | None = None
    diffmaglim: float | None = None
    candid: int | None = None
    positive: bool | None = None  # isdiffpos: science brighter than template
    source: Literal["history", "alert", "scored"] = "history"

    @property
    def band(self) -> str:
        return BANDS.get(self.fid, str(self.fid))


@dataclass(frozen=True, slots=True)
class ScoredDetection:
    """What the caller knows of one scored alert of the object (no cutouts needed)."""

    candid: int
    jd: float
    fid: int
    magpsf: float | None
    sigmapsf: float | None
    scores: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class ScorePoint:
    jd: float
    candid: int
    model: str
    score: float


@dataclass(frozen=True, slots=True)
class LightCurve:
    points: tuple[LightCurvePoint, ...]  # sorted by jd
    scores: tuple[ScorePoint, ...]  # sorted by jd

    @property
    def detections(self) -> tuple[LightCurvePoint, ...]:
        return tuple(p for p in self.points if p.kind == "detection")

    @property
    def upper_limits(self) -> tuple[LightCurvePoint, ...]:
        return tuple(p for p in self.points if p.kind == "upper_limit")


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _positive(value: Any) -> bool | None:
    if value is None:
        return None
    return str(value).lower() in ("t", "1", "true")


def _point(entry: Mapping[str, Any], source: Literal["history", "alert"]) -> LightCurvePoint | None:
    jd, fid = entry.get("jd"), entry.get("fid")
    if jd is None or fid is None:
        return None
    raw_candid = entry.get("candid")
    candid = int(raw_candid) if raw_candid is not None else None
    if entry.get("magpsf") is not None:
        return LightCurvePoint(
            float(jd),
            int(fid),
            "detection",
            magpsf=float(entry["magpsf"]),
            sigmapsf=_float(entry.get("sigmapsf")),
            diffmaglim=_float(entry.get("diffmaglim")),
            candid=candid,
            positive=_positive(entry.get("isdiffpos")),
            source=source,
        )
    if entry.get("diffmaglim") is not None:
        limit = float(entry["diffmaglim"])
        return LightCurvePoint(
            float(jd), int(fid), "upper_limit", diffmaglim=limit, candid=candid, source=source
        )
    return None  # neither a magnitude nor a limit: nothing to plot


def light_curve(
    record: Mapping[str, Any] | None, scored: Iterable[ScoredDetection] = ()
) -> LightCurve:
    """The light curve of one object from an alert record and its scored alerts.

    Parameters
    ----------
    record : mapping or None
        A decoded alert (``candidate``, ``prv_candidates``), or None when only the
        scored alerts are known.
    scored : iterable of ScoredDetection
        Every scored alert of the object (each adds a detection and its scores).
    """
    points: list[LightCurvePoint] = []
    seen: set[tuple[Any, ...]] = set()

    def add(point: LightCurvePoint | None) -> None:
        if point is None:
            return
        key = ("c", point.candid) if point.candid is not None else (point.kind, point.jd, point.fid)
        if key not in seen:
            seen.add(key)
            points.append(point)

    if record is not None:  # the alert's own measurement first: it wins over a copy
        add(_point(record.get("candidate") or {}, "alert"))
        for entry in record.get("prv_candidates") or ():
            add(_point(entry, "history"))
    score_points: list[ScorePoint] = []
    for alert in scored:
        if alert.magpsf is not None:
            add(
                LightCurvePoint(
                    jd=alert.jd,
                    fid=alert.fid,
                    kind="detection",
                    magpsf=alert.magpsf,
                    sigmapsf=alert.sigmapsf,
                    candid=alert.candid,
                    source="scored",
                )
            )
        score_points += [
            ScorePoint(alert.jd, alert.candid, model, float(score))
            for model, score in alert.scores.items()
        ]
    points.sort(key=lambda p: (p.jd, p.fid))
    unique_scores = {(s.candid, s.model): s for s in score_points}
    return LightCurve(tuple(points), tuple(sorted(unique_scores.values(), key=lambda s: s.jd)))
