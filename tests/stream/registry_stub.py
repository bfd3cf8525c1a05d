"""A Confluent-compatible schema registry on loopback (``GET /schemas/ids/{id}``), serving
real schemas, that can be stopped and started again on the same port."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kafka_helpers import free_port


class RegistryStub:
    def __init__(self, schemas: dict[int, str]) -> None:
        self.schemas = schemas
        self.port = free_port()
        self.requests = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RegistryStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.requests += 1
                schema_id = int(self.path.rsplit("/", 1)[-1])
                text = stub.schemas.get(schema_id)
                body = {"schema": text} if text else {"error_code": 40403, "message": "not found"}
                self.send_response(200 if text else 404)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.end_headers()
                self.wfile.write(json.dumps(body).encode())

            def log_message(self, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
