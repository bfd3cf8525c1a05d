"""Real corpora through the real broker (the demo sample, then the whole shared corpus):
every good alert published with the scores ``btsbot-stream score`` gives, every bad one a
dead letter; counts reconcile."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import fastavro
import pytest
from kafka_helpers import free_port, read_topic
from stream_support import Setup
from tests.deploy.metric_names import exported_metric_names, used_metric_names

from btsbot_stream.alerts.sources import expand, read_items

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def cli_lines(stream_corpus, models_dir: Path, tmp_path_factory) -> list[dict]:
    root, _ = stream_corpus
    out = tmp_path_factory.mktemp("cli") / "scores.jsonl"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "btsbot_stream",
            "score",
            str(root),
            "--models-dir",
            str(models_dir),
            "--device",
            "cpu",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_corpus_through_kafka_reconciles(kafka, stream_corpus, models_dir, tmp_path, cli_lines):
    root, packets = stream_corpus
    setup = Setup(kafka.bootstrap, tmp_path, models_dir, partitions=3)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "btsbot_stream",
            "replay",
            str(root),
            "--topic",
            setup.input_topic,
            "--bootstrap-servers",
            kafka.bootstrap,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    sent = int(done.stderr.split("replayed ")[1].split()[0])
    assert sent == len(cli_lines) == packets

    setup.metrics_port = free_port()
    service = setup.start(idle=4)
    scrapes = _scrape_while_running(service, setup.metrics_port)
    assert service.wait(300) == 0, service.log_text()[-3000:]
    scored = read_topic(kafka.bootstrap, setup.output_topic)
    dead = read_topic(kafka.bootstrap, setup.dead_letter_topic)

    cli_scored = {line["candid"]: line for line in cli_lines if "scores" in line}
    cli_errors = [line for line in cli_lines if "error" in line]
    assert len(scored) == len(cli_scored) > 0
    assert len(dead) == len(cli_errors) > 0
    assert len(scored) + len(dead) == sent

    originals = {}
    for line in cli_scored.values():
        origin = line["file"]
        if ".tar.gz:" not in origin:
            (originals[line["candid"]],) = fastavro.reader(io.BytesIO(Path(origin).read_bytes()))
    for record in scored:
        alert = record.alert()
        line = cli_scored[alert["candid"]]
        (entry,) = alert["btsbot"]["scores"]
        assert entry["model"] == "btsbot-v1.0.1"
        assert entry["score"] == line["scores"]["btsbot-v1.0.1"]  # bit-identical
        assert float(record.headers["btsbot.score.btsbot-v1.0.1"]) == entry["score"]
        assert int(record.headers["ztf.candid"]) == alert["candid"]
        assert record.key == alert["objectId"].encode() == line["objectId"].encode()
        original = originals.get(alert["candid"])
        if original is not None:  # every input field kept, unchanged
            assert {k: v for k, v in alert.items() if k != "btsbot"} == original

    inputs = {item.data for item in read_items(expand([root]))}
    assert all(record.value in inputs for record in dead)  # the original bytes, unchanged
    reasons = sorted(r.headers["error.reason"].decode() for r in dead)
    assert reasons == sorted(line["error"] for line in cli_errors)

    for record in dead:
        assert record.headers["source.topic"].decode() == setup.input_topic
        assert int(record.headers["source.offset"]) >= 0
        assert record.headers["error.message"]

    # The endpoints and the metrics of the running service
    assert scrapes["/healthz"] == 200 and scrapes["/readyz"] == 200
    text = scrapes["/metrics"]
    assert _sample(text, "btsbot_alerts_consumed_total") == sent
    assert _sample(text, "btsbot_alerts_published_total") == len(scored)
    assert _sample(text, 'btsbot_alerts_scored_total{model="btsbot-v1.0.1"}') == len(scored)
    for reason, count in Counter(reasons).items():
        assert _sample(text, f'btsbot_dead_letters_total{{reason="{reason}"}}') == count
    assert _sample(text, 'btsbot_execution_provider{model="btsbot-v1.0.1",provider="cpu"}') == 1
    # every metric the dashboard and the alert rules use is one this service exports
    missing = used_metric_names() - exported_metric_names(text)
    assert not missing, f"dashboard/rules use metrics the service does not export: {missing}"


def _scrape_while_running(service, port: int) -> dict:
    """Last answers of the HTTP endpoints before the process exits (idle exit)."""
    last: dict = {}
    while service.proc.poll() is None:
        for path in ("/healthz", "/readyz", "/metrics"):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                    last[path] = r.read().decode() if path == "/metrics" else r.status
            except (OSError, urllib.error.HTTPError):
                continue
        time.sleep(0.2)
    return last


def _sample(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not in the scrape")
