"""HTTP endpoints beside the service: ``/metrics`` (Prometheus), ``/healthz`` (the process
is alive: starting up, or its main loop beat recently) and ``/readyz`` (working: joined
to its group, the brokers reachable, the schema registry answering).

The server starts before the models load, so probes get an answer during start-up;
``/readyz`` says why it is not ready (one line per cause) and so does the
``btsbot_not_ready{cause}`` metric.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from btsbot_stream import metrics

STALL_SECONDS = 60.0  # a loop silent this long is stuck (consume waits at most ~1 s)
Cause = Literal["starting", "not_joined", "brokers_unreachable", "registry_unavailable", "stopping"]


class Health:
    """Shared state: the main loop and the Kafka callbacks write, the HTTP thread reads."""

    def __init__(self) -> None:
        self.last_beat = time.monotonic()
        self.looping = False  # the consume loop runs (before: start-up, always "alive")
        self.assigned = 0
        self._causes: dict[Cause, str] = {}
        self._lock = threading.Lock()
        self.set("starting", "loading models")

    def set(self, cause: Cause, detail: str) -> None:
        with self._lock:
            self._causes[cause] = detail
        metrics.NOT_READY.labels(cause).set(1)

    def clear(self, cause: Cause) -> None:
        with self._lock:
            self._causes.pop(cause, None)
        metrics.NOT_READY.labels(cause).set(0)

    def has(self, cause: Cause) -> bool:
        return cause in self._causes

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    @property
    def alive(self) -> bool:
        return not self.looping or time.monotonic() - self.last_beat < STALL_SECONDS

    def readiness(self) -> tuple[bool, str]:
        with self._lock:
            causes = dict(self._causes)
        if not self.alive:
            causes["stopping"] = "main loop stalled"
        lines = [f"not ready: {cause}: {detail}" for cause, detail in causes.items()]
        ready = not lines
        lines.append(f"ready={ready} assigned_partitions={self.assigned}")
        return ready, "\n".join(lines) + "\n"


def _handler(health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                ok = health.alive
                self._send(200 if ok else 503, b"ok\n" if ok else b"main loop stalled\n")
            elif self.path == "/readyz":
                ready, body = health.readiness()
                self._send(200 if ready else 503, body.encode())
            else:
                self._send(404, b"not found\n")

        def _send(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # scrapes are not news
            return

    return Handler


class HealthServer:
    def __init__(self, health: Health, host: str, port: int) -> None:
        self._server = ThreadingHTTPServer((host, port), _handler(health))
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> HealthServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
