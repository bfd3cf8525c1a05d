"""Connecting the follow-up tools to Kafka: client properties, clear errors, start
positions by time, lag per partition.

Properties follow the service's mechanism: the ``[kafka]`` table of a TOML/YAML config
file (``bootstrap_servers``, ``[kafka.properties]`` with any librdkafka property, e.g.
SASL/SSL), then ``-X key=value`` pairs over it.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

from btsbot_stream.config import read_file
from btsbot_stream.errors import ConfigError
from btsbot_stream.follow.exceptions import (
    BrokerUnreachable,
    FollowError,
    NotAuthorized,
    UnknownTopic,
)

METADATA_TIMEOUT_S = 15.0
_UNREACHABLE = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TIMED_OUT,
    KafkaError._RESOLVE,
}
_UNKNOWN = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC}
_DENIED = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError._AUTHENTICATION,
    KafkaError._SSL,
}


PROPERTY_ENV_PREFIX = "BTSBOT_KAFKA__PROPERTIES__"  # as the service reads them


def client_properties(
    config_file: Path | None, pairs: Sequence[str], environ: Mapping[str, str] = os.environ
) -> tuple[str | None, dict[str, str]]:
    """(bootstrap servers from the file or None, librdkafka properties).

    Properties come from the file's ``[kafka.properties]``, then environment variables
    ``BTSBOT_KAFKA__PROPERTIES__<property>`` (how the service takes secrets, e.g.
    ``sasl.password`` from a Kubernetes Secret), then ``-X key=value``: later wins.
    """
    bootstrap = None
    properties: dict[str, str] = {}
    if config_file is not None:
        kafka = read_file(config_file).get("kafka") or {}
        if not isinstance(kafka, Mapping):
            raise ConfigError(f"{config_file}: [kafka] must be a table")
        bootstrap = kafka.get("bootstrap_servers")
        props = kafka.get("properties") or {}
        if not isinstance(props, Mapping):
            raise ConfigError(f"{config_file}: [kafka.properties] must be a table")
        properties.update({str(k): str(v) for k, v in props.items()})
    for name, value in environ.items():
        if name.startswith(PROPERTY_ENV_PREFIX):
            properties[name[len(PROPERTY_ENV_PREFIX) :]] = value
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"-X {pair!r} is not KEY=VALUE (e.g. -X security.protocol=SSL)")
        properties[key.strip()] = value
    return bootstrap, properties


def classify(error: KafkaError, what: str, bootstrap: str) -> FollowError:
    """The follow-up error for a librdkafka error, with what to do about it."""
    code = error.code()
    if code in _UNREACHABLE:
        return BrokerUnreachable(
            f"cannot reach a Kafka broker at {bootstrap} ({error.str()}): check "
            "--bootstrap-servers, the network, and security.protocol (SSL/SASL listeners)"
        )
    if code in _UNKNOWN:
        return UnknownTopic(
            f"{what} does not exist on {bootstrap}: check the name with your operator "
            "(btsbot-stream top lists what the service publishes)"
        )
    if code in _DENIED:
        return NotAuthorized(
            f"{what}: the broker refused access ({error.name()}: {error.str()}); check the "
            "SASL/SSL properties (-X or [kafka.properties]) and ask the operator for read "
            "ACLs on the topic and your consumer group"
        )
    return FollowError(f"{what}: Kafka error {error.name()}: {error.str()}")


def fail(error: KafkaError, what: str, bootstrap: str) -> NoReturn:
    raise classify(error, what, bootstrap)


def check_topics(consumer: Consumer, topics: Iterable[str], bootstrap: str) -> dict[str, int]:
    """Partitions of each topic; raises the clear error when one cannot be read."""
    out = {}
    for topic in topics:
        try:
            meta = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S)
        except KafkaException as exc:
            fail(exc.args[0], f"topic {topic!r}", bootstrap)
        info = meta.topics.get(topic)
        if info is None:
            raise UnknownTopic(f"topic {topic!r} does not exist on {bootstrap}")
        if info.error is not None:
            fail(info.error, f"topic {topic!r}", bootstrap)
        if not info.partitions:
            raise UnknownTopic(f"topic {topic!r} has no partitions on {bootstrap}")
        out[topic] = len(info.partitions)
    return out


def offsets_at(
    consumer: Consumer, partitions: Sequence[TopicPartition], since: datetime
) -> list[TopicPartition]:
    """Each partition positioned at its first message published at or after ``since``
    (the end, when nothing that recent exists)."""
    ms = int(since.timestamp() * 1000)
    query = [TopicPartition(tp.topic, tp.partition, ms) for tp in partitions]
    found = consumer.offsets_for_times(query, timeout=METADATA_TIMEOUT_S)
    return [
        TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
        for tp in found
    ]


def lag_by_partition(consumer: Consumer) -> dict[tuple[str, int], int]:
    """Messages behind the high watermark, per assigned partition (last fetch's view)."""
    out: dict[tuple[str, int], int] = {}
    try:
        assigned = consumer.assignment()
        positions = consumer.position(assigned) if assigned else []
    except KafkaException:
        return out
    for tp in positions:
        low, high = consumer.get_watermark_offsets(tp, cached=True) or (-1, -1)
        if high < 0:
            continue
        position = tp.offset if tp.offset >= 0 else low
        out[(tp.topic, tp.partition)] = max(0, high - position) if position >= 0 else high
    return out


def consumer_settings(
    bootstrap: str, properties: Mapping[str, str], **fixed: Any
) -> dict[str, Any]:
    """User properties first; the ones the tools rely on last, so they win. librdkafka's
    own log lines go through Python logging instead of straight to stderr."""
    return {
        **properties,
        "bootstrap.servers": bootstrap,
        "logger": logging.getLogger("btsbot_stream.librdkafka"),
        **fixed,
    }


def assigned_consumer(
    bootstrap: str, properties: Mapping[str, str], purpose: str, **fixed: Any
) -> Consumer:
    """A consumer that is only ever assigned partitions: it never joins a group and
    never commits (librdkafka still wants a group id: a throwaway one, named after
    ``purpose`` so the broker's logs say who it was)."""
    return Consumer(
        consumer_settings(
            bootstrap,
            properties,
            **{
                "group.id": f"{purpose}-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                **fixed,
            },
        )
    )
