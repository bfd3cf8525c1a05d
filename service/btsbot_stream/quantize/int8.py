"""Static int8 quantization with ONNX Runtime's tools (QDQ format).

Weights become int8 (symmetric, per output channel by default) and activations uint8
with ranges calibrated on real prepared alerts. The QDQ graph keeps the original nodes
between QuantizeLinear/DequantizeLinear pairs; ONNX Runtime fuses them into integer
kernels (VNNI on CPUs that have it; TensorRT reads the same graph as explicit int8).
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

from btsbot_stream.engine.cards import ModelCard
from btsbot_stream.engine.model import model_feeds
from btsbot_stream.quantize.dataset import AlertSet
from btsbot_stream.quantize.exceptions import QuantizeError
from btsbot_stream.quantize.recipe import Recipe

_METHODS = {
    "percentile": CalibrationMethod.Percentile,
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
}


class AlertFeeds(CalibrationDataReader):
    """Calibration inputs one alert at a time: ONNX Runtime's histogram calibrators
    (percentile, entropy) stack what they collect, so every batch must have one shape."""

    def __init__(self, card: ModelCard, alerts: AlertSet) -> None:
        self.card = card
        self.alerts = alerts
        self.next_index = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        i = self.next_index
        if i >= len(self.alerts):
            return None
        self.next_index += 1
        return model_feeds(
            self.card, self.alerts.triplets[i : i + 1], self.alerts.metadata[i : i + 1]
        )

    def rewind(self) -> None:
        self.next_index = 0


class _NoPreprocessAdvice(logging.Filter):
    # The tools advise their shape-inference pre-pass on every call; our graphs have
    # static shapes apart from the batch axis, which the pass leaves alone.
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-process" not in record.getMessage()


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """The tools print progress lines and log advice: keep them for error messages."""
    chatter = io.StringIO()
    root, advice = logging.getLogger(), _NoPreprocessAdvice()
    root.addFilter(advice)
    try:
        with contextlib.redirect_stdout(chatter):
            yield chatter
    finally:
        root.removeFilter(advice)


def quantize_int8(
    parent: Path,
    out: Path,
    card: ModelCard,
    calibration: AlertSet,
    recipe: Recipe,
    nodes: list[str] | None,
) -> None:
    """Write the int8 QDQ graph of ``parent`` to ``out``.

    Parameters
    ----------
    parent : Path
        The parent's ONNX file (already checked against its card).
    out : Path
        Where to write the variant.
    card : ModelCard
        The parent's card (input names and layout for the calibration feeds).
    calibration : AlertSet
        Real prepared alerts the activation ranges are calibrated on.
    recipe : Recipe
        Calibration method, percentile, per-channel weights, activation type.
    nodes : list of str or None
        The nodes to quantize; None: every node the tools support.
    """
    extra: dict[str, object] = {"ActivationSymmetric": recipe.activations == "int8"}
    if recipe.calibration_method == "percentile":
        extra["CalibPercentile"] = recipe.percentile
    with _quiet() as chatter:
        try:
            quantize_static(
                str(parent),
                str(out),
                AlertFeeds(card, calibration),
                quant_format=QuantFormat.QDQ,
                nodes_to_quantize=nodes,
                per_channel=recipe.per_channel,
                activation_type=QuantType.QUInt8
                if recipe.activations == "uint8"
                else QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=_METHODS[recipe.calibration_method],
                extra_options=extra,
            )
        except Exception as exc:  # the tools raise many types; all mean "no variant"
            raise QuantizeError(
                f"int8 quantization of {card.name} failed: {type(exc).__name__}: {exc}\n"
                f"{chatter.getvalue()[-2000:]}"
            ) from exc
