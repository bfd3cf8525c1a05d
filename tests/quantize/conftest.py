"""Fixtures of the quantize tests: a models directory holding only the production model,
and ``btsbot-stream models quantize`` run in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from quantize_support import fresh_models

from btsbot_stream.cli import main


@pytest.fixture
def fresh_models_dir(tmp_path: Path, models_dir: Path) -> Path:
    return fresh_models(tmp_path / "models", models_dir)


@pytest.fixture(scope="session")
def quantize_cli() -> Callable[..., Result]:
    """``quantize_cli(*args)``: ``btsbot-stream models quantize ARGS`` (CPU, untimed
    unless the args say otherwise)."""
    runner = CliRunner(env={"COLUMNS": "250"})

    def run(*args: str) -> Result:
        base = ["--log-level", "WARNING", "models", "quantize", "--device", "cpu"]
        if not any(a.startswith("--speed-rounds") for a in args):
            base += ["--speed-rounds", "0"]
        return runner.invoke(main, [*base, *args])

    return run
