"""Helpers of the quantize tests (no code under test here)."""

from __future__ import annotations

from pathlib import Path

PARENT = "btsbot-v1.0.1"


def fresh_models(folder: Path, repo_models: Path) -> Path:
    """A models directory with the production model (linked) and nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{PARENT}.onnx").symlink_to(repo_models / f"{PARENT}.onnx")
    return folder


def listing(folder: Path) -> list[str]:
    """Every entry, hidden staging folders included."""
    return sorted(p.name for p in folder.iterdir())
