"""A plain install (no ``quantize`` extra): the service and ``models list/verify`` never
import onnx or ONNX Runtime's quantization tools; ``models quantize`` names the extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def test_quantize_without_onnx_names_the_extra(models_dir: Path, demo_alerts: Path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["onnx"] = None  # as if the quantize extra were not installed
        from click.testing import CliRunner
        from btsbot_stream.cli import main

        runner = CliRunner(env={{"COLUMNS": "250"}})
        listed = runner.invoke(main, ["models", "list", "--models-dir", {str(models_dir)!r}])
        assert listed.exit_code == 0 and "passed: max|d|" in listed.output, listed.output
        args = ["models", "quantize", "btsbot-v1.0.1", "--calibration", {str(demo_alerts)!r}]
        done = runner.invoke(main, args)
        assert done.exit_code == 1, done.output
        assert "pip install 'btsbot-stream[quantize]'" in done.stderr, done.stderr
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_service_does_not_import_the_quantization_tools():
    script = (
        "import sys, btsbot_stream.cli, btsbot_stream.cli.models, btsbot_stream.stream.service;"
        " assert not {'onnx', 'onnxruntime.quantization'} & set(sys.modules), 'imported'"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
