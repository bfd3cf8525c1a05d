"""Options shared by several commands (one definition, one default, one env var)."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import BaseModel

from btsbot_stream.config import (
    Device,
    EngineSettings,
    KafkaSettings,
    LimitSettings,
    PreparationSettings,
)

__all__ = ["Device"]

_ENGINE = EngineSettings()  # the one place engine defaults live
_LIMITS = LimitSettings()
_F = TypeVar("_F", bound=Callable[..., Any])


def setting_option(
    section: str, defaults: BaseModel, name: str, *decls: str, **kwargs: Any
) -> Callable[[_F], _F]:
    """The option of one setting ``[section] name``: ``--name-with-dashes`` (or
    ``decls``), its default read from ``defaults``, its environment variable the one the
    settings model reads (``BTSBOT_<SECTION>__<NAME>``), both shown in --help."""
    return click.option(
        *(decls or ("--" + name.replace("_", "-"),)),
        name,
        default=getattr(defaults, name),
        show_default=True,
        envvar=f"BTSBOT_{section.upper()}__{name.upper()}",
        show_envvar=True,
        **kwargs,
    )


_PREPARATION = PreparationSettings()


class _ListOption(click.Option):
    """A repeatable option whose env var is a JSON list (as pydantic-settings reads it)
    or space-separated names, so ``run`` and the other commands share one variable."""

    def split_envvar_value(self, rv: str) -> list[str]:
        text = rv.strip()
        if text.startswith("["):
            return [str(v) for v in json.loads(text)]
        return text.split()


models_dir = click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=_ENGINE.models_dir,
    show_default=True,
    envvar="BTSBOT_ENGINE__MODELS_DIR",
    show_envvar=True,
    help="Model repository: cards (<name>.json) and .onnx files.",
)
model_names = click.option(
    "--model",
    "model_names",
    cls=_ListOption,
    multiple=True,
    default=_ENGINE.models,
    show_default=True,
    envvar="BTSBOT_ENGINE__MODELS",
    show_envvar=True,
    help="Model to score with; repeat for several (env: JSON list or space-separated).",
)
device = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda", "tensorrt"]),
    default=_ENGINE.device,
    show_default=True,
    envvar="BTSBOT_ENGINE__DEVICE",
    show_envvar=True,
    help="ONNX Runtime provider; cuda/tensorrt fail when no GPU runs the model.",
)
threads = click.option(
    "--threads",
    type=click.IntRange(min=0),
    default=_ENGINE.threads,
    show_default=True,
    envvar="BTSBOT_ENGINE__THREADS",
    show_envvar=True,
    help="ONNX Runtime intra-op threads per model (0: one per core).",
)
batch_size = click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=_ENGINE.batch_size,
    show_default=True,
    envvar="BTSBOT_ENGINE__BATCH_SIZE",
    show_envvar=True,
    help="Alerts per inference batch.",
)
schema_dir = click.option(
    "--schema-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    envvar="BTSBOT_SCHEMA_DIR",
    show_envvar=True,
    help="Schemas for Confluent wire-format messages: <dir>/<id>.avsc or <dir>/<id>/alert.avsc.",
)
exit_when_idle = click.option(
    "--exit-when-idle",
    type=click.FloatRange(min=0),
    envvar="BTSBOT_EXIT_WHEN_IDLE",
    show_envvar=True,
    help="Exit cleanly after this many seconds without input (backfills, tests).",
)
schema_registry = click.option(
    "--schema-registry",
    envvar="BTSBOT_SCHEMA_REGISTRY",
    show_envvar=True,
    help="Confluent schema registry URL for wire-format messages.",
)


def engine_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the engine options to a command, which receives them as ``engine``."""

    @functools.wraps(command)
    def with_engine(
        *args: Any,
        model_names: tuple[str, ...],
        models_dir: Path,
        device: Device,
        threads: int,
        batch_size: int,
        **kwargs: Any,
    ) -> Any:
        engine = EngineSettings(
            models=model_names,
            models_dir=models_dir,
            device=device,
            threads=threads,
            batch_size=batch_size,
        )
        return command(*args, engine=engine, **kwargs)

    for option in (batch_size, threads, device, models_dir, model_names):
        with_engine = option(with_engine)
    return with_engine


bootstrap_servers = click.option(
    "--bootstrap-servers",
    default=KafkaSettings.model_fields["bootstrap_servers"].default,
    show_default=True,
    envvar="BTSBOT_KAFKA__BOOTSTRAP_SERVERS",
    show_envvar=True,
)


client_properties = click.option(
    "-X",
    "properties",
    multiple=True,
    metavar="KEY=VALUE",
    envvar="BTSBOT_CLIENT_PROPERTIES",
    show_envvar=True,
    help="Any librdkafka client property (security.protocol, sasl.*, ssl.*...); repeatable "
    "(env: space-separated KEY=VALUE).",
)


def client_config(bootstrap: str, properties: tuple[str, ...]) -> dict[str, Any]:
    """A librdkafka configuration from ``--bootstrap-servers`` and ``-X KEY=VALUE``, its
    log lines going through logging (the ``btsbot_stream.kafka`` logger) rather than
    straight to stderr."""
    config: dict[str, Any] = {}
    for prop in properties:
        key, sep, value = prop.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{key or prop!r} is not KEY=VALUE", param_hint="-X")
        config[key] = value
    config["bootstrap.servers"] = bootstrap
    config["logger"] = logging.getLogger("btsbot_stream.kafka")
    return config


def limit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add one option per ``[limits]`` setting (``--max-stamp-bytes``, env
    ``BTSBOT_LIMITS__MAX_STAMP_BYTES``, ...), defaults and help from ``LimitSettings``;
    the command receives them as ``limits``."""
    fields = LimitSettings.model_fields

    @functools.wraps(command)
    def with_limits(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in fields}
        return command(*args, limits=LimitSettings(**values), **kwargs)

    for name in reversed(list(fields)):
        lowest = next((m.ge for m in fields[name].metadata if hasattr(m, "ge")), None)
        with_limits = setting_option(
            "limits",
            _LIMITS,
            name,
            type=click.IntRange(min=lowest),
            help=f"Limit: {fields[name].description}.",
        )(with_limits)
    return with_limits


def config_file(purpose: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--config`` (env ``BTSBOT_CONFIG``): the service's TOML or YAML settings file, of
    which the command reads ``purpose``; the command receives it as ``config_path``."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="BTSBOT_CONFIG",
        show_envvar=True,
        help=f"TOML or YAML settings file ({purpose}); BTSBOT_* environment variables override "
        "it (nested with '__', e.g. BTSBOT_KAFKA__BOOTSTRAP_SERVERS).",
    )


class _Processes(click.ParamType):
    """``auto`` or a count of worker processes (0: a thread of this process)."""

    name = "auto|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "auto" or isinstance(value, int):
            return value
        try:
            count = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither 'auto' nor a number of processes", param, ctx)
        if count < 0:
            self.fail("the number of processes cannot be negative", param, ctx)
        return count


def preparation_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--processes`` and ``--slots``; the command receives them as ``preparation``."""

    @functools.wraps(command)
    def with_preparation(*args: Any, processes: int | str, slots: int, **kwargs: Any) -> Any:
        preparation = PreparationSettings(processes=processes, slots=slots)
        return command(*args, preparation=preparation, **kwargs)

    fields = PreparationSettings.model_fields
    slots = setting_option(
        "preparation",
        _PREPARATION,
        "slots",
        type=click.IntRange(min=2),
        help=f"Preparation: {fields['slots'].description}.",
    )
    processes = setting_option(
        "preparation",
        _PREPARATION,
        "processes",
        type=_Processes(),
        help=f"Preparation (decode, stamps, features): {fields['processes'].description}.",
    )
    return processes(slots(with_preparation))
