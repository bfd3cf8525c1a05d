"""One variant, start to finish: parent -> reduced graph -> fidelity gate -> installed.

Nothing reaches the models directory unless the gate passes: the variant, its gate
report and its card are written into a hidden temporary folder inside the models
directory and renamed into place at the end (same file system, so each rename is atomic;
the card last, so a card never points at nothing). A failed gate raises
:class:`GateFailedError` carrying the report, and the directory is left as it was.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from btsbot_stream.engine.cards import (
    GATE_REPORT_SUFFIX,
    CalibrationRecord,
    Derivation,
    GateRecord,
    ModelCard,
    builtin_cards,
    find_card,
    sha256_of,
    verify_file,
    write_card,
)
from btsbot_stream.engine.model import OnnxModel
from btsbot_stream.engine.providers import Device
from btsbot_stream.quantize import casts, gate, graph
from btsbot_stream.quantize.dataset import GateData
from btsbot_stream.quantize.exceptions import GateFailedError, QuantizeError
from btsbot_stream.quantize.int8 import quantize_int8
from btsbot_stream.quantize.recipe import Recipe
from btsbot_stream.quantize.report import GateLimits, GateReport, ModelRef, ThresholdResult

log = logging.getLogger(__name__)
ProviderOptions = dict[str, dict[str, Any]]

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_TOOLS = ("onnx", "onnxruntime", "numpy", "btsbot-stream")
_METHODS = {
    "int8": "onnxruntime.quantization.quantize_static (QDQ), activation ranges calibrated on "
    "real alerts",
    "fp16": "float16 casts around the selected nodes (weights stored in float16)",
    "bf16": "bfloat16 casts around the selected nodes (weights stored in bfloat16, opset 22)",
}


@dataclass(frozen=True)
class VariantResult:
    card: ModelCard
    onnx_path: Path
    card_path: Path
    report_path: Path
    report: GateReport


def make_variant(
    parent_name: str,
    models_dir: Path,
    recipe: Recipe,
    data: GateData,
    limits: GateLimits,
    name: str | None = None,
    device: Device = "auto",
    threads: int = 0,
    speed_rounds: int = gate.SPEED_ROUNDS,
    provider_options: tuple[ProviderOptions | None, ProviderOptions | None] = (None, None),
) -> VariantResult:
    """Make, gate and install ``name`` (default ``<parent>-<precision>``).

    ``speed_rounds`` passes of each model time them for the report (0: not timed).
    ``provider_options`` are the (parent, variant) ONNX Runtime provider options for the
    gate, e.g. TensorRT's ``trt_int8_enable`` for an int8 variant only.
    """
    parent = find_card(parent_name, models_dir)
    if parent.derived_from is not None:
        raise QuantizeError(
            f"{parent_name} is itself a variant; start from {parent.derived_from.parent}"
        )
    parent_path = verify_file(parent, models_dir)
    name = name or f"{parent_name}-{recipe.precision}"
    if not _NAME.fullmatch(name) or name in builtin_cards() or name == parent_name:
        raise QuantizeError(
            f"{name!r} cannot name a variant: lower-case letters, digits, "
            "'.', '-', '_', and not a built-in model"
        )
    parent_graph = onnx.load(str(parent_path))
    nodes = graph.select_nodes(parent_graph, recipe.resolved_scope(parent.architecture))
    try:
        staging = tempfile.TemporaryDirectory(prefix=f".{name}.", dir=models_dir)
    except OSError as exc:
        raise QuantizeError(f"cannot write to the models directory {models_dir}: {exc}") from exc
    with staging as tmp:
        staged = Path(tmp) / f"{name}.onnx"
        if recipe.precision == "int8":
            quantize_int8(parent_path, staged, parent, data.calibration, recipe, nodes)
            reduced = graph.dequantized_nodes(onnx.load(str(staged)))
        else:
            chosen = nodes if nodes is not None else graph.compute_nodes(parent_graph)
            casts.convert(parent_path, staged, recipe.precision, chosen)
            reduced = chosen
        card = _provisional_card(parent, name, recipe, staged)
        report = judge(
            parent, parent_path, card, staged, recipe, data, limits, device, threads,
            speed_rounds, provider_options,
        )  # fmt: skip
        if not report.passed:
            raise GateFailedError(report)
        staged_report = Path(tmp) / f"{name}{GATE_REPORT_SUFFIX}"
        staged_report.write_text(report.to_json())
        fp32 = [n for n in graph.compute_nodes(parent_graph) if n not in set(reduced)]
        card = card.model_copy(
            update={
                "derived_from": _derivation(
                    parent, recipe, reduced, fp32, data, report, staged_report
                )
            }
        )
        card = ModelCard.model_validate(card.model_dump())  # the card as it will be read back
        onnx_path, report_path = models_dir / card.file, models_dir / staged_report.name
        os.replace(staged, onnx_path)
        os.replace(staged_report, report_path)
        card_path = write_card(card, models_dir)
    log.info("installed %s (%s)", name, report.summary())
    return VariantResult(card, onnx_path, card_path, report_path, report)


def _provisional_card(parent: ModelCard, name: str, recipe: Recipe, staged: Path) -> ModelCard:
    scope = recipe.resolved_scope(parent.architecture)
    return parent.model_copy(
        update={
            "name": name,
            "version": f"{parent.version}-{recipe.precision}",
            "description": f"{recipe.precision} variant ({scope}) of {parent.name}: "
            + parent.description,
            "file": staged.name,
            "sha256": sha256_of(staged),
            "export": None,
        }
    )


def judge(
    parent: ModelCard,
    parent_path: Path,
    variant: ModelCard,
    variant_path: Path,
    recipe: Recipe,
    data: GateData,
    limits: GateLimits,
    device: Device,
    threads: int,
    speed_rounds: int = gate.SPEED_ROUNDS,
    provider_options: tuple[ProviderOptions | None, ProviderOptions | None] = (None, None),
) -> GateReport:
    """Score the held-out alerts with both models and write the verdict."""
    held = data.held_out
    parent_options, variant_options = provider_options
    parent_model = OnnxModel(parent, parent_path, device, threads, gpu_options=parent_options)
    parent_scores = parent_model.predict(held.triplets, held.metadata)
    variant_model: OnnxModel | None = None
    try:
        variant_model = OnnxModel(
            variant, variant_path, device, threads, gpu_options=variant_options
        )
        variant_scores = variant_model.predict(held.triplets, held.metadata)
        problems = [] if np.all(np.isfinite(variant_scores)) else ["non-finite variant scores"]
    except Exception as exc:  # ONNX Runtime's errors are untyped: any means "does not run"
        problems = [f"the variant does not run on {device}: {type(exc).__name__}: {exc}"]
    diffs, labels, speed = None, None, None
    thresholds: tuple[ThresholdResult, ...] = ()
    if not problems and variant_model is not None:
        diffs = gate.differences(parent_scores, variant_scores, held.candids)
        thresholds = gate.decisions(parent_scores, variant_scores, held.candids, limits)
        if data.labels is not None and data.labels_file is not None:
            labels = gate.label_result(
                data.labels,
                data.labels_file,
                held.candids,
                parent_scores,
                variant_scores,
                limits.thresholds,
            )
        if speed_rounds:
            speed = gate.speed(parent_model, variant_model, held, speed_rounds)
    problems += gate.failures(len(held), diffs, thresholds, limits)
    return GateReport(
        verdict="failed" if problems else "passed",
        failures=tuple(problems),
        parent=ModelRef(name=parent.name, file=parent.file, sha256=parent.sha256),
        variant=ModelRef(name=variant.name, file=variant.file, sha256=variant.sha256),
        precision=recipe.precision,
        provider=parent_model.provider,
        limits=limits,
        calibration=data.calibration_record if recipe.precision == "int8" else None,
        held_out=data.held_out_record,
        differences=diffs,
        thresholds=thresholds,
        labels=labels,
        speed=speed,
        tool_versions=_tool_versions(),
        made_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _derivation(
    parent: ModelCard,
    recipe: Recipe,
    reduced: list[str],
    fp32: list[str],
    data: GateData,
    report: GateReport,
    report_file: Path,
) -> Derivation:
    calibration = None
    if recipe.precision == "int8":
        record = data.calibration_record
        calibration = CalibrationRecord(
            alerts=record.alerts,
            objects=record.objects,
            candids_sha256=record.candids_sha256,
            inputs_sha256=record.inputs_sha256,
            split=record.rule,
            sources=record.sources,
        )
    assert report.differences is not None  # a passed gate compared scores
    return Derivation(
        parent=parent.name,
        parent_sha256=parent.sha256,
        precision=recipe.precision,
        method=_METHODS[recipe.precision],
        settings=recipe.settings(parent.architecture),
        reduced_nodes=tuple(reduced),
        fp32_nodes=tuple(fp32),
        calibration=calibration,
        gate=GateRecord(
            report=report_file.name,
            report_sha256=sha256_of(report_file),
            held_out_alerts=report.held_out.alerts,
            max_abs_diff=report.differences.max_abs,
            flips={f"{t.threshold:g}": t.flips for t in report.thresholds},
        ),
        tool_versions=_tool_versions(),
        made_at=report.made_at,
    )


def _tool_versions() -> dict[str, str]:
    return {tool: version(tool) for tool in _TOOLS}
