"""Connection options of the follow-up commands (``watch``, ``web``).

The same mechanism as the service: a config file's ``[kafka]`` table (bootstrap servers,
the scored topic, ``[kafka.properties]`` for SASL/SSL), its ``[decide]`` candidates topic,
and ``-X key=value`` pairs over it. A flag or its environment variable wins over the
file, the file over the defaults.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from btsbot_stream.config import DecideSettings, KafkaSettings, read_file

_KAFKA = KafkaSettings.model_fields
_DECIDE = DecideSettings()


@dataclass(frozen=True)
class Connection:
    bootstrap: str
    properties: dict[str, str]
    scored_topic: str
    candidates_topic: str


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the connection options; the command receives them as ``connection``."""

    @functools.wraps(command)
    def with_connection(
        *args: Any,
        config_path: Path | None,
        properties: tuple[str, ...],
        bootstrap_servers: str | None,
        topic: str | None,
        candidates_topic: str | None,
        **kwargs: Any,
    ) -> Any:
        from btsbot_stream.follow.kafka import client_properties

        file_bootstrap, props = client_properties(config_path, properties)
        # The topics as the stages name them in the same file: kafka.output_topic (the
        # scorer writes it), decide.candidates_topic (the decision stage writes it).
        file = read_file(config_path) if config_path is not None else {}
        file_topic = (file.get("kafka") or {}).get("output_topic")
        file_candidates = (file.get("decide") or {}).get("candidates_topic")
        connection = Connection(
            bootstrap=bootstrap_servers or file_bootstrap or _KAFKA["bootstrap_servers"].default,
            properties=props,
            scored_topic=topic or file_topic or _KAFKA["output_topic"].default,
            candidates_topic=candidates_topic or file_candidates or _DECIDE.candidates_topic,
        )
        return command(*args, connection=connection, **kwargs)

    options = (
        click.option(
            "--config",
            "config_path",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            envvar="BTSBOT_CONFIG",
            show_envvar=True,
            help="TOML/YAML file with a [kafka] table as the service's: bootstrap_servers, "
            "output_topic, [kafka.properties] (SASL/SSL...).",
        ),
        click.option(
            "-X",
            "properties",
            multiple=True,
            metavar="KEY=VALUE",
            help="Any librdkafka property (e.g. -X security.protocol=SASL_SSL); repeatable; "
            "over the config file's.",
        ),
        click.option(
            "--bootstrap-servers",
            envvar="BTSBOT_KAFKA__BOOTSTRAP_SERVERS",
            show_envvar=True,
            help=f"[default: the config file's, else {_KAFKA['bootstrap_servers'].default}]",
        ),
        click.option(
            "--topic",
            envvar="BTSBOT_KAFKA__OUTPUT_TOPIC",
            show_envvar=True,
            help=f"The scored topic [default: the config file's output_topic, else "
            f"{_KAFKA['output_topic'].default}]",
        ),
        click.option(
            "--candidates-topic",
            envvar="BTSBOT_DECIDE__CANDIDATES_TOPIC",
            show_envvar=True,
            help=f"The decision stage's candidate events [default: the config file's "
            f"[decide] candidates_topic, else {_DECIDE.candidates_topic}]",
        ),
    )
    for option in reversed(options):
        with_connection = option(with_connection)
    return with_connection
