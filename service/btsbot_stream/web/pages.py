"""The HTML pages (Jinja2, autoescaped) and the images they show."""

from __future__ import annotations

import math
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from astropy import units as u
from astropy.coordinates import Angle
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape

from btsbot_stream.alerts.exceptions import InvalidAlert
from btsbot_stream.follow.exceptions import FollowError
from btsbot_stream.render.cutouts import CutoutKind
from btsbot_stream.web.api import base_of, state_of
from btsbot_stream.web.query import AlertQuery, CandidateQuery
from btsbot_stream.web.views import alert_page, candidate_page, object_document, status_document

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(
    env=Environment(
        loader=PackageLoader("btsbot_stream.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
)
PNG_CACHE = "private, max-age=3600"  # a cutout of one alert never changes


def _with(params: dict[str, Any], **changes: Any) -> str:
    """The query string of this page with some parameters changed (for sort/page links)."""
    merged = {k: v for k, v in {**params, **changes}.items() if v not in (None, "")}
    return "?" + urlencode(merged)


def _paging(request: Request, total: int, per_page: int) -> dict[str, Any]:
    """What a paginated list page links with: its query (the token never repeated in
    links), a link maker, the page count, the query of its JSON twin."""
    params = dict(request.query_params)
    params.pop("token", None)
    return {
        "params": params,
        "link": lambda **changes: _with(params, **changes),
        "pages": max(1, math.ceil(total / per_page)),
        "api_query": _with(params),
    }


def _render(request: Request, name: str, **context: Any) -> HTMLResponse:
    context.update(base=base_of(request), status=status_document(state_of(request)))
    return templates.TemplateResponse(request, name, context)


@router.get("/", response_class=HTMLResponse)
def list_page(request: Request, q: Annotated[AlertQuery, Query()]) -> HTMLResponse:
    state, base = state_of(request), base_of(request)
    alerts = alert_page(state, q, base)
    latest = candidate_page(state, CandidateQuery(per_page=8), base)
    return _render(
        request,
        "list.html",
        q=q,
        alerts=alerts,
        candidates=latest,
        models=sorted(state.window.models),
        **_paging(request, alerts.total, q.per_page),
    )


@router.get("/candidates", response_class=HTMLResponse)
def candidates_page(request: Request, q: Annotated[CandidateQuery, Query()]) -> HTMLResponse:
    state, base = state_of(request), base_of(request)
    events = candidate_page(state, q, base)
    return _render(
        request, "candidates.html", q=q, events=events, **_paging(request, events.total, q.per_page)
    )


@router.get("/objects/{object_id}", response_class=HTMLResponse)
def object_page(request: Request, object_id: str, candid: int | None = None) -> HTMLResponse:
    doc = object_document(state_of(request), object_id, candid, base_of(request))
    if doc is None:
        return _render(request, "missing.html", object_id=object_id)
    api = f"{base_of(request)}/api/objects/{quote(doc.objectId, safe='')}"
    return _render(
        request,
        "object.html",
        doc=doc,
        data=doc.model_dump(mode="json"),
        api=api,
        sexagesimal=_sexagesimal(doc.ra, doc.dec),
    )


def _sexagesimal(ra: float | None, dec: float | None) -> tuple[str, str] | None:
    if ra is None or dec is None:
        return None
    hours = Angle(ra, u.deg).to_string(unit=u.hourangle, sep=":", precision=2, pad=True)
    degrees = Angle(dec, u.deg).to_string(sep=":", precision=1, alwayssign=True, pad=True)
    return str(hours), str(degrees)


@router.get("/objects/{object_id}/cutouts/{candid}/{kind}.png")
def cutout_image(request: Request, object_id: str, candid: int, kind: CutoutKind) -> Response:
    try:
        png = state_of(request).objects.cutout(object_id, candid, kind)
    except (FollowError, InvalidAlert) as exc:
        return Response(str(exc), status_code=502, media_type="text/plain")
    if png is None:
        return Response("no such alert in the window", status_code=404, media_type="text/plain")
    return Response(png, media_type="image/png", headers={"Cache-Control": PNG_CACHE})


@router.get("/objects/{object_id}/lightcurve.png")
def light_curve_image(request: Request, object_id: str) -> Response:
    png = state_of(request).objects.light_curve_png(object_id)
    if png is None:
        return Response("no such object in the window", status_code=404, media_type="text/plain")
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-cache"})


@router.get("/api", response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    """The JSON API, documented from the OpenAPI schema (no external scripts)."""
    schema = request.app.openapi()
    endpoints = [
        {"path": path, "method": method.upper(), **op}
        for path, methods in schema["paths"].items()
        for method, op in methods.items()
    ]
    return _render(request, "api.html", endpoints=endpoints)
