"""Runs the decision stage: HTTP endpoints (/metrics, /healthz, /readyz) beside it."""

from __future__ import annotations

import logging

from btsbot_stream import __version__, metrics
from btsbot_stream.config import ServiceSettings
from btsbot_stream.stream.decide.app import DecideHealth, build_application, run_stage
from btsbot_stream.stream.health import HealthServer

log = logging.getLogger(__name__)


def run_decide(settings: ServiceSettings, exit_when_idle: float | None = None) -> None:
    log.info("configuration: %s", settings.redacted())
    decide = settings.decide
    metrics.BUILD.info(
        {
            "version": __version__,
            "stage": "decide",
            "policies": ",".join(p.name for p in decide.policies),
            "delivery": decide.processing_guarantee,
        }
    )
    for policy in decide.policies:  # every policy's series exists from the start, at 0
        metrics.DECIDE_EVENTS.labels(policy.name)
    app = build_application(settings)
    health = DecideHealth()
    log.info(
        "deciding on %s with %s, events to %s",
        settings.kafka.output_topic,
        [p.name for p in decide.policies],
        decide.candidates_topic,
    )
    port = settings.observability.metrics_port
    if port is None:
        run_stage(app, settings.kafka.output_topic, health, exit_when_idle)
        return
    with HealthServer(health, settings.observability.metrics_host, port) as server:
        log.info("metrics, /healthz and /readyz on port %d", server.port)
        run_stage(app, settings.kafka.output_topic, health, exit_when_idle)
