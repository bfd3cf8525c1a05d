"""Where Confluent wire-format messages find their writer schema, by schema id."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Protocol

from btsbot_stream.alerts.exceptions import RegistryUnavailable
from btsbot_stream.config import RegistrySettings, redact_url
from btsbot_stream.errors import ConfigError

log = logging.getLogger(__name__)


class SchemaRegistry(Protocol):
    def get(self, schema_id: int) -> str | None:
        """The writer schema JSON for ``schema_id``, or None when it is unknown.

        Raises :class:`RegistryUnavailable` when the answer cannot be had now."""


class DirectorySchemas:
    """Schemas on disk: ``<dir>/<id>.avsc``, or ``<dir>/<id>/alert.avsc`` for the
    multi-file ZTF layout (named types referenced across files are resolved)."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise ConfigError(f"schema directory {root} does not exist")
        self.root = root

    def get(self, schema_id: int) -> str | None:
        for path in (self.root / f"{schema_id}.avsc", self.root / str(schema_id) / "alert.avsc"):
            if path.is_file():
                return json.dumps(load_avsc(path))
        return None

    def __str__(self) -> str:
        return f"schema directory {self.root}"


class HttpSchemaRegistry:
    """A Confluent-compatible registry (``GET {url}/schemas/ids/{id}``).

    404 is asked again ``unknown_retries`` times (a schema registered a moment ago may
    not have reached this replica), then remembered as unknown for ``unknown_ttl_s``, so
    a stream of messages with a bad id costs no request each. Anything else that is not
    an answer (refused, timeout, 5xx, 429) raises :class:`RegistryUnavailable`.
    """

    def __init__(self, url: str, settings: RegistrySettings | None = None) -> None:
        self.url = url.rstrip("/")
        self.settings = settings or RegistrySettings()
        self._unknown: dict[int, float] = {}  # schema id -> monotonic time it expires
        self._lock = threading.Lock()

    def get(self, schema_id: int) -> str | None:
        with self._lock:
            expires = self._unknown.get(schema_id)
            if expires is not None and time.monotonic() < expires:
                return None
        for attempt in range(self.settings.unknown_retries + 1):
            if attempt:
                time.sleep(1.0)
            text = self._fetch(schema_id)
            if text is not None:
                return text
        with self._lock:
            self._unknown[schema_id] = time.monotonic() + self.settings.unknown_ttl_s
            if len(self._unknown) > 10_000:  # bounded: drop the expired
                now = time.monotonic()
                self._unknown = {k: v for k, v in self._unknown.items() if v > now}
        return None

    def _fetch(self, schema_id: int) -> str | None:
        try:
            with urllib.request.urlopen(
                f"{self.url}/schemas/ids/{schema_id}", timeout=self.settings.timeout_s
            ) as resp:
                return str(json.load(resp)["schema"])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise RegistryUnavailable(
                f"{self} answered HTTP {exc.code} for id {schema_id}"
            ) from None
        except (OSError, ValueError, KeyError) as exc:  # refused, timeout, reset, bad JSON
            raise RegistryUnavailable(
                f"{self} did not answer for id {schema_id}: {type(exc).__name__}: {exc}"
            ) from None

    def __str__(self) -> str:
        return f"schema registry {redact_url(self.url)}"


def _full_name(node: dict[str, Any], namespace: str | None) -> str:
    name = str(node["name"])
    space = node.get("namespace", namespace)
    return name if "." in name or not space else f"{space}.{name}"


def load_avsc(path: Path) -> Any:
    """Load an .avsc file, inlining named types defined in sibling files.

    ZTF publishes one file per record (``alert.avsc`` refers to ``ztf.alert.candidate``
    defined in ``candidate.avsc``); Avro wants each named type defined at its first use.
    """
    named = {}
    for sibling in path.parent.glob("*.avsc"):
        if sibling != path:
            schema = json.loads(sibling.read_text())
            named[_full_name(schema, None)] = schema
    defined: set[str] = set()

    def inline(node: Any, namespace: str | None) -> Any:
        if isinstance(node, str):
            if node in named and node not in defined:
                return inline(named[node], namespace)
            return node
        if isinstance(node, list):
            return [inline(branch, namespace) for branch in node]
        if not isinstance(node, dict):
            return node
        kind = node.get("type")
        if kind in ("record", "error"):
            full = _full_name(node, namespace)
            defined.add(full)
            space = full.rsplit(".", 1)[0] if "." in full else namespace
            fields = [{**f, "type": inline(f["type"], space)} for f in node["fields"]]
            return {**node, "fields": fields}
        if kind == "array":
            return {**node, "items": inline(node["items"], namespace)}
        if kind == "map":
            return {**node, "values": inline(node["values"], namespace)}
        if kind in ("enum", "fixed"):
            defined.add(_full_name(node, namespace))
            return node
        return {**node, "type": inline(kind, namespace)} if kind is not None else node

    return inline(json.loads(path.read_text()), None)


def make_registry(
    schema_dir: Path | None, url: str | None, settings: RegistrySettings | None = None
) -> SchemaRegistry | None:
    """The configured schema source for wire-format messages, if any."""
    if schema_dir is not None and url is not None:
        raise ConfigError("give either a schema directory or a schema registry URL, not both")
    if schema_dir is not None:
        return DirectorySchemas(schema_dir)
    if url is not None:
        return HttpSchemaRegistry(url, settings)
    return None
