"""``btsbot-stream top``: what the service published, and the best candidates."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from btsbot_stream.cli import options
from btsbot_stream.config import KafkaSettings


@click.command()
@options.bootstrap_servers
@click.option(
    "--topic",
    default=KafkaSettings.model_fields["output_topic"].default,
    show_default=True,
    envvar="BTSBOT_KAFKA__OUTPUT_TOPIC",
    show_envvar=True,
)
@click.option(
    "--dead-letter-topic",
    default=KafkaSettings.model_fields["dead_letter_topic"].default,
    show_default=True,
    envvar="BTSBOT_KAFKA__DEAD_LETTER_TOPIC",
    show_envvar=True,
)
@click.option("-n", "count", default=10, show_default=True, help="How many best alerts to list.")
@options.client_properties
def top(
    bootstrap_servers: str,
    topic: str,
    dead_letter_topic: str,
    count: int,
    properties: tuple[str, ...],
) -> None:
    """Count scored alerts and dead letters, list the highest-scoring alerts."""
    from btsbot_stream.stream.summary import summarise

    config = options.client_config(bootstrap_servers, properties)
    summary = summarise(config, topic, dead_letter_topic, count)
    console = Console()
    dead = sum(summary.dead_letters.values())
    reasons = ", ".join(f"{r}={n}" for r, n in summary.dead_letters.most_common()) or "none"
    console.print(
        f"{summary.scored} scored alerts ({summary.distinct_candids} distinct candids) in "
        f"{topic}; {dead} dead letters in {dead_letter_topic} ({reasons})"
    )
    table = Table(title=f"best {count} by score")
    for column in ("score", "objectId", "candid", "model"):
        table.add_column(column)
    for score, obj, candid, model in summary.best:
        table.add_row(f"{score:.4f}", obj, str(candid), model)
    console.print(table)
