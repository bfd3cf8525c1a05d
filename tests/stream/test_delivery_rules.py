"""The delivery rules without a broker: one dead letter per message, outputs over a
topic's limit, the registry client's faults, log repeats, secrets kept out of errors."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.alerts.exceptions import RegistryUnavailable, Reject
from btsbot_stream.alerts.registry import HttpSchemaRegistry
from btsbot_stream.config import KafkaSettings, RegistrySettings, read_file
from btsbot_stream.engine.cards import builtin_cards
from btsbot_stream.errors import ConfigError
from btsbot_stream.logs import RepeatFilter
from btsbot_stream.scoring import Outcome
from btsbot_stream.stream.dead_letters import SourcePosition
from btsbot_stream.stream.limits import TopicLimits
from btsbot_stream.stream.publish import Publisher

KAFKA = KafkaSettings(input_topics=("in",), output_topic="out", dead_letter_topic="dlq")
SOURCE = SourcePosition("in", 3, 42)


def _publisher(limits: TopicLimits | None = None) -> Publisher:
    return Publisher(KAFKA, [builtin_cards()["btsbot-v1.0.1"]], limits)


def _scored(demo_alerts: Path) -> tuple[bytes, Outcome]:
    path = next(p for p in sorted(demo_alerts.rglob("*.avro")) if "odd" not in p.parts)
    raw = path.read_bytes()
    (alert,) = AlertDecoder().decode(raw)
    outcome = Outcome(alert, alert.record["objectId"], alert.record["candid"])
    outcome.scores = {"btsbot-v1.0.1": 0.75}
    return raw, outcome


def test_one_dead_letter_per_message_naming_the_failed_records(demo_alerts):
    raw, good = _scored(demo_alerts)
    bad = [
        Outcome(good.alert, good.object_id, 1, reject=Reject("cutout_missing", "x"))
        for _ in range(2)
    ]
    outputs = _publisher().outputs(raw, SOURCE, [bad[0], good, bad[1]])
    assert [o.topic for o in outputs] == ["out", "dlq"]
    letter = dict(outputs[1].headers)
    assert outputs[1].value == raw
    assert letter["error.records"] == b"3"
    assert letter["error.failed_records"] == b"0:cutout_missing,2:cutout_missing"
    assert letter["source.offset"] == b"42" and letter["error.reason"] == b"cutout_missing"


def test_a_message_without_records_is_a_dead_letter():
    (letter,) = _publisher().outputs(b"Obj\x01", SOURCE, [])
    assert dict(letter.headers)["error.reason"] == b"avro_empty"


def test_output_over_its_topic_limit_becomes_the_message_dead_letter(demo_alerts):
    raw, good = _scored(demo_alerts)
    fits_dlq = TopicLimits({"out": len(raw) // 2, "dlq": len(raw) + 4096})
    (letter,) = _publisher(fits_dlq).outputs(raw, SOURCE, [good])
    assert letter.topic == "dlq" and letter.value == raw and letter.kind == "dead_letter"
    assert dict(letter.headers)["error.reason"] == b"output_too_large"
    too_small = TopicLimits({"out": len(raw) // 2, "dlq": len(raw) // 2})
    (reference,) = _publisher(too_small).outputs(raw, SOURCE, [good])
    assert reference.kind == "reference" and len(reference.value) < 2048
    record = json.loads(reference.value)
    assert record["source"] == {"topic": "in", "partition": 3, "offset": 42}
    assert record["candid"] == good.candid and record["objectId"] == good.object_id
    assert record["sizes"]["input"] == len(raw) and record["reason"] == "output_too_large"
    assert dict(reference.headers)["error.value"] == b"reference"


def test_refused_output_is_replaced_by_dead_letter_then_reference(demo_alerts):
    raw, good = _scored(demo_alerts)
    publisher = _publisher(TopicLimits({"dlq": len(raw) // 2}))
    (output,) = _publisher().outputs(raw, SOURCE, [good])
    replacement = publisher.replacement(output, "refused")
    assert replacement.kind == "reference"  # the alert is over the dead-letter limit too
    assert publisher.replacement(replacement, "refused").kind == "reference"
    assert TopicLimits({"out": 70000}).batch_size() < 70000


class _Registry(BaseHTTPRequestHandler):
    answers: ClassVar[list[int]] = []
    served: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).served.append(self.path)
        code = type(self).answers.pop(0)
        self.send_response(code)
        self.end_headers()
        self.wfile.write(json.dumps({"schema": '"null"'} if code == 200 else {}).encode())

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def registry_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Registry.served.clear()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_registry_faults_are_transient_and_unknown_ids_are_cached(registry_server):
    settings = RegistrySettings(unknown_retries=1, unknown_ttl_s=60)
    registry = HttpSchemaRegistry(registry_server, settings)
    _Registry.answers[:] = [503, 404, 404, 200]
    with pytest.raises(RegistryUnavailable, match="HTTP 503"):
        registry.get(5)
    assert registry.get(5) is None  # 404 asked twice, then remembered
    assert registry.get(5) is None
    assert len(_Registry.served) == 3
    assert registry.get(6) == '"null"'
    unreachable = HttpSchemaRegistry("http://user:secret@127.0.0.1:9/", settings)
    with pytest.raises(RegistryUnavailable) as err:
        unreachable.get(1)
    assert "secret" not in str(err.value) and "***@127.0.0.1:9" in str(err.value)


def test_repeated_client_errors_are_logged_once_per_interval_with_a_count():
    records = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("test.repeats")
    logger.addHandler(handler)
    logger.addFilter(repeat := RepeatFilter(interval=3600))
    for ms in range(50):
        logger.error("Connect to 127.0.0.1:1 failed (after %dms in state CONNECT)", ms)
    logger.error("something else")
    assert len(records) == 2
    repeat.interval = 0.0001  # the interval passes: the next line carries the count
    logger.error("Connect to 127.0.0.1:1 failed (after 7ms in state CONNECT)")
    assert "49 more like it" in records[-1].getMessage()


def test_a_yaml_config_error_does_not_echo_the_password(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("kafka:\n  properties:\n    sasl.password: hunter2: *not-yaml\n")
    with pytest.raises(ConfigError) as err:
        read_file(path)
    assert "hunter2" not in str(err.value) and "line 3" in str(err.value)
    path.write_text("kafka:\n  properties:\n    sasl.password: *hunter2\n")
    with pytest.raises(ConfigError) as err:
        read_file(path)
    assert "hunter2" not in str(err.value)


class _Message:
    def __init__(self, partition: int, offset: int) -> None:
        self._p, self._o = partition, offset

    def topic(self) -> str:
        return "in"

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def timestamp(self) -> tuple[int, int]:
        return (0, 0)

    def value(self) -> bytes:
        return b""


def test_a_revoke_drops_only_the_revoked_partitions_messages_from_waiting_batches():
    from concurrent.futures import Future

    from btsbot_stream.scoring import PreparedMessage
    from btsbot_stream.stream.offsets import OffsetTracker
    from btsbot_stream.stream.pipeline import Batch, Consumed, Pipeline, position

    tracker, pipeline = OffsetTracker(), Pipeline()
    messages = [_Message(p, o) for o in range(3) for p in (0, 1)]
    items = []
    for m in messages:
        source = position(m)
        items.append(Consumed(m, source, tracker.consumed(("in", m.partition()), m.offset())))
    prepared: Future[list[PreparedMessage]] = Future()
    prepared.set_result([PreparedMessage([]) for _ in messages])
    pipeline.append(Batch(items, prepared))
    assert pipeline.revoke([("in", 0)]) == 3
    tracker.forget([("in", 0)])
    live = pipeline.ready().live()  # type: ignore[union-attr]
    assert [(item.tp, item.source.offset) for item, _ in live] == [(("in", 1), o) for o in range(3)]
    # partition 1's waiting messages hold its commit until they are published
    assert tracker.committable() == {("in", 1): 0}


def test_readiness_needs_a_joined_group_and_reachable_brokers():
    from btsbot_stream.stream.health import Health
    from btsbot_stream.stream.watch import Connectivity

    health = Health()
    connectivity = Connectivity(health)
    health.clear("starting")
    connectivity.rebalanced(joined=False)
    assert health.readiness()[0] is False
    connectivity.rebalanced(joined=True)
    connectivity.reachable("producer", True)
    assert health.readiness() == (True, "ready=True assigned_partitions=0\n")
    connectivity.reachable("consumer", False)
    ready, body = health.readiness()
    assert not ready and "brokers_unreachable" in body and "consumer" in body
    connectivity.reachable("consumer", True)
    for _ in range(2):  # KIP-848 member with nothing to own: joined all the same
        connectivity.group_state({"state": "up", "join_state": "init"})
    assert health.readiness()[0] is True
