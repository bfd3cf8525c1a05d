"""The web application: routes, static files, security, the feed's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from btsbot_stream import __version__
from btsbot_stream.web import api, pages
from btsbot_stream.web.security import SecurityHeaders, TokenGate
from btsbot_stream.web.views import WebState

DESCRIPTION = """\
Read-only JSON behind every page of the BTSbot scanning page. Each page's URL with
`/api` in front (and the same query parameters) gives its data: `/api/alerts`,
`/api/candidates`, `/api/objects/{objectId}`. Times are UTC, magnitudes AB, positions
ICRS degrees. When the server runs with a token, send `Authorization: Bearer <token>`.
"""


def create_app(state: WebState, token: str | None = None) -> FastAPI:
    """The application over a window; the feed (if any) starts and stops with it."""

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

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if token:
        app.add_middleware(TokenGate, token=token, open_paths=("/static/", "/healthz"))
    app.add_middleware(SecurityHeaders)
    return app
