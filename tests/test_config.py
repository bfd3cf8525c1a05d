"""Settings: file + environment, one default each, clear errors, secrets never shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from btsbot_stream import config
from btsbot_stream.errors import ConfigError


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = _toml(
        tmp_path,
        '[kafka]\nbootstrap_servers = "a:1"\ninput_topics = ["t"]\n'
        '[engine]\nbatch_size = 32\n[kafka.properties]\n"sasl.password" = "hunter2"\n',
    )
    monkeypatch.setenv("BTSBOT_ENGINE__BATCH_SIZE", "128")
    settings = config.load(path)
    assert settings.kafka.bootstrap_servers == "a:1"
    assert settings.engine.batch_size == 128  # the environment wins over the file
    assert settings.engine.max_wait_ms == config.EngineSettings().max_wait_ms
    assert settings.kafka.client_properties() == {"sasl.password": "hunter2"}
    assert "hunter2" not in str(settings.redacted()) and "hunter2" not in repr(settings)


def test_yaml_is_read_too(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text("kafka:\n  input_pattern: '^ztf_[0-9]{8}_programid1$'\n")
    assert config.load(path).kafka.input_pattern == "^ztf_[0-9]{8}_programid1$"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[kafka]\n", "set kafka.input_topics or kafka.input_pattern"),
        ('[kafka]\ninput_topics=["t"]\n[engine]\nbatch_size = 0\n', "engine.batch_size"),
        ('[kafka]\ninput_topics=["t"]\n[engine]\ndevice = "gpu"\n', "engine.device"),
        ('[kafka]\ninput_topics=["t"]\nbogus = 1\n', "kafka.bogus"),
        ('[kafka]\ninput_pattern = "^ztf_\\\\d{8}$"\n', "[0-9]"),
        ("[kafka\n", "does not parse"),
    ],
)
def test_bad_config_says_what_to_fix(tmp_path: Path, text: str, message: str):
    with pytest.raises(ConfigError) as err:
        config.load(_toml(tmp_path, text))
    assert message in str(err.value)


def test_run_with_bad_config_exits_1_with_the_message(tmp_path: Path):
    path = _toml(tmp_path, '[kafka]\ninput_topics=["t"]\n[engine]\nmodels_dir = "/nonexistent"\n')
    done = subprocess.run(
        [sys.executable, "-m", "btsbot_stream", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "btsbot-v1.0.1.onnx not found" in done.stderr
    assert "Traceback" not in done.stderr
