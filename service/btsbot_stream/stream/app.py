"""Builds and runs the service: the HTTP endpoints first (probes answer during start-up),
the signal handlers (they only ask to stop), the models and the preparation workers
(fail fast), the broker and topic checks, then the Kafka loop."""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import ExitStack
from types import FrameType

from btsbot_stream import __version__, logs, metrics
from btsbot_stream.config import ServiceSettings
from btsbot_stream.scoring import Scorer, load_scorer
from btsbot_stream.stream.clients import make_admin
from btsbot_stream.stream.exceptions import PreflightError
from btsbot_stream.stream.health import Health, HealthServer
from btsbot_stream.stream.preflight import preflight
from btsbot_stream.stream.preparation import Preparation
from btsbot_stream.stream.service import ScoringService
from btsbot_stream.stream.watch import ClientWatch
from btsbot_stream.workers import Decoding, make_preparer, resolve_processes

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
    logs.limit_repeats(settings.observability.log_repeat_interval_s)
    health = Health()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("%s: finishing the batches in hand", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with ExitStack() as stack:
        port = settings.observability.metrics_port
        if port is not None:
            server = stack.enter_context(
                HealthServer(health, settings.observability.metrics_host, port)
            )
            log.info("metrics, /healthz and /readyz on port %d", server.port)
        decoding = Decoding(
            settings.limits, settings.schema_dir, settings.schema_registry, settings.registry
        )
        processes = resolve_processes(settings.preparation, settings.engine)
        scorer = load_scorer(settings.engine, spinning=processes == 0)
        preparer = make_preparer(settings.preparation, settings.engine, decoding)
        stack.callback(preparer.close)  # closed by the service when it runs; idempotent
        _export_engine_metrics(settings, scorer)
        health.set("starting", "checking the brokers and topics")
        watch = ClientWatch("admin")
        try:
            limits = preflight(
                settings.kafka, make_admin(settings.kafka, watch), watch, health, stop
            )
        except PreflightError:
            if stop.is_set():  # SIGTERM while waiting for the brokers: a clean exit
                return
            raise
        preparation = Preparation(preparer, settings.registry, health)
        service = ScoringService(settings, scorer, preparation, health, limits, stop)
        service.run(exit_when_idle)
