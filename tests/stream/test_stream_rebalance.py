"""Incremental rebalancing against the real broker: cooperative-sticky and KIP-848
(``group.protocol=consumer``), at-least-once and exactly-once. Three instances join and
leave while alerts flow in; nothing may be lost, and nothing duplicated under
exactly-once (read_committed)."""

from __future__ import annotations

import re
import time

import pytest
from kafka_helpers import ServiceProcess, read_topic
from stream_support import Setup, report

pytestmark = pytest.mark.kafka

FAST_FAILOVER = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"}
PROTOCOLS = {
    "cooperative-sticky": {"partition.assignment.strategy": "cooperative-sticky", **FAST_FAILOVER},
    # KIP-848: the assignor and the timeouts live on the broker (group.consumer.*)
    "KIP-848": {"group.protocol": "consumer"},
}


@pytest.mark.parametrize("mode", ["at-least-once", "exactly-once"])
@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_three_instances_join_and_leave_mid_stream(
    kafka, some_alerts, models_dir, tmp_path, protocol, mode
):
    folder, expected = some_alerts
    setup = Setup(kafka.bootstrap, tmp_path, models_dir, partitions=6)
    setup.properties = PROTOCOLS[protocol]
    setup.delivery = {"mode": mode}
    files = sorted(folder.glob("*.avro"))
    # Input comes in three parts, each begun right before members join, and slow enough
    # (~15 s each) that every join and leave happens with alerts flowing and waiting in
    # the members' pipelines.
    parts = [files[i::3] for i in range(3)]

    def start(name: str) -> ServiceProcess:
        # exactly-once: one transactional.id per instance, or they would fence each other
        return setup.start(name, transactional_id=f"{setup.group}-{name}")

    replaying = [setup.replay_in_background(parts[0], rate=40)]
    a = start("a")
    setup.wait_for_outputs(30)
    replaying.append(setup.replay_in_background(parts[1], rate=25))
    b, c = start("b"), start("c")
    _wait_until_holding(b, c)
    assert b.terminate() == 0, b.log_text()[-3000:]  # leaves: a and c take over its share
    replaying.append(setup.replay_in_background(parts[2], rate=25))
    b2 = start("b2")
    _wait_until_holding(b2)
    assert a.terminate() == 0, a.log_text()[-3000:]
    for thread in replaying:
        thread.join(120)
    seen = setup.wait_for_candids(expected)
    if mode == "exactly-once":
        time.sleep(2)  # let a duplicate, were there one, reach the topic
        seen = setup.candids()
    for survivor in (c, b2):
        assert survivor.proc.poll() is None, survivor.log_text()[-3000:]
        assert survivor.terminate() == 0
    dead = read_topic(kafka.bootstrap, setup.dead_letter_topic)
    line = report(f"{protocol}, {mode}, 3 instances joining/leaving", seen, expected, len(dead))
    assert expected - set(seen) == set(), line
    assert not dead, line
    if mode == "exactly-once":
        assert max(seen.values()) == 1, line
    # incremental: when b and c came, a gave up some partitions and kept the others
    held = [int(n) for n in re.findall(r"revoked \[.*holding ([0-9]+)\)", a.log_text())]
    assert any(n > 0 for n in held), a.log_text()[-3000:]


def _wait_until_holding(*services: ServiceProcess, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not all(_holding(s.log_text()) for s in services):
        for s in services:
            assert s.proc.poll() is None, s.log_text()[-3000:]
        assert time.monotonic() < deadline, "an instance never got partitions"
        time.sleep(0.3)


def _holding(log: str) -> bool:
    counts = re.findall(r"holding ([0-9]+)\)", log)
    return bool(counts) and int(counts[-1]) > 0
