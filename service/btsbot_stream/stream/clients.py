"""librdkafka configurations and construction of our consumer, producer and admin client.

User properties (``kafka.properties``: SASL, SSL, tuning, the assignor or the group
protocol) apply to every client; the few we rely on for correctness are set last and
cannot be overridden. Every client logs through ``logging`` (no raw ``%3|...`` lines)
and reports errors to a :class:`~btsbot_stream.stream.watch.ClientWatch`.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from btsbot_stream.config import KafkaSettings, ServiceSettings
from btsbot_stream.errors import ConfigError
from btsbot_stream.logs import KAFKA_LOGGER
from btsbot_stream.stream.watch import STATS_INTERVAL_MS, ClientWatch

KafkaConfig = dict[str, Any]
# Properties only the consumer (or only the producer) knows: librdkafka warns about the
# others, and refuses some (the group protocol's) outright.
CONSUMER_ONLY = (
    "group.",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "fetch.",
    "auto.",
    "enable.auto.",
    "isolation.level",
    "check.crcs",
    "queued.",
)


def consumer_config(settings: ServiceSettings) -> KafkaConfig:
    kafka = settings.kafka
    config: KafkaConfig = {
        "auto.offset.reset": kafka.auto_offset_reset,
        "fetch.max.bytes": 64 * 1024 * 1024,
        **kafka.client_properties(),
    }
    config.update(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": kafka.group_id,
            # We commit ourselves, only what every output acknowledged.
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": False,
            "isolation.level": "read_committed",
            # consumer lag per partition, broker reachability and group state
            "statistics.interval.ms": STATS_INTERVAL_MS,
        }
    )
    return config


def default_transactional_id(settings: ServiceSettings) -> str:
    # Stable across restarts of the same host/pod, so a restart aborts the transaction
    # a crashed run left open instead of waiting for transaction.timeout.ms.
    host = os.environ.get("HOSTNAME") or socket.gethostname()
    return f"{settings.kafka.group_id}-{host}"


def producer_config(settings: ServiceSettings, batch_size: int = 1_000_000) -> KafkaConfig:
    kafka, delivery = settings.kafka, settings.delivery
    config: KafkaConfig = {
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.max.bytes": 10 * 1024 * 1024,
        "queue.buffering.max.kbytes": 512 * 1024,
        **_common(kafka),
    }
    config.update(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "enable.idempotence": True,  # no duplicates from producer retries
            "acks": "all",
            # below every written topic's max.message.bytes (see stream.limits)
            "batch.size": batch_size,
            "statistics.interval.ms": STATS_INTERVAL_MS,
        }
    )
    if delivery.mode == "exactly-once":
        config["transactional.id"] = delivery.transactional_id or default_transactional_id(settings)
        config["transaction.timeout.ms"] = 60000
    return config


def admin_config(kafka: KafkaSettings) -> KafkaConfig:
    return {**_common(kafka), "bootstrap.servers": kafka.bootstrap_servers}


def _common(kafka: KafkaSettings) -> KafkaConfig:
    return {k: v for k, v in kafka.client_properties().items() if not k.startswith(CONSUMER_ONLY)}


def _hooks(config: KafkaConfig, watch: ClientWatch) -> KafkaConfig:
    return {**config, "error_cb": watch.on_error, "stats_cb": watch.on_stats}


def make_consumer(settings: ServiceSettings, watch: ClientWatch, **callbacks: Any) -> Consumer:
    config = _hooks(consumer_config(settings), watch) | callbacks
    return _create(Consumer, config, settings.kafka)


def make_producer(settings: ServiceSettings, watch: ClientWatch, batch_size: int) -> Producer:
    return _create(Producer, _hooks(producer_config(settings, batch_size), watch), settings.kafka)


def make_admin(kafka: KafkaSettings, watch: ClientWatch) -> AdminClient:
    config = {**admin_config(kafka), "error_cb": watch.on_error}
    return _create(AdminClient, config, kafka)


def _create(cls: Any, config: KafkaConfig, kafka: KafkaSettings) -> Any:
    """A client, or a ConfigError naming the bad property (never echoing a secret)."""
    try:
        return cls(config, logger=logging.getLogger(KAFKA_LOGGER))
    except KafkaException as exc:
        raise ConfigError(f"kafka.properties: {redact(str(exc.args[0].str()), kafka)}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"kafka.properties: {redact(str(exc), kafka)}") from None


def redact(text: str, kafka: KafkaSettings) -> str:
    """``text`` with every property value replaced by ``***``."""
    for value in kafka.client_properties().values():
        if len(value) >= 3:
            text = text.replace(value, "***")
    return text
