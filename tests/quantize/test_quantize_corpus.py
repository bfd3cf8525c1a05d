"""``models quantize`` on the shared corpus (required in CI): calibrated on one part of
the real alerts, gated on the other, split by object. The gate's figures are checked
against a recomputation from the plain reference preprocessing and bare ONNX Runtime
sessions; a whole-graph min-max quantization must fail the gate and write nothing."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from quantize_support import PARENT, fresh_models, listing

from btsbot_stream.alerts import reference
from btsbot_stream.engine.cards import find_card, verify_file
from btsbot_stream.quantize.report import GateReport

VARIANT = f"{PARENT}-int8"


@pytest.fixture(scope="module")
def corpus_alerts(ztf: Path) -> dict[int, dict]:
    """candid -> the alert as the plain fastavro reader gives it."""
    alerts = {}
    for path in sorted((ztf / "alerts").rglob("*.avro")):
        for alert in reference.read_alerts(path.read_bytes()):
            alerts[alert["candid"]] = alert
    return alerts


@pytest.fixture(scope="module")
def quantized(quantize_cli, ztf: Path, models_dir: Path, tmp_path_factory) -> tuple[Path, str]:
    folder = fresh_models(tmp_path_factory.mktemp("quantized") / "models", models_dir)
    result = quantize_cli(
        PARENT, "--calibration", str(ztf / "alerts"), "--labels", str(ztf / "LABELS.csv"),
        "--models-dir", str(folder),
    )  # fmt: skip
    return folder, result


def _report(folder: Path) -> GateReport:
    return GateReport.model_validate_json((folder / f"{VARIANT}.gate.json").read_text())


def test_the_corpus_variant_passes_the_gate(quantized):
    folder, result = quantized
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.stdout
    card = find_card(VARIANT, folder)
    verify_file(card, folder)
    report = _report(folder)
    assert report.held_out.alerts >= 100 and report.calibration.alerts >= 100
    assert report.differences.max_abs <= 0.05
    assert all(t.flips == 0 for t in report.thresholds)
    assert card.derived_from.gate.report_sha256 and card.derived_from.calibration.alerts > 0


def test_no_object_is_on_both_sides(quantized, corpus_alerts):
    report = _report(quantized[0])
    calibration = {corpus_alerts[c]["objectId"] for c in report.calibration.candids}
    held_out = {corpus_alerts[c]["objectId"] for c in report.held_out.candids}
    assert not calibration & held_out
    assert report.calibration.alerts + report.held_out.alerts == 550  # every FITS alert


def test_gate_figures_match_a_plain_recomputation(quantized, corpus_alerts):
    folder = quantized[0]
    report = _report(folder)
    held = [corpus_alerts[c] for c in report.held_out.candids]
    feeds = {
        "triplet": np.stack([reference.triplet(a) for a in held]),
        "metadata": np.stack([reference.metadata(a) for a in held]),
    }
    scores = {}
    for name in (PARENT, VARIANT):
        session = ort.InferenceSession(
            str(folder / f"{name}.onnx"), providers=["CPUExecutionProvider"]
        )
        scores[name] = session.run(["fc_out"], feeds)[0][:, 0].astype(np.float64)
    gap = np.abs(scores[VARIANT] - scores[PARENT])
    assert report.differences.max_abs == pytest.approx(gap.max(), abs=1e-5)
    for t in report.thresholds:
        flips = int(((scores[VARIANT] > t.threshold) != (scores[PARENT] > t.threshold)).sum())
        assert t.flips == flips
        assert t.parent_positive == int((scores[PARENT] > t.threshold).sum())


def test_labels_are_matched_by_candid(quantized, ztf: Path):
    report = _report(quantized[0])
    with (ztf / "LABELS.csv").open() as fh:
        labelled = {int(row["candid"]) for row in csv.DictReader(fh)}
    assert report.labels.positives == len(labelled & set(report.held_out.candids)) > 0
    assert report.labels.negatives == 0 and report.labels.auc is None


def test_whole_graph_min_max_fails_and_writes_nothing(quantize_cli, ztf: Path, fresh_models_dir):
    before = listing(fresh_models_dir)
    result = quantize_cli(
        PARENT, "--calibration", str(ztf / "alerts"), "--scope", "all",
        "--calibration-method", "minmax", "--per-tensor", "--models-dir", str(fresh_models_dir),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "FAILED" in result.stdout and "decision flips at 0.5" in result.stdout
    assert "nothing was written" in result.stderr
    assert listing(fresh_models_dir) == before
