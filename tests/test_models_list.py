"""``btsbot-stream models list``: a table on a terminal, plain tab-separated lines on a
pipe (never wrapped, whatever the width), and ``--json`` for scripts."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from btsbot_stream.cli import main
from btsbot_stream.engine.catalogue import CATALOGUE

REPO_MODELS = Path(__file__).resolve().parents[1] / "models"
SHA256 = "747790d6879a9934977365b2ca422c4d3c59cd5c785c8b9dbf74492d82b774f2"  # models/README.md


SHIPPED = ("btsbot-v1.0.1", "btsbot-v1.0.1-int8")  # the models models/ holds


def _list(*args: str) -> str:
    runner = CliRunner(env={"COLUMNS": "40"})  # narrow: a table would wrap every cell
    result = runner.invoke(main, ["models", "list", "--models-dir", str(REPO_MODELS), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_plain_lines_on_a_pipe() -> None:
    header, *lines = _list().splitlines()
    assert header.split("\t") == [
        "model", "inputs", "architecture", "present", "source", "version", "parity",
    ]  # fmt: skip
    rows = {line.split("\t")[0]: line.split("\t") for line in lines}
    assert all(len(row) == 7 for row in rows.values()), "one line per model, seven fields"
    assert set(rows) == {*CATALOGUE, *SHIPPED}
    assert rows["btsbot-v1.0.1"][3] == "yes" and rows["btsbot-v1.0.1"][5] == "1.0.1"
    assert rows["btsbot-convnext-pico-in1k"][3] == "no"
    assert "│" not in header and not any("│" in line for line in lines)


def test_json() -> None:
    models = {m["model"]: m for m in json.loads(_list("--json"))}
    assert set(models) == {*CATALOGUE, *SHIPPED}
    production = models["btsbot-v1.0.1"]
    assert production["present"] is True and production["sha256"] == SHA256
    assert Path(production["file"]).name == "btsbot-v1.0.1.onnx"
    assert production["inputs"] == "image+metadata"
    absent = models["btsbot-maxvit-tiny-in1k"]
    assert absent["present"] is False and absent["file"] is None and absent["version"] is None


def test_a_table_on_a_terminal() -> None:
    main_fd, child_fd = pty.openpty()
    command = [sys.executable, "-m", "btsbot_stream", "models", "list"]
    env = {**os.environ, "COLUMNS": "200"}
    with subprocess.Popen(
        [*command, "--models-dir", str(REPO_MODELS)], stdout=child_fd, stderr=child_fd, env=env
    ) as process:
        os.close(child_fd)
        chunks = []
        while True:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(60) == 0
    os.close(main_fd)
    shown = b"".join(chunks).decode()
    assert "BTSbot models" in shown and "│" in shown and "btsbot-v1.0.1" in shown
    assert "\tyes\t" not in shown
