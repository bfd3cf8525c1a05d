"""The int8 variant shipped in models/: its card matches its file, its gate report and its
parent; it is a model like any other (verify, list, score beside its parent, its own
sha256 in the output). Needs nothing beside the clone."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import fastavro
import onnx
import pytest
from click.testing import CliRunner

from btsbot_stream.cli import main
from btsbot_stream.engine.cards import builtin_cards, find_card, verify_file
from btsbot_stream.quantize.report import GateReport
from btsbot_stream.stream import enrich

VARIANT = "btsbot-v1.0.1-int8"
PARENT = "btsbot-v1.0.1"
CONV = "StatefulPartitionedCall/mm_cnn/conv{}/BiasAdd"

runner = CliRunner(env={"COLUMNS": "250"})


@pytest.fixture(scope="module")
def card(models_dir: Path):
    return find_card(VARIANT, models_dir)


@pytest.fixture(scope="module")
def report(models_dir: Path, card) -> GateReport:
    return GateReport.model_validate_json((models_dir / card.derived_from.gate.report).read_text())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_card_matches_its_file_and_parent(card, models_dir: Path):
    assert _sha256(models_dir / card.file) == card.sha256
    verify_file(card, models_dir)
    parent = builtin_cards()[PARENT]
    derived = card.derived_from
    assert (derived.parent, derived.parent_sha256) == (PARENT, parent.sha256)
    assert _sha256(models_dir / parent.file) == parent.sha256
    # inputs and output as the parent's: the service feeds it the same way
    assert (card.image_input, card.metadata_input, card.output) == ("triplet", "metadata", "fc_out")
    assert card.metadata_features == parent.metadata_features


def test_card_matches_its_gate_report(card, report, models_dir: Path):
    gate = card.derived_from.gate
    assert _sha256(models_dir / gate.report) == gate.report_sha256
    assert report.passed and report.failures == ()
    assert (report.variant.sha256, report.parent.sha256) == (
        card.sha256,
        card.derived_from.parent_sha256,
    )
    assert report.differences.max_abs == gate.max_abs_diff <= report.limits.max_abs_diff <= 0.05
    assert {f"{t.threshold:g}": t.flips for t in report.thresholds} == gate.flips
    assert gate.flips == {"0.5": 0, "0.85": 0}
    assert report.held_out.alerts == gate.held_out_alerts >= 100


def test_calibration_and_held_out_alerts_are_apart_and_as_recorded(card, report):
    calibration, held_out = report.calibration, report.held_out
    assert not set(calibration.candids) & set(held_out.candids)
    for record in (calibration, held_out):
        listed = "".join(f"{c}\n" for c in sorted(record.candids)).encode()
        assert hashlib.sha256(listed).hexdigest() == record.candids_sha256
        assert len(record.candids) == record.alerts
    assert card.derived_from.calibration.candids_sha256 == calibration.candids_sha256
    assert card.derived_from.calibration.alerts == calibration.alerts


def test_only_conv2_to_conv4_are_int8(card, models_dir: Path):
    graph = onnx.load(str(models_dir / card.file)).graph
    dequantized = {out for n in graph.node if n.op_type == "DequantizeLinear" for out in n.output}
    int8_convs = {n.name for n in graph.node if n.op_type == "Conv" and n.input[1] in dequantized}
    fp32_convs = {n.name for n in graph.node if n.op_type == "Conv"} - int8_convs
    assert int8_convs == {CONV.format(i) for i in (2, 3, 4)}
    assert fp32_convs == {CONV.format(1)}
    assert all(not set(n.input) & dequantized for n in graph.node if n.op_type == "MatMul")
    assert CONV.format(1) in card.derived_from.fp32_nodes


def test_verify_shows_the_gate(models_dir: Path, example_dir: Path):
    args = ["models", "verify", VARIANT, "--models-dir", str(models_dir), "--examples"]
    result = runner.invoke(main, [*args, str(example_dir)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok: {VARIANT}")
    assert f"fidelity gate: {VARIANT} (int8) against {PARENT}" in result.stdout
    assert "PASSED" in result.stdout


def test_verify_refuses_an_edited_report(models_dir: Path, tmp_path: Path, card):
    for name in (card.file, f"{VARIANT}.json", card.derived_from.gate.report):
        shutil.copy(models_dir / name, tmp_path / name)
    (tmp_path / f"{PARENT}.onnx").symlink_to(models_dir / f"{PARENT}.onnx")
    report_path = tmp_path / card.derived_from.gate.report
    report_path.write_text(report_path.read_text().replace('"max_flips": 0', '"max_flips": 9'))
    result = runner.invoke(main, ["models", "verify", VARIANT, "--models-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "changed after the gate" in result.stderr


def test_list_shows_the_gate(models_dir: Path):
    result = runner.invoke(main, ["models", "list", "--json", "--models-dir", str(models_dir)])
    assert result.exit_code == 0, result.output
    rows = {row["model"]: row for row in json.loads(result.stdout)}
    gate = rows[VARIANT]["gate"]
    assert "passed: max|d| 0.02" in gate and "flips 0/0 at 0.5/0.85" in gate
    assert rows[PARENT]["gate"] is None


def test_scores_beside_its_parent(models_dir: Path, demo_alerts: Path, tmp_path: Path):
    out = tmp_path / "scores.jsonl"
    args = ["score", str(demo_alerts), "--models-dir", str(models_dir), "--device", "cpu"]
    result = runner.invoke(main, [*args, "--model", VARIANT, "--model", PARENT, "--out", str(out)])
    assert result.exit_code == 0, result.output
    scored = [line for line in map(json.loads, out.read_text().splitlines()) if "scores" in line]
    assert len(scored) == 29  # the demo sample's alerts with FITS stamps
    for line in scored:
        variant, parent = line["scores"][VARIANT], line["scores"][PARENT]
        # some of these alerts calibrated the variant: not a fidelity test, a sanity one
        assert abs(variant - parent) <= 0.05
        assert (variant > 0.5, variant > 0.85) == (parent > 0.5, parent > 0.85)


def test_output_carries_each_models_own_sha256(models_dir: Path, card):
    cards = [card, find_card(PARENT, models_dir)]
    field = enrich.scores_field(cards, {VARIANT: 0.25, PARENT: 0.5}, 0)
    schema = fastavro.parse_schema(["null", enrich.SCORES_RECORD])
    value = fastavro.schemaless_reader(io.BytesIO(field), schema, None)
    assert {s["model"]: s["sha256"] for s in value["scores"]} == {c.name: c.sha256 for c in cards}
