"""The scanning page's Prometheus metrics (defined in :mod:`btsbot_stream.metrics`):
the window's size read at scrape time, errors sorted into a fixed set of kinds, and each
request timed under its route template.

Route templates keep the label set fixed and free of alert data: ``/objects/{object_id}``,
never ``/objects/ZTF20aajcdad``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from btsbot_stream import metrics
from btsbot_stream.follow.exceptions import (
    BrokerUnreachable,
    FollowError,
    NotAuthorized,
    UnknownTopic,
)
from btsbot_stream.web.window import Window

STATIC = "/static"
REFUSED = "refused"  # the token gate's 401: no route ran
UNMATCHED = "unmatched"


def start_metrics(window: Window, routes: Iterable[str]) -> None:
    """Every series of the web's labelled metrics from the start (at 0), and the window's
    gauges read from ``window`` at each scrape."""
    for feed in metrics.WEB_FEEDS:
        metrics.WEB_FEED_MESSAGES.labels(feed)
        metrics.WEB_FEED_BYTES.labels(feed)
        metrics.WEB_FEED_LAG.labels(feed)
    for kind in metrics.WEB_FEED_ERROR_KINDS:
        metrics.WEB_FEED_ERRORS.labels(kind)
    for status in metrics.WEB_STATUS_CLASSES:
        metrics.WEB_RESPONSES.labels(status)
    for route in (*routes, STATIC, REFUSED, UNMATCHED):
        metrics.WEB_REQUEST_SECONDS.labels(route)
    metrics.WEB_WINDOW_ALERTS.set_function(lambda: len(window))
    metrics.WEB_WINDOW_CANDIDATES.set_function(lambda: window.event_count)
    metrics.WEB_WINDOW_OBJECTS.set_function(lambda: window.object_count)


def error_kind(error: FollowError) -> str:
    """The ``kind`` label of a feed problem (see :func:`follow.kafka.classify`)."""
    if isinstance(error, BrokerUnreachable):
        return "unreachable"
    if isinstance(error, NotAuthorized):
        return "denied"
    if isinstance(error, UnknownTopic):
        return "unknown_topic"
    return "other"


def _route_path(scope: Scope) -> str:
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def route_label(scope: Scope, requested: str, status: int) -> str:
    """The route template the router matched (it sets ``scope["route"]``), else what
    answered instead: the static files, the token gate, nothing. ``requested``: the
    path below the root path, taken before routing (a mount changes the root path)."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str) and template:
        return template
    if requested.startswith(STATIC + "/"):
        return STATIC
    return REFUSED if status == 401 else UNMATCHED


class RequestMetrics:
    """Pure ASGI middleware (outermost): the time until the response's last byte, by
    route template, and the response's status class."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception before the response started is answered with a 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        requested = _route_path(scope)
        start = time.perf_counter()
        try:
            await self.app(scope, receive, noting_status)
        finally:
            route = route_label(scope, requested, status)
            metrics.WEB_REQUEST_SECONDS.labels(route).observe(time.perf_counter() - start)
            metrics.WEB_RESPONSES.labels(f"{min(max(status // 100, 2), 5)}xx").inc()
