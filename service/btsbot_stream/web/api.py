"""The JSON API: one endpoint behind every page (documented at /api and /openapi.json)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from btsbot_stream.web.models import AlertPage, CandidatePage, LightCurveOut, ObjectOut, StatusOut
from btsbot_stream.web.query import AlertQuery, CandidateQuery
from btsbot_stream.web.views import (
    WebState,
    alert_page,
    candidate_page,
    object_document,
    status_document,
)

router = APIRouter(prefix="/api", tags=["JSON API"])


def state_of(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def base_of(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/alerts", response_model=AlertPage, summary="Best-scoring recent alerts")
def api_alerts(request: Request, q: Annotated[AlertQuery, Query()]) -> AlertPage:
    """The list page's rows: filter by score, magnitude, band, observation or
    publication time; sort by score, time, magnitude or publication; paginate."""
    return alert_page(state_of(request), q, base_of(request))


@router.get("/candidates", response_model=CandidatePage, summary="Latest candidate events")
def api_candidates(request: Request, q: Annotated[CandidateQuery, Query()]) -> CandidatePage:
    """Decisions of the decision stage (one per object and policy), newest first."""
    return candidate_page(state_of(request), q, base_of(request))


@router.get("/objects/{object_id}", response_model=ObjectOut, summary="One object")
def api_object(request: Request, object_id: str, candid: int | None = None) -> ObjectOut:
    """Everything the object page shows: its scored alerts, the selected alert's
    candidate fields and scores (with model versions), the light curve points, the
    cutout and plot URLs, links to other brokers. ``candid`` selects an alert (default:
    the latest)."""
    doc = object_document(state_of(request), object_id, candid, base_of(request))
    if doc is None:
        raise HTTPException(404, f"{object_id} has no scored alert in the window")
    return doc


@router.get("/objects/{object_id}/lightcurve", response_model=LightCurveOut, summary="Light curve")
def api_light_curve(request: Request, object_id: str) -> LightCurveOut:
    """Detections and 5-sigma upper limits by band (from the latest alert's history
    and every scored alert), and the scores per alert and model."""
    doc = object_document(state_of(request), object_id, None, base_of(request))
    if doc is None:
        raise HTTPException(404, f"{object_id} has no scored alert in the window")
    return doc.light_curve


@router.get("/status", response_model=StatusOut, summary="The window and its feed")
def api_status(request: Request) -> StatusOut:
    """How many alerts, events and objects are held, how old, which models, the
    consumer's progress (messages read, lag per partition, last broker problem)."""
    return status_document(state_of(request))
