"""Builds and runs the decision stage on Quix Streams.

Scored topic (key objectId) -> :class:`Decider` (state per object in RocksDB, behind a
compacted changelog topic) -> candidate events topic (key objectId, JSON).

Guarantees, with ``decide.processing_guarantee = "exactly-once"`` (the default): the
state changes, the events and the input offsets of each checkpoint commit in one Kafka
transaction. After a crash the last checkpoint's work is aborted and done again from
the restored state, so a reader with ``isolation.level=read_committed`` sees each
(object, policy) event once. Duplicated input alerts are ignored by candid. With
``at-least-once``, a crash between producing and committing can repeat an event.

State moves with partitions: on assignment Quix rebuilds the partition's store from
its changelog (or the local copy, when it is current), before consuming.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from typing import Any

from quixstreams import Application
from quixstreams.kafka.configuration import ConnectionConfig

from btsbot_stream import metrics
from btsbot_stream.config import ServiceSettings
from btsbot_stream.stream.decide import hooks
from btsbot_stream.stream.decide.codec import ScoredDeserializer
from btsbot_stream.stream.decide.processor import Decider
from btsbot_stream.stream.enrich import CANDID_HEADER
from btsbot_stream.stream.health import Health

log = logging.getLogger(__name__)
POLICY_HEADER = "btsbot.policy"
GAUGE_INTERVAL_S = 10.0


class DecideHealth(Health):
    """Alive while the poll loop beats, and while a restore (which blocks it) runs."""

    def __init__(self) -> None:
        super().__init__()
        self.restoring = False

    @property
    def alive(self) -> bool:
        return self.restoring or super().alive


def transactional_id(settings: ServiceSettings) -> str:
    """Stable for one instance (host + state folder): a restart fences the crashed run
    and aborts its open transaction at once, instead of after transaction.timeout.ms.
    Two instances on one host need two state folders anyway (RocksDB locks them)."""
    host = os.environ.get("HOSTNAME") or socket.gethostname()
    folder = hashlib.sha1(str(settings.decide.state_dir.resolve()).encode()).hexdigest()[:8]
    return f"{settings.decide.group_id}-{host}-{folder}"


def build_application(settings: ServiceSettings) -> Application:
    kafka, decide = settings.kafka, settings.decide
    properties: dict[str, Any] = kafka.client_properties()
    connection = ConnectionConfig.from_librdkafka_dict(
        {"bootstrap.servers": kafka.bootstrap_servers, **properties}, ignore_extras=True
    )
    producer_config = dict(properties)
    if decide.processing_guarantee == "exactly-once":
        producer_config["transactional.id"] = transactional_id(settings)
    app = Application(
        broker_address=connection,
        consumer_group=decide.group_id,
        auto_offset_reset=kafka.auto_offset_reset,
        commit_interval=decide.commit_interval_s,
        consumer_extra_config=dict(properties),
        producer_extra_config=producer_config,
        state_dir=decide.state_dir,
        processing_guarantee=decide.processing_guarantee,
        loglevel=None,  # our logging configuration (text or JSON) applies
    )
    scored = app.topic(
        kafka.output_topic,
        key_deserializer="str",
        value_deserializer=ScoredDeserializer(),
    )
    candidates = app.topic(decide.candidates_topic, key_serializer="str", value_serializer="json")
    sdf = app.dataframe(scored)
    sdf = sdf.apply(
        Decider(decide.policies, decide.retention_days), stateful=True, expand=True, metadata=True
    )
    # Events carry the time of the decision as their Kafka timestamp.
    sdf = sdf.set_timestamp(lambda value, key, timestamp, headers: value["decided_at"])
    sdf = sdf.set_headers(
        lambda value, key, timestamp, headers: [
            (POLICY_HEADER, value["policy"].encode()),
            (CANDID_HEADER, str(value["candid"]).encode()),
        ]
    )
    sdf.to_topic(candidates)
    return app


def run_stage(
    app: Application, topic: str, health: DecideHealth, exit_when_idle: float | None
) -> None:
    """Run until SIGTERM/SIGINT (Quix's handlers: finish, commit, exit) or idle."""
    last_gauges = 0.0
    held: list[int] = []

    def periodic() -> None:
        nonlocal last_gauges, held
        health.beat()
        health.looping = True
        health.clear("starting")
        now_held = hooks.assigned(app, topic)
        if now_held != held:
            held = now_held
            health.assigned = len(held)
            log.info("assigned %s", [f"{topic}[{p}]" for p in held])
        if time.monotonic() - last_gauges >= GAUGE_INTERVAL_S:
            last_gauges = time.monotonic()
            keys, size = hooks.store_size(app)
            metrics.DECIDE_OBJECTS.set(keys)
            metrics.DECIDE_STATE_BYTES.set(size)

    def restore_started() -> None:
        health.restoring = True
        log.info("restoring state stores from their changelog topics")

    def restore_done(seconds: float) -> None:
        health.restoring = False
        metrics.DECIDE_RESTORE_SECONDS.observe(seconds)
        log.info("state restored in %.2f s", seconds)

    hooks.add_periodic_task(app, periodic)
    hooks.time_recovery(app, restore_started, restore_done)
    app.run(timeout=exit_when_idle or 0.0)
    log.info("stopped cleanly")
