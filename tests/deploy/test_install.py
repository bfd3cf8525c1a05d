"""The images' install path without a container engine: docker/install.sh (what both
Dockerfiles run) into a clean virtual environment, then the image's entrypoint and
configuration (`btsbot-stream run --config docker/config.toml`, the model where the
image puts it) against a real broker, scoring the demo sample end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from tests.deploy.conftest import REPO, require_tool

from btsbot_stream.config import KafkaSettings
from btsbot_stream.stream.summary import read_to_end

pytestmark = pytest.mark.kafka


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("image") / "venv"
    result = subprocess.run(
        ["sh", str(REPO / "docker" / "install.sh"), str(venv), "cpu"],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "UV": require_tool("uv")},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return venv


def test_install_script_installs_the_locked_runtime(image_venv: Path) -> None:
    listed = subprocess.run(
        [require_tool("uv"), "pip", "list", "--python", str(image_venv / "bin" / "python")],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    names = {line.split()[0] for line in listed.splitlines()[2:]}
    assert {"btsbot-stream", "onnxruntime", "confluent-kafka"} <= names
    assert not names & {"onnxruntime-gpu", "torch", "pytest", "ruff"}, "runtime only"


def test_entrypoint_scores_the_demo_sample(
    image_venv: Path, secure_kafka, demo_alerts: Path, tmp_path: Path
) -> None:
    kafka = KafkaSettings.model_fields
    night = f"ztf_{uuid.uuid4().int % 10**8:08d}_programid1"  # matches input_pattern
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BTSBOT_")},
        "BTSBOT_ENGINE__MODELS_DIR": str(REPO / "models"),  # the image: /models
        "BTSBOT_KAFKA__BOOTSTRAP_SERVERS": secure_kafka.plaintext,
        "BTSBOT_KAFKA__GROUP_ID": f"image-{uuid.uuid4().hex[:8]}",
        "BTSBOT_OBSERVABILITY__METRICS_PORT": str(port),
    }
    entrypoint = str(image_venv / "bin" / "btsbot-stream")
    replay = subprocess.run(
        [entrypoint, "replay", str(demo_alerts), "--topic", night, "--partitions", "2"],
        capture_output=True, text=True, timeout=180, check=False, env=env,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        service = subprocess.Popen(
            [entrypoint, "run", "--config", str(REPO / "docker" / "config.toml")],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
        )  # fmt: skip
        try:
            config = {"bootstrap.servers": secure_kafka.plaintext}
            output = str(kafka["output_topic"].default)
            dead_topic = str(kafka["dead_letter_topic"].default)
            deadline = time.monotonic() + 240
            scored, dead = [], []
            while len(scored) + len(dead) < 32 and time.monotonic() < deadline:
                assert service.poll() is None, log.read_text()[-3000:]
                time.sleep(2)
                scored, dead = read_to_end(config, output), read_to_end(config, dead_topic)
            assert (len(scored), len(dead)) == (29, 3), log.read_text()[-3000:]
            base = f"http://127.0.0.1:{port}"
            with urllib.request.urlopen(f"{base}/readyz", timeout=5) as ready:
                assert ready.status == 200
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as metrics:
                assert "btsbot_alerts_scored_total" in metrics.read().decode()
            service.send_signal(signal.SIGTERM)  # the image's STOPSIGNAL
            assert service.wait(90) == 0, log.read_text()[-3000:]
        finally:
            if service.poll() is None:
                service.kill()
                service.wait(30)
