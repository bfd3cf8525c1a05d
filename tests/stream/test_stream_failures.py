"""Crashes, restarts and rebalances against the real broker: nothing is lost."""

from __future__ import annotations

import time

import pytest
from kafka_helpers import committed, free_port, read_topic
from local_kafka import LocalKafka
from stream_support import Setup, report

pytestmark = pytest.mark.kafka


def test_sigkill_three_times_loses_nothing(kafka, many_alerts, models_dir, tmp_path):
    folder, expected = many_alerts
    setup = Setup(kafka.bootstrap, tmp_path, models_dir, partitions=4)
    replaying = setup.replay_in_background(folder, rate=600)
    for round, progress in enumerate((400, 1200, 2000)):
        service = setup.start(f"run{round}")
        setup.wait_for_outputs(progress)
        service.kill()
    replaying.join(120)
    final = setup.start("final")
    seen = setup.wait_for_candids(expected)
    assert final.terminate() == 0
    line = report("at-least-once, 3 x SIGKILL", seen, expected)
    assert expected - set(seen) == set(), line


def test_exactly_once_across_a_kill(kafka, many_alerts, models_dir, tmp_path):
    folder, expected = many_alerts
    setup = Setup(kafka.bootstrap, tmp_path, models_dir, partitions=2)
    setup.delivery = {"mode": "exactly-once", "transactional_id": "eos-test"}
    setup.replay(folder)
    service = setup.start("first")
    setup.wait_for_outputs(1000)
    service.kill()
    again = setup.start("second")
    seen = setup.wait_for_candids(expected)
    time.sleep(2)  # let a duplicate, were there one, reach the topic
    seen = setup.candids()
    assert again.terminate() == 0
    line = report("exactly-once, 1 x SIGKILL, read_committed", seen, expected)
    assert set(seen) == expected, line
    assert max(seen.values()) == 1, line


def test_broker_restart_mid_stream(many_alerts, models_dir, tmp_path):
    folder, expected = many_alerts
    broker = LocalKafka(port=free_port(), data_dir=tmp_path / "kafka").start(timeout=180)
    try:
        setup = Setup(broker.bootstrap, tmp_path, models_dir, partitions=2)
        setup.replay(folder)
        service = setup.start()
        setup.wait_for_outputs(800)
        broker.stop()
        time.sleep(3)
        broker.start(timeout=180)
        seen = setup.wait_for_candids(expected)
        assert service.terminate() == 0, service.log_text()[-3000:]
        line = report("broker stopped and restarted", seen, expected)
        assert expected - set(seen) == set(), line
    finally:
        broker.stop()


def test_two_instances_share_then_one_takes_over(kafka, many_alerts, models_dir, tmp_path):
    folder, expected = many_alerts
    setup = Setup(kafka.bootstrap, tmp_path, models_dir, partitions=4)
    setup.replay(folder)
    first, second = setup.start("a"), setup.start("b")
    deadline = time.monotonic() + 60
    while not all(_assigned(s.log_text()) for s in (first, second)):
        assert time.monotonic() < deadline, "both instances never held partitions at once"
        time.sleep(0.3)
    setup.wait_for_outputs(600)
    first.kill()
    seen = setup.wait_for_candids(expected)
    assert second.terminate() == 0
    took_over = second.log_text().count("assigned [")
    line = report("two instances, one killed", seen, expected)
    assert took_over >= 2, "the survivor was never re-assigned the dead one's partitions"
    assert expected - set(seen) == set(), line


def _assigned(log: str) -> bool:
    lines = [ln for ln in log.splitlines() if "assigned [" in ln]
    return bool(lines) and "[]" not in lines[-1].split("assigned ")[1]


def test_sigterm_commits_and_restart_resumes(kafka, many_alerts, models_dir, tmp_path):
    folder, expected = many_alerts
    setup = Setup(kafka.bootstrap, tmp_path, models_dir, partitions=1)
    setup.replay(folder)
    service = setup.start("first")
    setup.wait_for_outputs(1000)
    assert service.terminate(timeout=60) == 0
    assert "stopped cleanly" in service.log_text()
    done = committed(kafka.bootstrap, setup.group, setup.input_topic, 1)[0]
    published = setup.outputs_written()
    # every input up to the commit was published, and nothing beyond it
    assert done == published, (done, published)
    assert 1000 <= done < len(expected)
    again = setup.start("second")
    seen = setup.wait_for_candids(expected)
    assert again.terminate() == 0
    line = report("SIGTERM then restart", seen, expected)
    assert set(seen) == expected and max(seen.values()) == 1, line


def test_backpressure_pauses_partitions_and_loses_nothing(kafka, demo_alerts, models_dir, tmp_path):
    setup = Setup(kafka.bootstrap, tmp_path, models_dir, partitions=2)
    setup.replay(demo_alerts)  # 32 packets: 29 scoreable, 3 dead letters
    service = setup.start(idle=4, max_in_flight=16)  # far below one batch (64)
    assert service.wait(300) == 0, service.log_text()[-3000:]
    log = service.log_text()
    assert "pausing" in log, "the in-flight bound never paused the partitions"
    seen = setup.candids()
    assert len(seen) == 29 and max(seen.values()) == 1
    dead = read_topic(kafka.bootstrap, setup.dead_letter_topic)
    assert len(dead) == 3
