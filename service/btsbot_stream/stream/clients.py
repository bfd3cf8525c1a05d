"""librdkafka configurations of our consumer and producer.

User properties (``kafka.properties``: SASL, SSL, tuning) apply to both clients; the
few we rely on for correctness are set last and cannot be overridden.
"""

from __future__ import annotations

import os
import socket

from btsbot_stream.config import ServiceSettings

KafkaConfig = dict[str, str | int | float | bool]


def consumer_config(settings: ServiceSettings) -> KafkaConfig:
    kafka = settings.kafka
    config: KafkaConfig = {
        "auto.offset.reset": kafka.auto_offset_reset,
        "statistics.interval.ms": 5000,  # consumer lag per partition, for the metrics
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
        }
    )
    return config


def default_transactional_id(settings: ServiceSettings) -> str:
    # Stable across restarts of the same host/pod, so a restart aborts the transaction
    # a crashed run left open instead of waiting for transaction.timeout.ms.
    host = os.environ.get("HOSTNAME") or socket.gethostname()
    return f"{settings.kafka.group_id}-{host}"


def producer_config(settings: ServiceSettings) -> KafkaConfig:
    kafka, delivery = settings.kafka, settings.delivery
    config: KafkaConfig = {
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.max.bytes": 10 * 1024 * 1024,
        "queue.buffering.max.kbytes": 512 * 1024,
        **kafka.client_properties(),
    }
    config.update(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "enable.idempotence": True,  # no duplicates from producer retries
            "acks": "all",
        }
    )
    if delivery.mode == "exactly-once":
        config["transactional.id"] = delivery.transactional_id or default_transactional_id(settings)
        config["transaction.timeout.ms"] = 60000
    return config
