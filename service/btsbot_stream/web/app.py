"""The web application: routes, static files, security, the feed's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from btsbot_stream import __version__
from btsbot_stream.web import api, pages
from btsbot_stream.web.observe import RequestMetrics, start_metrics
from btsbot_stream.web.security import SecurityHeaders, TokenGate
from btsbot_stream.web.views import WebState

HEALTHZ = "/healthz"

DESCRIPTION = """\
Read-only JSON behind every page of the BTSbot scanning page. Each page's URL with
`/api` in front (and the same query parameters) gives its data: `/api/alerts`,
`/api/candidates`, `/api/objects/{objectId}`. Times are UTC, magnitudes AB, positions
ICRS degrees. When the server runs with a token, send `Authorization: Bearer <token>`.
"""


def create_app(state: WebState, token: str | None = None) -> FastAPI:
    """The application over a window; the feed (if any) starts and stops with it.

    ``/healthz`` (open, no token) answers 503 once the feed's thread has died: the
    page would show a window that never changes. Readiness and ``/metrics`` are on the
    metrics port (``btsbot-stream web --metrics-port``), not here, so an ingress that
    exposes the page does not expose them.
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if state.feed is not None:
            state.feed.start()
        try:
            yield
        finally:
            if state.feed is not None:
                state.feed.stop()

    app = FastAPI(
        title="btsbot-stream web",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # Swagger UI loads scripts from a CDN: /api documents it instead
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.web = state
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(packages=[("btsbot_stream.web", "static")]), name="static")

    @app.get(HEALTHZ, include_in_schema=False, response_model=None)
    def healthz() -> dict[str, str] | PlainTextResponse:
        health = state.feed.health if state.feed is not None else None
        if health is not None and not health.alive:
            return PlainTextResponse(health.why_not_alive + "\n", status_code=503)
        return {"status": "ok"}

    if token:
        app.add_middleware(TokenGate, token=token, open_paths=("/static/", HEALTHZ))
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestMetrics)  # outermost: refused requests are timed too
    routes = [
        r.path
        for router in (api.router, pages.router)
        for r in router.routes
        if isinstance(r, APIRoute)
    ]
    start_metrics(state.window, [*routes, HEALTHZ, app.openapi_url or "/openapi.json"])
    return app
