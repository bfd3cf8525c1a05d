"""Shared fixtures. The shared corpus (real alerts, the real model) is found through
``BTSBOT_SHARED`` (default: ``../shared`` beside the repository). When it is missing
the tests fail, never skip: a green run without the real data would prove nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_root() -> Path:
    return Path(os.environ.get("BTSBOT_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    root = _shared_root()
    if not (root / "models" / "btsbot-v1.0.1.onnx").is_file() or not (root / "data").is_dir():
        pytest.fail(
            f"shared corpus not found at {root} (set BTSBOT_SHARED to the folder holding "
            "models/btsbot-v1.0.1.onnx and data/ztf)"
        )
    return root


@pytest.fixture(scope="session")
def models_dir(shared: Path) -> Path:
    return shared / "models"


@pytest.fixture(scope="session")
def ztf(shared: Path) -> Path:
    return shared / "data" / "ztf"
