"""Start-up checks against the brokers, before a single alert is consumed.

- The brokers answer: while they do not (nothing listens yet, a rolling restart), wait
  with backoff, not ready, one log line per interval; give up after
  ``kafka.startup_timeout_s``. Credentials refused, an untrusted certificate or a name
  that does not resolve will not fix themselves: stop at once and say what to set.
- Every topic the service writes (output, dead-letter, compact) exists, or the brokers
  create topics on first use, and we may write it; its ``max.message.bytes`` is read so
  that outputs too large for it become dead letters instead of producer errors.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AclOperation, AdminClient, ClusterMetadata, ConfigResource

from btsbot_stream.config import KafkaSettings
from btsbot_stream.stream.exceptions import PreflightError
from btsbot_stream.stream.health import Health
from btsbot_stream.stream.limits import BROKER_DEFAULT, TopicLimits
from btsbot_stream.stream.watch import ClientWatch

log = logging.getLogger(__name__)
REQUEST_TIMEOUT_S = 10.0
LOG_EVERY_S = 30.0


def written_topics(kafka: KafkaSettings) -> list[str]:
    topics = [kafka.output_topic, kafka.dead_letter_topic]
    return topics + ([kafka.compact_topic] if kafka.compact_topic else [])


def preflight(
    kafka: KafkaSettings,
    admin: AdminClient,
    watch: ClientWatch,
    health: Health,
    stop: threading.Event,
) -> TopicLimits:
    """Wait for the brokers, check the written topics; raise PreflightError with the fix."""
    metadata = _wait_for_brokers(kafka, admin, watch, health, stop)
    topics = written_topics(kafka)
    missing = [t for t in topics if t not in metadata.topics or metadata.topics[t].error]
    broker = _broker_config(admin, metadata)
    default = int(broker.get("message.max.bytes", BROKER_DEFAULT))
    if missing:
        auto = broker.get("auto.create.topics.enable")
        if auto == "false":
            raise PreflightError(
                f"topic(s) {', '.join(missing)} do not exist and the brokers do not create "
                "topics on first use (auto.create.topics.enable=false): create them "
                "(kafka-topics.sh --create --topic NAME ...) or fix kafka.output_topic / "
                "dead_letter_topic / compact_topic"
            )
        log.info(
            "topic(s) %s do not exist yet: the brokers create them on first use%s",
            ", ".join(missing),
            "" if auto else " (probably: broker config unreadable)",
        )
    existing = [t for t in topics if t not in missing]
    _check_writable(admin, existing)
    limits = TopicLimits(_topic_limits(admin, existing), default)
    log.info(
        "writing to %s; max.message.bytes %s (others %d)", ", ".join(topics), limits.limits, default
    )
    return limits


def _wait_for_brokers(
    kafka: KafkaSettings,
    admin: AdminClient,
    watch: ClientWatch,
    health: Health,
    stop: threading.Event,
) -> ClusterMetadata:
    started = time.monotonic()
    delay, logged, attempts = 1.0, 0.0, 0
    while True:
        attempts += 1
        try:
            return admin.list_topics(timeout=REQUEST_TIMEOUT_S)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
        admin.poll(0)  # serve error_cb and log lines
        if watch.config_error is not None:
            raise PreflightError(explain(watch.config_error, kafka))
        waited = time.monotonic() - started
        detail = f"no broker answers at {kafka.bootstrap_servers} ({error.str()})"
        health.set("brokers_unreachable", detail)
        if waited >= kafka.startup_timeout_s:
            raise PreflightError(
                f"{detail} for {waited:.0f} s: check kafka.bootstrap_servers, that the "
                "brokers run and that this host may reach them (and security.protocol)"
            )
        if time.monotonic() - logged >= LOG_EVERY_S:
            log.warning("%s; waiting (attempt %d, %.0f s so far)", detail, attempts, waited)
            logged = time.monotonic()
        if stop.wait(delay):
            raise PreflightError("stopped while waiting for the brokers")
        delay = min(delay * 2, 10.0)


def explain(error: KafkaError, kafka: KafkaSettings) -> str:
    """The start-up error message for a client error that waiting will not fix."""
    text = error.str()
    where = f"brokers at {kafka.bootstrap_servers}"
    lowered = text.lower()
    if "sasl" in lowered or error.code() == KafkaError._AUTHENTICATION:
        return (
            f"SASL authentication failed at {where}: {text}. Check kafka.properties "
            "sasl.username and sasl.password (e.g. BTSBOT_KAFKA__PROPERTIES__sasl.password) "
            "and sasl.mechanism"
        )
    if "certificate" in lowered:
        return (
            f"the TLS certificate of the {where} is not trusted: {text}. Set "
            "kafka.properties ssl.ca.location to the CA that signed it (and keep "
            "ssl.endpoint.identification.algorithm=https: the name must match)"
        )
    if error.code() == KafkaError._SSL:
        return (
            f"TLS handshake with the {where} failed: {text}. Check that security.protocol "
            "(SSL / SASL_SSL) matches the listener, and the ssl.* properties"
        )
    return f"cannot reach the {where}: {text}. Check kafka.bootstrap_servers"


def _broker_config(admin: AdminClient, metadata: ClusterMetadata) -> dict[str, str]:
    broker_id = str(
        metadata.controller_id if metadata.controller_id >= 0 else next(iter(metadata.brokers))
    )
    try:
        (future,) = admin.describe_configs([ConfigResource("broker", broker_id)]).values()
        return {name: entry.value for name, entry in future.result(REQUEST_TIMEOUT_S).items()}
    except KafkaException as exc:  # e.g. no DescribeConfigs permission on the cluster
        log.warning("cannot read the broker configuration (%s): assuming defaults", exc)
        return {}


def _topic_limits(admin: AdminClient, topics: list[str]) -> dict[str, int]:
    if not topics:
        return {}
    limits = {}
    resources = [ConfigResource("topic", t) for t in topics]
    for resource, future in admin.describe_configs(resources).items():
        try:
            entries = future.result(REQUEST_TIMEOUT_S)
            limits[resource.name] = int(entries["max.message.bytes"].value)
        except (KafkaException, KeyError) as exc:
            log.warning(
                "cannot read %s's max.message.bytes (%s): the broker default applies",
                resource.name,
                exc,
            )
    return limits


def _check_writable(admin: AdminClient, topics: list[str]) -> None:
    if not topics:
        return
    described = admin.describe_topics(TopicCollection(topics), include_authorized_operations=True)
    for topic, future in described.items():
        try:
            operations = future.result(REQUEST_TIMEOUT_S).authorized_operations
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                raise PreflightError(_not_writable(topic)) from None
            log.warning("cannot describe topic %s (%s)", topic, error)
            continue
        if operations is not None and not {AclOperation.WRITE, AclOperation.ALL} & set(operations):
            raise PreflightError(_not_writable(topic))


def _not_writable(topic: str) -> str:
    return (
        f"not authorized to write topic {topic}: grant this principal WRITE on it "
        "(kafka-acls.sh --add --allow-principal User:NAME --operation Write --topic ...)"
    )
