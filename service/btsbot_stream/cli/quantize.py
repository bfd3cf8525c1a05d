"""``btsbot-stream models quantize``: a reduced-precision variant behind a fidelity gate.

Needs ``onnx`` (the ``quantize`` extra): :mod:`btsbot_stream.quantize.build` is imported
only when the command runs. The defaults come from the recipe and the gate's limits.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import click

from btsbot_stream.cli import options
from btsbot_stream.config import Device
from btsbot_stream.quantize.dataset import CALIBRATION_SHARE, gather
from btsbot_stream.quantize.exceptions import GateFailedError, QuantizeError
from btsbot_stream.quantize.gate import SPEED_ROUNDS
from btsbot_stream.quantize.recipe import Recipe
from btsbot_stream.quantize.report import GateLimits

_RECIPE = Recipe()
_LIMITS = GateLimits()
_PATHS = click.Path(exists=True, path_type=Path)


def _builder() -> ModuleType:
    try:
        from btsbot_stream.quantize import build
    except ImportError as exc:
        if (exc.name or "").split(".")[0] in {"onnx", "ml_dtypes"}:
            raise QuantizeError(
                f"quantizing needs onnx ({exc.name} is missing): install the quantize extra: "
                "pip install 'btsbot-stream[quantize]'"
            ) from exc
        raise
    return build


def _option(*decls: str, env: str, **kwargs: Any) -> Any:
    return click.option(*decls, envvar=f"BTSBOT_QUANTIZE_{env}", show_envvar=True, **kwargs)


@click.command()
@click.argument("name")
@_option(
    "--calibration",
    env="CALIBRATION",
    type=_PATHS,
    multiple=True,
    required=True,
    help="Real alerts (files, folders, archives; repeat) to calibrate on; without "
    "--held-out they are split by objectId and the other part is held out for the gate.",
)
@_option("--held-out", env="HELD_OUT", type=_PATHS, multiple=True, help="Alerts to gate on.")
@_option(
    "--calibration-share",
    env="CALIBRATION_SHARE",
    type=click.FloatRange(0.05, 0.95),
    default=CALIBRATION_SHARE,
    show_default=True,
    help="Without --held-out: the share of objects that calibrate.",
)
@_option(
    "--labels",
    env="LABELS",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV with candid [and 0/1 label]: recall and AUC in the report (never gated on).",
)
@_option(
    "--precision",
    env="PRECISION",
    type=click.Choice(["int8", "fp16", "bf16"]),
    default=_RECIPE.precision,
    show_default=True,
)
@_option(
    "--scope",
    env="SCOPE",
    type=click.Choice(["auto", "inner-conv", "pointwise-conv", "all"]),
    default=_RECIPE.scope,
    show_default=True,
    help="Nodes in reduced precision; auto: inner-conv for btsbot-v1, pointwise-conv for timm.",
)
@_option(
    "--calibration-method",
    env="CALIBRATION_METHOD",
    type=click.Choice(["percentile", "minmax", "entropy"]),
    default=_RECIPE.calibration_method,
    show_default=True,
)
@_option(
    "--percentile",
    env="PERCENTILE",
    type=click.FloatRange(90, 100, min_open=True),
    default=_RECIPE.percentile,
    show_default=True,
)
@_option(
    "--per-channel/--per-tensor",
    env="PER_CHANNEL",
    default=_RECIPE.per_channel,
    show_default=True,
    help="int8 weight scales per output channel or per tensor.",
)
@_option(
    "--activations",
    env="ACTIVATIONS",
    type=click.Choice(["uint8", "int8"]),
    default=_RECIPE.activations,
    show_default=True,
    help="int8 activations: uint8 with a zero point (CPUs) or symmetric int8 (TensorRT).",
)
@_option(
    "--max-abs-diff",
    env="MAX_ABS_DIFF",
    type=click.FloatRange(min=0),
    default=_LIMITS.max_abs_diff,
    show_default=True,
    help="Gate: largest |variant - parent| score on any held-out alert.",
)
@_option(
    "--max-flips",
    env="MAX_FLIPS",
    type=click.IntRange(min=0),
    default=_LIMITS.max_flips,
    show_default=True,
    help="Gate: decision flips allowed at each threshold.",
)
@_option(
    "--threshold",
    "thresholds",
    env="THRESHOLDS",
    type=click.FloatRange(0, 1),
    multiple=True,
    default=_LIMITS.thresholds,
    show_default=True,
    help="Gate: a decision threshold (repeat).",
)
@_option(
    "--min-held-out",
    env="MIN_HELD_OUT",
    type=click.IntRange(min=1),
    default=_LIMITS.min_held_out,
    show_default=True,
    help="Gate: fail with fewer held-out alerts.",
)
@_option(
    "--speed-rounds",
    env="SPEED_ROUNDS",
    type=click.IntRange(min=0),
    default=SPEED_ROUNDS,
    show_default=True,
    help="Time both models this many times on the held-out alerts for the report (0: no).",
)
@_option(
    "--variant-name", env="VARIANT_NAME", help="Name of the variant  [default: NAME-PRECISION]"
)
@options.device
@options.threads
@options.models_dir
def quantize(
    name: str,
    calibration: tuple[Path, ...],
    held_out: tuple[Path, ...],
    calibration_share: float,
    labels: Path | None,
    precision: str,
    scope: str,
    calibration_method: str,
    percentile: float,
    per_channel: bool,
    activations: str,
    max_abs_diff: float,
    max_flips: int,
    thresholds: tuple[float, ...],
    min_held_out: int,
    speed_rounds: int,
    variant_name: str | None,
    device: Device,
    threads: int,
    models_dir: Path,
) -> None:
    """Make NAME-int8 (or -fp16, -bf16) from model NAME, install it only if it passes
    the fidelity gate on held-out real alerts, and print the gate's report.

    The gate scores the held-out alerts with both models on --device: the variant fails
    when any score moves by more than --max-abs-diff, when more than --max-flips alerts
    change their decision at a --threshold, or when it does not run. A failed gate
    writes nothing and exits 1.
    """
    build = _builder()
    recipe = Recipe.model_validate(
        {
            "precision": precision,
            "scope": scope,
            "calibration_method": calibration_method,
            "percentile": percentile,
            "per_channel": per_channel,
            "activations": activations,
        }
    )
    limits = GateLimits(
        max_abs_diff=max_abs_diff,
        max_flips=max_flips,
        thresholds=thresholds,
        min_held_out=min_held_out,
    )
    data = gather(list(calibration), list(held_out), calibration_share, labels)
    try:
        result = build.make_variant(
            name, models_dir, recipe, data, limits, variant_name, device, threads, speed_rounds
        )
    except GateFailedError as failed:
        click.echo(failed.report.render())
        raise
    click.echo(result.report.render())
    click.echo(
        f"installed {result.card.name} -> {result.onnx_path} (sha256 {result.card.sha256}); "
        f"report {result.report_path}"
    )
