"""``btsbot-stream web``: the scanning page and its JSON API."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

import click

from btsbot_stream.cli.follow_options import Connection, connection_options
from btsbot_stream.cli.options import setting_option
from btsbot_stream.config import WebSettings

if TYPE_CHECKING:
    from btsbot_stream.stream.health import Health, HealthServer

_WEB = WebSettings()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@connection_options
@setting_option(
    "web",
    _WEB,
    "host",
    help="Address to listen on; keep 127.0.0.1 unless behind a proxy or with --token.",
)
@setting_option("web", _WEB, "port", type=click.IntRange(1, 65535))
@setting_option(
    "web",
    _WEB,
    "metrics_port",
    type=click.IntRange(0, 65535),
    help="/metrics (counts, no alert data), /healthz and /readyz, on --host, without the "
    "token; 0: any free port.",
)
@setting_option(
    "web",
    _WEB,
    "window_hours",
    type=click.FloatRange(min=0, min_open=True),
    help="Keep alerts published in the last N hours.",
)
@setting_option(
    "web",
    _WEB,
    "window_alerts",
    type=click.IntRange(min=1),
    help="Keep at most this many alerts (oldest dropped first).",
)
@click.option(
    "--candidates/--no-candidates",
    default=True,
    show_default=True,
    envvar="BTSBOT_WEB_CANDIDATES",
    show_envvar=True,
    help="Also read the decision stage's candidate events (waits for the topic).",
)
@setting_option(
    "web", _WEB, "token", help="Require this token (Bearer header, or ?token= once in a browser)."
)
@click.option(
    "--root-path",
    default="",
    envvar="BTSBOT_WEB_ROOT_PATH",
    show_envvar=True,
    help="URL prefix when served behind a proxy under a path, e.g. /btsbot.",
)
@setting_option(
    "web",
    _WEB,
    "fetch_cache",
    type=click.IntRange(min=0),
    help="Alerts kept decoded for object pages.",
)
def web(
    connection: Connection,
    host: str,
    port: int,
    metrics_port: int,
    window_hours: float,
    window_alerts: int,
    candidates: bool,
    token: str | None,
    root_path: str,
    fetch_cache: int,
) -> None:
    """Serve the scanning page: the best recent alerts, candidates, an object page with
    cutouts and light curve, and a JSON API behind each (documented at /api).

    Read-only. Listens on 127.0.0.1 unless told otherwise.
    """
    import uvicorn

    from btsbot_stream import __version__, metrics
    from btsbot_stream.web.app import create_app
    from btsbot_stream.web.feed import WindowFeed
    from btsbot_stream.web.fetch import MessageFetcher
    from btsbot_stream.web.objects import ObjectPages
    from btsbot_stream.web.views import WebState
    from btsbot_stream.web.window import Window

    settings = WebSettings(
        host=host,
        port=port,
        metrics_port=metrics_port,
        window_hours=window_hours,
        window_alerts=window_alerts,
        token=token,
        fetch_cache=fetch_cache,
    )
    if not _loopback(host) and not token:
        click.secho(
            f"warning: listening on {host} without a token; put it behind an authenticating "
            "proxy (docs/follow-up-guide.md) or pass --token",
            fg="yellow",
            err=True,
        )
    window = Window(settings.window_hours, settings.window_alerts)
    feed = WindowFeed(
        window,
        connection.bootstrap,
        connection.properties,
        connection.scored_topic,
        connection.candidates_topic if candidates else None,
    )
    # The ports first, then the broker: a port in use is the quicker thing to report.
    server = _metrics_server(feed.health, host, settings.metrics_port)
    feed.check()  # unreachable broker, unknown topic, refused access: stop here, clearly
    fetcher = MessageFetcher(connection.bootstrap, connection.properties)
    state = WebState(window, ObjectPages(window, fetcher, settings.fetch_cache), feed)
    app = create_app(state, token=token)
    metrics.BUILD.info(
        {
            "version": __version__,
            "stage": "web",
            "window": f"{settings.window_hours:g} h, {settings.window_alerts} alerts",
        }
    )
    shown = "localhost" if _loopback(host) else host
    click.echo(f"btsbot-stream web: http://{shown}:{port}{root_path}/", err=True)
    try:
        with server:
            click.echo(f"/metrics, /healthz, /readyz: http://{shown}:{server.port}/", err=True)
            uvicorn.run(app, host=host, port=port, root_path=root_path, log_level="warning")
    finally:
        fetcher.close()


def _metrics_server(health: Health, host: str, port: int) -> HealthServer:
    """The stages' HTTP endpoints (/metrics, /healthz, /readyz), on the page's host."""
    from btsbot_stream.stream.health import HealthServer

    try:
        return HealthServer(health, host, port)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port} for /metrics and /readyz ({exc.strerror}): "
            "another stage on this host uses the port? --metrics-port N (0: any free port)"
        ) from exc
