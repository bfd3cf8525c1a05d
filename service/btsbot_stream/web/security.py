"""Safe by default: read-only, strict browser policy, an optional shared token.

With a token set, every page, image and API call needs it: as ``Authorization: Bearer
<token>``, or once as ``?token=<token>`` (the reply sets an HttpOnly, SameSite=Strict
cookie so the links and images of the page work after). Compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.types import ASGIApp

COOKIE = "btsbot_token"
# No script runs on these pages (they need none); images and styles only from here.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def _matches(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


class TokenGate(BaseHTTPMiddleware):
    """Refuses requests without the token (when one is configured); paths under
    ``open_paths`` (the stylesheet, the health check) need none."""

    def __init__(self, app: ASGIApp, token: str, open_paths: tuple[str, ...]) -> None:
        super().__init__(app)
        self.token = token
        self.open_paths = open_paths

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path, root = request.scope["path"], request.scope.get("root_path", "")
        path = path[len(root) :] if root and path.startswith(root) else path
        if path.startswith(self.open_paths):
            return await call_next(request)
        auth = request.headers.get("authorization", "")
        bearer = auth[7:] if auth.lower().startswith("bearer ") else None
        if _matches(bearer, self.token) or _matches(request.cookies.get(COOKIE), self.token):
            return await call_next(request)
        if _matches(request.query_params.get("token"), self.token):
            response = await call_next(request)
            response.set_cookie(
                COOKIE,
                self.token,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
            return response
        return JSONResponse(
            {
                "detail": "a token is required: send 'Authorization: Bearer <token>' or open "
                "the page once with ?token=<token>"
            },
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
