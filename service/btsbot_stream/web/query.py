"""What the list pages and their JSON twins ask for: filters, sort order, page.

The same pydantic models parse the query string of an HTML page and of its JSON API
endpoint, so both always agree. Empty form fields (``?mag_max=``) mean "not set".
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from btsbot_stream.follow.items import datetime_to_jd
from btsbot_stream.web.window import AlertRow, EventRow

BAND_IDS = {"g": 1, "r": 2, "i": 3}
T = TypeVar("T")


class _Query(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value


class AlertQuery(_Query):
    """Filters and order of the alert list (observation times in UTC)."""

    min_score: float | None = Field(None, ge=0, le=1, description="score at least this")
    model: str | None = Field(None, description="whose score filters and sorts (default: best)")
    mag_min: float | None = Field(None, description="brightest magpsf shown")
    mag_max: float | None = Field(None, description="faintest magpsf shown")
    band: Literal["g", "r", "i"] | None = None
    since: datetime | None = Field(None, description="observed at or after (ISO 8601)")
    until: datetime | None = Field(None, description="observed before (ISO 8601)")
    hours: float | None = Field(None, gt=0, description="published in the last N hours")
    object_id: str | None = Field(None, description="objectId starts with this")
    per_object: bool = Field(True, description="one row per object: its best-ranked alert")
    sort: Literal["score", "time", "mag", "published"] = "score"
    order: Literal["desc", "asc"] = "desc"
    page: int = Field(1, ge=1)
    per_page: int = Field(50, ge=1, le=500)


class CandidateQuery(_Query):
    policy: str | None = Field(None, description="e.g. bts_p1, bts_p2, prod_p1, prod_p2")
    object_id: str | None = Field(None, description="objectId starts with this")
    since: datetime | None = Field(None, description="decided at or after (ISO 8601)")
    page: int = Field(1, ge=1)
    per_page: int = Field(50, ge=1, le=500)


def _jd(when: datetime | None) -> float | None:
    return None if when is None else datetime_to_jd(when)


def _alert_test(q: AlertQuery) -> Callable[[AlertRow], bool]:
    since, until = _jd(q.since), _jd(q.until)
    fid = BAND_IDS.get(q.band or "")
    published_after = (time.time() - q.hours * 3600) * 1000 if q.hours else None

    def keep(row: AlertRow) -> bool:
        score = row.score(q.model)
        if q.min_score is not None and (score is None or score < q.min_score):
            return False
        if q.mag_min is not None and (row.magpsf is None or row.magpsf < q.mag_min):
            return False
        if q.mag_max is not None and (row.magpsf is None or row.magpsf > q.mag_max):
            return False
        if fid is not None and row.fid != fid:
            return False
        if since is not None and (row.jd is None or row.jd < since):
            return False
        if until is not None and (row.jd is None or row.jd >= until):
            return False
        if published_after is not None and row.published_ms < published_after:
            return False
        return not (q.object_id and not row.object_id.startswith(q.object_id))

    return keep


def _sort_key(q: AlertQuery) -> Callable[[AlertRow], float]:
    def missing(value: float | None) -> float:
        return -math.inf if value is None else value

    if q.sort == "time":
        return lambda r: missing(r.jd)
    if q.sort == "mag":
        return lambda r: missing(-r.magpsf if r.magpsf is not None else None)  # bright first
    if q.sort == "published":
        return lambda r: float(r.published_ms)
    return lambda r: missing(r.score(q.model))


def select_alerts(rows: Sequence[AlertRow], q: AlertQuery) -> tuple[int, list[AlertRow]]:
    """(how many match, the requested page of them)."""
    keep, key = _alert_test(q), _sort_key(q)
    unfiltered = q.model_fields_set <= {"sort", "order", "page", "per_page", "per_object"}
    ranked = [(key(r), r.candid, r) for r in rows if unfiltered or keep(r)]
    if q.per_object:
        best: dict[str, tuple[float, int, AlertRow]] = {}
        for entry in ranked:
            held = best.get(entry[2].object_id)
            if held is None or entry[0] > held[0]:
                best[entry[2].object_id] = entry
        ranked = list(best.values())
    # Only the rows up to the requested page are ordered (a heap, not a full sort).
    wanted = q.page * q.per_page
    if q.order == "desc":
        head = heapq.nlargest(wanted, ranked, key=lambda e: (e[0], e[1]))
    else:
        head = heapq.nsmallest(wanted, ranked, key=lambda e: (e[0], e[1]))
    return len(ranked), page([e[2] for e in head], q.page, q.per_page)


def select_events(rows: Sequence[EventRow], q: CandidateQuery) -> tuple[int, list[EventRow]]:
    since = _jd(q.since)
    matching = [
        r
        for r in rows
        if (q.policy is None or r.event.policy == q.policy)
        and (q.object_id is None or r.event.object_id.startswith(q.object_id))
        and (since is None or (r.event.jd is not None and r.event.jd >= since))
    ]
    matching.sort(key=lambda r: r.published_ms, reverse=True)  # newest decision first
    return len(matching), page(matching, q.page, q.per_page)


def page(items: list[T], number: int, size: int) -> list[T]:
    return items[(number - 1) * size : number * size]
