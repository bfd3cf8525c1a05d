"""The decision stage against the real broker: scored alerts of many objects interleaved
over several partitions; crashes, a second instance, a broker restart. Every expected
(object, policy) event appears exactly once (read_committed) with the trigger the
published rules give; the state restored from the changelog equals the state before the
kill."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from decide_support import DecideSetup, ScoredInput, produce, scored_inputs
from kafka_helpers import free_port
from local_kafka import LocalKafka
from stream_support import REPORTS
from tests.decisions.reference import reference_fires

from btsbot_stream import config
from btsbot_stream.stream.decide import readback

pytestmark = pytest.mark.kafka
OBJECTS = 70


@pytest.fixture(scope="module")
def inputs(demo_alerts: Path, models_dir: Path) -> list[ScoredInput]:
    return scored_inputs(demo_alerts, models_dir, OBJECTS)


@pytest.fixture(scope="module")
def expected(inputs: list[ScoredInput]) -> dict[tuple[str, str], int]:
    """(objectId, policy) -> trigger candid, from the plain implementation of the rules."""
    fires = reference_fires([m.row for m in inputs])
    policies = Counter(f[1] for f in fires)
    assert all(policies[p] >= 3 for p in ("bts_p1", "bts_p2", "prod_p1", "prod_p2")), policies
    assert len({f[0] for f in fires}) < OBJECTS, "some objects must never fire"
    return {(obj, policy): candid for obj, policy, candid, _, _ in fires}


def with_duplicates(inputs: list[ScoredInput]) -> list[ScoredInput]:
    """Every seventh alert sent again a few messages later (at-least-once upstream)."""
    out = list(inputs)
    for n, message in enumerate(inputs[::7]):
        out.insert(min(7 * n + 5 + n, len(out)), message)
    return out


def check(name: str, events: list[dict], expected: dict[tuple[str, str], int]) -> None:
    counts = Counter((e["objectId"], e["policy"]) for e in events)
    missing = set(expected) - set(counts)
    repeated = sum(n - 1 for n in counts.values())
    unexpected = len(set(counts) - set(expected))
    line = (
        f"decide, {name}: {len(expected)} expected events, {len(events)} read, "
        f"{len(missing)} missing, {repeated} repeated, {unexpected} unexpected"
    )
    REPORTS.append(line)
    assert set(counts) == set(expected) and repeated == 0, line
    triggers = {(e["objectId"], e["policy"]): e["candid"] for e in events}
    assert triggers == expected


def _background(target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def test_kill_restart_join_leave_each_event_once(kafka, inputs, expected, tmp_path):
    setup = DecideSetup(kafka.bootstrap, tmp_path, partitions=3)
    messages = with_duplicates(inputs)
    producing = _background(produce, kafka.bootstrap, setup.scored_topic, messages, 40.0)
    first = setup.start("a")
    deadline = time.monotonic() + 120
    while len(setup.events()) < len(expected) // 4:
        assert time.monotonic() < deadline, first.log_text()[-3000:]
        time.sleep(0.5)
    first.kill()  # mid-stream, mid-transaction
    again = setup.start("a")  # same state folder
    second = setup.start("b")  # joins: partitions move, their state with them
    for instance in (again, second):
        instance.wait_for_log(f"assigned ['{setup.scored_topic}[", timeout=120)
    producing.join(120)
    assert not producing.is_alive()
    time.sleep(2)
    assert second.terminate() == 0, second.log_text()[-3000:]  # leaves: its partitions go back
    events = setup.wait_for_events(set(expected))
    time.sleep(3)  # let a repeat, were there one, reach the topic
    events = setup.events()
    assert again.terminate() == 0, again.log_text()[-3000:]
    assert "stopped cleanly" in again.log_text()
    check("SIGKILL, restart, second instance joins and leaves, duplicated inputs", events, expected)
    assert again.log_text().count("assigned [") >= 2, "the partitions never moved"


def test_restored_state_equals_the_state_before_the_kill(kafka, inputs, expected, tmp_path):
    setup = DecideSetup(kafka.bootstrap, tmp_path, partitions=3)
    produce(kafka.bootstrap, setup.scored_topic, inputs, None)
    first = setup.start("a")
    setup.wait_for_events(set(expected))
    time.sleep(2)  # one more checkpoint: everything consumed is committed
    first.kill()
    settings = config.load(setup.config("a"))
    before = {o.object_id: o for o in readback.from_state_dir(settings)}
    committed = {
        o.object_id: o
        for o in readback.from_changelog(
            {"bootstrap.servers": kafka.bootstrap}, readback.changelog_topic(settings)
        )
    }
    assert len(before) == OBJECTS
    assert committed == before
    # A new instance on an empty folder (a pod on another node) rebuilds the stores.
    fresh = setup.start("fresh", idle=4)
    assert fresh.wait(180) == 0, fresh.log_text()[-3000:]
    assert "state restored in" in fresh.log_text()
    restored = {o.object_id: o for o in readback.from_state_dir(config.load(setup.config("fresh")))}
    assert restored == before
    # ... and decided nothing again.
    check("state restored on a fresh instance", setup.events(), expected)
    # `btsbot-stream object` shows one object's state, from the changelog.
    some = next(o for o in before.values() if o.state["fired"])
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "btsbot_stream",
            "object",
            some.object_id,
            "--config",
            str(setup.config("a")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    printed = json.loads(shown.stdout)
    assert [a["candid"] for a in printed["alerts"]] == [row[0] for row in some.state["alerts"]]
    assert set(printed["fired"]) == set(some.state["fired"])


def test_broker_restart_mid_stream(inputs, expected, tmp_path):
    broker = LocalKafka(port=free_port(), data_dir=tmp_path / "kafka").start(timeout=180)
    try:
        setup = DecideSetup(broker.bootstrap, tmp_path, partitions=3)
        half = len(inputs) // 2
        produce(broker.bootstrap, setup.scored_topic, inputs[:half], None)
        stage = setup.start("a")
        stage.wait_for_log(f"assigned ['{setup.scored_topic}[", timeout=120)
        time.sleep(3)
        broker.stop()
        time.sleep(3)
        broker.start(timeout=180)
        produce(broker.bootstrap, setup.scored_topic, inputs[half:], None)
        events = setup.wait_for_events(set(expected))
        time.sleep(3)
        events = setup.events()
        assert stage.terminate() == 0, stage.log_text()[-3000:]
        check("broker stopped and restarted", events, expected)
    finally:
        broker.stop()


def test_objects_silent_for_the_retention_are_evicted(kafka, inputs, tmp_path):
    setup = DecideSetup(kafka.bootstrap, tmp_path, partitions=1)
    old, new, newer = _three_objects(inputs)
    day, start = 86_400_000, 1_700_000_000_000
    produce(kafka.bootstrap, setup.scored_topic, old, None, timestamp_ms=start)
    stage = setup.start("a", idle=6, retention_days=60)
    stage.wait_for_log(f"assigned ['{setup.scored_topic}[", timeout=120)
    time.sleep(3)  # the old object is committed before the clock moves on
    produce(kafka.bootstrap, setup.scored_topic, new, None, timestamp_ms=start + 61 * day)
    time.sleep(3)
    produce(kafka.bootstrap, setup.scored_topic, newer, None, timestamp_ms=start + 62 * day)
    assert stage.wait(180) == 0, stage.log_text()[-3000:]
    settings = config.load(setup.config("a"))
    live = {
        o.object_id
        for o in readback.from_changelog(
            {"bootstrap.servers": kafka.bootstrap}, readback.changelog_topic(settings)
        )
    }
    assert live == {new[0].key, newer[0].key}, "the silent object was not evicted"


def _three_objects(inputs: list[ScoredInput]) -> list[list[ScoredInput]]:
    keys = list(dict.fromkeys(m.key for m in inputs))[:3]
    return [[m for m in inputs if m.key == key] for key in keys]
