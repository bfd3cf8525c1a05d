"""The JSON API's documents (pydantic: they are also the OpenAPI schema) and how a
window row becomes one. The HTML pages render these same documents, so what a team
scripts against is exactly what it sees."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field

from btsbot_stream.follow.items import jd_to_datetime
from btsbot_stream.render.cutouts import CUTOUT_KINDS
from btsbot_stream.render.lightcurve import BANDS, LightCurve
from btsbot_stream.render.plots import MJD_OFFSET
from btsbot_stream.web.window import AlertRow, EventRow, ModelInfo


class AlertOut(BaseModel):
    objectId: str
    candid: int
    jd: float | None = Field(description="observation time, Julian date (UTC)")
    time: datetime | None = Field(description="observation time, UTC")
    band: str | None = Field(description="ZTF filter: g, r or i")
    magpsf: float | None = Field(description="PSF magnitude on the difference image (AB)")
    sigmapsf: float | None
    ra: float | None = Field(description="degrees, ICRS")
    dec: float | None = Field(description="degrees, ICRS")
    drb: float | None = Field(description="deep real-bogus score (rb where drb is absent)")
    scores: dict[str, float] = Field(description="BTSbot probability per model")
    published: datetime = Field(description="when the scored alert was published (UTC)")
    page: str = Field(description="the object page")
    difference_png: str = Field(description="this alert's difference cutout")


class AlertPage(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[AlertOut]


class CandidateOut(BaseModel):
    objectId: str
    policy: str
    candid: int | None
    jd: float | None
    time: datetime | None
    magpsf: float | None
    ra: float | None
    dec: float | None
    peak_mag: float | None = Field(description="brightest magnitude so far")
    scores: dict[str, float] = Field(description="latest score per model in the history")
    history: list[dict[str, Any]]
    models: dict[str, str]
    service_version: str | None
    published: datetime
    page: str


class CandidatePage(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[CandidateOut]


class PointOut(BaseModel):
    jd: float
    mjd: float
    band: str
    kind: Literal["detection", "upper_limit"]
    magpsf: float | None
    sigmapsf: float | None
    diffmaglim: float | None
    candid: int | None
    positive: bool | None = Field(description="isdiffpos: brighter than the template")
    source: Literal["history", "alert", "scored"]


class ScorePointOut(BaseModel):
    jd: float
    mjd: float
    candid: int
    model: str
    score: float


class LightCurveOut(BaseModel):
    objectId: str
    points: list[PointOut]
    scores: list[ScorePointOut]


class ModelScoreOut(BaseModel):
    model: str
    score: float | None
    version: str
    sha256: str


class ObjectOut(BaseModel):
    objectId: str
    ra: float | None
    dec: float | None
    selected: AlertOut = Field(description="the alert whose cutouts are shown")
    candidate: dict[str, Any] = Field(description="the selected alert's candidate fields")
    scores: list[ModelScoreOut]
    alerts: list[AlertOut] = Field(description="every scored alert of it in the window")
    candidates: list[CandidateOut]
    light_curve: LightCurveOut
    cutouts: dict[str, str]
    light_curve_png: str
    links: dict[str, str]
    error: str | None = Field(description="why the alert could not be read again, if so")


class StatusOut(BaseModel):
    alerts: int
    candidates: int
    objects: int
    window_hours: float
    window_alerts: int
    oldest_published: datetime | None
    newest_published: datetime | None
    models: dict[str, dict[str, str]]
    feed: dict[str, Any]


def _ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def object_path(base: str, object_id: str) -> str:
    return f"{base}/objects/{quote(object_id, safe='')}"


def alert_out(row: AlertRow, base: str) -> AlertOut:
    page = object_path(base, row.object_id)
    return AlertOut(
        objectId=row.object_id,
        candid=row.candid,
        jd=row.jd,
        time=jd_to_datetime(row.jd) if row.jd is not None else None,
        band=BANDS.get(row.fid, str(row.fid)) if row.fid is not None else None,
        magpsf=row.magpsf,
        sigmapsf=row.sigmapsf,
        ra=row.ra,
        dec=row.dec,
        drb=row.drb,
        scores=row.scores,
        published=_ms(row.published_ms),
        page=page,
        difference_png=f"{page}/cutouts/{row.candid}/difference.png",
    )


def candidate_out(row: EventRow, base: str) -> CandidateOut:
    event = row.event
    return CandidateOut(
        objectId=event.object_id,
        policy=event.policy,
        candid=event.candid,
        jd=event.jd,
        time=jd_to_datetime(event.jd) if event.jd is not None else None,
        magpsf=event.magpsf,
        ra=event.ra,
        dec=event.dec,
        peak_mag=event.peak_mag,
        scores=event.latest_scores,
        history=[
            {"jd": h.jd, "score": h.score, "model": h.model, "candid": h.candid}
            for h in event.history
        ],
        models=dict(event.models),
        service_version=event.service_version,
        published=_ms(row.published_ms),
        page=object_path(base, event.object_id),
    )


def light_curve_out(object_id: str, curve: LightCurve) -> LightCurveOut:
    return LightCurveOut(
        objectId=object_id,
        points=[
            PointOut(
                jd=p.jd,
                mjd=p.jd - MJD_OFFSET,
                band=p.band,
                kind=p.kind,
                magpsf=p.magpsf,
                sigmapsf=p.sigmapsf,
                diffmaglim=p.diffmaglim,
                candid=p.candid,
                positive=p.positive,
                source=p.source,
            )
            for p in curve.points
        ],
        scores=[
            ScorePointOut(
                jd=s.jd, mjd=s.jd - MJD_OFFSET, candid=s.candid, model=s.model, score=s.score
            )
            for s in curve.scores
        ],
    )


def model_scores(row: AlertRow, known: dict[str, ModelInfo]) -> list[ModelScoreOut]:
    names = sorted(set(row.scores) | set(known))
    return [
        ModelScoreOut(
            model=name,
            score=row.scores.get(name),
            version=known[name].version if name in known else "",
            sha256=known[name].sha256 if name in known else "",
        )
        for name in names
    ]


def cutout_urls(base: str, object_id: str, candid: int) -> dict[str, str]:
    page = object_path(base, object_id)
    return {kind: f"{page}/cutouts/{candid}/{kind}.png" for kind in CUTOUT_KINDS}
