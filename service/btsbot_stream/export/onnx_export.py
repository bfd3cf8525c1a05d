"""PyTorch module -> ONNX file, and the parity of the two on the same inputs.

The graph takes ``image`` float32 (N, 3, 63, 63) NCHW and, for fusion models, ``metadata``
float32 (N, 25); it returns ``logits`` (N, 1). The batch axis is dynamic. We use the
dynamo exporter: the legacy TorchScript exporter's MaxViT graphs ran 5-50% slower.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from btsbot_stream.export.examples import InputSet
from btsbot_stream.export.exceptions import ExportError, ParityError

IMAGE_INPUT = "image"
METADATA_INPUT = "metadata"
OUTPUT = "logits"
MIN_OPSET = 17
PARITY_TOLERANCE = 1e-5  # max |onnx - torch| on the logit


def export_onnx(model: nn.Module, uses_metadata: bool, path: Path, opset: int) -> None:
    """Write ``model`` to ``path`` as a single self-contained ONNX file.

    Parameters
    ----------
    model : torch.nn.Module
        In eval mode; ``forward(image)`` or ``forward(image, metadata)``.
    uses_metadata : bool
        Whether the graph takes the ``metadata`` input.
    path : Path
        Output file (weights embedded: the card's sha256 covers everything).
    opset : int
        ONNX opset, at least 17 (LayerNormalization).
    """
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is too old; use {MIN_OPSET} or later")
    sample: tuple[torch.Tensor, ...] = (torch.zeros(2, 3, 63, 63),)
    names = [IMAGE_INPUT]
    if uses_metadata:
        sample += (torch.zeros(2, 25),)
        names.append(METADATA_INPUT)
    batch = torch.export.Dim("batch", min=1)
    # Given as a tuple (one entry per positional input), not a dict: the exporter matches
    # dict keys against forward's argument names, which differ between our modules and
    # timm's (``x``).
    dynamic_shapes = tuple({0: batch} for _ in sample)
    chatter = io.StringIO()  # the exporter prints progress lines; keep them for errors
    try:
        with contextlib.redirect_stdout(chatter), _quiet_exporter():
            torch.onnx.export(
                model,
                sample,
                str(path),
                dynamo=True,
                input_names=names,
                output_names=[OUTPUT],
                dynamic_shapes=dynamic_shapes,
                opset_version=opset,
                external_data=False,
                verbose=False,
            )
        onnx.checker.check_model(str(path))
    except Exception as exc:  # the exporter raises many types; all mean "no usable graph"
        raise ExportError(
            f"ONNX export failed: {type(exc).__name__}: {exc}\n{chatter.getvalue()[-2000:]}"
        ) from exc


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's per-pass INFO logs (hundreds of lines per model) and its
    warning that both inputs share the one ``batch`` axis (which is what we want)."""
    loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir", "torch.onnx")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*axis name.*will not be used")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def torch_logits(model: nn.Module, inputs: InputSet, uses_metadata: bool) -> np.ndarray:
    """(N,) float64 logits of the PyTorch model (CPU, float32 arithmetic)."""
    args = [torch.from_numpy(inputs.nchw)]
    if uses_metadata:
        args.append(torch.from_numpy(inputs.metadata))
    with torch.inference_mode():
        return model(*args).double().numpy().reshape(-1)


def onnx_logits(session: ort.InferenceSession, inputs: InputSet, uses_metadata: bool) -> np.ndarray:
    """(N,) float64 logits of the exported graph on ONNX Runtime."""
    feeds = {IMAGE_INPUT: inputs.nchw}
    if uses_metadata:
        feeds[METADATA_INPUT] = inputs.metadata
    (out,) = session.run([OUTPUT], feeds)
    return np.asarray(out, dtype=np.float64).reshape(-1)


def measure_parity(
    model: nn.Module, path: Path, uses_metadata: bool, input_sets: Sequence[InputSet]
) -> dict[str, float]:
    """Max |onnx - torch| on the logit for each input set; raise when over tolerance.

    Each set runs as one batch, so a set of 64 also checks the dynamic batch axis.

    Raises
    ------
    ParityError
        When any set differs by more than :data:`PARITY_TOLERANCE`.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    errors: dict[str, float] = {}
    for inputs in input_sets:
        expected = torch_logits(model, inputs, uses_metadata)
        actual = onnx_logits(session, inputs, uses_metadata)
        if actual.shape != expected.shape or not np.all(np.isfinite(actual)):
            raise ParityError(
                f"on {inputs.name}: ONNX returned shape {actual.shape} (finite: "
                f"{bool(np.all(np.isfinite(actual)))}), PyTorch {expected.shape}"
            )
        errors[inputs.name] = float(np.max(np.abs(actual - expected)))
    worst = max(errors, key=errors.__getitem__)
    if errors[worst] > PARITY_TOLERANCE:
        raise ParityError(
            f"ONNX and PyTorch logits differ by {errors[worst]:.3g} on {worst} (tolerance "
            f"{PARITY_TOLERANCE:g}); nothing was installed. All sets: {_describe(errors)}"
        )
    return errors


def _describe(errors: dict[str, float]) -> str:
    return "; ".join(f"{name}: {value:.2g}" for name, value in errors.items())
