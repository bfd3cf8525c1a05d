"""``models quantize`` end to end on the demo sample (shipped: runs without the corpus).

29 alerts split by object give ~10 to calibrate and ~19 to gate on: enough to show the
command works (files written atomically, card and report consistent, failures writing
nothing, the fp16/bf16 paths), not to show fidelity: that takes the corpus
(``test_quantize_corpus.py``), and ``--min-held-out`` is lowered here to allow it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from quantize_support import PARENT, listing

from btsbot_stream.alerts import reference
from btsbot_stream.engine.cards import find_card, verify_file
from btsbot_stream.quantize.report import GateReport

SMALL = ("--min-held-out", "10")


def _objects_by_candid(folder: Path) -> dict[int, str]:
    """candid -> objectId, read with the plain fastavro reader."""
    found = {}
    for path in folder.rglob("*.avro"):
        try:
            alerts = reference.read_alerts(path.read_bytes())
        except Exception:  # the odd/ files: truncated, not our concern here
            continue
        found.update({a["candid"]: a["objectId"] for a in alerts if a.get("objectId")})
    return found


def test_demo_sample_passes_and_installs_card_report_and_file(
    quantize_cli, fresh_models_dir: Path, demo_alerts: Path
):
    result = quantize_cli(
        PARENT, "--calibration", str(demo_alerts), *SMALL, "--models-dir", str(fresh_models_dir),
        "--speed-rounds", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.stdout and "installed btsbot-v1.0.1-int8" in result.stdout
    name = f"{PARENT}-int8"
    assert listing(fresh_models_dir) == sorted(
        [f"{PARENT}.onnx", f"{name}.onnx", f"{name}.json", f"{name}.gate.json"]
    )
    card = find_card(name, fresh_models_dir)
    verify_file(card, fresh_models_dir)
    report = GateReport.model_validate_json((fresh_models_dir / f"{name}.gate.json").read_text())
    assert report.passed and report.speed is not None and report.speed.ratio > 0
    objects = _objects_by_candid(demo_alerts)
    calibration = {objects[c] for c in report.calibration.candids}
    held_out = {objects[c] for c in report.held_out.candids}
    assert calibration and held_out and not calibration & held_out
    assert report.calibration.alerts + report.held_out.alerts == 29


def test_a_zero_tolerance_fails_and_writes_nothing(
    quantize_cli, fresh_models_dir: Path, demo_alerts: Path
):
    before = listing(fresh_models_dir)
    result = quantize_cli(
        PARENT, "--calibration", str(demo_alerts), *SMALL, "--max-abs-diff", "0",
        "--models-dir", str(fresh_models_dir),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "FAILED: max |difference|" in result.stdout  # the report is printed
    assert "failed the fidelity gate" in result.stderr and "nothing was written" in result.stderr
    assert listing(fresh_models_dir) == before


def test_too_few_held_out_alerts_fail(quantize_cli, fresh_models_dir: Path, demo_alerts: Path):
    before = listing(fresh_models_dir)
    result = quantize_cli(
        PARENT, "--calibration", str(demo_alerts), "--models-dir", str(fresh_models_dir)
    )
    assert result.exit_code == 1
    assert "held-out alerts, at least 100 needed" in result.stdout
    assert listing(fresh_models_dir) == before


def test_explicit_held_out_set_drops_the_calibration_objects(
    quantize_cli, fresh_models_dir: Path, demo_alerts: Path
):
    calibration = demo_alerts / "20200202"
    result = quantize_cli(
        PARENT, "--calibration", str(calibration), "--held-out", str(demo_alerts), *SMALL,
        "--models-dir", str(fresh_models_dir),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((fresh_models_dir / f"{PARENT}-int8.gate.json").read_text())
    objects = _objects_by_candid(demo_alerts)
    calibration_objects = {objects[c] for c in _objects_by_candid(calibration)}
    shared = [c for c, o in objects.items() if o in calibration_objects]
    assert report["held_out"]["dropped_shared_objects"] == len(shared) > 0
    assert not set(report["held_out"]["candids"]) & set(shared)
    assert report["calibration"]["alerts"] == len(_objects_by_candid(calibration))


def test_fp16_passes_on_the_cpu(quantize_cli, fresh_models_dir: Path, demo_alerts: Path):
    """The GPU variant's path: casts, no calibration; the gate runs on --device."""
    result = quantize_cli(
        PARENT, "--precision", "fp16", "--calibration", str(demo_alerts), *SMALL,
        "--models-dir", str(fresh_models_dir),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    card = find_card(f"{PARENT}-fp16", fresh_models_dir)
    assert card.input_dtype == "float32"  # casts inside: the service feeds it as usual
    assert card.derived_from.calibration is None
    assert card.derived_from.gate.max_abs_diff < 1e-3


def test_bf16_does_not_run_on_onnx_runtimes_cpu(
    quantize_cli, fresh_models_dir: Path, demo_alerts: Path
):
    """ONNX Runtime 1.32's CPU provider has no bfloat16 Conv: the gate says so."""
    before = listing(fresh_models_dir)
    result = quantize_cli(
        PARENT, "--precision", "bf16", "--calibration", str(demo_alerts), *SMALL,
        "--models-dir", str(fresh_models_dir),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "the variant does not run on cpu" in result.stdout and "Conv" in result.stdout
    assert listing(fresh_models_dir) == before


def test_a_variant_is_not_quantized_again(
    quantize_cli, fresh_models_dir: Path, demo_alerts: Path, models_dir: Path
):
    for suffix in (".onnx", ".json", ".gate.json"):
        name = f"{PARENT}-int8{suffix}"
        (fresh_models_dir / name).symlink_to(models_dir / name)
    result = quantize_cli(
        f"{PARENT}-int8", "--calibration", str(demo_alerts), "--models-dir", str(fresh_models_dir)
    )
    assert result.exit_code == 1
    assert f"start from {PARENT}" in result.stderr


@pytest.mark.parametrize(
    "option",
    [
        "BTSBOT_QUANTIZE_CALIBRATION", "BTSBOT_QUANTIZE_HELD_OUT", "BTSBOT_QUANTIZE_LABELS",
        "BTSBOT_QUANTIZE_PRECISION", "BTSBOT_QUANTIZE_SCOPE", "BTSBOT_QUANTIZE_MAX_ABS_DIFF",
        "BTSBOT_QUANTIZE_MAX_FLIPS", "BTSBOT_QUANTIZE_THRESHOLDS", "BTSBOT_QUANTIZE_MIN_HELD_OUT",
        "BTSBOT_ENGINE__MODELS_DIR", "BTSBOT_ENGINE__DEVICE",
    ],
)  # fmt: skip
def test_every_option_shows_its_environment_variable(quantize_cli, option):
    from click.testing import CliRunner

    from btsbot_stream.cli import main

    result = CliRunner(env={"COLUMNS": "250"}).invoke(main, ["models", "quantize", "--help"])
    assert result.exit_code == 0
    assert option in result.stdout
