"""The security path against a real broker's SASL_SSL listener (SCRAM-SHA-512 over TLS,
a CA made for the session): the service, ``replay`` and ``top`` work through librdkafka
properties (``kafka.properties`` for the service, ``-X`` for the tools); wrong
credentials or an untrusted certificate stop the service at start with a message that
says so; the password appears in no log or message."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka_helpers import ServiceProcess, unique, write_config

from btsbot_stream.stream.summary import read_to_end

pytestmark = pytest.mark.kafka

CLI = [sys.executable, "-m", "btsbot_stream"]
NON_SECRET = ("security.protocol", "sasl.mechanism", "sasl.username", "ssl.ca.location")


def _config(tmp: Path, broker, topics: dict[str, str], ca: Path | None = None) -> Path:
    """A service config whose kafka.properties hold everything but the password, which
    comes from the environment as an operator would pass it."""
    client = broker.client(ca=ca)
    return write_config(
        tmp / f"{unique('config')}.toml",
        kafka={
            "bootstrap_servers": broker.sasl_ssl,
            "group_id": unique("group"),
            "input_topics": [topics["input"]],
            "output_topic": topics["output"],
            "dead_letter_topic": topics["dead"],
            "properties": {k: client[k] for k in NON_SECRET},
        },
        engine={"models_dir": Path("models").resolve(), "device": "cpu", "batch_size": 64},
        observability={"metrics_port": 0},
    )


def _tool(args: list[str], broker) -> subprocess.CompletedProcess[str]:
    client = broker.client()
    properties = [a for k in (*NON_SECRET, "sasl.password") for a in ("-X", f"{k}={client[k]}")]
    return subprocess.run(
        [*CLI, *args, "--bootstrap-servers", broker.sasl_ssl, *properties],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def _topics() -> dict[str, str]:
    return {"input": unique("ztf_in"), "output": unique("scored"), "dead": unique("dlq")}


def test_service_replay_and_top_over_sasl_ssl(
    secure_kafka, demo_alerts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topics = _topics()
    replayed = _tool(
        ["replay", str(demo_alerts), "--topic", topics["input"], "--partitions", "2"], secure_kafka
    )
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 32 messages" in replayed.stderr
    monkeypatch.setenv("BTSBOT_KAFKA__PROPERTIES__sasl.password", secure_kafka.password)
    service = ServiceProcess(_config(tmp_path, secure_kafka, topics), tmp_path / "service.log", 15)
    try:
        assert service.wait(300) == 0, service.log_text()[-3000:]
    finally:
        if service.proc.poll() is None:
            service.kill()
    scored = read_to_end(secure_kafka.client(), topics["output"])
    dead = read_to_end(secure_kafka.client(), topics["dead"])
    assert len(scored) + len(dead) == 32 and len(dead) == 3
    shown = _tool(
        ["top", "--topic", topics["output"], "--dead-letter-topic", topics["dead"]], secure_kafka
    )
    assert shown.returncode == 0, shown.stderr
    assert "29 scored alerts" in shown.stdout and "3 dead letters" in shown.stdout
    for output in (
        service.log_text(),
        replayed.stdout,
        replayed.stderr,
        shown.stdout,
        shown.stderr,
    ):
        assert secure_kafka.password not in output


def _refused_start(broker, config: Path, password: str, log: Path) -> tuple[int | None, str]:
    env = {**os.environ, "BTSBOT_KAFKA__PROPERTIES__sasl.password": password}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*CLI, "run", "--config", str(config)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.monotonic() + 90
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        code = process.poll()
        if code is None:
            process.kill()
            process.wait(30)
    return code, log.read_text(errors="replace")


def test_wrong_credentials_stop_the_service_at_start(secure_kafka, tmp_path: Path) -> None:
    wrong = "not-" + secure_kafka.password
    config = _config(tmp_path, secure_kafka, _topics())
    code, log = _refused_start(secure_kafka, config, wrong, tmp_path / "wrong.log")
    assert code not in (None, 0), f"still running or exit 0 after 90 s:\n{log[-2000:]}"
    assert "authenticat" in log.lower(), log[-2000:]
    assert wrong not in log and secure_kafka.password not in log


def test_an_untrusted_certificate_stops_the_service_at_start(secure_kafka, tmp_path: Path):
    sys.path.insert(0, str(Path("deploy/kafka").resolve()))
    from local_kafka import make_test_tls

    other_ca, _ = make_test_tls(tmp_path / "other-ca")
    config = _config(tmp_path, secure_kafka, _topics(), ca=other_ca)
    code, log = _refused_start(secure_kafka, config, secure_kafka.password, tmp_path / "ca.log")
    assert code not in (None, 0), f"still running or exit 0 after 90 s:\n{log[-2000:]}"
    assert "certificate" in log.lower(), log[-2000:]
    assert secure_kafka.password not in log
