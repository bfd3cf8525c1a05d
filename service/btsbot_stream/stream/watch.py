"""What the Kafka clients tell us besides messages: errors (``error_cb``) and statistics
(``stats_cb``), turned into log lines that do not flood, ``/readyz`` causes and metrics.

- Client errors go to the ``btsbot_stream.kafka`` logger, whose repeat filter lets one
  line per interval through with a count (``logs.RepeatFilter``).
- Reachability: a client with no broker connection up (statistics every 2 s, or an
  ``_ALL_BROKERS_DOWN`` error at once) makes the service not ready until one is up again.
- Group: the consumer is ready once it has joined (a rebalance callback ran, or the
  group is up with nothing to assign: more members than partitions, no matching topic).
"""

from __future__ import annotations

import json
import logging
from contextlib import suppress
from typing import Any

from confluent_kafka import KafkaError

from btsbot_stream import metrics
from btsbot_stream.logs import KAFKA_LOGGER
from btsbot_stream.stream.health import Health

kafka_log = logging.getLogger(KAFKA_LOGGER)
STATS_INTERVAL_MS = 2000
# Join states of a member that is not in the middle of a rebalance.
SETTLED_JOIN_STATES = {"steady", "init", "wait-metadata"}
# Errors that waiting will not fix (credentials, TLS): the preflight names them and stops.
CONFIG_ERRORS = {
    getattr(KafkaError, name, None)
    for name in ("_AUTHENTICATION", "_SSL", "SASL_AUTHENTICATION_FAILED")
} - {None}


def any_broker_up(stats: dict[str, Any]) -> bool:
    """Whether a client's statistics show a connection up to a broker (not only to the
    bootstrap address)."""
    brokers = stats.get("brokers", {}).values()
    return any(b.get("state") == "UP" and b.get("nodeid", -1) >= 0 for b in brokers)


class Connectivity:
    """Brokers reachable by each client, and the consumer's group membership (``grouped``:
    a client only ever assigned partitions, as the scanning page's, joins none)."""

    def __init__(self, health: Health, grouped: bool = True) -> None:
        self._health = health
        self.brokers_up: dict[str, bool] = {}
        self.joined = not grouped
        self._settled_reports = 0

    def reachable(self, client: str, up: bool) -> None:
        self.brokers_up[client] = up
        self._update()

    def rebalanced(self, joined: bool = True) -> None:
        self.joined = joined
        self._settled_reports = 0
        self._update()

    def group_state(self, cgrp: dict[str, Any]) -> None:
        settled = cgrp.get("state") == "up" and cgrp.get("join_state") in SETTLED_JOIN_STATES
        self._settled_reports = self._settled_reports + 1 if settled else 0
        if self._settled_reports >= 2 and not self.joined:
            self.joined = True  # up with nothing assigned to us: joined all the same
            self._update()

    def _update(self) -> None:
        down = sorted(client for client, up in self.brokers_up.items() if not up)
        if down:
            self._health.set("brokers_unreachable", f"no broker connection up ({', '.join(down)})")
        else:
            self._health.clear("brokers_unreachable")
        if self.joined:
            self._health.clear("not_joined")
        else:
            self._health.set("not_joined", "the consumer has not joined its group yet")


class ClientWatch:
    """``error_cb`` and ``stats_cb`` of one client."""

    def __init__(self, client: str, connectivity: Connectivity | None = None) -> None:
        self.client = client
        self._connectivity = connectivity
        self.fatal: KafkaError | None = None
        self.config_error: KafkaError | None = None  # credentials, TLS

    def on_error(self, error: KafkaError) -> None:
        code = error.code()
        if error.fatal():
            self.fatal = error
        if code in CONFIG_ERRORS:
            self.config_error = error
        if code == KafkaError._ALL_BROKERS_DOWN and self._connectivity is not None:
            self._connectivity.reachable(self.client, False)
        if code != KafkaError._TRANSPORT:  # librdkafka's own FAIL line says it already
            kafka_log.error("%s: %s", self.client, error.str())

    def on_stats(self, stats_json: str) -> None:
        stats = json.loads(stats_json)
        if self._connectivity is not None:
            self._connectivity.reachable(self.client, any_broker_up(stats))
            if "cgrp" in stats:
                self._connectivity.group_state(stats["cgrp"])
        for topic, info in stats.get("topics", {}).items():
            for partition, p in info.get("partitions", {}).items():
                if partition != "-1" and p.get("consumer_lag", -1) >= 0:
                    metrics.CONSUMER_LAG.labels(topic, partition).set(p["consumer_lag"])


def forget_lag(tps: list[tuple[str, int]]) -> None:
    for topic, partition in tps:
        with suppress(KeyError):  # no stats arrived for it yet
            metrics.CONSUMER_LAG.remove(topic, str(partition))
