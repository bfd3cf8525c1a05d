"""``btsbot-stream replay``: alert files into a Kafka topic."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress

from btsbot_stream.alerts.sources import expand, read_items
from btsbot_stream.cli import options
from btsbot_stream.config import ObservabilitySettings


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--topic", required=True, envvar="BTSBOT_REPLAY_TOPIC", show_envvar=True)
@options.bootstrap_servers
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    envvar="BTSBOT_REPLAY_RATE",
    show_envvar=True,
    help="Messages per second (default: as fast as the broker takes them).",
)
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    envvar="BTSBOT_REPLAY_PARTITIONS",
    show_envvar=True,
    help="Create the topic with this many partitions if it does not exist.",
)
@options.client_properties
def replay(
    paths: tuple[Path, ...],
    topic: str,
    bootstrap_servers: str,
    rate: float | None,
    partitions: int | None,
    properties: tuple[str, ...],
) -> None:
    """Produce alert packets (.avro files, folders, nightly .tar.gz) into TOPIC, unchanged."""
    from btsbot_stream import logs
    from btsbot_stream.stream.replay import ensure_topic
    from btsbot_stream.stream.replay import replay as produce_all

    config = options.client_config(bootstrap_servers, properties)
    logs.limit_repeats(ObservabilitySettings().log_repeat_interval_s)
    if partitions:
        ensure_topic(config, topic, partitions)
    files = expand(paths)
    items = read_items(files)
    if sys.stderr.isatty():
        with Progress(console=Console(stderr=True)) as progress:
            task = progress.add_task(f"replaying into {topic}", total=None)
            sent = produce_all(items, config, topic, rate, lambda: progress.advance(task))
    else:
        sent = produce_all(items, config, topic, rate)
    click.echo(f"replayed {sent} messages from {len(files)} files into {topic}", err=True)
