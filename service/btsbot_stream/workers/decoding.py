"""What a process needs to build its own decoder, and a registry that fails fast.

Each preparation worker (and the parent, which resolves the schema of every prepared
message by its text digest or registry id) builds its decoder from these few settings,
so no parsed schema ever crosses a process boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.exceptions import RegistryUnavailable
from btsbot_stream.alerts.registry import SchemaRegistry, make_registry
from btsbot_stream.config import LimitSettings, RegistrySettings


class RegistryBreaker:
    """A schema registry that, once it did not answer, fails at once until :meth:`reset`:
    a batch of wire-format messages prepared while the registry is away costs one
    request (one timeout), not one per message."""

    def __init__(self, inner: SchemaRegistry) -> None:
        self._inner = inner
        self._down: RegistryUnavailable | None = None

    def reset(self) -> None:
        self._down = None

    def get(self, schema_id: int) -> str | None:
        if self._down is not None:
            raise RegistryUnavailable(str(self._down))
        try:
            return self._inner.get(schema_id)
        except RegistryUnavailable as exc:
            self._down = exc
            raise

    def __str__(self) -> str:
        return str(self._inner)


@dataclass(frozen=True)
class Decoding:
    """The decoder's settings (picklable: sent to each worker when it starts)."""

    limits: LimitSettings = field(default_factory=LimitSettings)
    schema_dir: Path | None = None
    schema_registry: str | None = None
    registry: RegistrySettings = field(default_factory=RegistrySettings)

    def decoder(self) -> tuple[AlertDecoder, RegistryBreaker | None]:
        """A new decoder with its own schema caches, and its registry's breaker."""
        registry = make_registry(self.schema_dir, self.schema_registry, self.registry)
        breaker = RegistryBreaker(registry) if registry is not None else None
        return AlertDecoder(breaker, self.limits), breaker
