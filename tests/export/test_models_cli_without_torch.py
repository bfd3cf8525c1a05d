"""The catalogue and ``btsbot-stream models`` without the export extra: nothing imports
torch until an export runs, and a missing extra gets the install command. Not marked
``export``: this is what a plain install (no torch) must do."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from btsbot_stream.engine.catalogue import BUILTIN_MODEL, CATALOGUE, catalogue_entry
from btsbot_stream.engine.exceptions import ModelNotFoundError

PUBLISHED_REPOS = {
    "nabeelr/BTSbot-convnext-pico-galaxyzoo", "nabeelr/BTSbot-convnext-pico-in1k",
    "nabeelr/BTSbot-convnext-pico-randinit", "nabeelr/BTSbot-convnext-pico-galaxyzoo-metadata",
    "nabeelr/BTSbot-convnext-pico-in1k-metadata",
    "nabeelr/BTSbot-convnext-pico-randinit-metadata", "nabeelr/BTSbot-maxvit-tiny-galaxyzoo",
    "nabeelr/BTSbot-maxvit-tiny-in1k", "nabeelr/BTSbot-maxvit-tiny-randinit",
    "nabeelr/BTSbot-maxvit-tiny-galaxyzoo-metadata",
}  # fmt: skip


def test_catalogue_lists_the_ten_published_models():
    assert {entry.repo for entry in CATALOGUE.values()} == PUBLISHED_REPOS
    for name, entry in CATALOGUE.items():
        assert name == entry.repo.split("/")[1].lower()
        assert entry.metadata == name.endswith("-metadata")
        assert entry.backbone == ("convnext_pico" if "convnext" in name else "maxvit_tiny_rw_224")
    assert BUILTIN_MODEL not in CATALOGUE


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ModelNotFoundError, match=r"btsbot-convnext-pico-galaxyzoo.*export --from"):
        catalogue_entry("btsbot-resnet")


def test_models_commands_work_without_torch(tmp_path: Path):
    script = textwrap.dedent(
        f"""
        import sys
        for blocked in ("torch", "timm", "onnxscript"):
            sys.modules[blocked] = None  # as if the export extra were not installed
        from click.testing import CliRunner
        from btsbot_stream.cli import main

        runner = CliRunner(env={{"COLUMNS": "250"}})
        listed = runner.invoke(main, ["models", "list", "--models-dir", {str(tmp_path)!r}])
        assert listed.exit_code == 0, listed.output
        assert "btsbot-maxvit-tiny-galaxyzoo-metadata" in listed.output, listed.output
        assert "btsbot-v1.0.1" in listed.output
        pulled = runner.invoke(
            main, ["models", "pull", "btsbot-convnext-pico-in1k", "--models-dir", {str(tmp_path)!r}]
        )
        assert pulled.exit_code == 1, pulled.output
        assert "pip install 'btsbot-stream[export]'" in pulled.stderr, pulled.stderr
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_importing_the_cli_does_not_import_torch():
    script = (
        "import sys, btsbot_stream.cli, btsbot_stream.cli.models, btsbot_stream.engine.catalogue,"
        " btsbot_stream.export, btsbot_stream.export.examples;"
        " assert 'torch' not in sys.modules and 'timm' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
