"""The follow-up commands find Kafka and both topics where the stages do: the config
file the scorer and the decision stage read (``[kafka]``, ``[decide]``), under the
flags and their environment variables."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from btsbot_stream.cli.follow_options import Connection, connection_options

CONFIG = """
[kafka]
bootstrap_servers = "kafka.example:9092"
output_topic = "night_scored"
[kafka.properties]
"security.protocol" = "SASL_SSL"
[decide]
candidates_topic = "night_candidates"
"""


@click.command()
@connection_options
def show(connection: Connection) -> None:
    click.echo(json.dumps(asdict(connection)))


def _connection(args: list[str], env: dict[str, str] | None = None) -> dict:
    result = CliRunner().invoke(show, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture(autouse=True)
def _no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "BTSBOT_CONFIG",
        "BTSBOT_KAFKA__BOOTSTRAP_SERVERS",
        "BTSBOT_KAFKA__OUTPUT_TOPIC",
        "BTSBOT_DECIDE__CANDIDATES_TOPIC",
    ):
        monkeypatch.delenv(name, raising=False)


def test_the_config_file_names_kafka_and_both_topics(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    assert _connection(["--config", str(path)]) == {
        "bootstrap": "kafka.example:9092",
        "properties": {"security.protocol": "SASL_SSL"},
        "scored_topic": "night_scored",
        "candidates_topic": "night_candidates",
    }


def test_flags_and_environment_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    got = _connection(
        ["--config", str(path), "--candidates-topic", "mine", "-X", "security.protocol=SSL"],
        env={"BTSBOT_KAFKA__BOOTSTRAP_SERVERS": "other:9092"},
    )
    assert got["candidates_topic"] == "mine" and got["bootstrap"] == "other:9092"
    assert got["properties"] == {"security.protocol": "SSL"}
    assert got["scored_topic"] == "night_scored"


def test_without_a_file_the_service_defaults() -> None:
    got = _connection([])
    assert (got["bootstrap"], got["scored_topic"], got["candidates_topic"]) == (
        "127.0.0.1:9092",
        "ztf_btsbot_scored",
        "ztf_btsbot_candidates",
    )
