"""Each view's document, built once for the HTML page and its JSON twin."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from btsbot_stream.web.feed import WindowFeed
from btsbot_stream.web.models import (
    AlertPage,
    CandidatePage,
    ObjectOut,
    StatusOut,
    _ms,
    alert_out,
    candidate_out,
    cutout_urls,
    light_curve_out,
    model_scores,
    object_path,
)
from btsbot_stream.web.objects import ObjectPages, links
from btsbot_stream.web.query import AlertQuery, CandidateQuery, select_alerts, select_events
from btsbot_stream.web.window import Window


@dataclass
class WebState:
    """What the routes read (held on ``app.state.web``)."""

    window: Window
    objects: ObjectPages
    feed: WindowFeed | None = None


def alert_page(state: WebState, q: AlertQuery, base: str) -> AlertPage:
    total, rows = select_alerts(state.window.alerts(), q)
    return AlertPage(
        total=total, page=q.page, per_page=q.per_page, items=[alert_out(r, base) for r in rows]
    )


def candidate_page(state: WebState, q: CandidateQuery, base: str) -> CandidatePage:
    total, rows = select_events(state.window.events(), q)
    return CandidatePage(
        total=total,
        page=q.page,
        per_page=q.per_page,
        items=[candidate_out(r, base) for r in rows],
    )


def _plain(value: Any) -> Any:
    """JSON-safe copy of a decoded candidate field (bytes never appear in it)."""
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def object_document(
    state: WebState, object_id: str, candid: int | None, base: str
) -> ObjectOut | None:
    view = state.objects.view(object_id, candid)
    if view is None:
        return None
    selected = view.selected
    candidate: Mapping[str, Any] = view.candidate
    return ObjectOut(
        objectId=object_id,
        ra=selected.ra,
        dec=selected.dec,
        selected=alert_out(selected, base),
        candidate={k: _plain(v) for k, v in candidate.items()},
        scores=model_scores(selected, state.window.models),
        alerts=[alert_out(r, base) for r in view.rows],
        candidates=[candidate_out(e, base) for e in view.events],
        light_curve=light_curve_out(object_id, view.curve),
        cutouts=cutout_urls(base, object_id, selected.candid),
        light_curve_png=f"{object_path(base, object_id)}/lightcurve.png",
        links=links(object_id, selected.ra, selected.dec),
        error=view.error,
    )


def status_document(state: WebState) -> StatusOut:
    window = state.window
    published = window.published_range()
    feed = state.feed.status if state.feed is not None else None
    caught_up = state.feed is not None and state.feed.catch_up.done
    return StatusOut(
        alerts=len(window),
        candidates=window.event_count,
        objects=window.object_count,
        window_hours=window.hours,
        window_alerts=window.max_alerts,
        oldest_published=_ms(published[0]) if published else None,
        newest_published=_ms(published[1]) if published else None,
        models={k: {"version": v.version, "sha256": v.sha256} for k, v in window.models.items()},
        feed=(
            {
                "read": feed.read,
                "undecodable": feed.undecodable,
                "repeats": window.repeats,
                "assigned": feed.assigned,
                "waiting_for": feed.waiting_for,
                "lag": feed.lag,
                "problem": feed.problem,
                "caught_up": caught_up,
            }
            if feed is not None
            else {}
        ),
    )
