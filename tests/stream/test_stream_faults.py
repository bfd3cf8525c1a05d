"""Faults around the stream, against the real broker: hostile messages and a SIGKILL, the
schema registry away for 30 s, outputs over the topic's size limit, no broker at all,
and a broker certificate nobody trusts. Nothing is lost; the service never exits on its
own unless told what to fix."""

from __future__ import annotations

import io
import json
import re
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import fastavro
import pytest
from hostile_messages import hostile_stream
from kafka_helpers import ServiceProcess, create_topic, free_port, read_topic, unique, write_config
from registry_stub import RegistryStub
from stream_support import Setup, report

pytestmark = pytest.mark.kafka


def test_hostile_every_50th_and_a_sigkill(kafka, some_alerts, models_dir, tmp_path):
    folder, expected = some_alerts
    files, hostile = hostile_stream(sorted(folder.glob("*.avro")), 50, tmp_path)
    setup = Setup(kafka.bootstrap, tmp_path, models_dir, partitions=2)
    setup.delivery = {"mode": "exactly-once", "transactional_id": unique("hostile")}
    setup.replay(files)
    first = setup.start("first")
    setup.wait_for_outputs(400)
    first.kill()
    again = setup.start("again")
    seen = setup.wait_for_candids(expected)
    time.sleep(2)  # let a duplicate, were there one, reach the topics
    seen = setup.candids()
    dead = read_topic(kafka.bootstrap, setup.dead_letter_topic)
    assert again.proc.poll() is None, again.log_text()[-3000:]  # never exits on its own
    assert again.terminate() == 0
    line = report("hostile every 50th + SIGKILL, exactly-once", seen, expected, len(dead))
    assert expected - set(seen) == set(), line
    assert max(seen.values()) == 1, line
    # each hostile message exactly one dead letter, carrying it unchanged
    assert Counter(r.value for r in dead) == Counter(hostile), line
    two_records = [r for r in dead if r.headers.get("error.records") == b"2"]
    assert two_records, "the two-record containers are missing"
    for r in two_records:
        assert r.headers["error.failed_records"] == b"0:cutout_missing,1:cutout_missing"
    reasons = Counter(r.headers["error.reason"].decode() for r in dead)
    assert set(reasons) >= {"avro_truncated", "avro_malformed", "schema_unknown", "avro_empty"}


def _wire_messages(demo_alerts: Path, copies: int) -> tuple[list[bytes], dict[int, str], set[int]]:
    """The demo sample's good alerts in Confluent wire format under new candids; the
    schema id changes every 40 messages (as a registry serving many versions would), so
    the service keeps asking the registry for ids it has not seen."""
    packets = []
    for path in sorted(demo_alerts.rglob("*.avro")):
        if "odd" in path.parts:
            continue
        with path.open("rb") as fh:
            reader = fastavro.reader(fh)
            text = reader.metadata["avro.schema"]
            (record,) = reader
        if record["cutoutScience"]["stampData"][:2] != b"\xff\xd8":
            packets.append((text, fastavro.parse_schema(json.loads(text)), record))
    messages, schemas, candids = [], {}, set()
    for copy in range(copies):
        for index, (text, schema, record) in enumerate(packets):
            n = len(messages)
            schema_id = 1000 + 100 * (n // 40) + index
            schemas[schema_id] = text
            candid = record["candid"] % 10**16 + (copy + 200) * 10**16
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, schema, dict(record, candid=candid))
            messages.append(b"\x00" + schema_id.to_bytes(4, "big") + buf.getvalue())
            candids.add(candid)
    return messages, schemas, candids


def test_schema_registry_away_for_30_s(kafka, demo_alerts, models_dir, tmp_path):
    messages, schemas, expected = _wire_messages(demo_alerts, 20)
    unknown = b"\x00" + (7).to_bytes(4, "big") + messages[0][5:]  # an id never registered
    files = []
    for i, message in enumerate([*messages[:300], unknown, *messages[300:]]):
        files.append(tmp_path / f"wire-{i:05d}.bin")
        files[-1].write_bytes(message)
    registry = RegistryStub(schemas).start()
    setup = Setup(kafka.bootstrap, tmp_path, models_dir, partitions=2)
    setup.metrics_port = free_port()
    setup.extra = {
        "schema_registry": registry.url,
        "registry": {"retry_backoff_max_s": 2, "unknown_retries": 0},
    }
    try:
        replaying = setup.replay_in_background(files, rate=30)
        service = setup.start()
        setup.wait_for_outputs(60)
        registry.stop()
        stopped = time.monotonic()
        body = _wait_for_readyz(setup.metrics_port, "registry_unavailable", timeout=60)
        assert "schema registry" in body
        paused = _wait_for_metric(setup.metrics_port, r"btsbot_paused_partitions [1-9]", 30)
        assert "btsbot_schema_registry_unavailable 1.0" in paused
        time.sleep(max(0.0, 30 - (time.monotonic() - stopped)))
        registry.start()
        replaying.join(120)
        seen = setup.wait_for_candids(expected)
        assert _wait_for_readyz(setup.metrics_port, None, timeout=30).startswith("ready=True")
        dead = read_topic(kafka.bootstrap, setup.dead_letter_topic)
        assert service.terminate() == 0, service.log_text()[-3000:]
    finally:
        registry.stop()
    line = report("schema registry stopped 30 s", seen, expected, len(dead))
    assert expected - set(seen) == set(), line
    # the one unknown id is the one dead letter: no good alert dead-lettered
    assert [(r.value, r.headers["error.reason"]) for r in dead] == [(unknown, b"schema_unknown")]
    assert len(service.log_text().splitlines()) < 200, "the outage flooded the log"


@pytest.mark.parametrize("mode", ["at-least-once", "exactly-once"])
def test_outputs_over_the_topic_limit_become_dead_letters(
    kafka, demo_alerts, models_dir, tmp_path, mode
):
    """Output topic limited to 70,000 bytes, dead-letter topic to 80,000 (the demo alerts
    are 22-88 kB): outputs that do not fit become dead letters holding the alert, and
    those whose alert does not fit the dead-letter topic either a small reference."""
    setup = Setup(kafka.bootstrap, tmp_path, models_dir, partitions=2)
    create_topic(kafka.bootstrap, setup.output_topic, 1, {"max.message.bytes": "70000"})
    create_topic(kafka.bootstrap, setup.dead_letter_topic, 1, {"max.message.bytes": "80000"})
    setup.delivery = {"mode": mode, "transactional_id": unique("limits")}
    sent = setup.replay(demo_alerts)
    service = setup.start(idle=4)
    assert service.wait(300) == 0, service.log_text()[-3000:]
    scored = read_topic(kafka.bootstrap, setup.output_topic)
    dead = read_topic(kafka.bootstrap, setup.dead_letter_topic)
    too_large = [r for r in dead if r.headers["error.reason"] == b"output_too_large"]
    letters = [r for r in too_large if r.headers.get("error.value") != b"reference"]
    references = [r for r in too_large if r.headers.get("error.value") == b"reference"]
    assert scored and letters and references
    assert len(scored) + len(dead) == sent  # every message: one output or one dead letter
    assert all(len(r.value) <= 70000 for r in scored)
    assert all(70000 - 2000 < len(r.value) <= 80000 for r in letters)
    for r in references:
        ref = json.loads(r.value)
        assert ref["reason"] == "output_too_large"
        assert ref["source"]["topic"] == setup.input_topic
        assert ref["sizes"]["input"] > 80000 - 2000 and ref["candid"] and ref["objectId"]
    candids = [int(r.headers["ztf.candid"]) for r in scored]
    candids += [_candid(r.value) for r in letters] + [
        json.loads(r.value)["candid"] for r in references
    ]
    expected = _good_candids(demo_alerts)
    line = report(f"outputs over max.message.bytes, {mode}", Counter(candids), expected, len(dead))
    assert sorted(candids) == sorted(expected), line  # every good alert, once
    assert "transaction aborted" not in service.log_text()


def test_no_broker_at_start_not_ready_and_quiet(models_dir, tmp_path):
    port, metrics_port = free_port(), free_port()
    config = write_config(
        tmp_path / "nobroker.toml",
        kafka={"bootstrap_servers": f"127.0.0.1:{port}", "input_topics": ["ztf"]},
        engine={"models_dir": models_dir, "device": "cpu"},
        observability={"metrics_port": metrics_port, "log_format": "json"},
    )
    service = ServiceProcess(config, tmp_path / "nobroker.log")
    try:
        body = _wait_for_readyz(metrics_port, "brokers_unreachable", timeout=120)
        assert f"127.0.0.1:{port}" in body
        assert _scrape(metrics_port, "/healthz") == "ok\n"  # alive, waiting
        before = len(service.log_text().splitlines())
        time.sleep(15)
        assert _readyz(metrics_port)[0] == 503
        text = _scrape(metrics_port, "/metrics")
        assert 'btsbot_not_ready{cause="brokers_unreachable"} 1.0' in text
        lines = service.log_text().splitlines()
        assert len(lines) - before < 10, lines[-20:]  # was ~20 lines a second
        assert all(json.loads(line) for line in lines)  # every line through logging, JSON
    finally:
        code = service.terminate(60)
    assert code == 0, service.log_text()[-3000:]


def test_untrusted_broker_certificate_stops_with_the_fix(models_dir, tmp_path):
    """A TLS listener whose certificate no CA we trust signed (trustme's throwaway CA)."""
    import socket
    import ssl
    import threading

    import trustme

    cert = trustme.CA().issue_cert("127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                context.wrap_socket(conn, server_side=True).close()
            except (OSError, ssl.SSLError):
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    config = write_config(
        tmp_path / "tls.toml",
        kafka={
            "bootstrap_servers": f"127.0.0.1:{port}",
            "input_topics": ["ztf"],
            "properties": {"security.protocol": "SSL"},
        },
        engine={"models_dir": models_dir, "device": "cpu"},
        observability={"metrics_port": 0},
    )
    service = ServiceProcess(config, tmp_path / "tls.log")
    try:
        code = service.wait(120)
    finally:
        listener.close()
    log = service.log_text()
    assert code == 1, log[-3000:]
    assert "certificate" in log and "not trusted" in log and "ssl.ca.location" in log, log[-3000:]


def _good_candids(demo_alerts: Path) -> set[int]:
    """The demo sample's scoreable alerts: not in odd/, FITS (not JPEG) stamps."""
    candids = set()
    for path in demo_alerts.rglob("*.avro"):
        if "odd" not in path.parts:
            with path.open("rb") as fh:
                (record,) = fastavro.reader(fh)
            if record["cutoutScience"]["stampData"][:2] != b"\xff\xd8":  # type: ignore[index]
                candids.add(int(record["candid"]))  # type: ignore[call-overload]
    return candids


def _candid(value: bytes) -> int:
    (record,) = fastavro.reader(io.BytesIO(value))
    return int(record["candid"])  # type: ignore[call-overload]


def _readyz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _scrape(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
        return r.read().decode()


def _wait_for_metric(port: int, pattern: str, timeout: float) -> str:
    """The first scrape matching ``pattern`` (the loop applies a pause within a beat)."""
    deadline = time.monotonic() + timeout
    while True:
        text = _scrape(port, "/metrics")
        if re.search(pattern, text) or time.monotonic() > deadline:
            assert re.search(pattern, text), f"{pattern} never seen"
            return text
        time.sleep(0.2)


def _wait_for_readyz(port: int, cause: str | None, timeout: float) -> str:
    """Poll /readyz until it names ``cause`` (503), or is ready (200) for None."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            code, last = _readyz(port)
        except OSError:  # not listening yet
            time.sleep(0.3)
            continue
        if (cause is None and code == 200) or (cause and code == 503 and cause in last):
            return last
        time.sleep(0.3)
    raise AssertionError(f"/readyz never showed {cause or 'ready'}; last: {last!r}")
