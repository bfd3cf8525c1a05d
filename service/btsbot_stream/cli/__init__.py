"""``btsbot-stream``: the command line. Each command lives in its own module; process-
level failures (bad config, missing model) end with a one-line message and exit 1."""

from __future__ import annotations

import sys
from typing import Any

import click

from btsbot_stream import __version__, logs
from btsbot_stream.config import ObservabilitySettings
from btsbot_stream.errors import BtsbotError

_OBSERVABILITY = ObservabilitySettings()  # the one place these defaults live


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
    default=_OBSERVABILITY.log_level,
    show_default=True,
    envvar="BTSBOT_OBSERVABILITY__LOG_LEVEL",
    show_envvar=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.option(
    "--log-format",
    default=_OBSERVABILITY.log_format,
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
    from btsbot_stream.cli.decide import decide
    from btsbot_stream.cli.inspect_object import inspect_object
    from btsbot_stream.cli.models import models
    from btsbot_stream.cli.replay import replay
    from btsbot_stream.cli.run import run
    from btsbot_stream.cli.score import score
    from btsbot_stream.cli.top import top
    from btsbot_stream.cli.watch import watch
    from btsbot_stream.cli.web import web

    for command in (score, bench, models, run, replay, top, decide, inspect_object, watch, web):
        main.add_command(command)


_register()
