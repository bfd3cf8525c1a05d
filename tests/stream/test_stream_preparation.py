"""Preparation inside the service, against the real broker: in a thread of the service
(``preparation.processes = 0``, the way for one core), and in worker processes, one of
which is SIGKILLed mid-stream (replaced, its batch redone, nothing lost or repeated)."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from kafka_helpers import free_port, read_topic
from stream_support import Setup, report

pytestmark = pytest.mark.kafka


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _preparation_workers(service: int) -> list[int]:
    """The workers: children of the service's multiprocessing fork server."""
    for child in _children(service):
        try:
            if b"forkserver" in Path(f"/proc/{child}/cmdline").read_bytes():
                return _children(child)
        except OSError:
            continue
    return []


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return answer.read().decode()


def test_preparation_in_a_thread_of_the_service(kafka, demo_alerts, models_dir, tmp_path):
    setup = Setup(kafka.bootstrap, tmp_path, models_dir, partitions=2)
    setup.extra = {"preparation": {"processes": 0}}
    sent = setup.replay(demo_alerts)
    service = setup.start(idle=4)
    assert service.wait(300) == 0, service.log_text()[-3000:]
    assert "preparation: in a thread of this process" in service.log_text()
    assert not _preparation_workers(service.proc.pid)
    scored = read_topic(kafka.bootstrap, setup.output_topic)
    dead = read_topic(kafka.bootstrap, setup.dead_letter_topic)
    assert (len(scored), len(dead), sent) == (29, 3, 32)  # a JPEG prototype, 2 damaged


def test_a_preparation_worker_killed_mid_stream(kafka, some_alerts, models_dir, tmp_path):
    folder, expected = some_alerts
    setup = Setup(kafka.bootstrap, tmp_path, models_dir, partitions=2)
    setup.extra = {"preparation": {"processes": 2}}
    setup.metrics_port = free_port()
    setup.replay(folder)
    service = setup.start()
    setup.wait_for_outputs(100)
    workers = _preparation_workers(service.proc.pid)
    assert len(workers) == 2, workers
    os.kill(workers[0], signal.SIGKILL)
    seen = setup.wait_for_candids(expected)
    deadline = time.monotonic() + 30
    while len(now := _preparation_workers(service.proc.pid)) != 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert workers[0] not in now and len(now) == 2, now  # replaced
    text = _metrics(setup.metrics_port)
    time.sleep(2)  # let a duplicate, were there one, reach the topic
    seen = setup.candids()
    dead = read_topic(kafka.bootstrap, setup.dead_letter_topic)
    assert service.terminate() == 0, service.log_text()[-3000:]
    line = report("a preparation worker SIGKILLed", seen, expected, len(dead))
    assert expected - set(seen) == set() and max(seen.values()) == 1 and not dead, line
    assert "btsbot_preparation_worker_deaths_total 1.0" in text
    assert "btsbot_preparation_workers 2.0" in text
