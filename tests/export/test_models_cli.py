"""``btsbot-stream models list | verify`` on pulled models, and the options' help."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from synthetic import FAMILIES

from btsbot_stream.cli import main

pytestmark = pytest.mark.export

runner = CliRunner(env={"COLUMNS": "250"})


@pytest.mark.parametrize("key", list(FAMILIES))
def test_verify_rechecks_a_pulled_model(key, pulled, example_dir: Path):
    _, models_dir = pulled(key)
    name = FAMILIES[key].name
    args = ["models", "verify", name, "--models-dir", str(models_dir), "--examples"]
    result = runner.invoke(main, [*args, str(example_dir)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok: {name}")
    assert "first 8 of the 39 BTSbot example triplets" in result.stdout


def test_verify_refuses_a_damaged_file(pulled, tmp_path: Path):
    card, models_dir = pulled("convnext")
    for suffix in (".onnx", ".json"):
        shutil.copy(models_dir / f"{card.name}{suffix}", tmp_path / f"{card.name}{suffix}")
    damaged = tmp_path / card.file
    data = bytearray(damaged.read_bytes())
    data[-100] ^= 0x01
    damaged.write_bytes(bytes(data))
    result = runner.invoke(main, ["models", "verify", card.name, "--models-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "sha256" in result.stderr and card.sha256 in result.stderr


def test_list_shows_every_model_and_what_is_present(pulled):
    card, models_dir = pulled("convnext")
    result = runner.invoke(main, ["models", "list", "--models-dir", str(models_dir)])
    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.splitlines()  # not a terminal: tab-separated lines
    present = header.split("\t").index("present")
    rows = {line.split("\t")[0]: line.split("\t") for line in lines}
    assert len(rows) == 11  # the ten published models and btsbot-v1.0.1
    assert rows[card.name][present] == "yes" and card.source.repo in rows[card.name]
    assert rows["btsbot-convnext-pico-galaxyzoo"][present] == "no"
    assert rows["btsbot-v1.0.1"][present] == "yes"


@pytest.mark.parametrize(
    ("command", "envvars"),
    [
        ("pull", ["BTSBOT_MODEL_REVISION", "BTSBOT_EXAMPLES_DIR", "BTSBOT_EXPORT_OPSET"]),
        ("export", ["BTSBOT_EXPORT_FROM", "BTSBOT_EXAMPLES_DIR", "BTSBOT_EXPORT_OPSET"]),
        ("verify", ["BTSBOT_EXAMPLES_DIR"]),
        ("list", []),
    ],
)
def test_every_option_shows_its_environment_variable(command, envvars):
    result = runner.invoke(main, ["models", command, "--help"])
    assert result.exit_code == 0
    for name in [*envvars, "BTSBOT_ENGINE__MODELS_DIR"]:
        assert name in result.stdout, (command, name)
