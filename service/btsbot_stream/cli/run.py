"""``btsbot-stream run``: the streaming service."""

from __future__ import annotations

from pathlib import Path

import click

from btsbot_stream import config, logs
from btsbot_stream.cli import options


@click.command()
@options.config_file("the whole service")
@options.exit_when_idle
def run(config_path: Path | None, exit_when_idle: float | None) -> None:
    """Consume ZTF alerts from Kafka, score them, publish every one with its scores.

    Bad alerts go to the dead-letter topic with the reason. Offsets are committed only
    once every output of an input is acknowledged (or in the same transaction, in
    exactly-once mode). SIGTERM/SIGINT finish the batch, flush, commit and exit 0.
    """
    settings = config.load(config_path)
    obs = settings.observability
    logs.configure(obs.log_level, obs.log_format)
    from btsbot_stream.stream.app import run_service  # Kafka clients load only here

    run_service(settings, exit_when_idle)
