"""``btsbot-stream``: the command line. Each command lives in its own module; process-
level failures (bad config, missing model) end with a one-line message and exit 1."""

from __future__ import annotations

import sys
from typing import Any

import click

from btsbot_stream import __version__, logs
from btsbot_stream.errors import BtsbotError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BtsbotError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="btsbot-stream")
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    envvar="BTSBOT_OBSERVABILITY__LOG_LEVEL",
    show_envvar=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    envvar="BTSBOT_OBSERVABILITY__LOG_FORMAT",
    show_envvar=True,
    type=click.Choice(["text", "json"]),
)
def main(log_level: str, log_format: logs.LogFormat) -> None:
    """Score ZTF alerts with BTSbot models: from files (score, bench) or Kafka (run)."""
    logs.configure(log_level, log_format)


def _register() -> None:
    from btsbot_stream.cli.bench import bench
    from btsbot_stream.cli.score import score

    main.add_command(score)
    main.add_command(bench)
    for module, name in (("models", "models"), ("run", "run"), ("replay", "replay"), ("top", "top")):
        try:
            command = getattr(__import__(f"btsbot_stream.cli.{module}", fromlist=[name]), name)
        except ModuleNotFoundError as exc:
            if exc.name != f"btsbot_stream.cli.{module}":
                raise
            continue
        main.add_command(command)


_register()
