"""Builds and runs the service: models first (fail fast), then the HTTP endpoints, the
signal handlers (they only call ``stop()``), and the Kafka loop."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from btsbot_stream import __version__, metrics
from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.registry import make_registry
from btsbot_stream.config import ServiceSettings
from btsbot_stream.scoring import Scorer, load_scorer
from btsbot_stream.stream.health import Health, HealthServer
from btsbot_stream.stream.service import ScoringService

log = logging.getLogger(__name__)


def _export_engine_metrics(settings: ServiceSettings, scorer: Scorer) -> None:
    metrics.GPU_REQUESTED.set(1 if settings.engine.device in ("cuda", "tensorrt") else 0)
    for model in scorer.models:
        metrics.EXECUTION_PROVIDER.labels(model.name, model.provider).set(1)
    metrics.BUILD.info(
        {
            "version": __version__,
            "models": ",".join(m.name for m in scorer.models),
            "delivery": settings.delivery.mode,
            "device": settings.engine.device,
        }
    )


def run_service(settings: ServiceSettings, exit_when_idle: float | None = None) -> None:
    log.info("configuration: %s", settings.redacted())
    scorer = load_scorer(settings.engine)
    decoder = AlertDecoder(
        make_registry(settings.schema_dir, settings.schema_registry), settings.limits
    )
    _export_engine_metrics(settings, scorer)
    health = Health()
    service = ScoringService(settings, scorer, decoder, health)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("%s: finishing the batch in hand", signal.Signals(signum).name)
        service.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    port = settings.observability.metrics_port
    if port is None:
        service.run(exit_when_idle)
        return
    with HealthServer(health, settings.observability.metrics_host, port) as server:
        log.info("metrics, /healthz and /readyz on port %d", server.port)
        service.run(exit_when_idle)
